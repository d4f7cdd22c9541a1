use std::path::Path;

use super::*;
use crate::input::sysconfig::ifcfg::parse_ifcfg;
use crate::input::sysconfig::routes::{RouteKind, RoutesFile, parse_routes};

fn ifname(s: &str) -> IfName {
    IfName::new(s).unwrap()
}

fn routes(text: &str) -> Vec<RouteLine> {
    parse_routes(Path::new("routes"), text, RoutesFile::Global).unwrap()
}

fn ifroute(dev: &str, text: &str) -> Vec<RouteLine> {
    parse_routes(
        Path::new("ifroute"),
        text,
        RoutesFile::Interface(ifname(dev)),
    )
    .unwrap()
}

fn ifcfg(text: &str) -> Ifcfg {
    parse_ifcfg(Path::new("ifcfg"), text).unwrap()
}

/// The selected routes as (destination, line).
fn select(
    dev: &str,
    ifcfg: Option<&Ifcfg>,
    routes: &[RouteLine],
    ifroute: &[RouteLine],
) -> Vec<(String, usize)> {
    routes_for_device(&ifname(dev), ifcfg, routes, ifroute)
        .iter()
        .map(|r| (r.destination.to_string(), r.line))
        .collect()
}

fn pairs(expected: &[(&str, usize)]) -> Vec<(String, usize)> {
    expected.iter().map(|(d, l)| (d.to_string(), *l)).collect()
}

const SEED_ROUTES: &str = "# IPv4
192.0.2.241         -                        - xen1.0
default             192.0.2.254              - eth0
# IPv6
2001:db8:abba::1001 fe80::216:3eff:fe10:1010 - xen1.0
default             fe80::201:1ff:fe01:254   - eth0
2001:db8:abba::/60  -                        - -    unreachable
192.168.1.10        -                        - xen1.0 src 192.168.1.1
";

#[test]
fn seed_vif_gets_its_own_lines_only() {
    let global = routes(SEED_ROUTES);
    let cfg =
        ifcfg("NAME='XEN vm 1 virtual interface 0'\nBOOTPROTO='static'\nSTARTMODE='hotplug'\n");
    assert_eq!(
        select("xen1.0", Some(&cfg), &global, &[]),
        pairs(&[
            ("192.0.2.241/32", 2),
            ("192.168.1.10/32", 8),
            ("2001:db8:abba::1001/128", 5)
        ])
    );
    // The uplink's defaults and the reject route stay the host's business.
    let uplink = ifcfg("IPADDR='192.0.2.253/28'\nIPADDR_1='2001:db8:abba::1/64'\n");
    assert_eq!(
        select("eth0", Some(&uplink), &global, &[]),
        pairs(&[("default", 3), ("default", 6)])
    );
    assert!(select("xen2.0", None, &global, &[]).is_empty());
}

#[test]
fn every_ifroute_line_is_taken_and_wins_over_routes() {
    let global = routes("192.0.2.241 - - xen1.0 metric 5\n10.0.0.0/8 192.0.2.241 - xen1.0\n");
    let own = ifroute(
        "xen1.0",
        "192.0.2.241 - - - metric 5\n2001:db8::/64 - - - blackhole\n",
    );
    let selected = routes_for_device(&ifname("xen1.0"), None, &global, &own);
    let seen: Vec<(String, usize)> = selected
        .iter()
        .map(|r| (r.destination.to_string(), r.line))
        .collect();
    assert_eq!(
        seen,
        pairs(&[
            ("192.0.2.241/32", 1),
            ("2001:db8::/64", 2),
            ("10.0.0.0/8", 2)
        ])
    );
    assert_eq!(selected[0].interface, Some(ifname("xen1.0")));
    assert_eq!(selected[1].kind, RouteKind::Blackhole);
}

#[test]
fn kernel_identity_decides_duplicates() {
    let global = routes(
        "10.0.0.0/8 - - xen1.0\n10.0.0.0/8 - - xen1.0 metric 5\n10.0.0.0/8 - - xen1.0 table 7\n10.0.0.0/8 - - xen1.0 tos 10\n10.0.0.0/8 - - xen1.0\n\
         2001:db8::/64 - - xen1.0 tos 10\n2001:db8::/64 - - xen1.0\n",
    );
    let lines: Vec<usize> = routes_for_device(&ifname("xen1.0"), None, &global, &[])
        .iter()
        .map(|r| r.line)
        .collect();
    assert_eq!(lines, [1, 2, 3, 4, 6]);
}

#[test]
fn dash_routes_assigned_by_gateway_network() {
    let global = routes(
        "default 192.0.2.1 - -
10.0.0.0/8 192.0.2.14 - -
172.16.0.0/12 198.51.100.1 - -
2001:db8:1::/48 2001:db8:abba::9 - -
2001:db8:2::/48 fe80::1 - -
192.0.2.64/26 - - - prohibit
",
    );
    let cfg = ifcfg("IPADDR=192.0.2.14/28\nIPADDR_1=2001:db8:abba::1/64\n");
    assert_eq!(
        select("br1", Some(&cfg), &global, &[]),
        pairs(&[("default", 1), ("10.0.0.0/8", 2), ("2001:db8:1::/48", 4)])
    );
    // Without ifcfg (or with addresses elsewhere) nothing is assigned.
    assert!(select("br1", None, &global, &[]).is_empty());
    let elsewhere = ifcfg("IPADDR=203.0.113.1/24\n");
    assert!(select("br1", Some(&elsewhere), &global, &[]).is_empty());
}

#[test]
fn dash_routes_assigned_by_peer_and_by_device_route() {
    let cfg = ifcfg("IPADDR=10.8.0.1\nREMOTE_IPADDR=10.8.0.2\n");
    let global = routes("10.9.0.0/16 10.8.0.2 - -\n");
    assert_eq!(
        select("tun0", Some(&cfg), &global, &[]),
        pairs(&[("10.9.0.0/16", 1)])
    );

    // A device route already selected for the vif makes its gateways reachable there.
    let global = routes(
        "198.51.100.0/24 198.51.100.7 - -\n198.51.100.0/28 - - xen1.0\n203.0.113.0/24 198.51.100.7 - -\n203.0.113.0/24 198.51.100.7 - - table 9\n",
    );
    assert_eq!(
        select("xen1.0", None, &global, &[]),
        pairs(&[("198.51.100.0/28", 2), ("203.0.113.0/24", 3)])
    );
}

#[test]
fn multipath_dash_routes() {
    let global = routes(
        "10.0.0.0/8 - - - nexthop via 203.0.113.1 nexthop via 192.0.2.9\n\
         10.1.0.0/16 - - - nexthop via 203.0.113.1 dev xen1.0\n\
         10.2.0.0/16 - - - nexthop via 203.0.113.1 dev eth0\n",
    );
    let cfg = ifcfg("IPADDR=192.0.2.14/28\n");
    assert_eq!(
        select("xen1.0", Some(&cfg), &global, &[]),
        pairs(&[("10.0.0.0/8", 1), ("10.1.0.0/16", 2)])
    );
}

#[test]
fn device_routes_come_before_gateway_routes() {
    let global = routes("10.0.0.0/8 192.0.2.5 - xen1.0\n192.0.2.0/24 - - xen1.0\n");
    let own = ifroute("xen1.0", "172.16.0.0/12 192.0.2.6\n192.0.2.6\n");
    assert_eq!(
        select("xen1.0", None, &global, &own),
        pairs(&[
            ("192.0.2.6/32", 2),
            ("192.0.2.0/24", 2),
            ("172.16.0.0/12", 1),
            ("10.0.0.0/8", 1)
        ])
    );
}
