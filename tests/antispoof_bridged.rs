//! Antispoofing on a bridged port, proven with real frames: the guest sends legitimate and
//! forged frames and a capture at its peer shows which got through. The rig first runs with
//! antispoofing off, where every frame must arrive (so a forged frame lost for another
//! reason cannot pass for a filtered one), then with it on. Needs root.

mod antispoof;
mod common;

use std::net::Ipv4Addr;

use antispoof::*;
use common::frames::*;
use common::*;

#[test]
fn bridged_guest_reaches_its_peer_and_forges_nothing() {
    let rig = FrameRig::new("asb");
    let peer_mac = mac("00:16:3e:20:20:20");
    let me = mac(GUEST_MAC);
    let mut cases = udp_cases(
        true,
        peer_mac,
        "192.0.2.241",
        "192.0.2.242",
        "2001:db8:abba::1001",
        "2001:db8:abba::1002",
    );
    let ll = v6("fe80::216:3eff:fe10:1010");
    let all_nodes = mac("33:33:00:00:00:01");
    cases.extend([
        case(
            "ARP reply for the guest's address",
            true,
            arp(
                ArpOp::Reply,
                me,
                peer_mac,
                me,
                v4("192.0.2.241"),
                peer_mac,
                v4("192.0.2.242"),
            ),
        ),
        case(
            "ARP reply claiming another address",
            false,
            arp(
                ArpOp::Reply,
                me,
                peer_mac,
                me,
                v4("192.0.2.1"),
                peer_mac,
                v4("192.0.2.242"),
            ),
        ),
        case(
            "ARP reply with a forged sender MAC",
            false,
            arp(
                ArpOp::Reply,
                me,
                peer_mac,
                mac(FORGED_MAC),
                v4("192.0.2.241"),
                peer_mac,
                v4("192.0.2.242"),
            ),
        ),
        case(
            "neighbour advertisement for the guest's address",
            true,
            neighbour_advertisement(
                me,
                all_nodes,
                ll,
                v6("ff02::1"),
                v6("2001:db8:abba::1001"),
                true,
            ),
        ),
        case(
            "neighbour advertisement for another address",
            false,
            neighbour_advertisement(
                me,
                all_nodes,
                ll,
                v6("ff02::1"),
                v6("2001:db8:abba::1002"),
                true,
            ),
        ),
        case(
            "router advertisement",
            false,
            router_advertisement(me, ll, v6("2001:db8:bad::")),
        ),
        case(
            "DHCP discover from 0.0.0.0",
            true,
            ipv4_udp(
                me,
                BROADCAST,
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::BROADCAST,
                68,
                67,
                &marker(),
            ),
        ),
        case(
            "DHCP server offer",
            false,
            dhcp_offer(me, v4("192.0.2.241"), v4("192.0.2.99")),
        ),
    ]);
    let from = (&rig.guest, "eth0");
    let to = (&rig.peer, "eth0");
    assert_ok(&online(&rig.host, &rig.xs, &rig.vif, false));
    let baseline = wrong(&cases, from, to, false);
    assert!(baseline.is_empty(), "without antispoofing: {baseline:#?}");

    let out = online(&rig.host, &rig.xs, &rig.vif, true);
    assert_ok(&out);
    assert!(stderr(&out).contains("filter vif3.0 (netdev vifkit-antispoof-085): mac 00:16:3e:10:10:10, ipv4 192.0.2.241, ipv6 fe80::216:3eff:fe10:1010 2001:db8:abba::1001"), "{}", stderr(&out));
    let filtered = wrong(&cases, from, to, true);
    assert!(filtered.is_empty(), "with antispoofing: {filtered:#?}");
    assert!(
        rig.guest.ping("192.0.2.242"),
        "the guest no longer reaches its peer"
    );
}
