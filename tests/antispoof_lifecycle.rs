//! What antispoofing leaves in nf_tables across a port's life: no chain and no rule after
//! offline (the shared tables may stay, empty), also for 200 ports, a `B/ip` changed meanwhile or a vif name reused without an offline; flows
//! of a reused address purged on plug; qemu taps alike. Needs root.

mod common;

use common::*;
use serde_json::Value;

/// `nft -j list ruleset` in `ns`: every table and every chain, as "family table [chain]",
/// and the number of rules.
fn ruleset(ns: &Netns) -> (Vec<String>, Vec<String>, usize) {
    let out = must(ns.exec().args(["nft", "-j", "list", "ruleset"]));
    let json: Value = serde_json::from_str(&out).unwrap();
    let mut tables = vec![];
    let mut chains = vec![];
    let mut rules = 0;
    let name = |o: &Value, key: &str| o[key].as_str().unwrap().to_owned();
    for object in json["nftables"].as_array().unwrap() {
        if let Some(t) = object.get("table") {
            tables.push(format!("{} {}", name(t, "family"), name(t, "name")));
        }
        if let Some(c) = object.get("chain") {
            chains.push(format!(
                "{} {} {}",
                name(c, "family"),
                name(c, "table"),
                name(c, "name")
            ));
        }
        rules += usize::from(object.get("rule").is_some());
    }
    (tables, chains, rules)
}

/// Asserts that no port has a chain or a rule left.
fn assert_nothing_left(ns: &Netns) {
    let (tables, chains, rules) = ruleset(ns);
    assert_eq!((&chains, rules), (&vec![], 0), "left in {tables:?}");
}

/// The rules of one chain as nft prints them.
fn chain_text(ns: &Netns, family: &str, table: &str, chain: &str) -> String {
    must(
        ns.exec()
            .args(["nft", "list", "chain", family, table, chain]),
    )
}

struct Host {
    ns: Netns,
    xs: Xenstore,
}

fn host(tag: &str) -> Host {
    let ns = Netns::new(tag);
    ns.bridge("xenbr0", 1500);
    Host {
        ns,
        xs: Xenstore::start(),
    }
}

impl Host {
    /// A netback vif whose far end stays in this namespace (`g<domid>.<devid>`).
    fn vif(&self, domid: u32, ip: &str) -> Vif {
        let vif = Vif::new(domid, 0);
        self.ns.ip(&[
            "link",
            "add",
            &vif.kernel_name(),
            "type",
            "veth",
            "peer",
            "name",
            &format!("g{domid}.0"),
        ]);
        self.xs.write_vif(&vif);
        self.set_ip(&vif, ip);
        vif
    }

    fn set_ip(&self, vif: &Vif, ip: &str) {
        self.xs.write(&format!("{}/ip", vif.backend()), ip);
    }

    fn run(&self, vif: &Vif, command: &str) {
        assert_ok(&hotplug(
            &self.ns,
            &self.xs,
            vif,
            &[command, "type_if=vif"],
            &[],
        ));
    }
}

#[test]
fn offline_removes_the_port_even_after_b_ip_changed() {
    let host = host("alc");
    let vif = host.vif(3, "192.0.2.10 2001:db8::10");
    host.run(&vif, "online");
    let (tables, chains, _) = ruleset(&host.ns);
    assert_eq!(tables, ["netdev vifkit-antispoof-21"]);
    assert_eq!(chains, ["netdev vifkit-antispoof-21 vif3.0"]);
    let rules = chain_text(&host.ns, "netdev", "vifkit-antispoof-21", "vif3.0");
    assert!(rules.contains("!= 0xc000020a drop"), "{rules}");
    // An admin's `nft list ruleset > file` must load back.
    must(
        host.ns
            .exec()
            .args(["sh", "-c", "nft list ruleset | nft -c -f -"]),
    );

    host.set_ip(&vif, "198.51.100.7");
    host.run(&vif, "offline");
    assert_nothing_left(&host.ns);
    host.run(&vif, "offline");
    assert_nothing_left(&host.ns);
}

#[test]
fn a_reused_vif_name_starts_clean() {
    let host = host("alr");
    let vif = host.vif(5, "192.0.2.50");
    // A routed guest had vif5.0 with another address, and its domain died without an offline.
    let mut routed = Vif::new(5, 0);
    routed.script = "/etc/xen/scripts/vif-route";
    host.ns
        .ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "up0"]);
    host.ns.ip(&["link", "set", "eth0", "up"]);
    host.ns
        .ip(&["addr", "add", "198.51.100.1/24", "dev", "eth0"]);
    let env = [("netdev", "eth0")];
    assert_ok(&hotplug(
        &host.ns,
        &host.xs,
        &routed,
        &["online", "type_if=vif"],
        &env,
    ));
    assert_eq!(ruleset(&host.ns).0, ["netdev vifkit-antispoof-19"]);
    host.ns.ip(&["link", "del", "vif5.0"]);

    host.ns.ip(&[
        "link", "add", "vif5.0", "type", "veth", "peer", "name", "g5.0",
    ]);
    host.set_ip(&vif, "192.0.2.51");
    host.run(&vif, "online");
    let (tables, chains, _) = ruleset(&host.ns);
    assert_eq!(tables, ["netdev vifkit-antispoof-19"]);
    assert_eq!(chains, ["netdev vifkit-antispoof-19 vif5.0"]);
    let rules = chain_text(&host.ns, "netdev", "vifkit-antispoof-19", "vif5.0");
    assert!(
        rules.contains("!= 0xc0000233 drop") && !rules.contains("0xc0000232"),
        "{rules}"
    );
}

#[test]
fn two_hundred_ports_plugged_and_unplugged_leave_nothing() {
    let host = host("al200");
    let vifs: Vec<Vif> = (1..=200)
        .map(|d| host.vif(d, &format!("10.{}.{}.1 2001:db8::{d:x}", d / 256, d % 256)))
        .collect();
    let (host, vifs) = (&host, &vifs);
    for command in ["online", "offline"] {
        std::thread::scope(|scope| {
            for worker in vifs.chunks(25) {
                scope.spawn(move || worker.iter().for_each(|vif| host.run(vif, command)));
            }
        });
        match command {
            "online" => {
                let (tables, chains, _) = ruleset(&host.ns);
                assert_eq!((tables.len(), chains.len()), (32, 200));
            }
            _ => assert_nothing_left(&host.ns),
        }
    }
}

#[test]
fn plug_purges_the_flows_of_the_guest_addresses() {
    let host = host("alct");
    let vif = host.vif(7, "192.0.2.70 2001:db8::70");
    let conntrack = |args: &[&str]| must(host.ns.exec().arg("conntrack").args(args));
    for (src, dst) in [
        ("192.0.2.70", "198.51.100.9"),
        ("198.51.100.9", "192.0.2.70"),
        ("192.0.2.71", "198.51.100.9"),
        ("2001:db8::70", "2001:db8::99"),
    ] {
        conntrack(&[
            "-I",
            "-s",
            src,
            "-d",
            dst,
            "-p",
            "udp",
            "--sport",
            "1000",
            "--dport",
            "53",
            "--timeout",
            "100",
        ]);
    }
    host.run(&vif, "online");
    let left = must(host.ns.exec().args(["conntrack", "-L", "-f", "ipv4"]))
        + &must(host.ns.exec().args(["conntrack", "-L", "-f", "ipv6"]));
    assert_eq!(left.lines().count(), 1, "{left}");
    assert!(left.contains("src=192.0.2.71"), "{left}");
}

#[test]
fn qemu_taps_are_filtered_from_the_config_file() {
    let host = host("alq");
    host.ns.ip(&["tuntap", "add", "tap0", "mode", "tap"]);
    let dir = scratch("alq");
    let config = dir.join("vifkit.conf");
    std::fs::write(
        &config,
        "[port tap*]\nbridge = xenbr0\nip = 192.0.2.30\nmac = 52:54:00:12:34:56\n",
    )
    .unwrap();
    let qemu = |binary: &str| {
        run(host
            .ns
            .exec()
            .arg("env")
            .arg(format!("VIFKIT_CONFIG={}", config.display()))
            .arg(binary)
            .arg("tap0"))
    };
    let up = qemu(binary("qemu-ifup").to_str().unwrap());
    assert_ok(&up);
    assert!(stderr(&up).contains("filter tap0 (netdev vifkit-antispoof-22): mac 52:54:00:12:34:56, ipv4 192.0.2.30, ipv6 fe80::5054:ff:fe12:3456"), "{}", stderr(&up));
    assert_eq!(ruleset(&host.ns).0, ["netdev vifkit-antispoof-22"]);
    assert_ok(&qemu(binary("qemu-ifdown").to_str().unwrap()));
    assert_nothing_left(&host.ns);
}
