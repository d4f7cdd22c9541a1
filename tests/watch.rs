//! `vifkit watch` (issue 19) running in the test's namespace while the host changes under
//! its ports: a bridge deleted and recreated, an uplink taken down and up, `nft flush
//! ruleset`. Each repair must land within [`REPAIR_BOUND`] of the change (about 0.1 s
//! here: the bound is generous), leave foreign and unplugged ports alone, and never undo an
//! offline. Needs root.

mod common;
mod routed;

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use routed::{no_dad, seed_2_1_host_eth0, seed_2_1_uplink, sysctl};
use vifkit::lab::scratch::Scratch;

/// How long after a change its repair may take (the issue asks for ≤ 1 s on this machine;
/// asserted with room for a loaded CI machine).
const REPAIR_BOUND: Duration = Duration::from_secs(3);

/// A `vifkit watch` in a namespace, started and ready (it said READY=1 on a notify socket
/// of the test's, as systemd would hear it); killed on drop.
struct Watcher {
    child: Child,
    log: PathBuf,
    _dir: Scratch,
}

impl Watcher {
    fn start(ns: &Netns, xs: Option<&Xenstore>, config: &str, args: &[&str]) -> Watcher {
        let dir = scratch("watch");
        let notify = dir.join("notify");
        let socket = UnixDatagram::bind(&notify).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let log = dir.join("log");
        let xenstored = xs.map_or_else(|| "/nonexistent".into(), |xs| xs.socket.clone());
        let child = ns
            .exec()
            .arg("env")
            .arg(format!("XENSTORED_PATH={}", xenstored.display()))
            .arg(format!("VIFKIT_CONFIG={config}"))
            .arg(format!("NOTIFY_SOCKET={}", notify.display()))
            .arg(binary("vifkit"))
            .arg("watch")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start vifkit watch");
        // Killed on drop from here on, also when it never becomes ready.
        let watcher = Watcher {
            child,
            log,
            _dir: dir,
        };
        let mut buf = [0u8; 256];
        let len = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no READY=1 from vifkit watch ({e}): {}", watcher.log()));
        assert_eq!(String::from_utf8_lossy(&buf[..len]), "READY=1\n");
        // The start's own pass (every port checked once) ends before the test changes things.
        watcher.wait_for("the watcher started", |log| {
            log.contains("watching the ports")
        });
        std::thread::sleep(Duration::from_millis(400));
        watcher
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) {
        let until = Instant::now() + Duration::from_secs(20);
        while !done(&self.log()) {
            assert!(Instant::now() < until, "{what}: {}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `done` until it holds; the time it took, or a panic naming `what` after the bound.
fn within(bound: Duration, what: &str, watcher: &Watcher, done: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < bound,
            "{what}: not repaired within {bound:?}; watcher log:\n{}",
            watcher.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = start.elapsed();
    eprintln!("{what}: repaired after {took:?}");
    took
}

/// An echo answered within a few tries: the first may go while the neighbours of a link
/// that was down are resolved again (proxy ARP answers after up to 0.8 s).
fn pings_soon(from: &Netns, address: &str) -> bool {
    (0..3).any(|_| from.ping(address))
}

fn recreate_bridge(ns: &Netns, name: &str) {
    ns.ip(&["link", "del", name]);
    ns.bridge(name, 1500);
}

fn port_flag(ns: &Netns, dev: &str, flag: &str) -> bool {
    let json = ns.ip_json(&["-d", "link", "show", dev]);
    json[0]["linkinfo"]["info_slave_data"][flag].as_bool() == Some(true)
}

fn filtered(ns: &Netns, port: &str) -> bool {
    must(ns.exec().args(["nft", "list", "chains", "netdev"])).contains(&format!("chain {port} "))
}

/// dom0 with xenbr0: vif3.0 (a bridged guest at 198.51.100.10, `isolated` from vifkit.conf)
/// and tap0 (qemu-ifup tap0 xenbr0) plugged by vifkit; vif9.0, put on the bridge by hand;
/// tap1, plugged and unplugged again.
struct Bridged {
    host: Netns,
    guest: Netns,
    /// The far end of vif9.0, the port vifkit did not plug.
    _foreign: Netns,
    xs: Xenstore,
    vif: Vif,
    config: PathBuf,
    _dir: Scratch,
}

fn bridged(tag: &str) -> Bridged {
    let host = Netns::new(&format!("{tag}h"));
    let guest = Netns::new(&format!("{tag}g"));
    host.bridge("xenbr0", 1500);
    host.ip(&["addr", "add", "198.51.100.1/24", "dev", "xenbr0"]);
    let dir = scratch("watchconf");
    let config = dir.join("vifkit.conf");
    std::fs::write(&config, "[port vif3.0]\nisolated = yes\n").unwrap();
    let vif = Vif::new(3, 0);
    host.netback_vif(&vif, &guest);
    guest.ip(&["addr", "add", "198.51.100.10/24", "dev", "eth0"]);
    let xs = Xenstore::start();
    xs.write_vif(&vif);
    xs.write(&format!("{}/ip", vif.backend()), "198.51.100.10");
    let foreign = Netns::new(&format!("{tag}f"));
    host.veth("vif9.0", "eth0", &foreign);
    host.ip(&["link", "set", "vif9.0", "master", "xenbr0", "up"]);
    let b = Bridged {
        host,
        guest,
        _foreign: foreign,
        xs,
        vif,
        config,
        _dir: dir,
    };
    assert_ok(&b.run(&["online", "type_if=vif"]));
    for tap in ["tap0", "tap1"] {
        b.host.ip(&["tuntap", "add", tap, "mode", "tap"]);
        must(&mut b.qemu("qemu-ifup", tap));
    }
    must(&mut b.qemu("qemu-ifdown", "tap1"));
    b
}

impl Bridged {
    fn run(&self, args: &[&str]) -> std::process::Output {
        let config = format!("{}", self.config.display());
        hotplug(
            &self.host,
            &self.xs,
            &self.vif,
            args,
            &[("VIFKIT_CONFIG", &config)],
        )
    }

    /// `vifkit ARGS` in the host namespace, on the rig's xenstore and vifkit.conf.
    fn vifkit(&self, args: &[&str]) -> std::process::Output {
        run(self
            .host
            .exec()
            .arg("env")
            .arg(format!("XENSTORED_PATH={}", self.xs.socket.display()))
            .arg(format!("VIFKIT_CONFIG={}", self.config.display()))
            .arg(binary("vifkit"))
            .args(args))
    }

    fn qemu(&self, script: &str, tap: &str) -> Command {
        let mut cmd = self.host.exec();
        cmd.arg("env")
            .arg(format!("VIFKIT_CONFIG={}", self.config.display()))
            .arg(binary(script))
            .args([tap, "xenbr0"]);
        cmd
    }

    fn watch(&self, args: &[&str]) -> Watcher {
        Watcher::start(
            &self.host,
            Some(&self.xs),
            &self.config.display().to_string(),
            args,
        )
    }
}

#[test]
fn a_recreated_bridge_gets_vifkits_ports_back_with_their_options_and_no_other() {
    let b = bridged("wbr");
    let watcher = b.watch(&[]);
    assert!(port_flag(&b.host, "vif3.0", "isolated"));

    recreate_bridge(&b.host, "xenbr0");
    within(REPAIR_BOUND, "bridge xenbr0 recreated", &watcher, || {
        b.host.master_of("vif3.0").as_deref() == Some("xenbr0")
            && b.host.master_of("tap0").as_deref() == Some("xenbr0")
    });
    assert!(port_flag(&b.host, "vif3.0", "isolated"), "its options too");
    b.host
        .ip(&["addr", "add", "198.51.100.1/24", "dev", "xenbr0"]);
    assert!(
        b.guest.ping("198.51.100.1"),
        "the guest is back on the bridge"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        b.host.master_of("vif9.0"),
        None,
        "a port vifkit did not plug"
    );
    assert_eq!(
        b.host.master_of("tap1"),
        None,
        "a tap qemu-ifdown unplugged"
    );

    let log = watcher.log();
    let repairs: Vec<&str> = log.lines().filter(|l| l.contains("repaired")).collect();
    assert_eq!(
        repairs,
        [
            "vifkit: tap0: repaired after bridge xenbr0 appeared: attach tap0 to bridge xenbr0",
            "vifkit: vif3.0: repaired after bridge xenbr0 appeared: attach vif3.0 to bridge xenbr0",
        ],
        "{log}"
    );

    let status = b.vifkit(&["status"]);
    let text = String::from_utf8_lossy(&status.stdout).into_owned();
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("watcher: running since ")
            && last.contains("; 2 repair(s), last repair at ")
            && last.ends_with(
                ": vif3.0: attach vif3.0 to bridge xenbr0 (after bridge xenbr0 appeared)"
            ),
        "{text}"
    );
    drop(watcher);
    let status = run(b.host.exec().arg(binary("vifkit")).args(["status"]));
    let text = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        text.lines()
            .last()
            .unwrap_or_default()
            .starts_with("watcher: not running; its last repair at "),
        "{text}"
    );
}

#[test]
fn a_second_watcher_in_the_namespace_is_refused() {
    let host = Netns::new("w2");
    let _first = Watcher::start(&host, None, "/dev/null", &[]);
    let out = run(host
        .exec()
        .args(["env", "VIFKIT_CONFIG=/dev/null"])
        .arg(binary("vifkit"))
        .arg("watch"));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("vifkit: error: another vifkit watch runs in this network namespace (")
            && err.ends_with("/watch.lock is locked: EAGAIN: Try again)\n"),
        "{err}"
    );
}

/// An offline racing a repair (started the moment the bridge comes back) wins: whatever
/// the order, the port ends detached, unfiltered and forgotten, and stays so.
#[test]
fn an_offline_during_a_repair_is_not_undone() {
    let b = bridged("woff");
    let watcher = b.watch(&[]);
    for round in 0..5 {
        recreate_bridge(&b.host, "xenbr0");
        std::thread::sleep(Duration::from_millis(round * 15));
        assert_ok(&b.run(&["offline", "type_if=vif"]));
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(
            b.host.master_of("vif3.0"),
            None,
            "round {round}: {}",
            watcher.log()
        );
        assert!(!filtered(&b.host, "vif3.0"), "round {round}");
        assert_ok(&b.run(&["online", "type_if=vif"]));
        assert_eq!(b.host.master_of("vif3.0").as_deref(), Some("xenbr0"));
    }
}

/// Seed 2.1's vif-route guest (xen1.0, proxy ARP and NDP on eth0): `ifdown eth0; ifup eth0`
/// deletes the proxy entries; the watcher puts them back and the router reaches the guest.
#[test]
fn an_uplink_down_and_up_gets_the_proxy_entries_back() {
    let router = Netns::new("wupr");
    let host = Netns::new("wuph");
    let guest = Netns::new("wupg");
    for ns in [&router, &host, &guest] {
        no_dad(ns);
    }
    sysctl(&host, "net.ipv4.conf.all.forwarding", "1");
    sysctl(&host, "net.ipv6.conf.all.forwarding", "1");
    seed_2_1_uplink(&host, &router);
    let mut vif = Vif::new(1, 0);
    vif.script = "/etc/xen/scripts/vif-route";
    vif.bridge = None;
    vif.vifname = Some("xen1.0");
    host.netback_vif(&vif, &guest);
    guest.ip(&["addr", "add", "192.0.2.241/28", "dev", "eth0"]);
    guest.ip(&[
        "route",
        "add",
        "default",
        "via",
        "192.0.2.253",
        "dev",
        "eth0",
        "onlink",
    ]);
    let xs = Xenstore::start();
    xs.write_vif(&vif);
    xs.write(
        &format!("{}/ip", vif.backend()),
        "192.0.2.241 2001:db8:abba::1001",
    );
    assert_ok(&hotplug(
        &host,
        &xs,
        &vif,
        &["online", "type_if=vif"],
        &[("VIFKIT_CONFIG", "/dev/null")],
    ));
    let proxies =
        || host.ip(&["neigh", "show", "proxy"]) + &host.ip(&["-6", "neigh", "show", "proxy"]);
    let both =
        |p: &str| p.contains("192.0.2.241 dev eth0") && p.contains("2001:db8:abba::1001 dev eth0");
    assert!(both(&proxies()), "{}", proxies());
    assert!(router.ping("192.0.2.241"));
    let watcher = Watcher::start(&host, Some(&xs), "/dev/null", &[]);

    host.ip(&["link", "set", "eth0", "down"]);
    assert!(!both(&proxies()), "the kernel dropped them: {}", proxies());
    // ifup: the link, its addresses (IPv6's went with the link) and default routes.
    host.ip(&["addr", "flush", "dev", "eth0"]);
    seed_2_1_host_eth0(&host);
    within(REPAIR_BOUND, "uplink eth0 down and up", &watcher, || {
        both(&proxies())
    });
    assert!(pings_soon(&router, "192.0.2.241"), "{}", watcher.log());
    let log = watcher.log();
    // One repair, or two if the link and its default routes came in separate bursts.
    let repairs: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("vifkit: xen1.0: repaired after "))
        .collect();
    let all = repairs.join("\n");
    assert!(
        (1..=2).contains(&repairs.len())
            && all.contains("eth0 came up")
            && all.contains("add proxy neighbour 192.0.2.241 on eth0")
            && all.contains("add proxy neighbour 2001:db8:abba::1001 on eth0"),
        "{log}"
    );
}

/// Seed 3's vif-nat guest and a filtered bridged guest: `nft flush ruleset` (what `nft -f
/// /etc/nftables.conf` starts with) deletes vifkit's NAT table and antispoofing chains.
#[test]
fn nft_flush_ruleset_gets_the_nat_table_and_antispoofing_chains_back() {
    let peer = Netns::new("wnftp");
    let host = Netns::new("wnfth");
    let guest = Netns::new("wnftg");
    for ns in [&peer, &host, &guest] {
        no_dad(ns);
    }
    sysctl(&host, "net.ipv4.conf.all.forwarding", "1");
    host.veth("eth0", "up0", &peer);
    peer.ip(&["addr", "add", "203.0.113.1/24", "dev", "up0"]);
    host.ip(&["link", "set", "eth0", "up"]);
    host.ip(&["addr", "add", "203.0.113.2/24", "dev", "eth0"]);
    host.ip(&["route", "add", "default", "via", "203.0.113.1"]);
    let mut vif = Vif::new(1, 0);
    vif.script = "/etc/xen/scripts/vif-nat";
    vif.bridge = None;
    vif.vifname = Some("xen1.0");
    host.netback_vif(&vif, &guest);
    guest.ip(&["addr", "add", "192.168.1.10/24", "dev", "eth0"]);
    guest.ip(&["route", "add", "default", "via", "192.168.1.1"]);
    let xs = Xenstore::start();
    xs.write_vif(&vif);
    xs.write(&format!("{}/ip", vif.backend()), "192.168.1.10");
    let dir = scratch("wnftconf");
    let config = dir.join("vifkit.conf");
    std::fs::write(&config, "[port xen*]\nrouter = 192.168.1.1\n").unwrap();
    let config = config.display().to_string();
    let env = [("VIFKIT_CONFIG", config.as_str())];
    assert_ok(&hotplug(&host, &xs, &vif, &["online", "type_if=vif"], &env));
    let tables = || must(host.exec().args(["nft", "list", "tables"]));
    let before = tables();
    assert!(before.contains("table inet vifkit-nat-1-0"), "{before}");
    assert!(filtered(&host, "xen1.0"));
    assert!(guest.ping("203.0.113.1"));
    let watcher = Watcher::start(&host, Some(&xs), &config, &[]);

    must(host.exec().args(["nft", "flush", "ruleset"]));
    assert_eq!(tables(), "");
    within(REPAIR_BOUND, "nft flush ruleset", &watcher, || {
        tables() == before && filtered(&host, "xen1.0")
    });
    assert!(pings_soon(&guest, "203.0.113.1"), "masqueraded again");
    let log = watcher.log();
    let repairs: Vec<&str> = log.lines().filter(|l| l.contains("repaired")).collect();
    assert_eq!(repairs.len(), 1, "one line per repaired port: {log}");
    for part in [
        "vifkit: xen1.0: repaired after ",
        "nft table vifkit-nat-1-0 was deleted",
        ": filter xen1.0 (netdev vifkit-antispoof-253): ",
        "; masquerade 192.168.1.10 out of eth0 (nft table inet vifkit-nat-1-0)",
    ] {
        assert!(repairs[0].contains(part), "{part}: {log}");
    }
}

/// A thousand notifications at once: with the default queue none is lost; with a queue
/// too small for them, the overflow is noticed and every port checked again. Either way
/// the bridge recreated at the burst's end is repaired.
#[test]
fn a_burst_of_a_thousand_notifications_is_absorbed_or_resynced() {
    let b = bridged("wbst");
    let foreign = Netns::new("wbstx");
    b.host.veth("burst0", "eth0", &foreign);
    let batch = scratch("wburst");
    let mut lines: String = (0..1000)
        .map(|i| format!("link set burst0 alias a{i}\n"))
        .collect();
    lines.push_str("link del xenbr0\nlink add xenbr0 type bridge\n");
    let file = batch.join("batch");
    std::fs::write(&file, lines).unwrap();
    for (queue, lost) in [(None, false), (Some("4096"), true)] {
        let args: Vec<&str> = queue.map(|q| vec!["--queue-bytes", q]).unwrap_or_default();
        let watcher = b.watch(&args);
        must(b.host.exec().args(["ip", "-b"]).arg(&file));
        within(
            REPAIR_BOUND,
            "bridge recreated after a burst",
            &watcher,
            || b.host.master_of("vif3.0").as_deref() == Some("xenbr0"),
        );
        let log = watcher.log();
        assert_eq!(log.contains("notifications were lost"), lost, "{log}");
    }
}

/// A tap that went without its `qemu-ifdown` (qemu killed) and came back as another's, and
/// a vif whose backend libxl took offline (its unplug comes next), are not re-attached.
#[test]
fn a_replaced_tap_and_a_vif_taken_offline_are_left_alone() {
    let b = bridged("wrep");
    let watcher = b.watch(&[]);
    b.host.ip(&["link", "del", "tap0"]);
    b.host.ip(&["tuntap", "add", "tap0", "mode", "tap"]);
    b.xs.write(&format!("{}/online", b.vif.backend()), "0");
    recreate_bridge(&b.host, "xenbr0");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(b.host.master_of("tap0"), None, "{}", watcher.log());
    assert_eq!(b.host.master_of("vif3.0"), None, "{}", watcher.log());
    assert!(!watcher.log().contains("repaired"), "{}", watcher.log());
}

/// A repair after the watcher has been idle for longer than a run's deadline (30 s): each
/// repair is a run of its own, with its own deadline (xenstore included).
#[test]
fn a_repair_after_a_long_quiet_spell_has_a_deadline_of_its_own() {
    let b = bridged("wquiet");
    let watcher = b.watch(&[]);
    std::thread::sleep(Duration::from_secs(32));
    recreate_bridge(&b.host, "xenbr0");
    within(
        REPAIR_BOUND,
        "bridge recreated after 32 s",
        &watcher,
        || b.host.master_of("vif3.0").as_deref() == Some("xenbr0"),
    );
}

/// Without a watcher, `vifkit reattach BRIDGE` finds a tap by the bridge its `qemu-ifup` was
/// given (recorded at its plug), though no vifkit.conf rule names it.
#[test]
fn reattach_finds_a_tap_by_the_bridge_qemu_ifup_was_given() {
    let b = bridged("wrat");
    recreate_bridge(&b.host, "xenbr0");
    let out = b.vifkit(&["reattach", "xenbr0"]);
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(text, "vif3.0: reattached\ntap0: reattached\n");
    assert_eq!(b.host.master_of("tap0").as_deref(), Some("xenbr0"));
    assert_eq!(b.host.master_of("tap1"), None, "unplugged by qemu-ifdown");
}
