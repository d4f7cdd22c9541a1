//! `vif-route` in seed scenario 2.1's topology: a router namespace behind the host's `eth0`,
//! a guest behind `xen1.0`, IPv4 and IPv6, proxy ARP/NDP on the uplink. Needs root.

mod common;
mod routed;

use common::*;
use routed::{no_dad, seed_2_1_uplink, sysctl};

struct Routed {
    router: Netns,
    host: Netns,
    guest: Netns,
    xs: Xenstore,
    vif: Vif,
}

/// Seed 2.1: router 192.0.2.254 / fe80::201:1ff:fe01:254 (and 2001:db8:ffff::254), host
/// uplink eth0 192.0.2.253/28 and 2001:db8:abba::1/64, guest 192.0.2.241 and
/// 2001:db8:abba::1001 with MAC 00:16:3e:10:10:10 behind vif1.0 (renamed xen1.0).
fn seed_2_1(tag: &str, ip: &str) -> Routed {
    let router = Netns::new(&format!("{tag}r"));
    let host = Netns::new(&format!("{tag}h"));
    let guest = Netns::new(&format!("{tag}g"));
    for ns in [&router, &host, &guest] {
        no_dad(ns);
    }
    sysctl(&host, "net.ipv4.conf.all.forwarding", "1");
    sysctl(&host, "net.ipv6.conf.all.forwarding", "1");
    seed_2_1_uplink(&host, &router);
    let mut vif = Vif::new(1, 0);
    vif.script = "/etc/xen/scripts/vif-route";
    vif.bridge = None;
    host.netback_vif(&vif, &guest);
    guest.ip(&["addr", "add", "192.0.2.241/28", "dev", "eth0"]);
    guest.ip(&[
        "addr",
        "add",
        "2001:db8:abba::1001/64",
        "dev",
        "eth0",
        "nodad",
    ]);
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
    guest.ip(&[
        "-6",
        "route",
        "add",
        "default",
        "via",
        "fe80::fcff:ffff:feff:ffff",
        "dev",
        "eth0",
    ]);
    let xs = Xenstore::start();
    xs.write_vif(&vif);
    xs.write(&format!("{}/ip", vif.backend()), ip);
    xs.write(&format!("{}/vifname", vif.backend()), "xen1.0");
    Routed {
        router,
        host,
        guest,
        xs,
        vif,
    }
}

impl Routed {
    fn run(&self, args: &[&str]) -> std::process::Output {
        hotplug(&self.host, &self.xs, &self.vif, args, &[])
    }

    fn routes(&self, family: &str) -> Vec<String> {
        let routes = self
            .host
            .ip_json(&[family, "route", "show", "dev", "xen1.0"]);
        routes
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["dst"].as_str().unwrap().to_owned())
            .collect()
    }

    fn proxies(&self) -> String {
        self.host.ip(&["neigh", "show", "proxy"]) + &self.host.ip(&["-6", "neigh", "show", "proxy"])
    }
}

fn sysctl_value(ns: &Netns, key: &str) -> String {
    must(ns.exec().args(["sysctl", "-n", key]))
        .trim()
        .to_owned()
}

/// A fresh path may need a moment for neighbour discovery: a few tries, bounded.
fn pings(from: &Netns, to: &str) -> bool {
    (0..3).any(|_| from.ping(to))
}

#[test]
fn seed_2_1_both_directions_ipv4_and_ipv6() {
    let r = seed_2_1("rt", "192.0.2.241 2001:db8:abba::1001");
    let out = r.run(&["online", "type_if=vif"]);
    assert_ok(&out);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert_eq!(
        r.xs.read(&format!("{}/hotplug-status", r.vif.backend()))
            .as_deref(),
        Some("connected")
    );
    assert_eq!(r.host.addresses("xen1.0")[0], "192.0.2.253/32");
    assert!(
        r.routes("-4").contains(&"192.0.2.241".to_string()),
        "{:?}",
        r.routes("-4")
    );
    assert!(
        r.routes("-6").contains(&"2001:db8:abba::1001".to_string()),
        "{:?}",
        r.routes("-6")
    );
    assert!(pings(&r.guest, "192.0.2.254"), "guest -> router IPv4");
    assert!(pings(&r.router, "192.0.2.241"), "router -> guest IPv4");
    assert!(
        pings(&r.guest, "2001:db8:ffff::254"),
        "guest -> router IPv6"
    );
    assert!(
        pings(&r.router, "2001:db8:abba::1001"),
        "router -> guest IPv6"
    );

    // online twice is a no-op that still says connected.
    r.xs.write(&format!("{}/hotplug-status", r.vif.backend()), "");
    assert_ok(&r.run(&["online", "type_if=vif"]));
    assert_eq!(
        r.xs.read(&format!("{}/hotplug-status", r.vif.backend()))
            .as_deref(),
        Some("connected")
    );
    assert!(pings(&r.router, "2001:db8:abba::1001"));

    for _ in 0..2 {
        assert_ok(&r.run(&["offline", "type_if=vif"]));
        assert!(r.routes("-4").is_empty() && r.routes("-6").is_empty());
        assert_eq!(r.proxies(), "", "proxy entries left behind");
    }
    assert!(!r.router.ping("192.0.2.241"));
}

#[test]
fn offline_needs_no_ipv4_on_the_uplink_and_tolerates_a_vanished_vif() {
    let r = seed_2_1("rt6", "2001:db8:abba::1001");
    assert_ok(&r.run(&["online", "type_if=vif"]));
    assert!(pings(&r.router, "2001:db8:abba::1001"));
    r.host.ip(&[
        "addr",
        "flush",
        "dev",
        "eth0",
        "scope",
        "global",
        "to",
        "0.0.0.0/0",
    ]);
    r.host.ip(&["link", "del", "xen1.0"]);
    assert_ok(&r.run(&["offline", "type_if=vif"]));
    assert_eq!(r.proxies(), "");
}

#[test]
fn ipv4_guest_without_an_uplink_address_fails_cleanly() {
    let r = seed_2_1("rtno", "192.0.2.241");
    r.host.ip(&["-4", "addr", "flush", "dev", "eth0"]);
    let out = r.run(&["online", "type_if=vif"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        r.xs.read(&format!("{}/hotplug-error", r.vif.backend()))
            .as_deref(),
        Some("uplink eth0 has no IPv4 address to serve as the guest's router")
    );
    assert!(r.host.link("vif1.0").is_some(), "nothing renamed");
}

#[test]
fn a_failed_second_online_leaves_the_first_one_in_place() {
    let r = seed_2_1("rtre", "192.0.2.241 2001:db8:abba::1001");
    assert_ok(&r.run(&["online", "type_if=vif"]));
    let before = (r.routes("-4"), r.routes("-6"), r.proxies());
    let hooks = hook_dir("rtre", "10-fail.hook", "fatal \"refused\"\n");
    let out = hotplug(
        &r.host,
        &r.xs,
        &r.vif,
        &["online", "type_if=vif"],
        &[("VIFKIT_HOOK_DIR", hooks.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        (r.routes("-4"), r.routes("-6"), r.proxies()),
        before,
        "{}",
        stderr(&out)
    );
    assert!(pings(&r.router, "192.0.2.241"));
}

/// Twenty guests behind one uplink, plugged and unplugged at once: each keeps its own routes,
/// the host's address and its proxy entries on the uplink, and offline leaves none.
#[test]
fn twenty_concurrent_plugs_route_through_one_uplink() {
    const N: u32 = 20;
    let router = Netns::new("rtcr");
    let host = Netns::new("rtch");
    let guests = Netns::new("rtcg");
    for ns in [&router, &host, &guests] {
        no_dad(ns);
    }
    sysctl(&host, "net.ipv4.conf.all.forwarding", "1");
    sysctl(&host, "net.ipv6.conf.all.forwarding", "1");
    seed_2_1_uplink(&host, &router);
    let xs = Xenstore::start();
    let v4 = |d: u32| format!("198.51.100.{d}");
    let v6 = |d: u32| format!("2001:db8:abba::{:x}", 0x1000 + d);
    let vifs: Vec<Vif> = (1..=N)
        .map(|d| {
            let mut vif = Vif::new(d, 0);
            vif.script = "/etc/xen/scripts/vif-route";
            vif.bridge = None;
            vif.mac = leak(format!("00:16:3e:00:01:{d:02x}"));
            let name = vif.kernel_name();
            host.veth(&name, &format!("g{d}"), &guests);
            host.ip(&["link", "set", &name, "address", "fe:ff:ff:ff:ff:ff"]);
            xs.write_vif(&vif);
            xs.write(
                &format!("{}/ip", vif.backend()),
                &format!("{} {}", v4(d), v6(d)),
            );
            vif
        })
        .collect();
    let plug = |command: &str| {
        at_once(&vifs, |vif| {
            hotplug(&host, &xs, vif, &[command, "type_if=vif"], &[])
        })
    };
    let dsts = |family: &str, dev: &str| -> Vec<String> {
        host.ip_json(&[family, "route", "show", "dev", dev])
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["dst"].as_str().unwrap().to_owned())
            .filter(|dst| !dst.starts_with("fe80:"))
            .collect()
    };

    let outs = plug("online");
    let mut expected_proxies = Vec::new();
    for (vif, out) in vifs.iter().zip(&outs) {
        let (name, d) = (vif.kernel_name(), vif.domid);
        assert_ok(out);
        assert!(!stderr(out).contains("warning"), "{name}: {}", stderr(out));
        assert_eq!(
            xs.read(&format!("{}/hotplug-status", vif.backend()))
                .as_deref(),
            Some("connected"),
            "{name}"
        );
        assert_eq!(host.addresses(&name)[0], "192.0.2.253/32", "{name}");
        assert_eq!(dsts("-4", &name), [v4(d)], "{name}");
        assert_eq!(dsts("-6", &name), [v6(d)], "{name}");
        assert_eq!(
            routed::proc_sys(&host, &format!("net/ipv4/conf/{name}/proxy_arp")),
            "1",
            "{name}"
        );
        expected_proxies.push(format!("{} eth0", v4(d)));
        expected_proxies.push(format!("{} eth0", v6(d)));
    }
    expected_proxies.sort();
    assert_eq!(routed::proxies(&host), expected_proxies);

    let outs = plug("offline");
    for (vif, out) in vifs.iter().zip(&outs) {
        let name = vif.kernel_name();
        assert_ok(out);
        assert!(!routed::is_up(&host, &name), "{name} still up");
        assert_eq!(dsts("-4", &name), Vec::<String>::new(), "{name}");
        assert_eq!(dsts("-6", &name), Vec::<String>::new(), "{name}");
    }
    assert_eq!(routed::proxies(&host), Vec::<String>::new());
}

/// The planner sees what the first online did, so the second has nothing to do.
#[test]
fn online_twice_plans_nothing_the_second_time() {
    let r = seed_2_1("rt2p", "192.0.2.241 2001:db8:abba::1001");
    assert_ok(&r.run(&["online", "type_if=vif"]));
    let second = &["online", "type_if=vif"];
    assert_eq!(
        dry_run_steps(&r.host, &r.xs, &r.vif, second, &[]),
        Vec::<String>::new()
    );
    assert_ok(&r.run(second));
}

/// No netdev and no default route: upstream's eth0, with a warning, and the router reaches
/// the guest through eth0's proxy ARP.
#[test]
fn no_default_route_falls_back_to_eth0() {
    let r = seed_2_1("rteth", "192.0.2.241");
    r.host.ip(&["route", "del", "default"]);
    r.host.ip(&["-6", "route", "del", "default"]);
    let out = r.run(&["online", "type_if=vif"]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("netdev is not set and there is no default route: the uplink is eth0, as upstream falls back to (set netdev= to choose)"),
        "{}",
        stderr(&out)
    );
    assert!(
        r.proxies().contains("192.0.2.241 dev eth0"),
        "{}",
        r.proxies()
    );
    assert!(
        pings(&r.router, "192.0.2.241"),
        "router -> guest through eth0"
    );
}

/// IPv4's default route leaves by eth0, IPv6's by eth1: each family's proxy entry (and
/// proxy_ndp) goes on its own uplink, and a router behind eth1 reaches the guest over IPv6.
#[test]
fn ipv6_leaves_by_its_own_default_route() {
    let r = seed_2_1("rt6up", "192.0.2.241 2001:db8:abba::1001");
    let router6 = Netns::new("rt6upr6");
    no_dad(&router6);
    r.host.veth("eth1", "up1", &router6);
    router6.ip(&["link", "set", "up1", "down"]);
    router6.ip(&["link", "set", "up1", "address", "00:01:01:01:06:01", "up"]);
    router6.ip(&["addr", "add", "2001:db8:cafe::1/128", "dev", "lo"]);
    router6.ip(&["-6", "route", "add", "2001:db8:abba::/64", "dev", "up1"]);
    r.host.ip(&["link", "set", "eth1", "up"]);
    r.host.ip(&["-6", "route", "del", "default"]);
    r.host.ip(&[
        "-6",
        "route",
        "add",
        "default",
        "via",
        "fe80::201:1ff:fe01:601",
        "dev",
        "eth1",
    ]);
    assert_ok(&r.run(&["online", "type_if=vif"]));
    let proxies = r.proxies();
    assert!(proxies.contains("192.0.2.241 dev eth0"), "{proxies}");
    assert!(
        proxies.contains("2001:db8:abba::1001 dev eth1"),
        "{proxies}"
    );
    assert!(
        !proxies.contains("2001:db8:abba::1001 dev eth0"),
        "{proxies}"
    );
    assert_eq!(sysctl_value(&r.host, "net/ipv6/conf/eth1/proxy_ndp"), "1");
    assert!(
        pings(&router6, "2001:db8:abba::1001"),
        "router behind eth1 -> guest over IPv6"
    );
    assert!(
        pings(&r.router, "192.0.2.241"),
        "router behind eth0 -> guest over IPv4"
    );
}

/// A block in ip= is one route, and every address of it is answered for on the uplink.
#[test]
fn a_block_in_ip_is_routed_whole_and_each_address_answered() {
    let r = seed_2_1("rtblk", "192.0.2.244/30");
    r.guest
        .ip(&["addr", "add", "192.0.2.245/28", "dev", "eth0"]);
    r.guest
        .ip(&["addr", "add", "192.0.2.246/28", "dev", "eth0"]);
    assert_ok(&r.run(&["online", "type_if=vif"]));
    assert_eq!(r.routes("-4"), ["192.0.2.244/30"]);
    for address in ["192.0.2.244", "192.0.2.245", "192.0.2.246", "192.0.2.247"] {
        assert!(
            r.proxies().contains(&format!("{address} dev eth0")),
            "{address}: {}",
            r.proxies()
        );
    }
    assert!(pings(&r.router, "192.0.2.245"));
    assert!(pings(&r.router, "192.0.2.246"));
    assert_ok(&r.run(&["offline", "type_if=vif"]));
    assert!(!r.proxies().contains("192.0.2.24"), "{}", r.proxies());
}

/// With no ip= upstream still puts the host address on the vif and answers ARP there.
#[test]
fn no_ip_still_gets_the_host_address_and_proxy_arp() {
    let r = seed_2_1("rtnoip", "");
    let out = r.run(&["online", "type_if=vif"]);
    assert_ok(&out);
    let addresses = r.host.ip(&["-4", "addr", "show", "dev", "xen1.0"]);
    assert!(addresses.contains("192.0.2.253/32"), "{addresses}");
    assert_eq!(sysctl_value(&r.host, "net/ipv4/conf/xen1.0/proxy_arp"), "1");
    assert!(r.routes("-4").is_empty());
}

/// `B/mtu` is the vif's MTU in routed mode too.
#[test]
fn the_vif_takes_b_mtu() {
    let r = seed_2_1("rtmtu", "192.0.2.241");
    r.xs.write(&format!("{}/mtu", r.vif.backend()), "1400");
    assert_ok(&r.run(&["online", "type_if=vif"]));
    assert_eq!(r.host.ip_json(&["link", "show", "xen1.0"])[0]["mtu"], 1400);
    assert!(pings(&r.router, "192.0.2.241"));
}

/// An IPv6 guest address on a link with IPv6 disabled: one sentence naming the link and
/// the remedy, in xenstore too, and nothing half-configured.
#[test]
fn ipv6_disabled_on_the_vif_is_one_sentence() {
    let r = seed_2_1("rtno6", "192.0.2.241 2001:db8:abba::1001");
    sysctl(&r.host, "net/ipv6/conf/vif1.0/disable_ipv6", "1");
    let out = r.run(&["online", "type_if=vif"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        r.xs.read(&format!("{}/hotplug-error", r.vif.backend()))
            .as_deref(),
        Some(
            "IPv6 is disabled on vif1.0 (net/ipv6/conf/vif1.0/disable_ipv6 = 1): remove the IPv6 addresses from ip= or enable IPv6 for new links (sysctl -w net.ipv6.conf.default.disable_ipv6=0)"
        )
    );
    assert!(r.host.link("vif1.0").is_some(), "nothing renamed");
    assert!(r.proxies().trim().is_empty(), "{}", r.proxies());
}
