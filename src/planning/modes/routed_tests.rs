use super::*;
use crate::input::backend::Backend;
use crate::input::backend::parse_ip_list;
use crate::input::invocation::Command;
use crate::input::invocation::XenCall;
use crate::input::xen_port::XenPort;
use crate::types::mac::MacAddr;
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
        default_links: vec![2],
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
    let mut no_default = k.clone();
    no_default.default_links.clear();
    assert_eq!(
        plan_attach(&port(Command::Online, "192.0.2.241"), &no_default, None)
            .unwrap_err()
            .to_string(),
        "no uplink: netdev is not set and there is no default route"
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
