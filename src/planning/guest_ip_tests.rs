use super::*;
use crate::sys::rtnl::Link;

fn p(text: &str) -> Prefix {
    let (address, len) = text.split_once('/').unwrap_or((text, ""));
    let address: IpAddr = address.parse().unwrap();
    match len {
        "" => Prefix::host(address),
        len => Prefix::new(address, len.parse().unwrap()),
    }
}

fn name(text: &str) -> IfName {
    IfName::new(text).unwrap()
}

/// A host with uplink eth0 (192.0.2.253/28, 2001:db8:abba::1/64, a link-local), default
/// gateways 192.0.2.254 and fe80::1 on it, bridge xenbr0 (10.0.0.1/24) and port vif3.0
/// (index 5) with a stray address.
fn kernel() -> Snapshot {
    Snapshot {
        links: vec![
            Link::veth(2, "eth0"),
            Link::bridge(3, "xenbr0"),
            Link::veth(5, "vif3.0"),
        ],
        addresses: vec![
            (2, p("192.0.2.253/28")),
            (2, p("2001:db8:abba::1/64")),
            (2, p("fe80::2/64")),
            (3, p("10.0.0.1/24")),
            (5, p("198.51.100.7/24")),
        ],
        default_gateways: vec![
            (2, "192.0.2.254".parse().unwrap()),
            (2, "fe80::1".parse().unwrap()),
        ],
        ..Snapshot::default()
    }
}

#[test]
fn what_a_block_holds_beyond_the_guest() {
    let k = kernel();
    let at = |text: &str| overreach(p(text), Some(5), &k);
    assert_eq!(at("0.0.0.0/0"), Some(Overreach::Everything(Family::V4)));
    assert_eq!(at("::/0"), Some(Overreach::Everything(Family::V6)));
    assert_eq!(
        at("192.0.2.253"),
        Some(Overreach::HostAddress {
            address: "192.0.2.253".parse().unwrap(),
            link: "eth0".into()
        })
    );
    assert_eq!(
        at("10.0.0.0/8"),
        Some(Overreach::HostAddress {
            address: "10.0.0.1".parse().unwrap(),
            link: "xenbr0".into()
        })
    );
    assert_eq!(
        at("192.0.2.254"),
        Some(Overreach::Gateway {
            address: "192.0.2.254".parse().unwrap(),
            link: "eth0".into()
        })
    );
    // The guest's own neighbours in the uplink's subnet are what vif-route is for.
    for fine in [
        "192.0.2.241",
        "192.0.2.240/30",
        "2001:db8:abba::1001",
        "2001:db8:abba::1000/120",
        "10.0.0.2",
        // The port's own addresses (removed from a bridge port) and link-locals are no
        // host address a guest could take.
        "198.51.100.7",
        "fe80::2",
    ] {
        assert_eq!(at(fine), None, "{fine}");
    }
    // The gateway's link-local is a gateway all the same.
    assert!(matches!(at("fe80::1"), Some(Overreach::Gateway { .. })));
    // Without the port's index its addresses count as the host's.
    assert!(overreach(p("198.51.100.7"), None, &k).is_some());
}

#[test]
fn a_routed_port_refuses_what_would_take_the_hosts_traffic() {
    let k = kernel();
    let refuse = |text: &str| {
        refuse_routed(&[p("192.0.2.241"), p(text)], Some(5), &name("vif3.0"), &k)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        refuse("0.0.0.0/0"),
        "guest address 0.0.0.0/0 is every IPv4 address: routed to vif3.0 it would take the host's own traffic"
    );
    assert_eq!(
        refuse("::/0"),
        "guest address ::/0 is every IPv6 address: routed to vif3.0 it would take the host's own traffic"
    );
    assert_eq!(
        refuse("192.0.2.253"),
        "guest address 192.0.2.253 is the host's own address on eth0: routed to vif3.0 it would take the host's own traffic"
    );
    assert_eq!(
        refuse("192.0.2.240/28"),
        "guest address 192.0.2.240/28 holds 192.0.2.253, the host's own address on eth0: routed to vif3.0 it would take the host's own traffic"
    );
    assert_eq!(
        refuse("192.0.2.254"),
        "guest address 192.0.2.254 is the host's default gateway on eth0: routed to vif3.0 it would take the host's own traffic"
    );
    assert!(
        refuse_routed(
            &[p("192.0.2.241"), p("2001:db8:abba::1001")],
            Some(5),
            &name("vif3.0"),
            &k
        )
        .is_ok()
    );
    assert!(refuse_routed(&[], Some(5), &name("vif3.0"), &k).is_ok());
}

#[test]
fn a_bridged_port_is_warned_and_plugged() {
    let k = kernel();
    let warnings = bridged_warnings(
        &[
            p("10.0.0.5"),
            p("0.0.0.0/0"),
            p("10.0.0.1"),
            p("192.0.2.254"),
            p("::/0"),
        ],
        &name("vif3.0"),
        &k,
    );
    assert_eq!(
        warnings,
        [
            "guest address 0.0.0.0/0 is every IPv4 address: the antispoofing of vif3.0 lets the guest send from it",
            "guest address 10.0.0.1 is the host's own address on xenbr0: the antispoofing of vif3.0 lets the guest send from it",
            "guest address 192.0.2.254 is the host's default gateway on eth0: the antispoofing of vif3.0 lets the guest send from it",
            "guest address ::/0 is every IPv6 address: the antispoofing of vif3.0 lets the guest send from it",
        ]
    );
    // The port's own (stray) address is not the host's: it is about to be removed.
    assert!(bridged_warnings(&[p("198.51.100.7")], &name("vif3.0"), &k).is_empty());
    assert!(bridged_warnings(&[p("10.0.0.5")], &name("vif3.0"), &k).is_empty());
}
