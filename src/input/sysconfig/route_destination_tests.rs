use std::path::Path;

use super::*;
use crate::input::sysconfig::routes::{Destination, RoutesFile, parse_routes};

const ROUTES: &str = "/etc/sysconfig/network/routes";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> Destination {
    let (address, len) = s.split_once('/').unwrap();
    Destination::Net {
        address: ip(address),
        prefix_len: len.parse().unwrap(),
    }
}

fn parse(text: &str) -> anyhow::Result<Destination> {
    let mut routes = parse_routes(Path::new(ROUTES), text, RoutesFile::Global)?;
    assert_eq!(routes.len(), 1, "{text}");
    Ok(routes.remove(0).destination)
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn netmask_column_forms() {
    let cases = [
        ("192.168.0.0 - 255.255.255.0 eth0", net("192.168.0.0/24")),
        ("192.168.0.0 - 24 eth0", net("192.168.0.0/24")),
        ("192.168.0.1 - - eth0", net("192.168.0.1/32")),
        ("192.168.0.1 - 32 eth0", net("192.168.0.1/32")),
        ("192.168.0.0/24 - 255.255.255.0 eth0", net("192.168.0.0/24")),
        ("2001:db8::/48 - 48 eth0", net("2001:db8::/48")),
        ("2001:db8::1 - - eth0", net("2001:db8::1/128")),
        ("2001:db8:: - 128 eth0", net("2001:db8::/128")),
        ("10.10/16 - - eth0", net("10.10.0.0/16")),
        ("10/8 - - eth0", net("10.0.0.0/8")),
        ("10.10 - 255.255.0.0 eth0", net("10.10.0.0/16")),
        ("172.16.1/24 - - eth0", net("172.16.1.0/24")),
        ("0.0.0.0/0 - - eth0", Destination::Default(Family::V4)),
        ("0.0.0.0 - 0.0.0.0 eth0", Destination::Default(Family::V4)),
        ("::/0 - - eth0", Destination::Default(Family::V6)),
        ("*/0 192.0.2.1", Destination::Default(Family::V4)),
        (
            "default 192.0.2.1 0.0.0.0 eth0",
            Destination::Default(Family::V4),
        ),
        ("default 2001:db8::1 0", Destination::Default(Family::V6)),
    ];
    for (text, destination) in cases {
        assert_eq!(parse(text).unwrap(), destination, "{text}");
    }
}

#[test]
fn destination_display() {
    assert_eq!(Destination::Default(Family::V6).to_string(), "default");
    assert_eq!(net("192.0.2.241/32").to_string(), "192.0.2.241/32");
    assert_eq!(net("2001:db8:abba::/60").to_string(), "2001:db8:abba::/60");
    assert_eq!(Family::V4.to_string(), "IPv4");
}

#[test]
fn destination_errors() {
    #[rustfmt::skip]
    let cases = [
        ("foo - - eth0", "invalid destination \"foo\""),
        ("10.0.0.0/33 - - eth0", "invalid destination \"10.0.0.0/33\": the prefix length must be 0 to 32"),
        ("2001:db8::/129 - - eth0", "invalid destination \"2001:db8::/129\": the prefix length must be 0 to 128"),
        ("10.0.0.0/x - - eth0", "invalid destination \"10.0.0.0/x\": bad prefix length"),
        ("10.0.0.0/ - - eth0", "invalid destination \"10.0.0.0/\": bad prefix length"),
        ("10.10 - - eth0", "invalid destination \"10.10\": a shortened IPv4 network needs a prefix length, like 10.10/16"),
        ("10.256/16 - - eth0", "invalid destination \"10.256/16\""),
        ("10.0.0.1/24 - - eth0", "destination 10.0.0.1/24 has host bits set: the network is 10.0.0.0/24"),
        ("2001:db8::1/64 - - eth0", "destination 2001:db8::1/64 has host bits set: the network is 2001:db8::/64"),
        ("10.0.0.1 - 255.255.255.0 eth0", "destination 10.0.0.1 has host bits set: the network is 10.0.0.0/24"),
        ("10.0.0.0 - 255.0.255.0 eth0", "invalid netmask \"255.0.255.0\": expected a mask like 255.255.255.0 or a prefix length"),
        ("10.0.0.0 - 129 eth0", "invalid netmask \"129\": expected a mask like 255.255.255.0 or a prefix length"),
        ("10.0.0.0 - 33 eth0", "invalid netmask \"33\": the prefix length must be 0 to 32 for IPv4"),
        ("2001:db8:: - 255.255.0.0 eth0", "invalid netmask \"255.255.0.0\": an IPv6 destination takes its prefix length as /len"),
        ("2001:db8:: - ffff:ffff:: eth0", "invalid netmask \"ffff:ffff::\": an IPv6 destination takes its prefix length as /len"),
        ("10.0.0.0/8 - 255.255.0.0 eth0", "netmask \"255.255.0.0\" contradicts the prefix length of destination \"10.0.0.0/8\""),
        ("default 192.0.2.1 255.255.255.0 eth0", "a default route takes no netmask, found \"255.255.255.0\""),
    ];
    for (text, msg) in cases {
        assert_eq!(err(text), format!("{ROUTES}:1: {msg}"), "{text}");
    }
}

#[test]
fn destination_contains() {
    assert!(net("10.0.0.0/8").contains(ip("10.255.0.1")));
    assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
    assert!(!net("10.0.0.0/8").contains(ip("::a00:1")));
    assert!(Destination::Default(Family::V6).contains(ip("2001:db8::1")));
    assert!(!Destination::Default(Family::V6).contains(ip("192.0.2.1")));
    assert!(net("2001:db8:abba::/60").contains(ip("2001:db8:abba:f::1")));
    assert!(!net("2001:db8:abba::/60").contains(ip("2001:db8:abba:10::1")));
}

#[test]
fn short_ipv4_expansion() {
    assert_eq!(expand_short_ipv4("10"), Some(ip("10.0.0.0")));
    assert_eq!(expand_short_ipv4("10.10"), Some(ip("10.10.0.0")));
    assert_eq!(expand_short_ipv4("172.16.1"), Some(ip("172.16.1.0")));
    assert_eq!(expand_short_ipv4("1.2.3.4"), None);
    assert_eq!(expand_short_ipv4("10.256"), None);
    assert_eq!(expand_short_ipv4("10."), None);
    assert_eq!(expand_short_ipv4(""), None);
}
