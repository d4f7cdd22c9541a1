//! hotplug/install and hotplug/uninstall in a throwaway DESTDIR: originals kept and restored
//! byte for byte, prefix honoured, refusals before any change. Nothing here touches the
//! real root: every path written is under a scratch directory removed at the end.

mod common;
mod install_support;

use std::fs;
use std::path::Path;

use install_support::*;

#[test]
fn install_keeps_the_originals_and_uninstall_restores_them_byte_for_byte() {
    let d = scratch("install");
    fake_originals(d.path());
    let root = d.display();
    let bindir = bindir();
    let bindir = bindir.to_str().unwrap();
    let before = snapshot(d.path(), &[]);

    let dry = hotplug("install", &d, &["--bindir", bindir, "--qemu", "--dry-run"]);
    let dry = succeeded(&dry, "install --dry-run");
    assert_same(
        &before,
        &snapshot(d.path(), &[]),
        "install --dry-run changed files",
    );

    let out = hotplug("install", &d, &["--bindir", bindir, "--qemu"]);
    let log = succeeded(&out, "install");
    assert_eq!(text(&out.stderr), "", "install warned");
    // The dry run announced exactly the changes the install then logged.
    let planned: Vec<_> = dry
        .lines()
        .map(|l| l.strip_prefix("dry run: ").expect(l))
        .collect();
    assert_eq!(planned, log.lines().collect::<Vec<_>>());
    for line in [
        format!(
            "back up {root}/etc/xen/scripts/vif-bridge to {root}/etc/xen/scripts/vif-bridge.vifkit-orig"
        ),
        format!("link {root}/etc/xen/scripts/vif-bridge -> /usr/local/libexec/vifkit/vif-bridge"),
        format!("link {root}/etc/xen/scripts/vif-route -> /usr/local/libexec/vifkit/vif-route"),
        format!("link {root}/usr/local/sbin/vifkit -> /usr/local/libexec/vifkit/vifkit"),
        format!("install {root}/usr/local/libexec/vifkit/vif-bridge"),
    ] {
        assert!(
            log.lines().any(|l| l == line),
            "no line {line:?} in:\n{log}"
        );
    }

    let libexec = d.join("usr/local/libexec/vifkit");
    for name in LIBEXEC_FILES {
        let file = libexec.join(name);
        assert_eq!(mode_of(&file), 0o755, "{name}");
        let source = if name == "vif-setup" {
            Path::new(REPO).join("hotplug/vif-setup")
        } else {
            Path::new(bindir).join(name)
        };
        assert!(
            fs::read(&file).unwrap() == fs::read(&source).unwrap(),
            "{name} differs from {}",
            source.display()
        );
    }
    assert_eq!(
        link_of(&d.join("usr/local/sbin/vifkit")),
        "/usr/local/libexec/vifkit/vifkit"
    );
    for name in XEN_SCRIPTS {
        assert_eq!(
            link_of(&d.join(format!("etc/xen/scripts/{name}"))),
            format!("/usr/local/libexec/vifkit/{name}")
        );
    }
    for name in ["qemu-ifup", "qemu-ifdown"] {
        assert_eq!(
            link_of(&d.join(format!("etc/{name}"))),
            format!("/usr/local/libexec/vifkit/{name}")
        );
    }
    // The originals that existed are kept, untouched (mode, owner, content, mtime); no
    // backup stands for a file that did not exist.
    let installed = snapshot(d.path(), &[]);
    for (original, backup) in [
        (
            "etc/xen/scripts/vif-bridge",
            "etc/xen/scripts/vif-bridge.vifkit-orig",
        ),
        (
            "etc/xen/scripts/vif-nat",
            "etc/xen/scripts/vif-nat.vifkit-orig",
        ),
        ("etc/qemu-ifup", "etc/qemu-ifup.vifkit-orig"),
    ] {
        assert_eq!(installed[backup], before[original], "{backup}");
    }
    for missing in [
        "etc/xen/scripts/vif-route.vifkit-orig",
        "etc/xen/scripts/vif-route-ifup.vifkit-orig",
        "etc/qemu-ifdown.vifkit-orig",
    ] {
        assert!(!installed.contains_key(missing), "{missing}");
    }
    // This tree's man pages and the unmanaged-port files, as they are; completions from the
    // built vifkit.
    let mut shipped: Vec<_> = man_pages()
        .into_iter()
        .map(|(source, place)| (source, format!("usr/local/share/man/{place}")))
        .collect();
    shipped.extend(
        UNMANAGED
            .iter()
            .map(|(source, place)| (Path::new(REPO).join(source), format!("etc/{place}"))),
    );
    for (source, file) in &shipped {
        assert_eq!(mode_of(&d.join(file)), 0o644, "{file}");
        assert!(
            fs::read(d.join(file)).unwrap() == fs::read(source).unwrap(),
            "{file} differs from {}",
            source.display()
        );
        assert!(
            log.lines().any(|l| l == format!("install {root}/{file}")),
            "no line for {file} in:\n{log}"
        );
    }
    for file in [
        "usr/local/share/bash-completion/completions/vifkit",
        "usr/local/share/zsh/vendor-completions/_vifkit",
        "usr/local/share/fish/vendor_completions.d/vifkit.fish",
    ] {
        assert_eq!(mode_of(&d.join(file)), 0o644, "{file}");
    }
    // The watcher's unit, with ExecStart= in this prefix; installed, not enabled.
    let unit = d.join(format!("etc/systemd/system/{}", WATCH_UNIT.1));
    assert_eq!(mode_of(&unit), 0o644);
    assert_eq!(
        fs::read_to_string(&unit).unwrap(),
        watch_unit_for("/usr/local/libexec/vifkit")
    );
    assert!(
        log.lines()
            .any(|l| l == format!("install {}", unit.display())),
        "no line for the unit in:\n{log}"
    );
    assert_eq!(enablement_links(d.path()), Vec::<String>::new());
    verify_unit(
        &unit,
        "/usr/local/libexec/vifkit/vifkit",
        &libexec.join("vifkit"),
    );

    // A second install changes nothing: above all it does not back up its own links.
    let out = hotplug("install", &d, &["--bindir", bindir, "--qemu"]);
    assert_eq!(
        succeeded(&out, "second install"),
        "install: nothing to do\n"
    );
    assert_same(&installed, &snapshot(d.path(), &[]), "second install");

    let out = hotplug("uninstall", &d, &["--dry-run"]);
    let dry = succeeded(&out, "uninstall --dry-run");
    assert!(dry.lines().all(|l| l.starts_with("dry run: ")), "{dry}");
    assert_same(&installed, &snapshot(d.path(), &[]), "uninstall --dry-run");

    let out = hotplug("uninstall", &d, &[]);
    let log = succeeded(&out, "uninstall");
    assert_eq!(text(&out.stderr), "");
    assert!(
        log.lines().any(|l| l
            == format!(
                "restore {root}/etc/xen/scripts/vif-bridge from {root}/etc/xen/scripts/vif-bridge.vifkit-orig"
            )),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l == format!("remove {root}/etc/xen/scripts/vif-route")),
        "{log}"
    );
    assert_same(&before, &snapshot(d.path(), &[]), "after uninstall");

    let out = hotplug("uninstall", &d, &[]);
    assert_eq!(
        succeeded(&out, "second uninstall"),
        "uninstall: nothing to do\n"
    );
    assert_same(
        &before,
        &snapshot(d.path(), &[]),
        "after a second uninstall",
    );
}

#[test]
fn install_honours_the_prefix_and_uninstall_removes_every_directory_it_created() {
    let d = scratch("prefix");
    let bindir = bindir();
    let bindir = bindir.to_str().unwrap();

    let out = hotplug(
        "install",
        &d,
        &["--prefix", "/opt/vifkit", "--bindir", bindir],
    );
    succeeded(&out, "install --prefix /opt/vifkit");
    for name in LIBEXEC_FILES {
        assert_eq!(
            mode_of(&d.join(format!("opt/vifkit/libexec/vifkit/{name}"))),
            0o755
        );
    }
    assert_eq!(
        link_of(&d.join("opt/vifkit/sbin/vifkit")),
        "/opt/vifkit/libexec/vifkit/vifkit"
    );
    for name in XEN_SCRIPTS {
        assert_eq!(
            link_of(&d.join(format!("etc/xen/scripts/{name}"))),
            format!("/opt/vifkit/libexec/vifkit/{name}")
        );
    }
    for (_, place) in man_pages() {
        assert!(exists(&d.join(format!("opt/vifkit/share/man/{place}"))));
    }
    // The daemons read no /opt: the unmanaged-port files and the watcher's unit go to /etc.
    for (_, place) in UNMANAGED {
        assert!(exists(&d.join(format!("etc/{place}"))), "{place}");
    }
    let unit = d.join(format!("etc/systemd/system/{}", WATCH_UNIT.1));
    assert_eq!(
        fs::read_to_string(&unit).unwrap(),
        watch_unit_for("/opt/vifkit/libexec/vifkit")
    );
    verify_unit(
        &unit,
        "/opt/vifkit/libexec/vifkit/vifkit",
        &d.join("opt/vifkit/libexec/vifkit/vifkit"),
    );
    assert!(!exists(&d.join("usr")), "wrote outside the prefix");
    assert!(
        !exists(&d.join("etc/qemu-ifup")),
        "linked qemu-ifup without --qemu"
    );

    // With the default prefix, uninstall does not recognise /opt/vifkit's links as its own.
    let out = hotplug("uninstall", &d, &[]);
    assert_eq!(succeeded(&out, "uninstall"), "uninstall: nothing to do\n");

    let out = hotplug("uninstall", &d, &["--prefix", "/opt/vifkit"]);
    succeeded(&out, "uninstall --prefix /opt/vifkit");
    assert_same(
        &Tree::new(),
        &snapshot(d.path(), &[]),
        "uninstall left files or directories",
    );
}

#[test]
fn install_refuses_to_overwrite_a_backup_before_changing_anything() {
    let d = scratch("conflict");
    fake_originals(d.path());
    write(
        &d.join("etc/xen/scripts/vif-bridge.vifkit-orig"),
        "an older backup\n",
        0o644,
    );
    let before = snapshot(d.path(), &[]);
    let root = d.display();

    let out = hotplug("install", &d, &["--bindir", bindir().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "install: cannot back up {root}/etc/xen/scripts/vif-bridge to {root}/etc/xen/scripts/vif-bridge.vifkit-orig: \
             that backup already exists; keep the file you want as {root}/etc/xen/scripts/vif-bridge, \
             remove the other one and rerun\n"
        )
    );
    assert_same(&before, &snapshot(d.path(), &[]), "a refused install");

    let out = hotplug("install", &d, &["--bindir", "/nonexistent/bin"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "install: cannot install from /nonexistent/bin: no such directory; \
         run `cargo build --release --locked` or pass --bindir\n"
    );
    assert_same(
        &before,
        &snapshot(d.path(), &[]),
        "an install without binaries",
    );
}

/// With --prefix /usr the unmanaged-port files go where the packages put them, and the
/// `vifkit man` stubs an older install left in man1 (vifkit.1 would hide vifkit.8) are removed.
#[test]
fn install_with_prefix_usr_uses_the_package_paths_and_drops_old_man1_stubs() {
    let d = scratch("usr");
    for stub in ["vifkit.1", "vifkit-plan.1"] {
        write(
            &d.join(format!("usr/share/man/man1/{stub}")),
            ".TH stub\n",
            0o644,
        );
    }
    let root = d.display();
    let out = hotplug(
        "install",
        &d,
        &["--prefix", "/usr", "--bindir", bindir().to_str().unwrap()],
    );
    let log = succeeded(&out, "install --prefix /usr");
    for stub in ["vifkit.1", "vifkit-plan.1"] {
        let line = format!("remove {root}/usr/share/man/man1/{stub}");
        assert!(log.lines().any(|l| l == line), "no {line:?} in:\n{log}");
    }
    for (_, place) in UNMANAGED {
        assert_eq!(
            mode_of(&d.join(format!("usr/lib/{place}"))),
            0o644,
            "{place}"
        );
    }
    for (_, place) in man_pages() {
        assert_eq!(mode_of(&d.join(format!("usr/share/man/{place}"))), 0o644);
    }
    // The watcher's unit where the packages put it, as they ship it: the tree's file.
    let unit = d.join(format!("usr/lib/systemd/system/{}", WATCH_UNIT.1));
    assert_eq!(mode_of(&unit), 0o644);
    assert!(
        fs::read(&unit).unwrap() == fs::read(Path::new(REPO).join(WATCH_UNIT.0)).unwrap(),
        "{} differs from {}",
        unit.display(),
        WATCH_UNIT.0
    );
    assert!(!exists(&d.join("etc/systemd")));
    assert!(!exists(&d.join("etc/NetworkManager")));
    assert!(!exists(&d.join("usr/share/man/man1/vifkit.1")));

    succeeded(
        &hotplug("uninstall", &d, &["--prefix", "/usr"]),
        "uninstall --prefix /usr",
    );
    // What is left is the directories that existed before the install (the stubs' man1).
    let left: Vec<_> = snapshot(d.path(), &[]).into_keys().collect();
    assert_eq!(
        left,
        ["usr", "usr/share", "usr/share/man", "usr/share/man/man1"]
    );
}

#[test]
fn install_warns_and_goes_on_when_vifkit_cannot_write_completions() {
    let d = scratch("noman");
    let bindir = d.join("bin");
    for name in &LIBEXEC_FILES[..8] {
        write(
            &bindir.join(name),
            "#!/bin/sh\necho \"no verb $1\" >&2\nexit 2\n",
            0o755,
        );
    }
    let dest = scratch("noman-dest");
    let out = hotplug("install", &dest, &["--bindir", bindir.to_str().unwrap()]);
    succeeded(&out, "install");
    let vifkit = bindir.join("vifkit");
    let vifkit = vifkit.display();
    let mut expected = String::new();
    for shell in ["bash", "zsh", "fish"] {
        expected.push_str(&format!(
            "install: warning: skipping {shell} completion: {vifkit} completions {shell} failed \
             (no verb completions); install a vifkit that has the completions verb to get it\n"
        ));
    }
    assert_eq!(text(&out.stderr), expected);
    assert!(exists(&dest.join("usr/local/libexec/vifkit/vifkit")));
    assert!(exists(&dest.join("usr/local/share/man")));
    for dir in ["bash-completion", "zsh", "fish"] {
        assert!(!exists(&dest.join("usr/local/share").join(dir)), "{dir}");
    }
    succeeded(&hotplug("uninstall", &dest, &[]), "uninstall");
    assert_same(&Tree::new(), &snapshot(dest.path(), &[]), "uninstall");
}

#[test]
fn uninstall_leaves_a_script_the_admin_replaced_and_restores_the_rest() {
    let d = scratch("replaced");
    fake_originals(d.path());
    let before = snapshot(d.path(), &[]);
    let root = d.display();
    succeeded(
        &hotplug("install", &d, &["--bindir", bindir().to_str().unwrap()]),
        "install",
    );
    let bridge = d.join("etc/xen/scripts/vif-bridge");
    fs::remove_file(&bridge).unwrap();
    write(&bridge, "#!/bin/sh\n# the admin's own\n", 0o700);

    let out = hotplug("uninstall", &d, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "uninstall: cannot restore {root}/etc/xen/scripts/vif-bridge from {root}/etc/xen/scripts/vif-bridge.vifkit-orig: \
             {root}/etc/xen/scripts/vif-bridge is no longer vifkit's link; keep the file you want as \
             {root}/etc/xen/scripts/vif-bridge and remove the other one\n"
        )
    );
    let after = snapshot(d.path(), &[]);
    assert_eq!(
        after["etc/xen/scripts/vif-bridge.vifkit-orig"],
        before["etc/xen/scripts/vif-bridge"]
    );
    assert_eq!(
        fs::read_to_string(&bridge).unwrap(),
        "#!/bin/sh\n# the admin's own\n"
    );
    // Everything else is back as it was.
    let mut rest = after.clone();
    rest.remove("etc/xen/scripts/vif-bridge");
    rest.remove("etc/xen/scripts/vif-bridge.vifkit-orig");
    let mut expected = before.clone();
    expected.remove("etc/xen/scripts/vif-bridge");
    assert_same(&expected, &rest, "uninstall around a replaced script");
}

/// The admin enabled the watcher (here, with DESTDIR, systemd is not asked): uninstall removes
/// its enablement link with the unit, and leaves the directory the link was in.
#[test]
fn uninstall_removes_the_watchers_enablement_link() {
    let d = scratch("enabled");
    let wants = d.join("etc/systemd/system/multi-user.target.wants");
    fs::create_dir_all(&wants).unwrap();
    let before = snapshot(d.path(), &[]);
    let root = d.display();
    succeeded(
        &hotplug("install", &d, &["--bindir", bindir().to_str().unwrap()]),
        "install",
    );
    assert_eq!(enablement_links(d.path()), Vec::<String>::new());
    std::os::unix::fs::symlink(
        format!("/etc/systemd/system/{}", WATCH_UNIT.1),
        wants.join(WATCH_UNIT.1),
    )
    .unwrap();

    let log = succeeded(&hotplug("uninstall", &d, &[]), "uninstall");
    for line in [
        format!(
            "remove {root}/etc/systemd/system/multi-user.target.wants/{}",
            WATCH_UNIT.1
        ),
        format!("remove {root}/etc/systemd/system/{}", WATCH_UNIT.1),
    ] {
        assert!(log.lines().any(|l| l == line), "no {line:?} in:\n{log}");
    }
    assert_same(&before, &snapshot(d.path(), &[]), "after uninstall");
}
