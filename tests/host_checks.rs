//! What stops a plugged guest's traffic outside the port itself: with `br_netfilter`'s
//! `bridge-nf-call-iptables = 1`, bridged frames go through the IP forward hook, where a
//! chain with `policy drop` (Docker's, firewalld's) drops them. The probe reads the chains
//! over nfnetlink in a throwaway namespace; `vifkit check` reports it for a bridged vif whose
//! guest can then no longer reach its neighbour. Needs root.

mod common;

use std::process::Output;

use common::*;
use vifkit::sys::forward::bridged_traffic_dropped;
use vifkit::sys::nft::{ForwardChain, IpFamily, forward_chains};

/// Runs `work` on a thread of its own that entered `ns`'s network namespace (the test's
/// other threads stay where they are).
fn inside<T: Send>(ns: &Netns, work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = std::fs::File::open(format!("/run/netns/{}", ns.name)).unwrap();
                nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                work()
            })
            .join()
            .unwrap()
    })
}

fn nft(ns: &Netns, args: &[&str]) {
    must(ns.exec().arg("nft").args(args));
}

/// Docker's (iptables-nft) forward chain: `ip filter FORWARD`, policy drop.
fn docker_forward(ns: &Netns) {
    nft(ns, &["add", "table", "ip", "filter"]);
    nft(
        ns,
        &[
            "add",
            "chain",
            "ip",
            "filter",
            "FORWARD",
            "{ type filter hook forward priority 0; policy drop; }",
        ],
    );
}

/// Whether this kernel has `br_netfilter` loaded (its sysctls exist in `ns`).
fn br_netfilter(ns: &Netns) -> bool {
    run(ns
        .exec()
        .args(["test", "-e", "/proc/sys/net/bridge/bridge-nf-call-iptables"]))
    .status
    .success()
}

fn bridge_nf(ns: &Netns, iptables: &str, ip6tables: &str) {
    for (key, value) in [
        ("net.bridge.bridge-nf-call-iptables", iptables),
        ("net.bridge.bridge-nf-call-ip6tables", ip6tables),
    ] {
        must(ns.exec().args(["sysctl", "-qw", &format!("{key}={value}")]));
    }
}

const DOCKER_DROPS: &str = "bridge-nf-call-iptables is 1 and nft chain ip filter FORWARD drops by default: bridged guests' traffic goes through it (accept it there, or set net.bridge.bridge-nf-call-iptables = 0)";

#[test]
fn forward_base_chains_are_dumped_with_their_policy() {
    let ns = Netns::new("hcd");
    assert_eq!(inside(&ns, forward_chains).unwrap(), vec![]);
    docker_forward(&ns);
    nft(&ns, &["add", "chain", "ip", "filter", "DOCKER-USER"]);
    nft(
        &ns,
        &[
            "add",
            "chain",
            "ip",
            "filter",
            "INPUT",
            "{ type filter hook input priority 0; policy drop; }",
        ],
    );
    nft(&ns, &["add", "table", "inet", "firewalld"]);
    nft(
        &ns,
        &[
            "add",
            "chain",
            "inet",
            "firewalld",
            "filter_FORWARD",
            "{ type filter hook forward priority 10; policy accept; }",
        ],
    );
    // ip6tables-nft's: each IP family is listed by a dump of its own.
    nft(&ns, &["add", "table", "ip6", "filter"]);
    nft(
        &ns,
        &[
            "add",
            "chain",
            "ip6",
            "filter",
            "FORWARD",
            "{ type filter hook forward priority 0; policy drop; }",
        ],
    );
    nft(&ns, &["add", "table", "bridge", "filter"]);
    nft(
        &ns,
        &[
            "add",
            "chain",
            "bridge",
            "filter",
            "forward",
            "{ type filter hook forward priority 0; policy drop; }",
        ],
    );
    let mut chains = inside(&ns, forward_chains).unwrap();
    chains.sort_by(|a, b| a.table.cmp(&b.table));
    assert_eq!(
        chains,
        [
            ForwardChain {
                family: IpFamily::Ip,
                table: "filter".into(),
                name: "FORWARD".into(),
                drops: true,
            },
            ForwardChain {
                family: IpFamily::Ip6,
                table: "filter".into(),
                name: "FORWARD".into(),
                drops: true,
            },
            ForwardChain {
                family: IpFamily::Inet,
                table: "firewalld".into(),
                name: "filter_FORWARD".into(),
                drops: false,
            },
        ]
    );
}

#[test]
fn the_probe_names_the_sysctl_table_and_chain() {
    let ns = Netns::new("hcp");
    assert_eq!(inside(&ns, bridged_traffic_dropped).unwrap(), None);
    docker_forward(&ns);
    if !br_netfilter(&ns) {
        // Without br_netfilter nothing bridged reaches the IP hooks.
        assert_eq!(inside(&ns, bridged_traffic_dropped).unwrap(), None);
        eprintln!("skipped the rest: br_netfilter is not loaded");
        return;
    }
    bridge_nf(&ns, "1", "1");
    let found = inside(&ns, bridged_traffic_dropped).unwrap();
    assert_eq!(found.as_deref(), Some(DOCKER_DROPS));
    bridge_nf(&ns, "0", "1");
    assert_eq!(inside(&ns, bridged_traffic_dropped).unwrap(), None);
}

/// dom0 with xenbr0, vif3.0 (guest 192.0.2.10) and a neighbour 192.0.2.20 on the bridge.
struct Bridged {
    host: Netns,
    guest: Netns,
    _peer: Netns,
    xs: Xenstore,
}

fn bridged(tag: &str) -> Bridged {
    let host = Netns::new(&format!("{tag}h"));
    let guest = Netns::new(&format!("{tag}g"));
    let peer = Netns::new(&format!("{tag}p"));
    host.bridge("xenbr0", 1500);
    host.veth("nb0", "eth0", &peer);
    host.ip(&["link", "set", "nb0", "master", "xenbr0", "up"]);
    peer.ip(&["addr", "add", "192.0.2.20/24", "dev", "eth0"]);
    let vif = Vif::new(3, 0);
    host.netback_vif(&vif, &guest);
    guest.ip(&["addr", "add", "192.0.2.10/24", "dev", "eth0"]);
    let xs = Xenstore::start();
    xs.write_vif(&vif);
    xs.write(&format!("{}/ip", vif.backend()), "192.0.2.10");
    assert_ok(&hotplug(&host, &xs, &vif, &["online", "type_if=vif"], &[]));
    Bridged {
        host,
        guest,
        _peer: peer,
        xs,
    }
}

impl Bridged {
    fn check(&self) -> Output {
        let mut cmd = self.host.exec();
        cmd.arg("env")
            .arg(format!("XENSTORED_PATH={}", self.xs.socket.display()))
            .arg(binary("vifkit"))
            .args(["check", "vif3.0"]);
        run(&mut cmd)
    }

    fn pings(&self) -> bool {
        (0..3).any(|_| self.guest.ping("192.0.2.20"))
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn check_reports_a_forward_chain_that_drops_the_bridged_guests_traffic() {
    let b = bridged("hcc");
    let clean = b.check();
    assert_ok(&clean);
    assert_eq!(stdout(&clean), "vif3.0: in place, as online leaves it\n");
    assert!(
        b.pings(),
        "the guest cannot reach its neighbour to begin with"
    );

    docker_forward(&b.host);
    if !br_netfilter(&b.host) {
        assert_ok(&b.check());
        eprintln!("skipped the rest: br_netfilter is not loaded");
        return;
    }
    bridge_nf(&b.host, "1", "1");
    assert!(
        !b.pings(),
        "the forward chain did not drop the bridged traffic"
    );
    let drifted = b.check();
    assert_eq!(drifted.status.code(), Some(1));
    assert_eq!(stdout(&drifted), format!("drift: {DOCKER_DROPS}\n"));
    // The plug says it too, as a warning: the guest is plugged all the same.
    let again = hotplug(
        &b.host,
        &b.xs,
        &Vif::new(3, 0),
        &["online", "type_if=vif"],
        &[],
    );
    assert_ok(&again);
    assert!(stderr(&again).contains(DOCKER_DROPS), "{}", stderr(&again));

    // What the sentence suggests, done: the guest talks again and check is satisfied.
    bridge_nf(&b.host, "0", "0");
    assert!(
        b.pings(),
        "with bridge-nf-call-iptables = 0 the guest still cannot talk"
    );
    assert_ok(&b.check());
}
