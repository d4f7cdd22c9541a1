//! Antispoofing on a routed port (vif-route, seed 2.1), proven with real frames: forged
//! sources do not reach the router and forged ARP or router advertisements do not reach the
//! host, while the same frames do with antispoofing off. Needs root.

mod antispoof;
mod common;
mod routed;

use antispoof::*;
use common::frames::*;
use common::*;
use routed::{Seed21, sysctl};

/// Seed 2.1 (the guest behind xen1.0, the router behind the host's eth0), plugged by
/// vif-route with the guest's addresses in `B/ip`.
fn routed(tag: &str) -> Seed21 {
    let mut rig = Seed21::new(tag);
    // Reverse-path filtering would drop a forged IPv4 source on its own.
    for key in [
        "net.ipv4.conf.all.rp_filter",
        "net.ipv4.conf.default.rp_filter",
    ] {
        sysctl(&rig.host, key, "0");
    }
    rig.vif.script = "/etc/xen/scripts/vif-route";
    let backend = rig.vif.backend();
    rig.xs.write(&format!("{backend}/script"), rig.vif.script);
    rig.xs
        .write(&format!("{backend}/ip"), "192.0.2.241 2001:db8:abba::1001");
    rig
}

fn host_neighbour(host: &Netns, ip: &str) -> bool {
    host.ip_json(&["neigh", "show", "dev", "xen1.0"])
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["dst"] == ip)
}

fn host_has_ra_route(host: &Netns) -> bool {
    let routes = host.ip(&["-6", "route", "show", "dev", "xen1.0"]);
    routes.contains("2001:db8:bad::/64") || routes.contains("proto ra")
}

#[test]
fn routed_guest_reaches_the_router_and_forges_nothing() {
    let rig = routed("asr");
    let netback = mac(NETBACK_MAC);
    let cases = udp_cases(
        false,
        netback,
        "192.0.2.241",
        "192.0.2.254",
        "2001:db8:abba::1001",
        "2001:db8:ffff::254",
    );
    let from = (&rig.guest, "eth0");
    let to = (&rig.router, "up0");
    let me = mac(GUEST_MAC);
    let ll = v6("fe80::216:3eff:fe10:1010");
    // A routed guest's only neighbour is the host: forged ARP and RA are aimed at it.
    let forged_arp = arp(
        ArpOp::Request,
        me,
        BROADCAST,
        me,
        v4("192.0.2.254"),
        [0; 6],
        v4("192.0.2.253"),
    );
    let rogue_ra = router_advertisement(me, ll, v6("2001:db8:bad::"));
    let host_reacts = |rig: &Seed21| {
        rig.host.ip(&["neigh", "flush", "dev", "xen1.0"]);
        send(&rig.guest, "eth0", &forged_arp);
        send(&rig.guest, "eth0", &rogue_ra);
        std::thread::sleep(WAIT);
        (
            host_neighbour(&rig.host, "192.0.2.254"),
            host_has_ra_route(&rig.host),
        )
    };

    assert_ok(&online(&rig.host, &rig.xs, &rig.vif, false));
    sysctl(&rig.host, "net.ipv6.conf.xen1/0.accept_ra", "2");
    let baseline = wrong(&cases, from, to, false);
    assert!(baseline.is_empty(), "without antispoofing: {baseline:#?}");
    assert_eq!(
        host_reacts(&rig),
        (true, true),
        "the host ignores forged ARP/RA even unfiltered"
    );
    // Forget what the rogue RA taught (SLAAC address, prefix and default routes).
    rig.host
        .ip(&["-6", "addr", "flush", "dev", "xen1.0", "scope", "global"]);
    rig.host
        .ip(&["-6", "route", "flush", "dev", "xen1.0", "proto", "ra"]);
    let _ = run(rig.host.exec().args([
        "ip",
        "-6",
        "route",
        "del",
        "2001:db8:bad::/64",
        "dev",
        "xen1.0",
    ]));
    assert!(!host_has_ra_route(&rig.host));

    let out = online(&rig.host, &rig.xs, &rig.vif, true);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("filter xen1.0 (netdev vifkit-antispoof-253)"),
        "{}",
        stderr(&out)
    );
    let filtered = wrong(&cases, from, to, true);
    assert!(filtered.is_empty(), "with antispoofing: {filtered:#?}");
    assert_eq!(
        host_reacts(&rig),
        (false, false),
        "forged ARP / rogue RA reached the host"
    );
    assert!(
        rig.guest.ping("192.0.2.254"),
        "the guest no longer reaches the router"
    );
}
