use super::*;

const ROUTES: &str = "/etc/sysconfig/network/routes";
const IFROUTE: &str = "/etc/sysconfig/network/ifroute-xen1.0";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ifname(s: &str) -> IfName {
    IfName::new(s).unwrap()
}

fn net(s: &str) -> Destination {
    let (address, len) = s.split_once('/').unwrap();
    Destination::Net {
        address: ip(address),
        prefix_len: len.parse().unwrap(),
    }
}

/// A unicast route with nothing but a destination, for struct-update syntax.
fn route(line: usize, destination: Destination) -> RouteLine {
    RouteLine {
        line,
        destination,
        gateway: None,
        interface: None,
        kind: RouteKind::Unicast,
        src: None,
        metric: None,
        table: None,
        scope: None,
        protocol: None,
        mtu: None,
        metrics: vec![],
        nexthops: vec![],
        realm: None,
        mark: None,
        tos: None,
    }
}

fn global(text: &str) -> Vec<RouteLine> {
    parse_routes(Path::new(ROUTES), text, RoutesFile::Global).unwrap()
}

fn one(text: &str) -> RouteLine {
    let mut routes = global(text);
    assert_eq!(routes.len(), 1, "{text}");
    routes.remove(0)
}

fn ifroute(text: &str) -> Vec<RouteLine> {
    parse_routes(
        Path::new(IFROUTE),
        text,
        RoutesFile::Interface(ifname("xen1.0")),
    )
    .unwrap()
}

fn err(text: &str) -> String {
    parse_routes(Path::new(ROUTES), text, RoutesFile::Global)
        .unwrap_err()
        .to_string()
}

#[test]
fn seed_routed_one_shared_network() {
    let routes = global(
        "# IPv4
# - first virtual machine:
192.0.2.241         -                        - xen1.0
# - default route:
default             192.0.2.254              - eth0

# IPv6
# - first virtual machine:
2001:db8:abba::1001 fe80::216:3eff:fe10:1010 - xen1.0
#   default -- required because forwarding is enabled
default             fe80::201:1ff:fe01:254   - eth0
",
    );
    assert_eq!(
        routes,
        vec![
            RouteLine {
                interface: Some(ifname("xen1.0")),
                ..route(3, net("192.0.2.241/32"))
            },
            RouteLine {
                gateway: Some(ip("192.0.2.254")),
                interface: Some(ifname("eth0")),
                ..route(5, Destination::Default(Family::V4))
            },
            RouteLine {
                gateway: Some(ip("fe80::216:3eff:fe10:1010")),
                interface: Some(ifname("xen1.0")),
                ..route(9, net("2001:db8:abba::1001/128"))
            },
            RouteLine {
                gateway: Some(ip("fe80::201:1ff:fe01:254")),
                interface: Some(ifname("eth0")),
                ..route(11, Destination::Default(Family::V6))
            },
        ]
    );
    assert_eq!(routes[0].family(), Family::V4);
    assert_eq!(routes[3].family(), Family::V6);
}

#[test]
fn seed_reject_route_for_the_routed_prefix() {
    let routes = global(
        "# IPv4\ndefault            192.0.2.254             - eth0\n\n# IPv6
2001:db8:abba::/60 -                       - -    unreachable\n",
    );
    assert_eq!(
        routes[1],
        RouteLine {
            kind: RouteKind::Unreachable,
            ..route(5, net("2001:db8:abba::/60"))
        }
    );
}

#[test]
fn seed_routes_with_src_as_vif_nat_installs() {
    let routes = global(
        "\t192.168.1.10        - - xen1.0 src 192.168.1.1
\t2001:db8:abba::1001 - - xen1.0 src 2001:db8:abba::1\n",
    );
    assert_eq!(
        routes,
        vec![
            RouteLine {
                interface: Some(ifname("xen1.0")),
                src: Some(ip("192.168.1.1")),
                ..route(1, net("192.168.1.10/32"))
            },
            RouteLine {
                interface: Some(ifname("xen1.0")),
                src: Some(ip("2001:db8:abba::1")),
                ..route(2, net("2001:db8:abba::1001/128"))
            },
        ]
    );
}

#[test]
fn seed_bridged_default_and_commented_ipv6_default() {
    let routes = global(
        "# IPv4\ndefault 192.168.0.254           - br0\n#default fe80::201:1ff:fe01:254 - br0\n",
    );
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].interface, Some(ifname("br0")));
}

#[test]
fn ifroute_dash_and_omitted_interface_mean_the_file_interface() {
    let routes = ifroute(
        "192.0.2.241\n192.0.2.242 -\n192.0.2.243 - -\n192.0.2.244 - - -\n192.0.2.245 - - xen1.0\n192.0.2.246 - - eth0\n",
    );
    let lines: Vec<(usize, Option<&str>)> = routes
        .iter()
        .map(|r| (r.line, r.interface.as_ref().map(IfName::as_str)))
        .collect();
    assert_eq!(
        lines,
        [
            (1, Some("xen1.0")),
            (2, Some("xen1.0")),
            (3, Some("xen1.0")),
            (4, Some("xen1.0")),
            (5, Some("xen1.0")),
        ]
    );
}

#[test]
fn no_gateway_spellings() {
    for text in [
        "10.0.0.0/8 - - eth0",
        "10.0.0.0/8 * - eth0",
        "10.0.0.0/8 0.0.0.0 - eth0",
        "192.0.2.253 192.0.2.253 - eth0",
        "2001:db8::/64 :: - eth0",
        "2001:db8::5 2001:db8::5 - eth0",
    ] {
        assert_eq!(one(text).gateway, None, "{text}");
    }
    // The unspecified gateway still tells the family of a default route.
    assert_eq!(
        one("default 0.0.0.0 - eth0").destination,
        Destination::Default(Family::V4)
    );
    assert_eq!(
        one("default :: - eth0").destination,
        Destination::Default(Family::V6)
    );
    // Only a host destination makes an equal gateway disappear.
    assert_eq!(
        one("192.0.2.0/24 192.0.2.0 - eth0").gateway,
        Some(ip("192.0.2.0"))
    );
}

#[test]
fn default_family_from_src_or_nexthop() {
    assert_eq!(
        one("default - - eth0 src 2001:db8::1").destination,
        Destination::Default(Family::V6)
    );
    assert_eq!(
        one("default - - - nexthop via 192.0.2.1").destination,
        Destination::Default(Family::V4)
    );
}

#[test]
fn continuation_lines_and_comments() {
    let routes = global(
        "# multipath, as in routes(5)
192.168.0.0/24  -  -  -  table 42 \\
                nexthop via 192.168.1.1 dev eth1 weight 2 \\
                nexthop via 192.168.1.2 dev eth2 weight 3
10.0.0.0/8 192.0.2.1 - eth0 # cut here \\ no continuation in a comment
10.1.0.0/16\\
 192.0.2.1 \\   # a comment after the backslash
 - eth0
",
    );
    assert_eq!(routes.len(), 3);
    assert_eq!(
        routes[0],
        RouteLine {
            table: Some(42),
            nexthops: vec![
                NexthopLine {
                    gateway: ip("192.168.1.1"),
                    dev: Some(ifname("eth1")),
                    weight: Some(2),
                    onlink: false,
                },
                NexthopLine {
                    gateway: ip("192.168.1.2"),
                    dev: Some(ifname("eth2")),
                    weight: Some(3),
                    onlink: false,
                },
            ],
            ..route(2, net("192.168.0.0/24"))
        }
    );
    assert_eq!(routes[1].line, 5);
    assert_eq!(
        routes[2],
        RouteLine {
            gateway: Some(ip("192.0.2.1")),
            interface: Some(ifname("eth0")),
            ..route(6, net("10.1.0.0/16"))
        }
    );
}

#[test]
fn backslash_on_the_last_line_ends_the_route() {
    assert_eq!(global("10.0.0.0/8 - - eth0 \\").len(), 1);
    assert_eq!(global("10.0.0.0/8 - - eth0 \\\n").len(), 1);
}

#[test]
fn text_after_backslash() {
    assert_eq!(
        err("\n10.0.0.0/8 - - eth0 \\ metric 5\n"),
        format!("{ROUTES}:2: text after \"\\\": a backslash may only end a line")
    );
}

#[test]
fn man_page_options() {
    assert_eq!(
        one("10.0.0.0/8 192.0.2.1 - eth0 mtu lock 1400 table 100").mtu,
        Some((1400, true))
    );
    assert_eq!(
        one("10.0.0.0/8 192.0.2.1 - eth0 mtu lock 1400 table 100").table,
        Some(100)
    );
    assert_eq!(
        one("10.0.0.0/8 192.0.2.1 - eth0 mtu 1400").mtu,
        Some((1400, false))
    );
    assert_eq!(
        one("10.0.0.0/8 - - - type unreachable").kind,
        RouteKind::Unreachable
    );
    let local = one("192.0.2.9 - - eth0 local table local scope host proto kernel");
    assert_eq!(local.kind, RouteKind::Local);
    assert_eq!(local.table, Some(255));
    assert_eq!(local.scope, Some(254));
    assert_eq!(local.protocol, Some(2));
    assert_eq!(local.interface, Some(ifname("eth0")));
}

#[test]
fn reject_routes_drop_gateway_and_interface() {
    for kind in ["unreachable", "prohibit", "blackhole", "throw"] {
        for text in [
            format!("10.0.0.0/8 - - eth0 {kind}"),
            format!("10.0.0.0/8 192.0.2.1 - eth0 type {kind}"),
            format!("10.0.0.0/8 - - - {kind} nexthop via 192.0.2.1"),
        ] {
            let r = one(&text);
            assert_eq!(r.kind.name(), kind);
            assert!(r.kind.is_reject());
            assert_eq!(
                (r.gateway, r.interface, r.nexthops.len()),
                (None, None, 0),
                "{text}"
            );
        }
    }
}

#[test]
fn other_types_keep_their_interface() {
    for kind in [
        "unicast",
        "local",
        "broadcast",
        "multicast",
        "anycast",
        "nat",
    ] {
        let r = one(&format!("10.0.0.0/8 - - eth0 {kind}"));
        assert_eq!(r.kind.to_string(), kind);
        assert!(!r.kind.is_reject());
        assert_eq!(r.interface, Some(ifname("eth0")));
    }
}

#[test]
fn gateway_and_family_errors() {
    assert_eq!(
        err(
            "# IPv4\n192.0.2.241 - - xen1.0\ndefault 192.0.2.254 - eth0\n10.0.0.0/8 192.0.2.300 - eth0\n"
        ),
        format!("{ROUTES}:4: invalid gateway \"192.0.2.300\"")
    );
    let cases = [
        (
            "192.0.2.0/24 fe80::1 - eth0",
            "gateway fe80::1 is IPv6 but destination 192.0.2.0/24 is IPv4",
        ),
        (
            "2001:db8::/64 192.0.2.1 - eth0",
            "gateway 192.0.2.1 is IPv4 but destination 2001:db8::/64 is IPv6",
        ),
        (
            "192.168.1.10 - - xen1.0 src 2001:db8:abba::1",
            "src 2001:db8:abba::1 is IPv6 but destination 192.168.1.10 is IPv4",
        ),
        (
            "default 192.0.2.1 - eth0 src 2001:db8::1",
            "src 2001:db8::1 is IPv6 but gateway 192.0.2.1 is IPv4",
        ),
        (
            "10.0.0.0/8 :: - eth0",
            "gateway :: is IPv6 but destination 10.0.0.0/8 is IPv4",
        ),
        (
            "10.0.0.0/8 - - - nexthop via 2001:db8::1",
            "nexthop 2001:db8::1 is IPv6 but destination 10.0.0.0/8 is IPv4",
        ),
        (
            "default - - eth0",
            "cannot tell whether this default route is IPv4 or IPv6: give a gateway, or write 0.0.0.0/0 or ::/0",
        ),
        (
            "default - - - unreachable",
            "cannot tell whether this default route is IPv4 or IPv6: give a gateway, or write 0.0.0.0/0 or ::/0",
        ),
        (
            "10.0.0.0/8",
            "route to 10.0.0.0/8 has neither a gateway nor an interface",
        ),
        (
            "10.0.0.0/8 - - - metric 5",
            "route to 10.0.0.0/8 has neither a gateway nor an interface",
        ),
        (
            "10.0.0.0/8 192.0.2.1 - - nexthop via 192.0.2.2",
            "a route takes either a gateway or nexthops, not both",
        ),
        (
            "10.0.0.0/8 - - eth0:1",
            "invalid interface name \"eth0:1\": it contains ':'",
        ),
        (
            "10.0.0.0/8 - - a234567890123456",
            "invalid interface name \"a234567890123456\": it is longer than 15 bytes",
        ),
    ];
    for (text, msg) in cases {
        assert_eq!(err(text), format!("{ROUTES}:1: {msg}"), "{text}");
    }
}

#[test]
fn errors_name_the_first_line_of_a_continued_route() {
    assert_eq!(
        err("10.0.0.0/8 - - eth0 \\\n metric \\\n five\n"),
        format!("{ROUTES}:1: invalid metric \"five\": expected a number")
    );
}

#[test]
fn ifroute_errors_name_the_ifroute_file() {
    let e = parse_routes(
        Path::new(IFROUTE),
        "\n\n10.0.0.0/8 - - - via 192.0.2.1",
        RoutesFile::Interface(ifname("xen1.0")),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{IFROUTE}:3: \"via\" is not a route option: the gateway goes in the second column"
        )
    );
}

#[test]
fn empty_and_comment_only_files() {
    assert!(global("").is_empty());
    assert!(global("\n   \n# nothing\n\t# at all\n").is_empty());
}
