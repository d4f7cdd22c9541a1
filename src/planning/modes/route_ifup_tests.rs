use super::*;
use crate::input::backend::Backend;
use crate::input::invocation::Command;
use crate::input::invocation::XenCall;
use crate::input::sysconfig::{
    RoutesFile, parse_ifcfg, parse_ndp_proxy, parse_routes, routes_for_device,
};
use crate::input::xen_port::XenPort;
use crate::sys::rtnl::Link;
use crate::types::prefix::Family;

const DIR: &str = "/etc/sysconfig/network";

fn link(index: u32, name: &str, up: bool) -> Link {
    Link {
        up,
        ..Link::veth(index, name)
    }
}

fn call() -> XenCall {
    XenCall::for_test(Command::Online, 1, 0)
}

fn backend(vifname: Option<&str>) -> Backend {
    Backend {
        path: "backend/vif/1/0".into(),
        bridge: None,
        mtu: None,
        vifname: vifname.map(|n| IfName::new(n).unwrap()),
        frontend_mtu_key: None,
        ip: None,
        addresses: vec![],
        mac: None,
        vlan: None,
    }
}

/// The host files of seed 2.1.
fn seed_2_1(ifcfg: &str) -> Sysconfig {
    let dev = IfName::new("xen1.0").unwrap();
    let routes = parse_routes(
        Path::new("/etc/sysconfig/network/routes"),
        "# IPv4\n192.0.2.241 - - xen1.0\ndefault 192.0.2.254 - eth0\n\
         2001:db8:abba::1001 fe80::216:3eff:fe10:1010 - xen1.0\ndefault fe80::201:1ff:fe01:254 - eth0\n",
        RoutesFile::Global,
    )
    .unwrap();
    let ifcfg = parse_ifcfg(Path::new("/etc/sysconfig/network/ifcfg-xen1.0"), ifcfg).unwrap();
    Sysconfig {
        routes: routes_for_device(&dev, Some(&ifcfg), &routes, &[]),
        ifcfg: Some(ifcfg),
        proxies: parse_ndp_proxy(
            Path::new("/etc/sysconfig/network/ifndp-proxy"),
            "2001:db8:abba::1     eth0                xen1.0\n2001:db8:abba::1001  xen1.0              eth0\n",
            None,
        )
        .unwrap(),
        unconfigured: vec![],
    }
}

const IFCFG: &str =
    "NAME='XEN vm 1 virtual interface 0'\nBOOTPROTO='static'\nSTARTMODE='hotplug'\n";

fn kernel(vif: Link) -> Snapshot {
    let on = |k: &str| (Key::new(k).unwrap(), Some("1".to_owned()));
    Snapshot {
        links: vec![link(2, "eth0", true), vif],
        default_routes: vec![(Family::V4, 2)],
        sysctls: vec![
            on("net/ipv4/conf/all/forwarding"),
            on("net/ipv6/conf/all/forwarding"),
            on("net/ipv6/conf/all/proxy_ndp"),
            on("net/ipv4/conf/all/proxy_arp"),
        ],
        ..Default::default()
    }
}

fn words(plan: &Plan) -> Vec<String> {
    plan.steps().iter().map(|s| s.to_string()).collect()
}

#[test]
fn seed_2_1_as_written() {
    let plan = plan_attach(
        &XenPort::for_test(&call(), &backend(Some("xen1.0"))),
        &seed_2_1(IFCFG),
        Path::new(DIR),
        &kernel(link(7, "vif1.0", false)),
        None,
    )
    .unwrap();
    assert_eq!(
        words(&plan),
        [
            "rename vif1.0 to xen1.0",
            "set xen1.0 up",
            "add route 192.0.2.241/32 dev xen1.0",
            "add route 2001:db8:abba::1001/128 via fe80::216:3eff:fe10:1010 dev xen1.0",
            "set sysctl net/ipv4/conf/xen1.0/proxy_arp = 1",
            "add proxy neighbour 2001:db8:abba::1 on xen1.0",
            "add proxy neighbour 2001:db8:abba::1001 on eth0",
            "set sysctl net/ipv6/conf/xen1.0/proxy_ndp = 1",
        ]
    );
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn ifcfg_addresses_mtu_and_lladdr() {
    let ifcfg = "BOOTPROTO=static\nIPADDR=192.168.1.1/24\nIPADDR_1=2001:db8:abba::1/64\nMTU=9000\nLLADDR=02:00:00:00:00:01\n";
    let mut vif = link(7, "xen1.0", true);
    vif.alias = Some("vif1.0".into());
    let plan = plan_attach(
        &XenPort::for_test(&call(), &backend(Some("xen1.0"))),
        &seed_2_1(ifcfg),
        Path::new(DIR),
        &kernel(vif),
        None,
    )
    .unwrap();
    assert_eq!(
        &words(&plan)[..6],
        [
            "set xen1.0 down",
            "set xen1.0 address 02:00:00:00:00:01",
            "set xen1.0 mtu 9000",
            "add address 192.168.1.1/24 to xen1.0",
            "add address 2001:db8:abba::1/64 to xen1.0",
            "set xen1.0 up",
        ]
    );
}

#[test]
fn refusals_name_the_file() {
    let k = kernel(link(7, "vif1.0", false));
    let err = |b: &Backend, sc: &Sysconfig| {
        plan_attach(&XenPort::for_test(&call(), b), sc, Path::new(DIR), &k, None)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(&backend(None), &Sysconfig::default()),
        "vif-route-ifup needs a static interface name: set vifname= in the vif configuration and describe it in /etc/sysconfig/network/ifcfg-<vifname>"
    );
    assert_eq!(
        err(&backend(Some("xen1.0")), &Sysconfig::default()),
        "/etc/sysconfig/network/ifcfg-xen1.0 does not exist: vif-route-ifup configures xen1.0 from it"
    );
    assert_eq!(
        err(&backend(Some("xen1.0")), &seed_2_1("STARTMODE=off\n")),
        "/etc/sysconfig/network/ifcfg-xen1.0: STARTMODE=off disables xen1.0"
    );
    assert_eq!(
        err(&backend(Some("xen1.0")), &seed_2_1("BOOTPROTO=dhcp\n")),
        "/etc/sysconfig/network/ifcfg-xen1.0: BOOTPROTO=dhcp is not supported on a routed vif (use static)"
    );
}

#[test]
fn host_knobs_off_are_warnings_only() {
    let mut k = kernel(link(7, "vif1.0", false));
    k.sysctls.clear();
    let plan = plan_attach(
        &XenPort::for_test(&call(), &backend(Some("xen1.0"))),
        &seed_2_1(IFCFG),
        Path::new(DIR),
        &k,
        None,
    )
    .unwrap();
    assert_eq!(
        plan.warnings,
        [
            "IPv4 forwarding is off: routed guests get no IPv4 traffic (set net/ipv4/conf/all/forwarding = 1)",
            "IPv6 forwarding is off: routed guests get no IPv6 traffic (set net/ipv6/conf/all/forwarding = 1)",
            "proxy_ndp is off on eth0: the guest's NDP proxy entry there has no effect (set net/ipv6/conf/eth0/proxy_ndp = 1)",
            "proxy_arp is off on uplink eth0: its neighbours will not find the guest (set net/ipv4/conf/eth0/proxy_arp = 1)",
        ]
    );
    assert!(
        !words(&plan).iter().any(|w| w.contains("/all/")),
        "host-wide knobs are never changed"
    );
}

#[test]
fn proxies_only_on_interfaces_that_are_up() {
    let mut k = kernel(link(7, "vif1.0", false));
    k.links[0].up = false;
    let plan = plan_attach(
        &XenPort::for_test(&call(), &backend(Some("xen1.0"))),
        &seed_2_1(IFCFG),
        Path::new(DIR),
        &k,
        None,
    )
    .unwrap();
    assert!(!words(&plan).contains(&"add proxy neighbour 2001:db8:abba::1001 on eth0".to_string()));
    assert!(
        plan.notes
            .contains(&"eth0 is not up: 2001:db8:abba::1001 not proxied there".to_string())
    );
}

#[test]
fn offline_deletes_the_proxies_of_the_device() {
    let mut vif = link(7, "xen1.0", true);
    vif.alias = Some("vif1.0".into());
    let sc = seed_2_1(IFCFG);
    let plan = plan_detach(
        &XenPort::for_test(&call(), &backend(Some("xen1.0"))),
        &sc,
        &kernel(vif),
        None,
    )
    .unwrap();
    assert_eq!(
        words(&plan),
        [
            "set xen1.0 down",
            "delete proxy neighbour 2001:db8:abba::1001 on eth0"
        ]
    );
    let mut gone = kernel(link(9, "eth1", true));
    gone.links.truncate(1);
    let plan = plan_detach(
        &XenPort::for_test(&call(), &backend(Some("xen1.0"))),
        &sc,
        &gone,
        None,
    )
    .unwrap();
    assert_eq!(
        words(&plan),
        ["delete proxy neighbour 2001:db8:abba::1001 on eth0"]
    );
}

#[test]
fn reject_and_multipath_lines_become_kernel_routes() {
    let vif = LinkRef {
        index: 7,
        name: IfName::new("xen1.0").unwrap(),
    };
    let k = kernel(link(7, "xen1.0", true));
    let lines = parse_routes(
        Path::new("/r"),
        "2001:db8:abba::/60 - - - unreachable\n10.0.0.0/8 - - xen1.0 metric 5 mtu lock 1400 table 100 \
         nexthop via 192.0.2.1 dev eth0 weight 2 nexthop via 192.0.2.2\n",
        RoutesFile::Global,
    );
    let lines = match lines {
        Ok(lines) => lines,
        Err(err) => panic!("{err:#}"),
    };
    let reject = route_from_line(&lines[0], &vif, &k).unwrap();
    assert_eq!(reject.to_string(), "unreachable 2001:db8:abba::/60");
    assert_eq!(reject.dev, None);
    let multi = route_from_line(&lines[1], &vif, &k).unwrap();
    assert_eq!(
        multi.to_string(),
        "10.0.0.0/8 metric 5 table 100 nexthop via 192.0.2.1 dev eth0 weight 2 nexthop via 192.0.2.2 dev xen1.0 weight 1"
    );
    assert_eq!(multi.metrics, [(2, 1400, true)]);
}

#[test]
fn a_route_line_naming_a_device_that_is_nowhere_is_warned_of_with_its_file_and_line() {
    let typo = |device: &str| NamedDevice {
        path: PathBuf::from("/etc/sysconfig/network/routes"),
        line: 3,
        device: IfName::new(device).unwrap(),
        destination: Destination::Net {
            address: "192.0.2.242".parse().unwrap(),
            prefix_len: 32,
        },
    };
    let sc = Sysconfig {
        unconfigured: vec![typo("xen1.O"), typo("eth0")],
        ..seed_2_1(IFCFG)
    };
    let port = XenPort::for_test(&call(), &backend(Some("xen1.0")));
    let needs = VifRouteIfup::Native {
        sysconfig: sc.clone(),
        dir: DIR.into(),
    }
    .own_needs(&port)
    .unwrap();
    assert!(needs.links.contains(&IfName::new("xen1.O").unwrap()));
    let k = kernel(link(7, "vif1.0", false));
    let plan = plan_attach(&port, &sc, Path::new(DIR), &k, None).unwrap();
    // eth0 exists: only the typo is warned of.
    assert_eq!(
        plan.warnings,
        [
            "/etc/sysconfig/network/routes:3: route to 192.0.2.242/32 names xen1.O, which does not exist and has no ifcfg-xen1.O: no interface gets this route"
        ]
    );
}
