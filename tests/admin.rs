//! `vifkit plan`, `check` and `reattach` against real ports in throwaway namespaces, with
//! the xenstore test server standing in for xenstored. Needs root.

mod common;
mod routed;

use std::process::Output;

use common::*;
use routed::{no_dad, seed_2_1_uplink, sysctl};

fn vifkit(ns: &Netns, xs: &Xenstore, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut cmd = ns.exec();
    cmd.arg("env")
        .arg(format!("XENSTORED_PATH={}", xs.socket.display()));
    for (key, value) in extra {
        cmd.arg(format!("{key}={value}"));
    }
    run(cmd.arg(binary("vifkit")).args(args))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
}

/// Bridge xenbr0 with vif3.0 (guest B/ip 192.0.2.10) not yet plugged.
fn rig(tag: &str) -> (Netns, Netns, Xenstore, Vif) {
    let host = Netns::new(&format!("{tag}h"));
    let guest = Netns::new(&format!("{tag}g"));
    host.bridge("xenbr0", 1500);
    let vif = Vif::new(3, 0);
    host.netback_vif(&vif, &guest);
    let xs = Xenstore::start();
    xs.write_vif(&vif);
    xs.write(&format!("{}/ip", vif.backend()), "192.0.2.10");
    (host, guest, xs, vif)
}

#[test]
fn plan_and_check_follow_the_port_through_online_and_drift() {
    let (host, _guest, xs, vif) = rig("adm");
    let plan = vifkit(&host, &xs, &["plan", "vif3.0"], &[]);
    assert_ok(&plan);
    let text = stdout(&plan);
    for line in [
        "attach vif3.0 to bridge xenbr0",
        "filter vif3.0 (netdev vifkit-antispoof-085)",
        "set vif3.0 up",
    ] {
        assert!(
            text.contains(line),
            "{line:?} missing from the plan:\n{text}"
        );
    }
    assert_eq!(host.master_of("vif3.0"), None, "plan changed something");

    let before = vifkit(&host, &xs, &["check", "vif3.0"], &[]);
    assert_eq!(before.status.code(), Some(1));
    assert!(
        stdout(&before).contains("drift: would attach vif3.0 to bridge xenbr0"),
        "{}",
        stdout(&before)
    );
    assert!(
        stdout(&before).contains(
            "drift: /local/domain/0/backend/vif/3/0/hotplug-status is \"\", not \"connected\"\n"
        ),
        "{}",
        stdout(&before)
    );

    assert_ok(&hotplug(&host, &xs, &vif, &["online", "type_if=vif"], &[]));
    let after = vifkit(&host, &xs, &["check", "vif3.0"], &[]);
    assert_ok(&after);
    assert_eq!(stdout(&after), "vif3.0: in place, as online leaves it\n");

    host.ip(&["link", "set", "vif3.0", "nomaster"]);
    must(host.exec().args([
        "nft",
        "delete",
        "chain",
        "netdev",
        "vifkit-antispoof-085",
        "vif3.0",
    ]));
    let drifted = vifkit(&host, &xs, &["check", "vif3.0"], &[]);
    assert_eq!(drifted.status.code(), Some(1));
    let text = stdout(&drifted);
    assert!(
        text.contains("drift: would attach vif3.0 to bridge xenbr0"),
        "{text}"
    );
    assert!(
        text.contains("drift: no antispoofing rules for vif3.0 (netdev vifkit-antispoof-085)"),
        "{text}"
    );
    assert!(
        stderr(&drifted).contains("vif3.0 has drifted from what online leaves"),
        "{}",
        stderr(&drifted)
    );
}

#[test]
fn an_unknown_port_is_one_sentence() {
    let (host, _guest, xs, _vif) = rig("admu");
    let out = vifkit(&host, &xs, &["check", "vif9.9"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "vifkit: error: vif9.9 is neither a Xen vif in /local/domain/0/backend/vif nor an existing tap\n"
    );
}

#[test]
fn check_says_hotplug_status_in_words_never_as_rust_values() {
    let (host, _guest, xs, vif) = rig("adw");
    assert_ok(&hotplug(&host, &xs, &vif, &["online", "type_if=vif"], &[]));
    let status = format!("{}/hotplug-status", vif.backend());
    let cases = [
        (
            Some("error"),
            Some("bridge xenbr9 does not exist"),
            "drift: /local/domain/0/backend/vif/3/0/hotplug-status is \"error\", not \"connected\" (hotplug-error: bridge xenbr9 does not exist)\n",
        ),
        (
            Some("error"),
            None,
            "drift: /local/domain/0/backend/vif/3/0/hotplug-status is \"error\", not \"connected\"\n",
        ),
        (
            None,
            None,
            "drift: /local/domain/0/backend/vif/3/0/hotplug-status is missing (online writes \"connected\")\n",
        ),
    ];
    for (value, error, want) in cases {
        let error_key = format!("{}/hotplug-error", vif.backend());
        match value {
            Some(value) => xs.write(&status, value),
            None => xs.rm(&status),
        }
        match error {
            Some(error) => xs.write(&error_key, error),
            None if xs.read(&error_key).is_some() => xs.rm(&error_key),
            None => {}
        }
        let out = vifkit(&host, &xs, &["check", "vif3.0"], &[]);
        assert_eq!(out.status.code(), Some(1), "{value:?}");
        let text = stdout(&out);
        assert_eq!(text, want, "{value:?}");
        assert!(!text.contains("Some(") && !text.contains("None"), "{text}");
    }
}

#[test]
fn plan_and_check_refuse_what_is_neither_a_vif_nor_a_tap() {
    let (host, _guest, xs, _vif) = rig("adl");
    host.ip(&["tuntap", "add", "tun0", "mode", "tun"]);
    for dev in ["lo", "xenbr0", "tun0"] {
        for verb in ["plan", "check"] {
            let out = vifkit(&host, &xs, &[verb, dev], &[]);
            assert_eq!(out.status.code(), Some(1), "{verb} {dev}: {}", stdout(&out));
            assert_eq!(stdout(&out), "", "{verb} {dev}");
            assert_eq!(
                stderr(&out),
                format!(
                    "vifkit: error: {dev} is neither a Xen vif in /local/domain/0/backend/vif nor a tap, so vifkit does not manage it\n"
                ),
                "{verb} {dev}"
            );
        }
    }
    // A tap is planned as qemu-ifup would.
    host.ip(&["tuntap", "add", "tap0", "mode", "tap"]);
    let config = scratch("adl");
    let path = config.join("vifkit.conf");
    std::fs::write(&path, "[port tap0]\nbridge = xenbr0\n").unwrap();
    let env = [("VIFKIT_CONFIG", path.to_str().unwrap())];
    let out = vifkit(&host, &xs, &["plan", "tap0"], &env);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("attach tap0 to bridge xenbr0"),
        "{}",
        stdout(&out)
    );
}

/// A stand-in `nmcli` in a directory put first on PATH: it records how it was asked and
/// answers with `body` (NetworkManager itself cannot run here).
fn stand_in_nmcli(dir: &std::path::Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let asked = dir.join("asked");
    let script = format!(
        "#!/bin/sh\necho \"$LC_ALL $*\" >> {}\n{body}\n",
        asked.display()
    );
    // Written aside and renamed into place: never executed while open for writing.
    let temporary = dir.join("nmcli.new");
    std::fs::write(&temporary, script).unwrap();
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&temporary, dir.join("nmcli")).unwrap();
    let _ = std::fs::remove_file(asked);
}

#[test]
fn check_says_when_networkmanager_manages_the_port() {
    let (host, _guest, xs, vif) = rig("adnm");
    assert_ok(&hotplug(&host, &xs, &vif, &["online", "type_if=vif"], &[]));
    let dir = scratch("adnm");
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
    let env = [("PATH", path.as_str())];
    let asked = || std::fs::read_to_string(dir.join("asked")).unwrap_or_default();

    stand_in_nmcli(&dir, "echo 'GENERAL.STATE:100 (connected)'");
    let out = vifkit(&host, &xs, &["check", "vif3.0"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        stdout(&out),
        "drift: NetworkManager manages vif3.0 (state 100 (connected)) and may change it behind \
         vifkit's back: vifkit's drop-in /usr/lib/NetworkManager/conf.d/vifkit-unmanaged.conf \
         (/etc/NetworkManager/conf.d with hotplug/install) keeps NetworkManager off its ports; \
         install it (a port it does not match needs an unmanaged-devices entry of its own) and \
         run `systemctl reload NetworkManager`\n"
    );
    assert_eq!(asked(), "C -t -f GENERAL.STATE device show vif3.0\n");

    // Unmanaged, unknown to NetworkManager, NetworkManager not running: nothing to say.
    for answer in [
        "echo 'GENERAL.STATE:10 (unmanaged)'",
        "echo \"Error: Device 'vif3.0' not found.\" >&2; exit 10",
        "echo 'Error: NetworkManager is not running.' >&2; exit 8",
    ] {
        stand_in_nmcli(&dir, answer);
        let out = vifkit(&host, &xs, &["check", "vif3.0"], &env);
        assert_ok(&out);
        assert_eq!(
            stdout(&out),
            "vif3.0: in place, as online leaves it\n",
            "{answer}"
        );
        assert_eq!(
            asked(),
            "C -t -f GENERAL.STATE device show vif3.0\n",
            "{answer}"
        );
    }

    // An nmcli that never answers is killed, with what it started, and check goes on.
    let pid = dir.join("sleep.pid");
    stand_in_nmcli(
        &dir,
        &format!("sleep 60 & echo $! > {}; wait", pid.display()),
    );
    let started = std::time::Instant::now();
    let out = vifkit(&host, &xs, &["check", "vif3.0"], &env);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_ok(&out);
    assert!(
        stderr(&out).contains(&format!(
            "cannot tell whether NetworkManager manages vif3.0: {}/nmcli did not answer in time: killed it",
            dir.display()
        )),
        "{}",
        stderr(&out)
    );
    let sleep = std::fs::read_to_string(&pid).unwrap();
    let proc = std::path::PathBuf::from(format!("/proc/{}", sleep.trim()));
    let gone = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::read_to_string(proc.join("stat")).map_or(true, |stat| stat.contains(") Z "))
    });
    assert!(gone, "the stand-in's sleep {} outlived check", sleep.trim());
}

#[test]
fn a_vif_name_with_xenstore_unreachable_is_that_error_not_a_tap_plan() {
    // Where a real xenstore answers (the real-Xen lab's dom0), it cannot be made unreachable.
    let real = [
        "/var/run/xenstored/socket",
        "/run/xenstored/socket",
        "/dev/xen/xenbus",
    ];
    if real.iter().any(|p| std::path::Path::new(p).exists()) {
        eprintln!("skipped: this host has a real xenstore");
        return;
    }
    let (host, _guest, xs, vif) = rig("adx");
    let down = [("XENSTORED_PATH", "/nonexistent/socket")];
    for verb in ["plan", "check"] {
        let out = vifkit(&host, &xs, &[verb, &vif.kernel_name()], &down);
        assert_eq!(out.status.code(), Some(1), "{verb}: {}", stdout(&out));
        let want = "vifkit: error: vif3.0 looks like a Xen vif: cannot connect to xenstore (tried /nonexistent/socket: ";
        assert!(stderr(&out).starts_with(want), "{verb}: {}", stderr(&out));
        assert!(
            stdout(&out).is_empty(),
            "{verb} planned something: {}",
            stdout(&out)
        );
    }
    // reattach still tries the taps, and says the vifs were not reattached.
    let out = vifkit(&host, &xs, &["reattach"], &down);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("Xen vifs: not reattached: cannot connect to xenstore"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn reattach_puts_vifs_and_taps_back_on_a_recreated_bridge() {
    let (host, _guest, xs, vif) = rig("adr");
    let dir = scratch("adr");
    let config = dir.join("vifkit.conf");
    std::fs::write(&config, "[port tap*]\nbridge = xenbr0\n").unwrap();
    let env = [("VIFKIT_CONFIG", config.to_str().unwrap())];
    host.ip(&["tuntap", "add", "tap0", "mode", "tap"]);
    assert_ok(&hotplug(&host, &xs, &vif, &["online", "type_if=vif"], &[]));
    must(
        host.exec()
            .args(["env", &format!("VIFKIT_CONFIG={}", config.display())])
            .arg(binary("qemu-ifup"))
            .arg("tap0"),
    );
    assert_eq!(host.master_of("tap0").as_deref(), Some("xenbr0"));

    // What an admin's `ifdown br0; ifup br0` or a network manager restart does.
    host.ip(&["link", "del", "xenbr0"]);
    host.bridge("xenbr0", 1500);
    assert_eq!(host.master_of("vif3.0"), None);

    let out = vifkit(&host, &xs, &["reattach", "xenbr0"], &env);
    assert_ok(&out);
    assert_eq!(stdout(&out), "vif3.0: reattached\ntap0: reattached\n");
    assert_eq!(host.master_of("vif3.0").as_deref(), Some("xenbr0"));
    assert_eq!(host.master_of("tap0").as_deref(), Some("xenbr0"));

    let again = vifkit(&host, &xs, &["reattach", "xenbr0"], &env);
    assert_ok(&again);
    assert_eq!(
        stdout(&again),
        "vif3.0: already in place\ntap0: already in place\n"
    );
    let other = vifkit(&host, &xs, &["reattach", "lo"], &env);
    assert_ok(&other);
    assert_eq!(stdout(&other), "no port uses lo as its bridge or uplink\n");
}

/// Seed 2.1's host (uplink eth0, the default-route link, behind a router) with a routed vif
/// (vif-route, vif1.0 -> xen1.0, 192.0.2.241 and 2001:db8:abba::1001) and a NAT vif
/// (vif-nat, vif2.0 -> xen2.0, 192.168.1.10), both plugged.
struct Uplinked {
    _router: Netns,
    host: Netns,
    _guests: [Netns; 2],
    xs: Xenstore,
    _dir: Scratch,
    env: [(&'static str, String); 1],
}

fn uplinked(tag: &str) -> Uplinked {
    let router = Netns::new(&format!("{tag}r"));
    let host = Netns::new(&format!("{tag}h"));
    let guests = [
        Netns::new(&format!("{tag}g")),
        Netns::new(&format!("{tag}n")),
    ];
    for ns in [&router, &host] {
        no_dad(ns);
    }
    sysctl(&host, "net.ipv4.conf.all.forwarding", "1");
    sysctl(&host, "net.ipv6.conf.all.forwarding", "1");
    seed_2_1_uplink(&host, &router);
    let dir = scratch(tag);
    let config = dir.join("vifkit.conf");
    std::fs::write(&config, "").unwrap();
    let env = [("VIFKIT_CONFIG", config.display().to_string())];
    let xs = Xenstore::start();
    let ports = [
        (1, "vif-route", "xen1.0", "192.0.2.241 2001:db8:abba::1001"),
        (2, "vif-nat", "xen2.0", "192.168.1.10"),
    ];
    for ((domid, script, vifname, ip), guest) in ports.into_iter().zip(&guests) {
        let mut vif = Vif::new(domid, 0);
        vif.script = leak(format!("/etc/xen/scripts/{script}"));
        vif.bridge = None;
        vif.vifname = Some(vifname);
        host.netback_vif(&vif, guest);
        xs.write_vif(&vif);
        xs.write(&format!("{}/ip", vif.backend()), ip);
        let env = [("VIFKIT_CONFIG", env[0].1.as_str())];
        assert_ok(&hotplug(&host, &xs, &vif, &["online", "type_if=vif"], &env));
    }
    Uplinked {
        _router: router,
        host,
        _guests: guests,
        xs,
        _dir: dir,
        env,
    }
}

impl Uplinked {
    fn vifkit(&self, args: &[&str]) -> Output {
        let env = [(self.env[0].0, self.env[0].1.as_str())];
        vifkit(&self.host, &self.xs, args, &env)
    }

    /// `ip -j neigh show proxy` as `address dev`, sorted.
    fn proxies(&self) -> Vec<String> {
        let v = self.host.ip_json(&["neigh", "show", "proxy"]);
        let mut out: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                format!(
                    "{} {}",
                    n["dst"].as_str().unwrap(),
                    n["dev"].as_str().unwrap()
                )
            })
            .collect();
        out.sort();
        out
    }

    /// `nft -j list tables` as `family name`, vifkit's only.
    fn tables(&self) -> Vec<String> {
        let out = must(self.host.exec().args(["nft", "-j", "list", "tables"]));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let mut tables: Vec<String> = v["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o.get("table"))
            .map(|t| {
                format!(
                    "{} {}",
                    t["family"].as_str().unwrap(),
                    t["name"].as_str().unwrap()
                )
            })
            .filter(|t| t.contains("vifkit"))
            .collect();
        tables.sort();
        tables
    }

    /// What `ifdown eth0; ifup eth0` and `nft -f /etc/nftables.conf` leave.
    fn break_host(&self) {
        self.host.ip(&["neigh", "flush", "proxy"]);
        must(self.host.exec().args(["nft", "flush", "ruleset"]));
        assert_eq!(self.proxies(), Vec::<String>::new());
        assert_eq!(self.tables(), Vec::<String>::new());
    }
}

#[test]
fn reattach_by_uplink_and_all_restore_routed_proxies_and_nat_tables() {
    let u = uplinked("adu");
    let proxies = u.proxies();
    assert_eq!(
        proxies,
        ["192.0.2.241 eth0", "2001:db8:abba::1001 eth0"],
        "after online"
    );
    let tables = u.tables();
    assert!(
        tables.contains(&"inet vifkit-nat-2-0".to_owned()),
        "{tables:?}"
    );
    assert!(
        tables
            .iter()
            .any(|t| t.starts_with("netdev vifkit-antispoof")),
        "{tables:?}"
    );

    u.break_host();
    let out = u.vifkit(&["reattach", "eth0"]);
    assert_ok(&out);
    assert_eq!(stdout(&out), "xen1.0: reattached\nxen2.0: reattached\n");
    assert_eq!(u.proxies(), proxies);
    assert_eq!(u.tables(), tables);
    let again = u.vifkit(&["reattach", "eth0"]);
    assert_ok(&again);
    assert_eq!(
        stdout(&again),
        "xen1.0: already in place\nxen2.0: already in place\n"
    );
    for dev in ["xen1.0", "xen2.0"] {
        assert_ok(&u.vifkit(&["check", dev]));
    }

    u.break_host();
    let all = u.vifkit(&["reattach", "--all"]);
    assert_ok(&all);
    assert_eq!(stdout(&all), "xen1.0: reattached\nxen2.0: reattached\n");
    assert_eq!(u.proxies(), proxies);
    assert_eq!(u.tables(), tables);

    // Only the NAT table gone: only its port is re-plugged, its guest's flows kept.
    must(
        u.host
            .exec()
            .args(["nft", "delete", "table", "inet", "vifkit-nat-2-0"]),
    );
    let nat = u.vifkit(&["reattach", "--all"]);
    assert_ok(&nat);
    assert_eq!(
        stdout(&nat),
        "xen1.0: already in place\nxen2.0: reattached\n"
    );
    assert_eq!(u.tables(), tables);

    // A link no port leaves by, and no bridge: nothing to do.
    let lo = u.vifkit(&["reattach", "lo"]);
    assert_ok(&lo);
    assert_eq!(stdout(&lo), "no port uses lo as its bridge or uplink\n");
}

#[test]
fn reattach_of_an_unknown_name_is_one_sentence() {
    let (host, _guest, xs, _vif) = rig("adn");
    let out = vifkit(&host, &xs, &["reattach", "nosuch0"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        "vifkit: error: nosuch0 is no link here, and no port names it as its bridge or uplink\n"
    );
    let both = vifkit(&host, &xs, &["reattach", "xenbr0", "--all"], &[]);
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
}

#[test]
fn check_says_when_a_taps_rate_limit_was_replaced_as_libvirt_does() {
    let (host, _guest, xs, _vif) = rig("adq");
    let dir = scratch("adq");
    let config = dir.join("vifkit.conf");
    std::fs::write(&config, "[port tap*]\nbridge = xenbr0\nrate = 10mbit\n").unwrap();
    let env = [("VIFKIT_CONFIG", config.to_str().unwrap())];
    host.ip(&["tuntap", "add", "tap0", "mode", "tap"]);
    must(
        host.exec()
            .args(["env", &format!("VIFKIT_CONFIG={}", config.display())])
            .arg(binary("qemu-ifup"))
            .arg("tap0"),
    );
    let plugged = vifkit(&host, &xs, &["check", "tap0"], &env);
    assert_ok(&plugged);
    assert_eq!(stdout(&plugged), "tap0: in place, as online leaves it\n");

    // What libvirt does once the script returned.
    must(
        host.exec()
            .args(["tc", "qdisc", "replace", "dev", "tap0", "root", "noqueue"]),
    );
    let replaced = vifkit(&host, &xs, &["check", "tap0"], &env);
    assert_eq!(replaced.status.code(), Some(1));
    assert_eq!(
        stdout(&replaced),
        "drift: rate 10mbit of tap0 is gone: its root qdisc is noqueue, not vifkit's tbf (libvirt replaces a tap's root qdisc after qemu-ifup: give the guest's <interface> a <bandwidth> element instead)\n"
    );

    must(host.exec().args([
        "tc", "qdisc", "replace", "dev", "tap0", "root", "tbf", "rate", "5mbit", "burst", "32k",
        "latency", "50ms",
    ]));
    let other = vifkit(&host, &xs, &["check", "tap0"], &env);
    assert_eq!(
        stdout(&other),
        "drift: the root tbf of tap0 limits to 5mbit, not to rate 10mbit\n"
    );

    let reattach = vifkit(&host, &xs, &["reattach", "xenbr0"], &env);
    assert_ok(&reattach);
    assert_ok(&vifkit(&host, &xs, &["check", "tap0"], &env));
}
