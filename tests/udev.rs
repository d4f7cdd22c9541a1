//! The rules under `udev/` (the opt-in ones and 85-vifkit-unmanaged.rules, which the packages
//! install), evaluated by the real `udevadm test` (Debian package `udev`) against real
//! bridges, veths and taps in throwaway namespaces. Needs root.
//!
//! `udevadm test` runs in `ip netns exec`, whose private mount namespace lets it see only
//! our rules (a scratch directory bind-mounted on /etc/udev/rules.d, empty ones on the
//! other rules directories) and write its database to a tmpfs, never to the host's /run.
//! It never executes a RUN program; it prints the ones the event would run.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const OURS: [&str; 3] = [
    "60-vifkit-xen-backend.rules",
    "61-vifkit-bridge-reattach.rules",
    "85-vifkit-unmanaged.rules",
];
const REATTACH: &str = "/usr/local/libexec/vifkit/vifkit reattach";
const VIF_SETUP_TAP: &str = "/etc/xen/scripts/vif-setup add type_if=tap";

/// Private mounts, then `udevadm test`; `$1` rules dir, `$2` an empty dir, `$3` action,
/// `$4` device. Every directory udev reads rules from (/etc, /run, /usr/local/lib, /usr/lib
/// and /lib `udev/rules.d`) ends up holding only `$1` or nothing.
const UDEVADM_TEST: &str = r#"set -eu
mount -t tmpfs vifkit-udev-test /run
mount --bind "$1" /etc/udev/rules.d
for d in /usr/lib/udev/rules.d /usr/local/lib/udev/rules.d /lib/udev/rules.d; do
    if [ -d "$d" ]; then mount --bind "$2" "$d"; fi
done
exec udevadm test --action="$3" --resolve-names=never "/sys/class/net/$4"
"#;

/// What `udevadm test` made of one event.
struct Event {
    /// Its result: the device properties, then one `run: '...'` line per RUN program.
    stdout: String,
    /// Its debug log, where the rules parser reports what it rejects.
    stderr: String,
}

impl Event {
    fn runs(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("run: '")?.strip_suffix('\''))
            .collect()
    }

    fn property(&self, key: &str) -> Option<&str> {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    }

    fn rules_read(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter_map(|l| l.strip_prefix("Reading rules file: "))
            .collect()
    }

    fn dump(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// The rules parser's complaints. `udevadm test` exits 0 whatever the rules hold, and
/// says "Invalid key", "Invalid operator", "Invalid value ... (invalid substitution type)",
/// "Unknown builtin command", "has no matching label" ...: not all of them say "invalid",
/// but all start with `FILE:LINE`, while the per-event lines start with the device name.
fn rule_problems(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            l.contains("nvalid")
                || l.split_once(' ')
                    .and_then(|(loc, _)| loc.trim_end_matches(':').rsplit_once(".rules:"))
                    .is_some_and(|(_, line)| line.parse::<u32>().is_ok())
        })
        .collect()
}

/// Runs `udevadm test --action=ACTION /sys/class/net/DEV` in `ns` with exactly `rules`
/// (file name, text) installed.
fn udevadm_test(ns: &Netns, rules: &[(&str, String)], action: &str, dev: &str) -> Event {
    assert!(
        Path::new("/etc/udev/rules.d").is_dir()
            && run(Command::new("udevadm").arg("--version"))
                .status
                .success(),
        "udevadm missing: apt-get install udev"
    );
    let scratch = common::scratch("udev");
    let (dir, empty) = (scratch.join("rules"), scratch.join("empty"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&empty).unwrap();
    for (name, text) in rules {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let out = run(ns.exec().args(["sh", "-c", UDEVADM_TEST, "sh"]).args([
        dir.to_str().unwrap(),
        empty.to_str().unwrap(),
        action,
        dev,
    ]));
    let event = Event {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        out.status.success(),
        "udevadm test failed\n{}",
        event.dump()
    );
    let mut read = event.rules_read();
    read.sort();
    let mut expected: Vec<String> = rules
        .iter()
        .map(|(name, _)| format!("/etc/udev/rules.d/{name}"))
        .collect();
    expected.sort();
    assert_eq!(read, expected, "rules read\n{}", event.dump());
    event
}

fn ours() -> Vec<(&'static str, String)> {
    OURS.iter()
        .map(|name| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("udev")
                .join(name);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (*name, text)
        })
        .collect()
}

/// Our rules, with the parser finding nothing wrong in them.
fn test_ours(ns: &Netns, action: &str, dev: &str) -> Event {
    test_checked(ns, &ours(), action, dev)
}

/// `rules`, with the parser finding nothing wrong in them.
fn test_checked(ns: &Netns, rules: &[(&str, String)], action: &str, dev: &str) -> Event {
    let event = udevadm_test(ns, rules, action, dev);
    let problems = rule_problems(&event.stderr);
    assert!(
        problems.is_empty(),
        "udev rejects part of our rules: {problems:#?}\n{}",
        event.dump()
    );
    event
}

/// A namespace with bridge `br0`, veth pair `ve0`/`ve1`, and taps `vif3.0-emu` and `tap0`.
fn rig(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.bridge("br0", 1500);
    ns.ip(&["link", "add", "ve0", "type", "veth", "peer", "name", "ve1"]);
    ns.ip(&["tuntap", "add", "vif3.0-emu", "mode", "tap"]);
    ns.ip(&["tuntap", "add", "tap0", "mode", "tap"]);
    ns
}

#[test]
fn a_bridge_that_appears_runs_vifkit_reattach_for_it() {
    let ns = rig("udbr");
    let event = test_ours(&ns, "add", "br0");
    assert_eq!(
        event.property("DEVTYPE"),
        Some("bridge"),
        "{}",
        event.dump()
    );
    assert_eq!(
        event.runs(),
        [format!("{REATTACH} br0")],
        "{}",
        event.dump()
    );
    assert_eq!(event.property("UDEV_CALL"), None, "{}", event.dump());
    // Only its appearance: a bridge going away or changing runs nothing.
    for action in ["remove", "change", "move"] {
        let event = test_ours(&ns, action, "br0");
        assert!(event.runs().is_empty(), "{action}\n{}", event.dump());
    }
}

#[test]
fn ports_and_other_links_do_not_run_reattach() {
    let ns = rig("udnb");
    ns.ip(&["link", "set", "ve0", "master", "br0"]);
    for dev in ["ve0", "ve1", "tap0", "lo"] {
        let event = test_ours(&ns, "add", dev);
        assert_eq!(event.property("DEVTYPE"), None, "{dev}\n{}", event.dump());
        assert!(event.runs().is_empty(), "{dev}\n{}", event.dump());
    }
}

#[test]
fn a_qemu_dm_tap_runs_vif_setup_with_udev_call() {
    let ns = rig("udtap");
    let event = test_ours(&ns, "add", "vif3.0-emu");
    assert_eq!(event.runs(), [VIF_SETUP_TAP], "{}", event.dump());
    assert_eq!(event.property("UDEV_CALL"), Some("1"), "{}", event.dump());
    assert_eq!(
        event.property("INTERFACE"),
        Some("vif3.0-emu"),
        "{}",
        event.dump()
    );
    let event = test_ours(&ns, "remove", "vif3.0-emu");
    assert!(event.runs().is_empty(), "{}", event.dump());
}

/// NetworkManager is kept off Xen's vifs, whatever their name, and off the emulated NICs'
/// taps (`vifD.N-emu`, `NAME-emu`), and nothing else: not qemu's taps, veths or bridges.
/// There is no netback here: a rule of the test's own gives `web` (a vif renamed by
/// `vifname=web`) the ID_NET_DRIVER that 80-net-setup-link.rules reads from ethtool for a
/// real vif, "vif".
#[test]
fn vifs_and_emulated_nic_taps_are_not_network_managers() {
    let ns = rig("udnm");
    ns.ip(&[
        "link", "add", "web", "type", "veth", "peer", "name", "vif5.0",
    ]);
    ns.ip(&["tuntap", "add", "web-emu", "mode", "tap"]);
    let mut rules = ours();
    rules.push((
        "80-test-netback.rules",
        "SUBSYSTEM==\"net\", KERNEL==\"web\", ENV{ID_NET_DRIVER}=\"vif\"\n".to_owned(),
    ));
    for dev in ["web", "vif5.0", "vif3.0-emu", "web-emu"] {
        for action in ["add", "change", "move"] {
            let event = test_checked(&ns, &rules, action, dev);
            assert_eq!(
                event.property("NM_UNMANAGED"),
                Some("1"),
                "{dev} {action}\n{}",
                event.dump()
            );
        }
        // A port going away is nobody's business.
        let event = test_checked(&ns, &rules, "remove", dev);
        assert_eq!(
            event.property("NM_UNMANAGED"),
            None,
            "{dev}\n{}",
            event.dump()
        );
    }
    for dev in ["tap0", "ve0", "ve1", "br0", "lo"] {
        let event = test_checked(&ns, &rules, "add", dev);
        assert_eq!(
            event.property("NM_UNMANAGED"),
            None,
            "{dev}\n{}",
            event.dump()
        );
    }
}

/// The rule line names the program by the path the installer may rewrite with sed.
#[test]
fn the_reattach_rule_is_one_run_line_with_the_install_prefix() {
    let (_, text) = &ours()[1];
    let rules: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert!(
        rules[0].ends_with(&format!("RUN+=\"{REATTACH} $kernel\"")),
        "{}",
        rules[0]
    );
}

/// The detector `test_ours` relies on catches each kind of mistake udev only logs, so its
/// silence on our rules means something.
#[test]
fn the_problem_detector_catches_every_kind_of_broken_rule() {
    let ns = rig("udbad");
    let broken = [
        r#"SUBSYSTEM=="net", FOO{bar}=="1", RUN+="/bin/true""#,
        r#"SUBSYSTEM="net", RUN+="/bin/true""#,
        r#"SUBSYSTEM=="net", RUN+="/bin/x $kernal""#,
        r#"SUBSYSTEM=="net", RUN{builtin}+="nosuch""#,
        r#"KERNEL=="br0", GOTO="nowhere""#,
        r#"SUBSYSTEM=="net", RUN+="/bin/unterminated"#,
    ];
    let mut rules = ours();
    rules.push(("99-broken.rules", broken.join("\n") + "\n"));
    let event = udevadm_test(&ns, &rules, "add", "br0");
    let problems = rule_problems(&event.stderr);
    for n in 1..=broken.len() {
        let at = format!("/etc/udev/rules.d/99-broken.rules:{n}");
        assert!(
            problems.iter().any(|p| p.starts_with(&at)),
            "no problem reported for line {n}: {}\n{problems:#?}\n{}",
            broken[n - 1],
            event.dump()
        );
    }
    assert!(
        problems.iter().all(|p| p.contains("99-broken.rules")),
        "{problems:#?}"
    );
    // The good rules still work next to the broken file.
    assert!(
        event.runs().contains(&format!("{REATTACH} br0").as_str()),
        "{}",
        event.dump()
    );
}
