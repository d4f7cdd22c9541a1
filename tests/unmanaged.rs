//! The files that keep NetworkManager and systemd-networkd off vifkit's ports
//! (hotplug/unmanaged/): written in exactly the syntax their daemons document, and matching
//! the same links: Xen's vifs by driver whatever their name, the emulated NICs' taps by
//! name, nothing else. Neither daemon runs here and `systemd-analyze verify` takes unit files
//! only, so the files are parsed by the rules of NetworkManager.conf(5) (keyfile format,
//! "Device List Format") and systemd.network(5); tests/udev.rs runs the udev rule, which
//! marks the same links, through the real udevadm.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Links of a Xen and KVM host: name, driver (as ethtool names it), and whether vifkit
/// plugs it as a Xen port.
const LINKS: [(&str, &str, bool); 9] = [
    ("vif3.0", "vif", true),     // a PV guest's vif
    ("web", "vif", true),        // one renamed by vifname=web
    ("vif3.0-emu", "tun", true), // the tap of an HVM guest's emulated NIC
    ("web-emu", "tun", true),    // the same with vifname=web
    ("tap0", "tun", false),      // qemu's own tap: qemu-ifup's, left to the admin
    ("vnet0", "tun", false),     // libvirt's
    ("eth0", "e1000e", false),   // the uplink
    ("xenbr0", "bridge", false), // the bridge
    ("veth0", "veth", false),    // a container's
];

fn read(path: &str) -> String {
    fs::read_to_string(Path::new(REPO).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `*` and `?` globs, the part of fnmatch(3) both daemons share.
fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some((b'?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// An ini-style file as both daemons read it: `[Section]` headers, `key=value` lines,
/// comments starting with `#` (or `;` for systemd); anything else fails. Keys keep their
/// operator (`unmanaged-devices+`).
fn sections(path: &str, comment: &[char]) -> BTreeMap<String, Vec<(String, String)>> {
    let mut sections: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for (n, line) in read(path).lines().enumerate() {
        let at = format!("{path}:{}", n + 1);
        if line.trim().is_empty() || line.starts_with(comment) {
            continue;
        }
        assert_eq!(line, line.trim(), "{at}: leading or trailing blanks");
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            assert!(
                sections.insert(name.to_owned(), Vec::new()).is_none(),
                "{at}: [{name}] twice"
            );
            current = Some(name.to_owned());
            continue;
        }
        let section = current
            .as_ref()
            .unwrap_or_else(|| panic!("{at}: outside a section"));
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{at}: neither a section nor key=value: {line:?}"));
        assert!(!value.is_empty(), "{at}: {key} has no value");
        sections
            .get_mut(section)
            .unwrap()
            .push((key.to_owned(), value.to_owned()));
    }
    sections
}

/// One `[Match]` condition of a .network file.
enum Condition {
    Name(Vec<String>),
    Driver(Vec<String>),
}

/// A .network file: its conditions (all must hold) and whether it makes the link unmanaged.
fn network(path: &str) -> (Vec<Condition>, bool) {
    let sections = sections(path, &['#', ';']);
    assert_eq!(
        sections.keys().collect::<Vec<_>>(),
        ["Link", "Match"],
        "{path}: sections"
    );
    let mut conditions = Vec::new();
    for (key, value) in &sections["Match"] {
        // systemd.network(5): whitespace-separated shell globs, none negated here.
        let globs: Vec<String> = value.split_whitespace().map(str::to_owned).collect();
        assert!(
            globs.iter().all(|g| !g.starts_with('!')),
            "{path}: {key}={value}"
        );
        conditions.push(match key.as_str() {
            "Name" => Condition::Name(globs),
            "Driver" => Condition::Driver(globs),
            _ => panic!("{path}: [Match] {key}= is not a condition vifkit's files use"),
        });
    }
    assert!(!conditions.is_empty(), "{path}: [Match] matches every link");
    let link = &sections["Link"];
    assert_eq!(link.len(), 1, "{path}: [Link] holds more than Unmanaged=");
    let (key, value) = &link[0];
    assert_eq!(key, "Unmanaged", "{path}: [Link] {key}=");
    // A systemd boolean.
    let unmanaged = match value.as_str() {
        "yes" | "true" | "on" | "1" => true,
        "no" | "false" | "off" | "0" => false,
        _ => panic!("{path}: Unmanaged={value} is no boolean"),
    };
    (conditions, unmanaged)
}

const NETWORK_FILES: [&str; 2] = [
    "hotplug/unmanaged/05-vifkit-unmanaged-driver.network",
    "hotplug/unmanaged/05-vifkit-unmanaged-names.network",
];

#[test]
fn networkd_leaves_exactly_the_xen_ports_unmanaged() {
    let files: Vec<_> = NETWORK_FILES.iter().map(|f| network(f)).collect();
    for (name, driver, port) in LINKS {
        let unmanaged = files.iter().any(|(conditions, unmanaged)| {
            *unmanaged
                && conditions.iter().all(|c| match c {
                    Condition::Name(globs) => globs.iter().any(|g| glob(g, name)),
                    Condition::Driver(globs) => globs.iter().any(|g| glob(g, driver)),
                })
        });
        assert_eq!(unmanaged, port, "{name} ({driver})");
    }
}

/// NetworkManager.conf(5), "Device List Format": specs separated by `;` or `,`; a driver
/// name is matched exactly, an interface name with `*` and `?`.
enum Spec {
    Driver(String),
    InterfaceName(String),
}

#[test]
fn network_manager_leaves_exactly_the_xen_ports_unmanaged() {
    let path = "hotplug/unmanaged/vifkit-unmanaged.conf";
    let sections = sections(path, &['#']);
    assert_eq!(sections.keys().collect::<Vec<_>>(), ["keyfile"]);
    let keyfile = &sections["keyfile"];
    assert_eq!(keyfile.len(), 1, "{path}: {keyfile:?}");
    // "+=" appends to the key other files set; "=" would replace their lists.
    let (key, value) = &keyfile[0];
    assert_eq!(key, "unmanaged-devices+", "{path}");
    let specs: Vec<Spec> = value
        .split([';', ','])
        .map(|spec| {
            if let Some(driver) = spec.strip_prefix("driver:") {
                assert!(!driver.contains(['*', '?', '/']), "{path}: {spec}");
                Spec::Driver(driver.to_owned())
            } else if let Some(glob) = spec.strip_prefix("interface-name:") {
                assert!(!glob.starts_with(['=', '~']), "{path}: {spec}");
                Spec::InterfaceName(glob.to_owned())
            } else {
                panic!("{path}: {spec:?} is not a spec vifkit's file uses")
            }
        })
        .collect();
    for (name, driver, port) in LINKS {
        let unmanaged = specs.iter().any(|s| match s {
            Spec::Driver(d) => d == driver,
            Spec::InterfaceName(g) => glob(g, name),
        });
        assert_eq!(unmanaged, port, "{name} ({driver})");
    }
}
