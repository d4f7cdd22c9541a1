//! Shared by the install and package tests: scratch roots (common's), tree snapshots
//! compared entry by entry, and the fake originals a Xen host has before vifkit.

#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;
use std::fs;
use std::hash::{DefaultHasher, Hasher};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

pub use crate::common::{Scratch, scratch};
use crate::common::{must, run};

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");
pub const XEN_SCRIPTS: [&str; 5] = [
    "vif-bridge",
    "vif-route",
    "vif-route-ifup",
    "vif-nat",
    "vif-openvswitch",
];
pub const LIBEXEC_FILES: [&str; 9] = [
    "vif-bridge",
    "vif-route",
    "vif-route-ifup",
    "vif-nat",
    "vif-openvswitch",
    "qemu-ifup",
    "qemu-ifdown",
    "vifkit",
    "vif-setup",
];

/// What keeps NetworkManager and systemd-networkd off vifkit's ports: (the file in this tree,
/// its path under /usr/lib, where the packages put it, or /etc, where hotplug/install does
/// for any prefix but /usr).
pub const UNMANAGED: [(&str, &str); 4] = [
    (
        "hotplug/unmanaged/vifkit-unmanaged.conf",
        "NetworkManager/conf.d/vifkit-unmanaged.conf",
    ),
    (
        "udev/85-vifkit-unmanaged.rules",
        "udev/rules.d/85-vifkit-unmanaged.rules",
    ),
    (
        "hotplug/unmanaged/05-vifkit-unmanaged-driver.network",
        "systemd/network/05-vifkit-unmanaged-driver.network",
    ),
    (
        "hotplug/unmanaged/05-vifkit-unmanaged-names.network",
        "systemd/network/05-vifkit-unmanaged-names.network",
    ),
];

/// The watcher's systemd unit: the file in this tree and its name.
pub const WATCH_UNIT: (&str, &str) = ("hotplug/vifkit-watch.service", "vifkit-watch.service");

/// The tree's unit as installed with the binaries in `libexec` (`/usr/local/libexec/vifkit`):
/// its ExecStart= rewritten, every other byte as it is.
pub fn watch_unit_for(libexec: &str) -> String {
    let unit = fs::read_to_string(Path::new(REPO).join(WATCH_UNIT.0)).unwrap();
    let from = "\nExecStart=/usr/libexec/vifkit/vifkit watch\n";
    assert_eq!(unit.matches(from).count(), 1, "{}: {from:?}", WATCH_UNIT.0);
    unit.replace(from, &format!("\nExecStart={libexec}/vifkit watch\n"))
}

/// The enablement links (`*.wants/`, `*.requires/` symlinks) anywhere under `root`: an
/// install must make none.
pub fn enablement_links(root: &Path) -> Vec<String> {
    snapshot(root, &[])
        .into_iter()
        .filter(|(path, node)| {
            matches!(node, Node::Link(_))
                && path
                    .rsplit('/')
                    .nth(1)
                    .is_some_and(|dir| dir.ends_with(".wants") || dir.ends_with(".requires"))
        })
        .map(|(path, _)| path)
        .collect()
}

/// `systemd-analyze verify` of an installed unit file, in a scratch root that holds the
/// host's units (the targets it is ordered after and wanted by) and `binary` where ExecStart=
/// names it (`exec`, its path on the installed system); asserts a clean verdict: exit 0 and
/// nothing printed. The man page (Documentation=) is not looked up: the host's man does not
/// know the scratch root. Skipped, and said so, where systemd-analyze is missing.
pub fn verify_unit(unit: &Path, exec: &str, binary: &Path) {
    if !Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!(
            "skipping systemd-analyze verify of {}: no systemd-analyze (apt-get install systemd)",
            unit.display()
        );
        return;
    }
    let units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .map(Path::new)
        .find(|dir| dir.join("sysinit.target").is_file())
        .expect("systemd-analyze without the host's units (sysinit.target)");
    let root = scratch("verify-unit");
    fs::create_dir_all(root.join("usr/lib/systemd")).unwrap();
    must(
        Command::new("cp")
            .arg("-a")
            .arg(units)
            .arg(root.join("usr/lib/systemd/")),
    );
    let name = unit.file_name().unwrap();
    let placed = root.join("etc/systemd/system").join(name);
    fs::create_dir_all(placed.parent().unwrap()).unwrap();
    fs::copy(unit, &placed).unwrap();
    let program = root.join(exec.trim_start_matches('/'));
    fs::create_dir_all(program.parent().unwrap()).unwrap();
    if fs::hard_link(binary, &program).is_err() {
        fs::copy(binary, &program).unwrap();
    }
    let out = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", root.display()))
        .arg(&placed));
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "systemd-analyze verify {} ({}): {}{}",
        unit.display(),
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// This tree's manual pages, man/*.8 and man/*.5, each with its place under share/man
/// (`man8/vif-bridge.8`); there must be some.
pub fn man_pages() -> Vec<(PathBuf, String)> {
    let dir = Path::new(REPO).join("man");
    let mut pages: Vec<_> = fs::read_dir(&dir)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    pages.retain(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("5" | "8")));
    pages.sort();
    assert!(
        !pages.is_empty(),
        "no manual page (*.8, *.5) in {}: the packages and hotplug/install ship them",
        dir.display()
    );
    pages
        .into_iter()
        .map(|page| {
            let name = page.file_name().unwrap().to_str().unwrap().to_owned();
            let section = name.rsplit('.').next().unwrap().to_owned();
            (page, format!("man{section}/{name}"))
        })
        .collect()
}

/// One entry of a tree as the tests compare it: type, mode, owner, content and file mtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        owner: (u32, u32),
        len: u64,
        hash: u64,
        mtime: (i64, i64),
    },
    Link(PathBuf),
}

pub type Tree = BTreeMap<String, Node>;

/// Every entry under `root` (relative paths), except the subtrees in `skip`.
pub fn snapshot(root: &Path, skip: &[&str]) -> Tree {
    pub fn walk(root: &Path, dir: &Path, skip: &[&str], tree: &mut Tree) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            if skip.contains(&rel.as_str()) {
                continue;
            }
            let meta = fs::symlink_metadata(&path).unwrap();
            let node = if meta.file_type().is_symlink() {
                Node::Link(fs::read_link(&path).unwrap())
            } else if meta.is_dir() {
                walk(root, &path, skip, tree);
                Node::Dir {
                    mode: meta.mode() & 0o7777,
                }
            } else {
                let mut hasher = DefaultHasher::new();
                hasher.write(&fs::read(&path).unwrap());
                Node::File {
                    mode: meta.mode() & 0o7777,
                    owner: (meta.uid(), meta.gid()),
                    len: meta.len(),
                    hash: hasher.finish(),
                    mtime: (meta.mtime(), meta.mtime_nsec()),
                }
            };
            tree.insert(rel, node);
        }
    }
    let mut tree = Tree::new();
    walk(root, root, skip, &mut tree);
    tree
}

pub fn assert_same(expected: &Tree, actual: &Tree, what: &str) {
    let mut diffs = Vec::new();
    for (path, node) in expected {
        match actual.get(path) {
            None => diffs.push(format!("missing {path} ({node:?})")),
            Some(other) if other != node => {
                diffs.push(format!("changed {path}: {node:?} -> {other:?}"))
            }
            Some(_) => {}
        }
    }
    for (path, node) in actual {
        if !expected.contains_key(path) {
            diffs.push(format!("extra {path} ({node:?})"));
        }
    }
    assert!(diffs.is_empty(), "{what}:\n  {}", diffs.join("\n  "));
}

pub fn write(path: &Path, content: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o7777
}

pub fn link_of(path: &Path) -> String {
    fs::read_link(path)
        .unwrap_or_else(|e| panic!("{} is not a symlink: {e}", path.display()))
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The static release binaries the packages ship: scripts/release-build's output, built once
/// per test process by whichever test asks first while the others wait. (Its cargo build is
/// also a no-op when the same tree built them before: the flags never change.)
pub fn release_bindir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let started = Instant::now();
        let out = must(Command::new(Path::new(REPO).join("scripts/release-build")).arg("--bins"));
        let dir = PathBuf::from(
            out.lines()
                .last()
                .expect("release-build printed no directory"),
        );
        eprintln!("scripts/release-build --bins: {:.1?}", started.elapsed());
        dir
    })
}

/// The debug binaries of this test run: the seven binaries hotplug/install expects.
pub fn bindir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_vifkit"))
        .parent()
        .unwrap()
        .to_owned()
}

pub fn hotplug(script: &str, destdir: &Scratch, args: &[&str]) -> Output {
    run(Command::new(Path::new(REPO).join("hotplug").join(script))
        .env("DESTDIR", destdir.path())
        .args(args))
}

pub fn succeeded(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Xen's scripts as a host has them before vifkit: vif-bridge and vif-nat, no vif-route
/// (nor SUSE's vif-route-ifup), and Debian's /etc/qemu-ifup without qemu-ifdown.
pub fn fake_originals(root: &Path) {
    write(
        &root.join("etc/xen/scripts/vif-bridge"),
        "#!/bin/bash\n# Xen's vif-bridge\n",
        0o755,
    );
    write(
        &root.join("etc/xen/scripts/vif-nat"),
        "#!/bin/bash\n# Xen's vif-nat, mode 0750\n",
        0o750,
    );
    write(
        &root.join("etc/qemu-ifup"),
        "#!/bin/sh\n# Debian's qemu-ifup\n",
        0o755,
    );
}
