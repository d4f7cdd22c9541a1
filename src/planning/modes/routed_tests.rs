use super::*;
use crate::input::backend::Backend;
use crate::input::backend::parse_ip_list;
use crate::input::invocation::Command;
use crate::input::invocation::XenCall;
use crate::input::xen_port::XenPort;
use crate::types::mac::MacAddr;
use crate::types::prefix::Family;
use crate::types::prefix::Prefix;

fn link(index: u32, name: &str, up: bool) -> Link {
    Link {
        up,
        ..Link::veth(index, name)
    }
}

fn call(command: Command, netdev: Option<&str>) -> XenCall {
    let mut call = XenCall::for_test(command, 1, 0);
    call.overrides.netdev = netdev.map(str::to_owned);
    call
}

fn backend(ip: &str) -> Backend {
    Backend {
        path: "backend/vif/1/0".into(),
        bridge: None,
        mtu: None,
        vifname: Some(IfName::new("xen1.0").unwrap()),
        frontend_mtu_key: None,
        ip: Some(ip.into()),
        addresses: parse_ip_list(ip).unwrap(),
        mac: Some(MacAddr::parse("00:16:3e:10:10:10").unwrap()),
        vlan: None,
    }
}

/// Seed 2.1: uplink eth0 with 192.0.2.253/28, default routes via eth0, forwarding on.
fn kernel(vif: Option<Link>) -> Snapshot {
    let mut links = vec![link(2, "eth0", true)];
    links.extend(vif);
    Snapshot {
        links,
        addresses: vec![
            (2, Prefix::new("2001:db8:abba::1".parse().unwrap(), 64)),
            (2, Prefix::new("192.0.2.253".parse().unwrap(), 28)),
        ],
        sysctls: vec![
            (
                Key::new("net/ipv4/conf/all/forwarding").unwrap(),
                Some("1".into()),
            ),
            (
                Key::new("net/ipv6/conf/all/forwarding").unwrap(),
                Some("1".into()),
            ),
            (
                Key::proxy_arp(&IfName::new("vif1.0").unwrap()),
                Some("0".into()),
            ),
            (
                Key::proxy_ndp(&IfName::new("eth0").unwrap()),
                Some("0".into()),
            ),
        ],
        default_routes: vec![(Family::V4, 2)],
        ..Default::default()
    }
}

/// The port a libxl call with no overrides and this `ip` resolves to.
fn port(command: Command, ip: &str) -> XenPort {
    XenPort::for_test(&call(command, None), &backend(ip))
}

fn words(plan: &Plan) -> Vec<String> {
    plan.steps().iter().map(|s| s.to_string()).collect()
}

#[test]
fn seed_2_1_ipv4_and_ipv6() {
    let k = kernel(Some(link(7, "vif1.0", false)));
    let plan = plan_attach(
        &port(Command::Online, "192.0.2.241 2001:db8:abba::1001"),
        &k,
        None,
    )
    .unwrap();
    assert_eq!(
        words(&plan),
        [
            "rename vif1.0 to xen1.0",
            "add address 192.0.2.253/32 to xen1.0",
            "set xen1.0 up",
            "set sysctl net/ipv4/conf/xen1.0/proxy_arp = 1",
            "add route 192.0.2.241/32 dev xen1.0 src 192.0.2.253 metric 2",
            "add proxy neighbour 192.0.2.241 on eth0",
            "add route 2001:db8:abba::1001/128 via fe80::216:3eff:fe10:1010 dev xen1.0 metric 2",
            "add proxy neighbour 2001:db8:abba::1001 on eth0",
            "set sysctl net/ipv6/conf/eth0/proxy_ndp = 1",
        ]
    );
    assert!(plan.warnings.is_empty());
}

#[test]
fn second_online_skips_what_is_in_place() {
    let mut vif = link(7, "xen1.0", true);
    vif.alias = Some("vif1.0".into());
    let mut k = kernel(Some(vif));
    k.sysctls.push((
        Key::proxy_arp(&IfName::new("xen1.0").unwrap()),
        Some("1".into()),
    ));
    k.sysctls
        .retain(|(key, _)| key.as_str() != "net/ipv6/conf/eth0/proxy_ndp");
    k.sysctls.push((
        Key::proxy_ndp(&IfName::new("eth0").unwrap()),
        Some("1".into()),
    ));
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    k.addresses.push((7, Prefix::new(ip("192.0.2.253"), 32)));
    k.routes.push((7, ip("192.0.2.241"), 32, Some(2)));
    k.routes.push((7, ip("2001:db8:abba::1001"), 128, Some(2)));
    k.proxies.push((2, ip("192.0.2.241")));
    k.proxies.push((2, ip("2001:db8:abba::1001")));
    let b = backend("192.0.2.241 2001:db8:abba::1001");
    let plan = plan_attach(
        &XenPort::for_test(&call(Command::Online, None), &b),
        &k,
        None,
    )
    .unwrap();
    // Nothing to do, so a failing second online (a hook, say) has nothing to undo either.
    assert_eq!(words(&plan), Vec::<String>::new());
    // A route that is missing (or has another metric) is planned again.
    k.routes.pop();
    let plan = plan_attach(
        &XenPort::for_test(&call(Command::Online, None), &b),
        &k,
        None,
    )
    .unwrap();
    assert_eq!(
        words(&plan),
        ["add route 2001:db8:abba::1001/128 via fe80::216:3eff:fe10:1010 dev xen1.0 metric 2"]
    );
}

#[test]
fn ipv6_only_needs_no_host_ipv4() {
    let mut k = kernel(Some(link(7, "vif1.0", false)));
    k.addresses.retain(|(_, address)| !address.is_ipv4());
    let plan = plan_attach(&port(Command::Online, "2001:db8:abba::1001"), &k, None).unwrap();
    assert!(
        !words(&plan)
            .iter()
            .any(|w| w.contains("proxy_arp") || w.contains("add address"))
    );
    let err = plan_attach(&port(Command::Online, "192.0.2.241"), &k, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "uplink eth0 has no IPv4 address to serve as the guest's router"
    );
}

#[test]
fn errors_name_what_is_missing() {
    let k = kernel(Some(link(7, "vif1.0", false)));
    assert_eq!(
        plan_attach(
            &XenPort::for_test(
                &call(Command::Online, Some("eth9")),
                &backend("192.0.2.241")
            ),
            &k,
            None
        )
        .unwrap_err()
        .to_string(),
        "uplink eth9 (netdev) does not exist"
    );
    // With no default route the uplink is eth0, as upstream falls back to, and a warning
    // says so; without an eth0 either, one sentence.
    let mut no_default = k.clone();
    no_default.default_routes.clear();
    let plan = plan_attach(&port(Command::Online, "192.0.2.241"), &no_default, None).unwrap();
    assert!(words(&plan).contains(&"add proxy neighbour 192.0.2.241 on eth0".to_owned()));
    assert_eq!(
        plan.warnings,
        [
            "netdev is not set and there is no default route: the uplink is eth0, as upstream falls back to (set netdev= to choose)"
        ]
    );
    no_default.links.retain(|l| l.name != "eth0");
    assert_eq!(
        plan_attach(&port(Command::Online, "192.0.2.241"), &no_default, None)
            .unwrap_err()
            .to_string(),
        "no uplink: netdev is not set, there is no default route and no eth0"
    );
}

#[test]
fn forwarding_off_is_a_warning() {
    let mut k = kernel(Some(link(7, "vif1.0", false)));
    k.sysctls
        .retain(|(key, _)| !key.as_str().ends_with("all/forwarding"));
    let plan = plan_attach(&port(Command::Online, "192.0.2.241 2001:db8::1"), &k, None).unwrap();
    assert_eq!(
        plan.warnings,
        [
            "IPv4 forwarding is off: routed guests get no IPv4 traffic (set net/ipv4/conf/all/forwarding = 1)",
            "IPv6 forwarding is off: routed guests get no IPv6 traffic (set net/ipv6/conf/all/forwarding = 1)",
        ]
    );
}

#[test]
fn tap_routes_win_with_metric_one() {
    let k = kernel(Some(link(7, "vif1.0-emu", false)));
    let mut c = call(Command::Add, None);
    c.type_if = TypeIf::Tap;
    c.dev = IfName::new("vif1.0-emu").unwrap();
    let mut b = backend("192.0.2.241");
    b.vifname = None;
    let plan = plan_attach(&XenPort::for_test(&c, &b), &k, None).unwrap();
    assert!(
        words(&plan).contains(
            &"add route 192.0.2.241/32 dev vif1.0-emu src 192.0.2.253 metric 1".to_string()
        )
    );
}

#[test]
fn offline_removes_proxies_and_needs_no_host_address() {
    let mut vif = link(7, "xen1.0", true);
    vif.alias = Some("vif1.0".into());
    let mut k = kernel(Some(vif));
    k.addresses.clear();
    let plan = plan_detach(
        &port(Command::Offline, "192.0.2.241 2001:db8:abba::1001"),
        &k,
        None,
    )
    .unwrap();
    assert_eq!(
        words(&plan),
        [
            "delete route 192.0.2.241/32 dev xen1.0 metric 2",
            "delete route 2001:db8:abba::1001/128 dev xen1.0 metric 2",
            "set xen1.0 down",
            "delete proxy neighbour 192.0.2.241 on eth0",
            "delete proxy neighbour 2001:db8:abba::1001 on eth0",
        ]
    );
    let gone = plan_detach(&port(Command::Offline, "192.0.2.241"), &kernel(None), None).unwrap();
    assert_eq!(words(&gone), ["delete proxy neighbour 192.0.2.241 on eth0"]);
}

#[test]
fn ipv6_without_a_guest_mac_is_routed_on_link() {
    let k = kernel(Some(link(7, "vif1.0", false)));
    let mut b = backend("2001:db8:abba::1001");
    b.mac = None;
    let plan = plan_attach(
        &XenPort::for_test(&call(Command::Online, None), &b),
        &k,
        None,
    )
    .unwrap();
    assert!(
        words(&plan).contains(&"add route 2001:db8:abba::1001/128 dev xen1.0 metric 2".to_string()),
        "{:?}",
        words(&plan)
    );
}

#[test]
fn a_block_in_ip_is_one_route_and_a_proxy_entry_per_address() {
    let k = kernel(Some(link(7, "vif1.0", false)));
    let plan = plan_attach(&port(Command::Online, "198.51.100.0/30"), &k, None).unwrap();
    let said = words(&plan);
    let routes: Vec<&String> = said.iter().filter(|w| w.starts_with("add route")).collect();
    assert_eq!(
        routes,
        ["add route 198.51.100.0/30 dev xen1.0 src 192.0.2.253 metric 2"]
    );
    let proxies: Vec<&String> = said
        .iter()
        .filter(|w| w.contains("proxy neighbour"))
        .collect();
    assert_eq!(
        proxies,
        [
            "add proxy neighbour 198.51.100.0 on eth0",
            "add proxy neighbour 198.51.100.1 on eth0",
            "add proxy neighbour 198.51.100.2 on eth0",
            "add proxy neighbour 198.51.100.3 on eth0",
        ]
    );
    assert_eq!(
        plan_attach(&port(Command::Online, "198.51.100.0/25"), &k, None)
            .unwrap_err()
            .to_string(),
        "ip= 198.51.100.0/25 is a block of 128 addresses: vif-route answers ARP/NDP for each address of a block up to a /26 (IPv4) or /120 (IPv6); route a larger block to this host instead"
    );
    assert_eq!(
        proxied_addresses(Prefix::host("2001:db8::5".parse().unwrap()))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        proxied_addresses(Prefix::new("2001:db8::".parse().unwrap(), 120))
            .unwrap()
            .len(),
        256
    );
    let gone = plan_detach(&port(Command::Offline, "198.51.100.4/30"), &k, None).unwrap();
    let gone = words(&gone);
    assert_eq!(gone[0], "delete route 198.51.100.4/30 dev vif1.0 metric 2");
    assert_eq!(gone.iter().filter(|w| w.contains("proxy")).count(), 4);
}

#[test]
fn no_ip_still_gets_the_host_address_and_proxy_arp_as_upstream() {
    let k = kernel(Some(link(7, "vif1.0", false)));
    let plan = plan_attach(&port(Command::Online, ""), &k, None).unwrap();
    assert_eq!(
        words(&plan),
        [
            "rename vif1.0 to xen1.0",
            "add address 192.0.2.253/32 to xen1.0",
            "set xen1.0 up",
            "set sysctl net/ipv4/conf/xen1.0/proxy_arp = 1",
        ]
    );
    assert!(
        plan.notes
            .contains(&"no ip= for xen1.0: no guest route is added (the host address and proxy_arp are, as upstream)".to_owned())
    );
}

#[test]
fn the_vif_takes_b_mtu() {
    let k = kernel(Some(link(7, "vif1.0", false)));
    let mut b = backend("192.0.2.241");
    b.mtu = Some(9000);
    let plan = plan_attach(
        &XenPort::for_test(&call(Command::Online, None), &b),
        &k,
        None,
    )
    .unwrap();
    assert_eq!(words(&plan)[1], "set xen1.0 mtu 9000");
    let mut at_9000 = link(7, "xen1.0", true);
    at_9000.mtu = 9000;
    at_9000.alias = Some("vif1.0".into());
    let plan = plan_attach(
        &XenPort::for_test(&call(Command::Online, None), &b),
        &kernel(Some(at_9000)),
        None,
    )
    .unwrap();
    assert!(!words(&plan).iter().any(|w| w.contains("mtu")));
}

#[test]
fn ipv4_and_ipv6_leave_by_their_own_default_routes() {
    let mut k = kernel(Some(link(7, "vif1.0", false)));
    k.links.push(link(3, "eth1", true));
    k.default_routes = vec![(Family::V4, 2), (Family::V6, 3)];
    let plan = plan_attach(
        &port(Command::Online, "192.0.2.241 2001:db8:abba::1001"),
        &k,
        None,
    )
    .unwrap();
    let said = words(&plan);
    assert!(said.contains(&"add proxy neighbour 192.0.2.241 on eth0".to_owned()));
    assert!(said.contains(&"add proxy neighbour 2001:db8:abba::1001 on eth1".to_owned()));
    assert!(said.contains(&"set sysctl net/ipv6/conf/eth1/proxy_ndp = 1".to_owned()));
    assert!(
        plan.notes
            .contains(&"uplinks eth0 (IPv4) and eth1 (IPv6)".to_owned())
    );
    // netdev= names the uplink of both.
    let both = plan_attach(
        &XenPort::for_test(
            &call(Command::Online, Some("eth0")),
            &backend("192.0.2.241 2001:db8:abba::1001"),
        ),
        &k,
        None,
    )
    .unwrap();
    assert!(words(&both).contains(&"add proxy neighbour 2001:db8:abba::1001 on eth0".to_owned()));
}

#[test]
fn ipv6_disabled_is_said_with_the_link_and_the_remedy() {
    let mut k = kernel(Some(link(7, "vif1.0", false)));
    k.sysctls.push((Key::disable_ipv6_all(), Some("0".into())));
    k.sysctls.push((
        Key::disable_ipv6(&IfName::new("vif1.0").unwrap()),
        Some("1".into()),
    ));
    assert_eq!(
        plan_attach(&port(Command::Online, "2001:db8:abba::1001"), &k, None)
            .unwrap_err()
            .to_string(),
        "IPv6 is disabled on vif1.0 (net/ipv6/conf/vif1.0/disable_ipv6 = 1): remove the IPv6 addresses from ip= or enable IPv6 for new links (sysctl -w net.ipv6.conf.default.disable_ipv6=0)"
    );
    // IPv4 guests do not care.
    plan_attach(&port(Command::Online, "192.0.2.241"), &k, None).unwrap();
    let mut off = kernel(Some(link(7, "vif1.0", false)));
    off.sysctls.push((Key::disable_ipv6_all(), None));
    assert!(
        plan_attach(&port(Command::Online, "2001:db8:abba::1001"), &off, None)
            .unwrap_err()
            .to_string()
            .starts_with("IPv6 is disabled on this host")
    );
}

/// `guest_ip`: vif-route refuses guest addresses that would take the host's own traffic,
/// before the rename or anything else; `::/0` no longer overflows the block count.
#[test]
fn guest_addresses_that_would_take_the_hosts_traffic_are_refused() {
    let mut k = kernel(Some(link(7, "vif1.0", false)));
    k.default_gateways.push((2, "192.0.2.254".parse().unwrap()));
    let refused = |ip: &str| {
        plan_attach(&port(Command::Online, ip), &k, None)
            .unwrap_err()
            .to_string()
    };
    for (ip, what) in [
        ("0.0.0.0/0", "0.0.0.0/0 is every IPv4 address"),
        ("::/0", "::/0 is every IPv6 address"),
        (
            "192.0.2.253",
            "192.0.2.253 is the host's own address on eth0",
        ),
        (
            "2001:db8:abba::1",
            "2001:db8:abba::1 is the host's own address on eth0",
        ),
        (
            "192.0.2.254",
            "192.0.2.254 is the host's default gateway on eth0",
        ),
        (
            "192.0.2.252/30",
            "192.0.2.252/30 holds 192.0.2.253, the host's own address on eth0",
        ),
    ] {
        assert_eq!(
            refused(&format!("192.0.2.241 {ip}")),
            format!("guest address {what}: routed to xen1.0 it would take the host's own traffic")
        );
    }
    // Detach keeps going: the block was never proxied.
    assert!(proxied_addresses(Prefix::new("::".parse().unwrap(), 0)).is_err());
    assert_eq!(
        proxied_addresses(Prefix::new("::".parse().unwrap(), 0))
            .unwrap_err()
            .to_string(),
        "ip= ::/0 is a block of 2^128 addresses: vif-route answers ARP/NDP for each address of a block up to a /26 (IPv4) or /120 (IPv6); route a larger block to this host instead"
    );
    let detach = plan_detach(&port(Command::Offline, "::/0"), &k, None).unwrap();
    assert!(
        !words(&detach).iter().any(|w| w.contains("proxy")),
        "{detach}"
    );
}
