//! Self-test of `common::frames`: every builder's frame crosses a veth pair and a Linux
//! bridge unchanged, and the peer's kernel acts on them (checksums, ARP, RA, NA). Needs root.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr, UdpSocket};
use std::time::Duration;

use common::frames::*;
use common::*;

const GUEST_MAC: &str = "02:00:00:00:00:01";
const PEER_MAC: &str = "02:00:00:00:00:02";
const SPOOF_MAC: &str = "02:00:00:00:00:99";
const WAIT: Duration = Duration::from_secs(1);

fn sysctl(ns: &Netns, key: &str, value: &str) {
    must(ns.exec().args(["sysctl", "-qw", &format!("{key}={value}")]));
}

/// A namespace whose links skip IPv6 duplicate address detection.
fn netns(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    sysctl(&ns, "net.ipv6.conf.all.accept_dad", "0");
    sysctl(&ns, "net.ipv6.conf.default.accept_dad", "0");
    ns
}

/// A guest and a peer namespace, each with an `eth0` of a known MAC, joined by a veth pair.
fn pair(tag: &str) -> (Netns, Netns) {
    let guest = netns(&format!("{tag}g"));
    let peer = netns(&format!("{tag}p"));
    guest.veth("eth0", "eth0", &peer);
    for (ns, mac) in [(&guest, GUEST_MAC), (&peer, PEER_MAC)] {
        ns.ip(&["link", "set", "eth0", "down"]);
        ns.ip(&["link", "set", "eth0", "address", mac, "up"]);
    }
    wait_ipv6_ready(&peer, "eth0");
    (guest, peer)
}

/// Polls `check` for up to 3 s.
fn eventually(check: impl Fn() -> bool) -> bool {
    poll_for(Duration::from_secs(3), check)
}

fn neighbour(ns: &Netns, ip: &str) -> Option<String> {
    let v = ns.ip_json(&["neigh", "show", "dev", "eth0"]);
    v.as_array()?
        .iter()
        .find(|n| n["dst"] == ip)?
        .get("lladdr")?
        .as_str()
        .map(str::to_owned)
}

fn every_builder() -> Vec<(&'static str, Vec<u8>)> {
    let (g, p) = (mac(GUEST_MAC), mac(PEER_MAC));
    let payload = [&b"frames self-test "[..], &marker()].concat();
    let v4 = |x| Ipv4Addr::new(10, 9, 0, x);
    let v6 = |x| Ipv6Addr::new(0xfd00, 9, 0, 0, 0, 0, 0, x);
    let ll = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    let udp4 = ipv4_udp(g, p, v4(1), v4(2), 4444, 5555, &payload);
    vec![
        ("ipv4_udp", udp4.clone()),
        (
            "ipv6_udp",
            ipv6_udp(g, p, v6(1), v6(2), 4444, 5555, &payload),
        ),
        (
            "arp request",
            arp(ArpOp::Request, g, BROADCAST, g, v4(1), [0; 6], v4(2)),
        ),
        ("arp reply", arp(ArpOp::Reply, g, p, g, v4(1), p, v4(2))),
        ("router_advertisement", router_advertisement(g, ll, v6(0))),
        (
            "neighbour_advertisement",
            neighbour_advertisement(g, p, ll, v6(2), v6(1), true),
        ),
        ("dhcp_offer", dhcp_offer(g, v4(1), v4(2))),
        ("vlan_tagged", vlan_tagged(&udp4, 42)),
    ]
}

#[test]
fn helpers() {
    assert_eq!(
        mac("00:16:3e:0a:ff:01"),
        [0x00, 0x16, 0x3e, 0x0a, 0xff, 0x01]
    );
    assert_ne!(marker(), marker());
    assert!(contains(b"abcdef", b"cde") && !contains(b"abcdef", b"ce"));
    // RFC 1071's example sums to 0xddf2.
    assert_eq!(
        checksum(&[&[0x00, 0x01, 0xf2, 0x03], &[0xf4, 0xf5, 0xf6, 0xf7]]),
        !0xddf2
    );
    let (g, p) = (mac(GUEST_MAC), mac(PEER_MAC));
    let f = ipv4_udp(g, p, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, 1, 2, b"xyz");
    assert_eq!(checksum(&[&f[14..34]]), 0, "IPv4 header checksum");
    assert_eq!(signature(&f), b"xyz");
    assert_eq!(signature(&vlan_tagged(&f, 7)), b"xyz");
    let empty = ipv4_udp(g, p, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, 1, 2, b"");
    assert_eq!(signature(&empty), &empty[..]);
    assert_eq!(&vlan_tagged(&f, 7)[12..16], &[0x81, 0x00, 0x00, 0x07]);
    let offer = dhcp_offer(g, Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 9));
    assert_eq!(&offer[..6], &BROADCAST);
    assert_eq!(&offer[14 + 16..14 + 20], &[255; 4]);
    assert_eq!(&offer[14 + 20..14 + 24], &[0, 67, 0, 68]);
}

/// (1) Each builder's frame crosses a veth pair byte for byte (VLAN tag included).
#[test]
fn veth_pair_delivers_every_builder_unchanged() {
    let (guest, peer) = pair("fv");
    for (name, frame) in every_builder() {
        let got = arrival((&guest, "eth0"), (&peer, "eth0"), &frame, WAIT, |f| {
            f == frame
        });
        assert!(got.is_some(), "{name} did not arrive unchanged");
    }
    // The sender's own capture does not see its sends.
    let own = Capture::start(&guest, "eth0");
    let (name, frame) = &every_builder()[0];
    send(&guest, "eth0", frame);
    let seen = own.finish(Duration::from_millis(200));
    assert!(!seen.contains(frame), "{name}: outgoing frame captured");
}

/// A "host" namespace with bridge br0 and ports p0 (to the guest's eth0) and p1 (to the
/// peer's eth0).
fn bridged(tag: &str) -> (Netns, Netns, Netns) {
    let host = netns(&format!("{tag}h"));
    let guest = netns(&format!("{tag}g"));
    let peer = netns(&format!("{tag}p"));
    host.bridge("br0", 1500);
    for (port, ns, mac) in [("p0", &guest, GUEST_MAC), ("p1", &peer, PEER_MAC)] {
        host.veth(port, "eth0", ns);
        host.ip(&["link", "set", port, "master", "br0", "up"]);
        ns.ip(&["link", "set", "eth0", "down"]);
        ns.ip(&["link", "set", "eth0", "address", mac, "up"]);
    }
    (host, guest, peer)
}

/// (2) Through a Linux bridge in a third namespace: unicast, broadcast, and an ARP reply the
/// peer's kernel then believes.
#[test]
fn bridge_forwards_and_the_peer_acts_on_arp() {
    let (_host, guest, peer) = bridged("fb");
    peer.ip(&["addr", "add", "10.9.0.2/24", "dev", "eth0"]);
    sysctl(&peer, "net.ipv4.conf.eth0.arp_accept", "1");
    let (g, p) = (mac(GUEST_MAC), mac(PEER_MAC));
    let (gip, pip) = (Ipv4Addr::new(10, 9, 0, 1), Ipv4Addr::new(10, 9, 0, 2));
    let (from, to) = ((&guest, "eth0"), (&peer, "eth0"));

    let udp = ipv4_udp(g, p, gip, pip, 4444, 5555, &marker());
    let got = arrival(from, to, &udp, WAIT, |f| contains(f, signature(&udp)));
    assert_eq!(got.as_ref(), Some(&udp), "bridged unicast");
    assert!(
        arrives(from, to, &dhcp_offer(g, gip, pip), WAIT),
        "DHCP offer"
    );

    let spoofed_ip = Ipv4Addr::new(10, 9, 0, 99);
    let reply = arp(ArpOp::Reply, g, p, mac(SPOOF_MAC), spoofed_ip, p, pip);
    assert!(arrives(from, to, &reply, WAIT), "ARP reply");
    assert!(
        eventually(|| neighbour(&peer, "10.9.0.99").as_deref() == Some(SPOOF_MAC)),
        "peer's neighbour table: {:?}",
        peer.ip_json(&["neigh"])
    );
    // Negative control: the bridge has learnt the guest's MAC behind p0, so a frame to it
    // entering p0 is not forwarded, and `arrives` says so.
    let back = ipv4_udp(mac(SPOOF_MAC), g, gip, pip, 4444, 5555, &marker());
    assert!(!arrives(from, to, &back, Duration::from_millis(300)));
}

/// Packet taps run before the netdev ingress and bridge netfilter hooks: a capture on the
/// filtering port sees what nftables then drops, one on the peer does not.
#[test]
fn taps_run_before_netfilter() {
    let (host, guest, peer) = bridged("ft");
    let (dropped_in, dropped_fwd) = ("02:00:00:00:00:a1", "02:00:00:00:00:a2");
    let rules = format!(
        "add table netdev t; add chain netdev t c {{ type filter hook ingress device p0 \
         priority 0; }}; add rule netdev t c ether saddr {dropped_in} drop; \
         add table bridge b; add chain bridge b f {{ type filter hook forward priority 0; }}; \
         add rule bridge b f ether saddr {dropped_fwd} drop"
    );
    must(host.exec().args(["nft", &rules]));
    let (ip, p) = (Ipv4Addr::new(10, 9, 2, 1), mac(PEER_MAC));
    let from = (&guest, "eth0");
    let short = Duration::from_millis(300);
    for src in [dropped_in, dropped_fwd] {
        let frame = ipv4_udp(mac(src), p, ip, ip, 1, 2, &marker());
        let port = Capture::start(&host, "p0");
        assert!(
            !arrives(from, (&peer, "eth0"), &frame, short),
            "{src} not dropped"
        );
        assert!(
            port.wait_for(short, |f| f == frame).is_some(),
            "{src} not seen on p0"
        );
    }
    let frame = ipv4_udp(mac(GUEST_MAC), p, ip, ip, 1, 2, &marker());
    assert!(
        arrives(from, (&peer, "eth0"), &frame, WAIT),
        "legitimate frame"
    );
}

/// A peer with addresses (no DAD) behind a veth pair.
fn addressed_pair(tag: &str) -> (Netns, Netns) {
    let (guest, peer) = pair(tag);
    peer.ip(&["addr", "add", "10.9.1.2/24", "dev", "eth0"]);
    peer.ip(&["addr", "add", "fd00:9::2/64", "dev", "eth0", "nodad"]);
    (guest, peer)
}

/// Sends `frame` and returns what a UDP socket bound to `bind` in `peer` receives.
fn udp_received(guest: &Netns, peer: &Netns, bind: &str, frame: &[u8]) -> Option<Vec<u8>> {
    let socket = in_netns(peer, || UdpSocket::bind(bind).unwrap());
    socket.set_read_timeout(Some(WAIT)).unwrap();
    send(guest, "eth0", frame);
    let mut buf = [0; 2048];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    Some(buf[..n].to_vec())
}

/// (3) The peer's stack accepts the UDP checksums (and drops a corrupted one).
#[test]
fn kernel_accepts_udp_checksums() {
    let (guest, peer) = addressed_pair("fu");
    let (g, p) = (mac(GUEST_MAC), mac(PEER_MAC));
    let (gip, pip) = (Ipv4Addr::new(10, 9, 1, 1), Ipv4Addr::new(10, 9, 1, 2));
    let (gip6, pip6) = ("fd00:9::1".parse().unwrap(), "fd00:9::2".parse().unwrap());

    let payload = marker().to_vec();
    let v4 = ipv4_udp(g, p, gip, pip, 4444, 5555, &payload);
    assert_eq!(
        udp_received(&guest, &peer, "10.9.1.2:5555", &v4),
        Some(payload.clone())
    );
    let v6 = ipv6_udp(g, p, gip6, pip6, 4444, 5556, &payload);
    assert_eq!(
        udp_received(&guest, &peer, "[fd00:9::2]:5556", &v6),
        Some(payload.clone())
    );

    let mut bad = ipv6_udp(g, p, gip6, pip6, 4444, 5557, &payload);
    bad[14 + 40 + 6] ^= 0x55;
    assert_eq!(
        udp_received(&guest, &peer, "[fd00:9::2]:5557", &bad),
        None,
        "bad checksum accepted"
    );
}

fn has_default_via(peer: &Netns, gateway: &str) -> bool {
    let routes = peer.ip_json(&["-6", "route", "show", "dev", "eth0"]);
    routes.as_array().is_some_and(|r| {
        r.iter()
            .any(|r| r["dst"] == "default" && r["gateway"] == gateway)
    })
}

fn has_address_in(peer: &Netns, prefix: &str) -> bool {
    peer.addresses("eth0").iter().any(|a| a.starts_with(prefix))
}

/// (3) A router advertisement gives the peer a default route and an autoconf address; one
/// with a corrupted checksum does not.
#[test]
fn kernel_accepts_router_advertisement() {
    let (guest, peer) = pair("fr");
    sysctl(&peer, "net.ipv6.conf.eth0.accept_ra", "2");
    let g = mac(GUEST_MAC);
    let router: Ipv6Addr = "fe80::1".parse().unwrap();

    let mut bad = router_advertisement(
        g,
        "fe80::2".parse().unwrap(),
        "2001:db8:8::".parse().unwrap(),
    );
    bad[14 + 40 + 2] ^= 0x55;
    send(&guest, "eth0", &bad);
    let ra = router_advertisement(g, router, "2001:db8:9::".parse().unwrap());
    send(&guest, "eth0", &ra);
    assert!(
        eventually(|| has_default_via(&peer, "fe80::1") && has_address_in(&peer, "2001:db8:9:")),
        "routes {:?} addresses {:?}",
        peer.ip_json(&["-6", "route"]),
        peer.addresses("eth0"),
    );
    assert!(!has_default_via(&peer, "fe80::2") && !has_address_in(&peer, "2001:db8:8:"));
}

/// The peer's neighbour cache takes an overriding neighbour advertisement.
#[test]
fn kernel_accepts_neighbour_advertisement() {
    let (guest, peer) = addressed_pair("fn");
    peer.ip(&[
        "neigh",
        "replace",
        "fd00:9::99",
        "dev",
        "eth0",
        "lladdr",
        GUEST_MAC,
        "nud",
        "stale",
    ]);
    let target: Ipv6Addr = "fd00:9::99".parse().unwrap();
    let all_nodes = "ff02::1".parse().unwrap();
    let spoof = mac(SPOOF_MAC);
    let na = neighbour_advertisement(
        spoof,
        [0x33, 0x33, 0, 0, 0, 1],
        target,
        all_nodes,
        target,
        true,
    );
    send(&guest, "eth0", &na);
    assert!(
        eventually(|| neighbour(&peer, "fd00:9::99").as_deref() == Some(SPOOF_MAC)),
        "{:?}",
        peer.ip_json(&["neigh"])
    );
}

/// Through a router: MACs rewritten, TTL and hop limit decremented, yet `arrives` matches.
#[test]
fn routed_frames_are_recognised() {
    let router = netns("fxr");
    let guest = netns("fxg");
    let peer = netns("fxp");
    router.veth("eth0", "eth0", &guest);
    router.veth("eth1", "eth0", &peer);
    let router_mac = "02:00:00:00:00:fe";
    router.ip(&["link", "set", "eth0", "address", router_mac, "up"]);
    router.ip(&["link", "set", "eth1", "up"]);
    wait_ipv6_ready(&router, "eth0");
    wait_ipv6_ready(&router, "eth1");
    wait_ipv6_ready(&peer, "eth0");
    for (ns, dev, v4, v6) in [
        (&router, "eth0", "10.9.3.1/24", "fd00:3::1/64"),
        (&router, "eth1", "10.9.4.1/24", "fd00:4::1/64"),
        (&peer, "eth0", "10.9.4.2/24", "fd00:4::2/64"),
    ] {
        ns.ip(&["addr", "add", v4, "dev", dev]);
        ns.ip(&["addr", "add", v6, "dev", dev, "nodad"]);
    }
    peer.ip(&["route", "add", "default", "via", "10.9.4.1"]);
    peer.ip(&["-6", "route", "add", "default", "via", "fd00:4::1"]);
    sysctl(&router, "net.ipv4.conf.all.forwarding", "1");
    sysctl(&router, "net.ipv6.conf.all.forwarding", "1");

    let (g, r) = (mac(GUEST_MAC), mac(router_mac));
    let (from, to) = ((&guest, "eth0"), (&peer, "eth0"));
    let v4 = ipv4_udp(
        g,
        r,
        Ipv4Addr::new(10, 9, 3, 5),
        Ipv4Addr::new(10, 9, 4, 2),
        1,
        9,
        &marker(),
    );
    let got = arrival(from, to, &v4, WAIT, |f| contains(f, signature(&v4))).expect("IPv4");
    assert_eq!(
        (got[14 + 8], &got[14 + 12..14 + 20]),
        (63, &v4[14 + 12..14 + 20])
    );
    assert_ne!(got[..12], v4[..12], "MACs rewritten");
    assert!(arrives(from, to, &v4, WAIT));

    let (s6, d6) = ("fd00:3::5".parse().unwrap(), "fd00:4::2".parse().unwrap());
    let v6 = ipv6_udp(g, r, s6, d6, 1, 9, &marker());
    let got = arrival(from, to, &v6, WAIT, |f| contains(f, signature(&v6)));
    let got = got.expect("IPv6");
    assert_eq!(got[14 + 7], 63, "hop limit");
    assert_eq!(got[14..14 + 7], v6[14..14 + 7]);
}
