//! The Debian package (hotplug/build-packages) in a throwaway dpkg root with a fake Xen
//! package, the RPM (hotplug/vifkit.spec, rpmbuild) in a throwaway rpm root, and the SUSE
//! spec's scriptlets against a throwaway /etc. Both packages are made of one build of the
//! static binaries (install_support::release_bindir). Nothing here touches the real root:
//! every path written is under a scratch directory removed at the end, and nothing is
//! started or enabled (the maintainer scripts only divert or link Xen's scripts).

mod common;
mod install_support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{must, run};

use install_support::*;

// ---------------------------------------------------------------------------------------
// The Debian package, in a dpkg root of its own.

/// `dpkg` on the throwaway root: maintainer scripts run outside a chroot with DPKG_ROOT
/// set (our scripts honour it), no dependency is installed there (the binaries are static),
/// and a path-exclude in this host's dpkg.cfg.d must not hide the docs we check.
fn dpkg(root: &Path) -> Command {
    let mut cmd = Command::new("dpkg");
    cmd.arg(format!("--root={}", root.display()))
        .arg(format!("--log={}/var/log/dpkg.log", root.display()))
        .args([
            "--force-script-chrootless",
            "--force-depends",
            "--path-include=/*",
        ]);
    cmd
}

/// A stand-in for xen-utils-common at VERSION: Xen's scripts as conffiles, as Debian ships them.
fn fake_xen_package(work: &Scratch, version: &str) -> PathBuf {
    let tree = work.join(format!("xen-{version}"));
    write(
        &tree.join("DEBIAN/control"),
        &format!(
            "Package: xen-utils-common\nVersion: {version}\nArchitecture: all\n\
             Maintainer: vifkit tests <tests@invalid>\nDescription: Xen's scripts, for the vifkit tests\n"
        ),
        0o644,
    );
    let mut conffiles = String::new();
    for name in ["vif-bridge", "vif-route", "vif-nat"] {
        write(
            &tree.join(format!("etc/xen/scripts/{name}")),
            &format!("#!/bin/bash\n# Xen {version} {name}\n"),
            0o755,
        );
        conffiles.push_str(&format!("/etc/xen/scripts/{name}\n"));
    }
    write(&tree.join("DEBIAN/conffiles"), &conffiles, 0o644);
    let deb = work.join(format!("xen-utils-common_{version}_all.deb"));
    must(Command::new("dpkg-deb").args([
        "--root-owner-group",
        "--build",
        tree.to_str().unwrap(),
        deb.to_str().unwrap(),
    ]));
    deb
}

fn diversions(root: &Path) -> Vec<String> {
    let out = must(
        Command::new("dpkg-divert")
            .arg(format!("--root={}", root.display()))
            .arg("--list"),
    );
    let mut lines: Vec<_> = out.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

fn diversion(path: &str) -> String {
    format!("diversion of {path} to {path}.distrib by vifkit")
}

/// Runs the installed postinst as `dpkg-reconfigure vifkit` would, inside the dpkg root.
fn reconfigure(root: &Path) {
    must(
        Command::new("sh")
            .arg(root.join("var/lib/dpkg/info/vifkit.postinst"))
            .args(["configure", "0.1.0-1"])
            .env("DPKG_ROOT", root)
            .env("DPKG_ADMINDIR", root.join("var/lib/dpkg")),
    );
}

fn set_qemu_scripts(root: &Path, value: &str) {
    let path = root.join("etc/default/vifkit");
    let config = fs::read_to_string(&path).unwrap();
    let config: Vec<_> = config
        .lines()
        .map(|l| {
            if l.starts_with("QEMU_SCRIPTS=") {
                format!("QEMU_SCRIPTS={value}")
            } else {
                l.to_owned()
            }
        })
        .collect();
    fs::write(&path, config.join("\n") + "\n").unwrap();
}

#[test]
fn debian_package_diverts_xen_scripts_while_installed_and_gives_them_back() {
    let version = run(Command::new("cargo").args(["deb", "--version"]));
    assert!(
        version.status.success(),
        "cargo-deb is missing: install it with `cargo install --locked cargo-deb` \
         (scripts/test does): {}",
        text(&version.stderr)
    );
    let work = scratch("deb");
    let bindir = release_bindir();

    let started = Instant::now();
    let out = must(
        Command::new(Path::new(REPO).join("hotplug/build-packages"))
            .args(["--output", work.join("out").to_str().unwrap()])
            .args(["--bindir", bindir.to_str().unwrap()]),
    );
    let deb = PathBuf::from(out.lines().last().expect("build-packages printed no path"));
    assert!(deb.is_file(), "no package at {}", deb.display());
    eprintln!("hotplug/build-packages: {:.1?}", started.elapsed());
    let started = Instant::now();

    // An empty dpkg database, Xen 1 installed, and a qemu-ifup no package owns.
    let root = work.join("root");
    for dir in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    for file in ["var/lib/dpkg/status", "var/lib/dpkg/available"] {
        fs::write(root.join(file), "").unwrap();
    }
    let xen1 = fake_xen_package(&work, "1");
    let xen2 = fake_xen_package(&work, "2");
    must(dpkg(&root).arg("-i").arg(&xen1));
    write(
        &root.join("etc/qemu-ifup"),
        "#!/bin/sh\n# Debian's qemu-ifup\n",
        0o755,
    );
    // The directory an admin's `systemctl enable vifkit-watch` puts its link in.
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    fs::create_dir_all(&wants).unwrap();
    let skip = ["var"];
    let without_vifkit = snapshot(&root, &skip);

    must(dpkg(&root).arg("-i").arg(&deb));

    // The layout: binaries in /usr/libexec/vifkit, /usr/sbin/vifkit, docs, man, completions,
    // the unmanaged-port files in /usr/lib; the opt-in udev rules only as documentation.
    let libexec = root.join("usr/libexec/vifkit");
    for name in LIBEXEC_FILES {
        assert_eq!(mode_of(&libexec.join(name)), 0o755, "{name}");
    }
    // The binaries, not the vif-setup dispatcher (a shell script).
    for name in &LIBEXEC_FILES[..8] {
        assert!(
            !has_interpreter(&libexec.join(name)),
            "{name} is dynamically linked: scripts/release-build links it statically"
        );
    }
    // The lab (the demo and the test xenstored) ships in the admin CLI only: two of its
    // messages (src/lab/xenstored/server.rs, src/lab/demo/) mark it in a binary.
    let contains = |name: &str, mark: &str| {
        let bytes = std::fs::read(libexec.join(name)).unwrap();
        bytes.windows(mark.len()).any(|w| w == mark.as_bytes())
    };
    for mark in ["spawn xenstored thread", "its vif is off the bridge"] {
        assert!(
            contains("vifkit", mark),
            "vifkit lacks {mark:?}: pick another mark"
        );
        for name in &LIBEXEC_FILES[..7] {
            assert!(!contains(name, mark), "{name} contains the lab ({mark:?})");
        }
    }
    for name in &LIBEXEC_FILES[..8] {
        assert!(
            fs::read(libexec.join(name)).unwrap() == fs::read(bindir.join(name)).unwrap(),
            "{name} is not scripts/release-build's"
        );
    }
    assert_eq!(
        link_of(&root.join("usr/sbin/vifkit")),
        "../libexec/vifkit/vifkit"
    );
    // cargo-deb compresses the man pages, as Debian's policy wants.
    for (_, place) in man_pages() {
        assert_eq!(
            mode_of(&root.join(format!("usr/share/man/{place}.gz"))),
            0o644,
            "{place}"
        );
    }
    for (source, place) in UNMANAGED {
        let file = root.join("usr/lib").join(place);
        assert_eq!(mode_of(&file), 0o644, "{place}");
        assert!(
            fs::read(&file).unwrap() == fs::read(Path::new(REPO).join(source)).unwrap(),
            "{place} differs from {source}"
        );
    }
    for file in [
        "usr/share/bash-completion/completions/vifkit",
        "usr/share/zsh/vendor-completions/_vifkit",
        "usr/share/fish/vendor_completions.d/vifkit.fish",
        "usr/share/doc/vifkit/udev/60-vifkit-xen-backend.rules",
        "usr/share/doc/vifkit/udev/61-vifkit-bridge-reattach.rules",
        "usr/share/doc/vifkit/examples/xl-guest.cfg.example",
        "usr/share/doc/vifkit/examples/vifkit.conf.example",
        "usr/share/doc/vifkit/copyright",
        "etc/default/vifkit",
    ] {
        assert_eq!(mode_of(&root.join(file)), 0o644, "{file}");
    }
    for dir in ["lib/udev", "etc/udev"] {
        assert!(!exists(&root.join(dir)), "the package installed {dir}");
    }
    let rules: Vec<_> = fs::read_dir(root.join("usr/lib/udev/rules.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(rules, ["85-vifkit-unmanaged.rules"], "usr/lib/udev/rules.d");
    assert!(
        !exists(&root.join("usr/share/doc/vifkit/udev/85-vifkit-unmanaged.rules")),
        "the installed udev rule is no documentation"
    );
    // The watcher's unit, the tree's file as it is (ExecStart= in /usr/libexec/vifkit);
    // no init script, nothing enabled nor started by the maintainer scripts.
    let unit = root.join(format!("usr/lib/systemd/system/{}", WATCH_UNIT.1));
    assert_eq!(mode_of(&unit), 0o644);
    assert_eq!(
        fs::read_to_string(&unit).unwrap(),
        watch_unit_for("/usr/libexec/vifkit")
    );
    for dir in ["lib/systemd/system", "etc/init.d"] {
        assert!(!exists(&root.join(dir)), "the package installed {dir}");
    }
    assert_eq!(enablement_links(&root), Vec::<String>::new());
    assert_never_enables_nor_starts("hotplug/debian/", &debian_scripts());
    verify_unit(&unit, "/usr/libexec/vifkit/vifkit", &libexec.join("vifkit"));
    let listed = must(dpkg(&root).args(["-L", "vifkit"]));
    for path in listed.lines().filter(|l| l.starts_with('/')) {
        assert!(
            exists(&root.join(&path[1..])),
            "dpkg -L lists {path}, which is missing"
        );
    }
    assert!(
        listed
            .lines()
            .any(|l| l == "/usr/libexec/vifkit/vif-bridge")
    );

    // Xen's scripts diverted to *.distrib, byte for byte; vifkit linked in their place,
    // also for the scripts that did not exist; qemu-ifup untouched (QEMU_SCRIPTS=no).
    let mut xen_diversions: Vec<_> = XEN_SCRIPTS
        .iter()
        .map(|s| diversion(&format!("/etc/xen/scripts/{s}")))
        .collect();
    xen_diversions.sort();
    assert_eq!(diversions(&root), xen_diversions);
    for name in XEN_SCRIPTS {
        assert_eq!(
            link_of(&root.join(format!("etc/xen/scripts/{name}"))),
            format!("/usr/libexec/vifkit/{name}")
        );
    }
    let installed = snapshot(&root, &skip);
    for name in ["vif-bridge", "vif-route", "vif-nat"] {
        assert_eq!(
            installed[&format!("etc/xen/scripts/{name}.distrib")],
            without_vifkit[&format!("etc/xen/scripts/{name}")],
            "{name}.distrib"
        );
    }
    assert!(!installed.contains_key("etc/xen/scripts/vif-route-ifup.distrib"));
    assert_eq!(installed["etc/qemu-ifup"], without_vifkit["etc/qemu-ifup"]);

    // A Xen update while vifkit is installed lands in *.distrib and leaves vifkit in charge.
    must(dpkg(&root).arg("-i").arg(&xen2));
    assert_eq!(
        fs::read_to_string(root.join("etc/xen/scripts/vif-bridge.distrib")).unwrap(),
        "#!/bin/bash\n# Xen 2 vif-bridge\n"
    );
    assert_eq!(
        link_of(&root.join("etc/xen/scripts/vif-bridge")),
        "/usr/libexec/vifkit/vif-bridge"
    );

    // QEMU_SCRIPTS=yes in /etc/default/vifkit, then dpkg-reconfigure: qemu-ifup and
    // qemu-ifdown diverted and linked; back to "no": undone.
    set_qemu_scripts(&root, "yes");
    reconfigure(&root);
    let mut all_diversions = xen_diversions.clone();
    all_diversions.extend([diversion("/etc/qemu-ifup"), diversion("/etc/qemu-ifdown")]);
    all_diversions.sort();
    assert_eq!(diversions(&root), all_diversions);
    for name in ["qemu-ifup", "qemu-ifdown"] {
        assert_eq!(
            link_of(&root.join(format!("etc/{name}"))),
            format!("/usr/libexec/vifkit/{name}")
        );
    }
    assert_eq!(
        snapshot(&root, &skip)["etc/qemu-ifup.distrib"],
        without_vifkit["etc/qemu-ifup"]
    );
    set_qemu_scripts(&root, "no");
    reconfigure(&root);
    assert_eq!(diversions(&root), xen_diversions);
    let now = snapshot(&root, &skip);
    assert_eq!(now["etc/qemu-ifup"], without_vifkit["etc/qemu-ifup"]);
    assert!(!now.contains_key("etc/qemu-ifdown"));
    // Leave QEMU's scripts diverted, so that removal has to undo them too.
    set_qemu_scripts(&root, "yes");
    reconfigure(&root);
    // The admin enables the watcher: removal keeps the link, as an admin's enablement, and
    // purge removes it.
    std::os::unix::fs::symlink(
        format!("/usr/lib/systemd/system/{}", WATCH_UNIT.1),
        wants.join(WATCH_UNIT.1),
    )
    .unwrap();

    // Removal: no diversion left, Xen's (updated) scripts back in place and intact for dpkg,
    // qemu-ifup as it was, no vifkit file but its conffile; purge removes that too.
    must(dpkg(&root).args(["-r", "vifkit"]));
    assert_eq!(diversions(&root), Vec::<String>::new());
    let verify = must(dpkg(&root).args(["--verify", "xen-utils-common"]));
    assert_eq!(verify, "", "dpkg --verify xen-utils-common");
    let removed = snapshot(&root, &skip);
    for name in ["vif-bridge", "vif-route", "vif-nat"] {
        let path = root.join(format!("etc/xen/scripts/{name}"));
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("#!/bin/bash\n# Xen 2 {name}\n")
        );
        assert_eq!(mode_of(&path), 0o755);
    }
    let leftovers: Vec<_> = removed
        .keys()
        .filter(|p| p.contains("vifkit") || p.ends_with(".distrib"))
        .collect();
    assert_eq!(
        leftovers,
        [
            "etc/default/vifkit",
            "etc/systemd/system/multi-user.target.wants/vifkit-watch.service"
        ]
    );

    must(dpkg(&root).args(["-P", "vifkit"]));
    let mut expected = without_vifkit.clone();
    let mut purged = snapshot(&root, &skip);
    for name in ["vif-bridge", "vif-route", "vif-nat"] {
        // Xen 2's scripts, checked above, in place of Xen 1's.
        expected.remove(&format!("etc/xen/scripts/{name}"));
        purged.remove(&format!("etc/xen/scripts/{name}"));
    }
    assert_same(&expected, &purged, "after dpkg -P vifkit");
    assert!(
        !run(dpkg(&root).args(["-L", "vifkit"])).status.success(),
        "vifkit still known to dpkg"
    );
    eprintln!(
        "dpkg install, update, reconfigure, remove and purge: {:.1?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// The RPM, built by rpmbuild from the static binaries and installed in an rpm root of its own.

/// `rpm` on the throwaway root. rpm runs the scriptlets chrooted into it, with its /bin/sh
/// (a busybox, see below); dependencies are not installed there (the binaries are static).
fn rpm(root: &Path) -> Command {
    let mut cmd = Command::new("rpm");
    cmd.arg(format!("--root={}", root.display()))
        .args(["--dbpath", "/var/lib/rpm"]);
    cmd
}

/// The GNU build id of an ELF64 file (its NT_GNU_BUILD_ID note): the same for a binary and
/// its copy stripped by rpmbuild, different for another build.
fn build_id(path: &Path) -> Vec<u8> {
    let elf = fs::read(path).unwrap();
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([elf[at], elf[at + 1]]));
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap()) as usize;
    let (phoff, size, count) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    const PT_NOTE: usize = 4;
    const NT_GNU_BUILD_ID: usize = 3;
    for header in (0..count).map(|i| phoff + i * size) {
        if u32_at(header) != PT_NOTE {
            continue;
        }
        let (mut at, end) = (
            u64_at(header + 8),
            u64_at(header + 8) + u64_at(header + 0x20),
        );
        while at + 12 <= end {
            let (namesz, descsz, kind) = (u32_at(at), u32_at(at + 4), u32_at(at + 8));
            let name = at + 12;
            let desc = name + namesz.next_multiple_of(4);
            if kind == NT_GNU_BUILD_ID && &elf[name..name + namesz] == b"GNU\0" {
                return elf[desc..desc + descsz].to_vec();
            }
            at = desc + descsz.next_multiple_of(4);
        }
    }
    panic!("{} has no GNU build id", path.display())
}

#[test]
fn rpm_from_the_static_binaries_links_xen_scripts_while_installed_and_gives_them_back() {
    let probe = Command::new("rpmbuild").arg("--version").output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "rpmbuild is missing: install it with `apt-get install rpm` (scripts/test does)"
    );
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.is_file(),
        "no /bin/busybox for the rpm root's /bin/sh: apt-get install busybox-static"
    );
    man_pages(); // before rpmbuild's less telling failure without them
    let work = scratch("rpmbuild");
    let bindir = release_bindir();

    // The spec's prebuilt mode: no sources, no cargo; the tree's files and these binaries.
    let started = Instant::now();
    must(
        Command::new("rpmbuild")
            .args(["-bb", "--quiet"])
            .arg("--define")
            .arg(format!("_topdir {}", work.join("top").display()))
            .arg("--define")
            .arg(format!("vifkit_tree {REPO}"))
            .arg("--define")
            .arg(format!("vifkit_bindir {}", bindir.display()))
            // openSUSE's; Debian's rpm agrees, but not every rpm does.
            .args(["--define", "_libexecdir /usr/libexec"])
            .arg(Path::new(REPO).join("hotplug/vifkit.spec")),
    );
    let built: Vec<_> = fs::read_dir(work.join("top/RPMS"))
        .unwrap()
        .flat_map(|arch| fs::read_dir(arch.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(built.len(), 1, "{built:?}");
    let package = &built[0];
    eprintln!("rpmbuild -bb: {:.1?}", started.elapsed());
    let started = Instant::now();

    // An empty rpm database, Xen's scripts and Debian's qemu-ifup, and a busybox as the
    // shell and tools of the scriptlets.
    let root = work.join("root");
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for applet in ["sh", "[", "test", "cp", "ln", "mv", "readlink", "rm"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    must(rpm(&root).arg("--initdb"));
    fake_originals(&root);
    // busybox's cp -a keeps whole seconds of a backup's mtime (coreutils' keeps all of it).
    for file in ["etc/xen/scripts/vif-bridge", "etc/xen/scripts/vif-nat"] {
        let file = fs::File::options()
            .write(true)
            .open(root.join(file))
            .unwrap();
        file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000))
            .unwrap();
    }
    let skip = ["var", "bin"];
    let before = snapshot(&root, &skip);

    must(rpm(&root).args(["-i", "--nodeps"]).arg(package));

    // The layout, as the Debian package's. The binaries are the ones scripts/release-build
    // built, stripped once more by rpmbuild (same build id).
    let libexec = root.join("usr/libexec/vifkit");
    for name in LIBEXEC_FILES {
        assert_eq!(mode_of(&libexec.join(name)), 0o755, "{name}");
    }
    for name in &LIBEXEC_FILES[..8] {
        assert!(!has_interpreter(&libexec.join(name)), "{name} is dynamic");
        assert_eq!(
            build_id(&libexec.join(name)),
            build_id(&bindir.join(name)),
            "{name} is not scripts/release-build's"
        );
    }
    assert_eq!(
        link_of(&root.join("usr/sbin/vifkit")),
        "../libexec/vifkit/vifkit"
    );
    // Compressed where the distribution's brp-compress works (Debian's needs bash as sh).
    for (_, place) in man_pages() {
        let page = root.join(format!("usr/share/man/{place}"));
        let gz = root.join(format!("usr/share/man/{place}.gz"));
        assert!(exists(&page) || exists(&gz), "{place}");
    }
    for (source, place) in UNMANAGED {
        let file = root.join("usr/lib").join(place);
        assert_eq!(mode_of(&file), 0o644, "{place}");
        assert!(
            fs::read(&file).unwrap() == fs::read(Path::new(REPO).join(source)).unwrap(),
            "{place} differs from {source}"
        );
    }
    for file in [
        "usr/share/bash-completion/completions/vifkit",
        "usr/share/doc/vifkit/README.md",
        "usr/share/doc/vifkit/udev/60-vifkit-xen-backend.rules",
        "usr/share/doc/vifkit/udev/61-vifkit-bridge-reattach.rules",
        "usr/share/doc/vifkit/examples/xl-guest.cfg.example",
        "usr/share/doc/vifkit/examples/vifkit.conf.example",
    ] {
        assert_eq!(mode_of(&root.join(file)), 0o644, "{file}");
    }
    // The watcher's unit, ExecStart= in %{_libexecdir}/vifkit; nothing enabled.
    let unit = root.join(format!("usr/lib/systemd/system/{}", WATCH_UNIT.1));
    assert_eq!(mode_of(&unit), 0o644);
    assert_eq!(
        fs::read_to_string(&unit).unwrap(),
        watch_unit_for("/usr/libexec/vifkit")
    );
    for dir in ["lib/systemd/system", "etc/init.d"] {
        assert!(!exists(&root.join(dir)), "the package installed {dir}");
    }
    assert_eq!(enablement_links(&root), Vec::<String>::new());
    verify_unit(&unit, "/usr/libexec/vifkit/vifkit", &libexec.join("vifkit"));
    let verify = must(rpm(&root).args(["-V", "--nodeps", "vifkit"]));
    assert_eq!(verify, "", "rpm -V vifkit");

    // %post: Xen's scripts kept as *.vifkit-orig, vifkit linked in their place, also for the
    // scripts that did not exist; qemu-ifup untouched.
    let installed = snapshot(&root, &skip);
    for name in XEN_SCRIPTS {
        assert_eq!(
            link_of(&root.join(format!("etc/xen/scripts/{name}"))),
            format!("/usr/libexec/vifkit/{name}")
        );
    }
    for name in ["vif-bridge", "vif-nat"] {
        assert_eq!(
            installed[&format!("etc/xen/scripts/{name}.vifkit-orig")],
            before[&format!("etc/xen/scripts/{name}")],
            "{name}.vifkit-orig"
        );
    }
    assert_eq!(installed["etc/qemu-ifup"], before["etc/qemu-ifup"]);

    // Erase: %preun puts Xen's scripts back, rpm removes every file. Only directories that
    // no package owns here stay (usr/share/man/man8...: the filesystem package's elsewhere).
    must(rpm(&root).args(["-e", "vifkit"]));
    let files = |tree: Tree| -> Tree {
        tree.into_iter()
            .filter(|(_, node)| !matches!(node, Node::Dir { .. }))
            .collect()
    };
    assert_same(
        &files(before),
        &files(snapshot(&root, &skip)),
        "after rpm -e vifkit",
    );
    assert!(
        !run(rpm(&root).args(["-q", "vifkit"])).status.success(),
        "vifkit still known to rpm"
    );
    eprintln!("rpm install, verify and erase: {:.1?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------
// The SUSE spec: parsed by rpmspec (no rpmbuild here), and its scriptlets run on a scratch /etc.

/// The body of each scriptlet section (`%post`, `%preun`, `%triggerin -- xen-tools`...) of an
/// `rpmspec -P` output.
fn sections(parsed: &str) -> BTreeMap<String, String> {
    let headers = [
        "%description",
        "%prep",
        "%build",
        "%install",
        "%check",
        "%post",
        "%preun",
        "%postun",
        "%triggerin",
        "%files",
        "%changelog",
    ];
    let mut sections = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in parsed.lines() {
        if headers
            .iter()
            .any(|h| line == *h || line.starts_with(&format!("{h} ")))
        {
            current = Some(line.to_owned());
            sections.insert(line.to_owned(), String::new());
        } else if let Some(section) = &current {
            let body = sections.get_mut(section).unwrap();
            body.push_str(line);
            body.push('\n');
        }
    }
    sections
}

fn scriptlet(body: &str, arg: &str) {
    must(Command::new("sh").args(["-e", "-c", body, "scriptlet", arg]));
}

#[test]
fn suse_spec_parses_and_its_scriptlets_keep_and_restore_xen_scripts() {
    let probe = Command::new("rpmspec").arg("--version").output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "rpmspec is missing: install it with `apt-get install rpm` (scripts/test does)"
    );
    let d = scratch("rpm");
    let parsed = must(Command::new("rpmspec").args([
        "-P",
        "--define",
        &format!("_sysconfdir {}/etc", d.display()),
        "--define",
        "_libexecdir /usr/libexec",
        "--define",
        "_sbindir /usr/sbin",
        // Scriptlets run here, on the host: its systemd is not to be asked.
        "--define",
        "vifkit_systemd_runs false",
        &format!("{REPO}/hotplug/vifkit.spec"),
    ]));
    let sections = sections(&parsed);
    let files = &sections["%files"];
    for line in [
        "%dir /usr/libexec/vifkit",
        "/usr/libexec/vifkit/*",
        "/usr/sbin/vifkit",
        "/usr/share/bash-completion/completions/vifkit",
        "/usr/lib/systemd/system/vifkit-watch.service",
    ] {
        assert!(
            files.lines().any(|l| l == line),
            "no {line} in %files:\n{files}"
        );
    }
    let post = &sections["%post"];
    assert_eq!(&sections["%triggerin -- xen-tools"], post);
    let scriptlets: Vec<_> = sections
        .iter()
        .filter(|(name, _)| {
            name.starts_with("%post") || name.starts_with("%preun") || name.starts_with("%trigger")
        })
        .map(|(name, body)| (name.clone(), body.clone()))
        .collect();
    assert_never_enables_nor_starts("the spec's ", &scriptlets);
    let preun = &sections["%preun"];

    // Without Xen nothing is linked (the trigger does it when xen-tools arrives).
    scriptlet(post, "1");
    assert_same(&Tree::new(), &snapshot(d.path(), &[]), "%post without Xen");

    fake_originals(d.path());
    let before = snapshot(d.path(), &[]);
    scriptlet(post, "1");
    let installed = snapshot(d.path(), &[]);
    for name in XEN_SCRIPTS {
        assert_eq!(
            link_of(&d.join(format!("etc/xen/scripts/{name}"))),
            format!("/usr/libexec/vifkit/{name}")
        );
    }
    for name in ["vif-bridge", "vif-nat"] {
        assert_eq!(
            installed[&format!("etc/xen/scripts/{name}.vifkit-orig")],
            before[&format!("etc/xen/scripts/{name}")]
        );
    }
    assert_eq!(installed["etc/qemu-ifup"], before["etc/qemu-ifup"]);
    scriptlet(post, "2");
    assert_same(&installed, &snapshot(d.path(), &[]), "%post run twice");
    scriptlet(preun, "1"); // an upgrade: nothing to undo
    assert_same(&installed, &snapshot(d.path(), &[]), "%preun on upgrade");

    // A xen-tools update writes its new vif-bridge over the link; the trigger takes over
    // again and the new script becomes the backup.
    let bridge = d.join("etc/xen/scripts/vif-bridge");
    fs::remove_file(&bridge).unwrap();
    write(&bridge, "#!/bin/bash\n# Xen's updated vif-bridge\n", 0o755);
    let updated = snapshot(d.path(), &[])["etc/xen/scripts/vif-bridge"].clone();
    scriptlet(&sections["%triggerin -- xen-tools"], "1");
    assert_eq!(link_of(&bridge), "/usr/libexec/vifkit/vif-bridge");
    let mut expected = before.clone();
    expected.insert("etc/xen/scripts/vif-bridge".into(), updated);

    scriptlet(preun, "0");
    // Xen's scripts back (the updated vif-bridge included), vifkit's links and backups gone.
    assert_same(&expected, &snapshot(d.path(), &[]), "%preun on erase");
}

/// The Debian maintainer scripts of this tree: (name, text).
fn debian_scripts() -> Vec<(String, String)> {
    ["postinst", "prerm", "postrm"]
        .into_iter()
        .map(|name| {
            let text = fs::read_to_string(Path::new(REPO).join("hotplug/debian").join(name));
            (name.to_owned(), text.unwrap())
        })
        .collect()
}

/// The watcher ships disabled: no script line (comments aside) enables, presets or starts a
/// unit; stopping, disabling and restarting a running one are fine.
fn assert_never_enables_nor_starts(what: &str, scripts: &[(String, String)]) {
    for (name, text) in scripts {
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            let words: Vec<_> = line.split_whitespace().collect();
            for verb in ["enable", "start", "preset", "reenable", "restart"] {
                assert!(
                    !words.contains(&verb),
                    "{what}{name} may enable or start a unit: {line}"
                );
            }
        }
    }
}

/// Whether an ELF64 file asks for a dynamic loader (has a PT_INTERP program header).
fn has_interpreter(path: &Path) -> bool {
    let elf = fs::read(path).unwrap();
    assert_eq!(&elf[..5], b"\x7fELF\x02", "{} is not ELF64", path.display());
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([elf[at], elf[at + 1]]));
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    (0..count).any(|i| {
        let at = phoff + i * size;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == PT_INTERP
    })
}
