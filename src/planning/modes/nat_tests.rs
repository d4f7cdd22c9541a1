use super::*;
use crate::input::backend::Backend;
use crate::input::backend::parse_ip_list;
use crate::input::invocation::Command;
use crate::input::invocation::TypeIf;
use crate::input::invocation::XenCall;
use crate::input::xen_port::XenPort;
use crate::sys::rtnl::Link;
use crate::sys::sysctl::Key;
use crate::types::names::IfName;
use crate::types::prefix::Family;
use crate::types::prefix::Prefix;

fn link(index: u32, name: &str, up: bool) -> Link {
    Link {
        up,
        ..Link::veth(index, name)
    }
}

fn call(domid: u32, devid: u32) -> XenCall {
    XenCall::for_test(Command::Online, domid, devid)
}

fn backend(ip: &str, vifname: Option<&str>) -> Backend {
    Backend {
        path: "backend/vif/1/0".into(),
        bridge: None,
        mtu: None,
        vifname: vifname.map(|n| IfName::new(n).unwrap()),
        frontend_mtu_key: None,
        ip: Some(ip.into()),
        addresses: parse_ip_list(ip).unwrap(),
        mac: None,
        vlan: None,
    }
}

fn kernel(vif: &str) -> Snapshot {
    let on = |k: &str| (Key::new(k).unwrap(), Some("1".to_owned()));
    Snapshot {
        links: vec![link(2, "eth0", true), link(7, vif, false)],
        default_routes: vec![(Family::V4, 2)],
        sysctls: vec![
            on("net/ipv4/conf/all/forwarding"),
            on("net/ipv6/conf/all/forwarding"),
        ],
        ..Default::default()
    }
}

fn words(plan: &Plan) -> Vec<String> {
    plan.steps().iter().map(|s| s.to_string()).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn upstream_derivation_and_its_overflow_fix() {
    assert_eq!(
        derived_address(VifId { domid: 5, devid: 0 }).unwrap(),
        Prefix::new(ip("10.0.5.1"), 16)
    );
    assert_eq!(
        derived_address(VifId {
            domid: 300,
            devid: 2
        })
        .unwrap(),
        Prefix::new(ip("10.1.44.3"), 16)
    );
    assert_eq!(
        router_for(ip("10.0.5.1"), 16, &[]).unwrap(),
        ip("10.0.5.128")
    );
    assert_eq!(
        router_for(ip("10.0.5.127"), 16, &[]).unwrap(),
        ip("10.0.5.254")
    );
    assert_eq!(
        router_for(ip("10.0.5.128"), 16, &[])
            .unwrap_err()
            .to_string(),
        "cannot derive a router address for 10.0.5.128: its last octet must be 1 to 127 (upstream adds 127); set router= in vifkit.conf"
    );
    assert_eq!(
        derived_address(VifId {
            domid: 1,
            devid: 254
        })
        .unwrap_err()
        .to_string(),
        "cannot derive a NAT address for domain 1 device 254: set ip= in the vif configuration"
    );
}

#[test]
fn ipv6_router_is_the_prefix_one_or_configured() {
    assert_eq!(
        router_for(ip("2001:db8:abba::1001"), 64, &[]).unwrap(),
        ip("2001:db8:abba::1")
    );
    assert_eq!(
        router_for(ip("2001:db8:abba::1001"), 128, &[])
            .unwrap_err()
            .to_string(),
        "cannot derive a router address for 2001:db8:abba::1001: give it a prefix length (e.g. /64) or set router= in vifkit.conf"
    );
    let configured = [ip("192.168.1.1"), ip("2001:db8:abba::1")];
    assert_eq!(
        router_for(ip("192.168.1.10"), 32, &configured).unwrap(),
        ip("192.168.1.1")
    );
    assert_eq!(
        router_for(ip("2001:db8:abba::1001"), 128, &configured).unwrap(),
        ip("2001:db8:abba::1")
    );
}

#[test]
fn seed_3_with_a_configured_router() {
    let rule = PortRule {
        patterns: vec!["xen1.0".into()],
        line: 1,
        bridge: None,
        mtu: None,
        route: vec![],
        uplink: None,
        mac: None,
        router: vec![ip("192.168.1.1"), ip("2001:db8:abba::1")],
        masquerade6: None,
        ip: vec![],
        antispoof: None,
        traffic: Default::default(),
        port: Default::default(),
        openvswitch: None,
        rate: None,
    };
    let plan = plan_attach(
        &XenPort::for_test(
            &call(1, 0),
            &backend("192.168.1.10 2001:db8:abba::1001", Some("xen1.0")),
        ),
        Some(&rule),
        &kernel("vif1.0"),
        None,
    )
    .unwrap();
    assert_eq!(
        words(&plan),
        [
            "rename vif1.0 to xen1.0",
            "set xen1.0 up",
            "add address 192.168.1.1/32 to xen1.0",
            "add address 2001:db8:abba::1/128 to xen1.0",
            "set sysctl net/ipv4/conf/xen1.0/proxy_arp = 1",
            "add route 192.168.1.10/32 dev xen1.0 src 192.168.1.1 metric 2",
            "add route 2001:db8:abba::1001/128 dev xen1.0 src 2001:db8:abba::1 metric 2",
            "masquerade 192.168.1.10 out of eth0 (nft table inet vifkit-nat-1-0)",
        ]
    );
    let both = PortRule {
        masquerade6: Some(true),
        ip: vec![],
        antispoof: None,
        port: Default::default(),
        openvswitch: None,
        rate: None,
        ..rule
    };
    let plan = plan_attach(
        &XenPort::for_test(
            &call(1, 0),
            &backend("192.168.1.10 2001:db8:abba::1001", Some("xen1.0")),
        ),
        Some(&both),
        &kernel("vif1.0"),
        None,
    )
    .unwrap();
    assert_eq!(
        words(&plan).last().unwrap(),
        "masquerade 192.168.1.10 out of eth0, 2001:db8:abba::1001 out of eth0 (nft table inet vifkit-nat-1-0)"
    );
}

#[test]
fn empty_ip_uses_the_derived_address() {
    let mut b = backend("", None);
    b.ip = None;
    let plan = plan_attach(
        &XenPort::for_test(&call(5, 0), &b),
        None,
        &kernel("vif5.0"),
        None,
    )
    .unwrap();
    assert!(
        words(&plan)
            .contains(&"add route 10.0.5.1/32 dev vif5.0 src 10.0.5.128 metric 2".to_string())
    );
}

#[test]
fn offline_removes_by_key_whatever_b_ip_says() {
    let plan = plan_detach(
        &XenPort::for_test(&call(1, 0), &backend("", None)),
        &kernel("vif1.0"),
        None,
    )
    .unwrap();
    assert_eq!(
        words(&plan),
        [
            "delete nft table inet vifkit-nat-1-0",
            "set vif1.0 down",
            "purge conntrack entries of 10.0.1.1",
        ]
    );
}

#[test]
fn an_hvm_guests_emulated_nic_has_its_own_route_and_table_and_keeps_the_flows() {
    let mut tap_call = call(1, 0);
    tap_call.type_if = TypeIf::Tap;
    tap_call.dev = IfName::new("vif1.0-emu").unwrap();
    let port = XenPort::for_test(&tap_call, &backend("192.168.1.10", None));
    let plan = plan_attach(&port, None, &kernel("vif1.0-emu"), None).unwrap();
    let added = words(&plan);
    assert!(
        added.contains(
            &"add route 192.168.1.10/32 dev vif1.0-emu src 192.168.1.137 metric 1".to_owned()
        ),
        "{added:?}"
    );
    assert!(
        added
            .iter()
            .any(|w| w.ends_with("(nft table inet vifkit-nat-1-0-emu)"))
    );
    let gone = plan_detach(&port, &kernel("vif1.0-emu"), None).unwrap();
    assert_eq!(
        words(&gone),
        [
            "delete nft table inet vifkit-nat-1-0-emu",
            "set vif1.0-emu down"
        ]
    );
}

/// `guest_ip`: the guest's own address is routed to the vif, so it may not be the host's or
/// its gateway; its prefix is a netmask, so a wide one is no block of the host's.
#[test]
fn a_guest_address_that_would_take_the_hosts_traffic_is_refused() {
    let mut k = kernel("vif1.0");
    k.addresses.push((2, Prefix::new(ip("10.9.9.9"), 8)));
    k.default_gateways.push((2, ip("10.9.9.1")));
    let attach = |guest: &str| {
        let port = XenPort::for_test(&call(1, 0), &backend(guest, None));
        plan_attach(&port, None, &k, None)
    };
    assert_eq!(
        attach("10.9.9.1/8").unwrap_err().to_string(),
        "guest address 10.9.9.1 is the host's default gateway on eth0: routed to vif1.0 it would take the host's own traffic"
    );
    assert_eq!(
        attach("10.9.9.9").unwrap_err().to_string(),
        "guest address 10.9.9.9 is the host's own address on eth0: routed to vif1.0 it would take the host's own traffic"
    );
    assert!(attach("10.1.0.5/8").is_ok(), "a netmask is no routed block");
    // A /0 netmask no longer overflows the IPv6 router derivation.
    assert_eq!(
        router_for(ip("2001:db8::5"), 0, &[])
            .unwrap_err()
            .to_string(),
        "cannot derive a router address for 2001:db8::5: give it a prefix length (e.g. /64) or set router= in vifkit.conf"
    );
}
