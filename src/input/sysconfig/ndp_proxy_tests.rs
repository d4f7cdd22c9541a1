use super::*;

const GLOBAL: &str = "/etc/sysconfig/network/ifndp-proxy";
const XEN: &str = "/etc/sysconfig/network/ifndp-proxy-xen1.0";

fn name(s: &str) -> IfName {
    IfName::new(s).unwrap()
}

fn proxy(line: usize, address: &str, on: &str, proxies: &[&str]) -> ProxyLine {
    ProxyLine {
        line,
        address: address.parse().unwrap(),
        address_interface: name(on),
        proxy_interfaces: proxies.iter().map(|p| name(p)).collect(),
    }
}

fn global(text: &str) -> Vec<ProxyLine> {
    parse_ndp_proxy(Path::new(GLOBAL), text, None).unwrap()
}

fn global_err(text: &str) -> String {
    parse_ndp_proxy(Path::new(GLOBAL), text, None)
        .unwrap_err()
        .to_string()
}

#[test]
fn seed_shared_network() {
    let proxies = global(
        "# <address>          <address interface> <proxy interface>
2001:db8:abba::1     eth0                xen1.0
2001:db8:abba::1001  xen1.0              eth0
",
    );
    assert_eq!(
        proxies,
        vec![
            proxy(2, "2001:db8:abba::1", "eth0", &["xen1.0"]),
            proxy(3, "2001:db8:abba::1001", "xen1.0", &["eth0"]),
        ]
    );
}

#[test]
fn several_proxy_interfaces_ipv4_and_trailing_comment() {
    let proxies = global(
        "\n  # indented comment\n\t\n192.0.2.241 xen1.0 eth0 eth1 # eth2\n2001:db8::5 br1 eth0 eth#1\n",
    );
    assert_eq!(
        proxies,
        vec![
            proxy(4, "192.0.2.241", "xen1.0", &["eth0", "eth1"]),
            proxy(5, "2001:db8::5", "br1", &["eth0", "eth#1"]),
        ]
    );
}

#[test]
fn dash_means_the_file_interface() {
    let xen = name("xen1.0");
    let proxies = parse_ndp_proxy(
        Path::new(XEN),
        "2001:db8:abba::1001 - eth0\n2001:db8:abba::1 eth0 xen1.0\n",
        Some(&xen),
    )
    .unwrap();
    assert_eq!(
        proxies,
        vec![
            proxy(1, "2001:db8:abba::1001", "xen1.0", &["eth0"]),
            proxy(2, "2001:db8:abba::1", "eth0", &["xen1.0"]),
        ]
    );
}

#[test]
fn malformed_lines() {
    let cases = [
        (
            "2001:db8::1 - eth0",
            "\"-\" as the address interface is only allowed in ifndp-proxy-<interface>",
        ),
        ("2001:db8::1", "no address interface after 2001:db8::1"),
        (
            "2001:db8::1 # eth0 xen1.0",
            "no address interface after 2001:db8::1",
        ),
        (
            "2001:db8::1 eth0",
            "no proxy interface for 2001:db8::1: list at least one after eth0",
        ),
        (
            "2001:db8::1 eth0 #xen1.0",
            "no proxy interface for 2001:db8::1: list at least one after eth0",
        ),
        (
            "2001:db8::1/64 eth0 xen1.0",
            "invalid address \"2001:db8::1/64\": expected an IPv6 or IPv4 address",
        ),
        (
            "host eth0 xen1.0",
            "invalid address \"host\": expected an IPv6 or IPv4 address",
        ),
        ("2001:db8::1 eth0 -", "\"-\" is not a proxy interface"),
        (
            "2001:db8::1 eth0:0 xen1.0",
            "invalid interface name \"eth0:0\": it contains ':'",
        ),
        (
            "2001:db8::1 eth0 a234567890123456",
            "invalid interface name \"a234567890123456\": it is longer than 15 bytes",
        ),
    ];
    for (text, msg) in cases {
        assert_eq!(
            global_err(&format!("# header\n{text}\n")),
            format!("{GLOBAL}:2: {msg}"),
            "{text}"
        );
    }
}

#[test]
fn empty_file() {
    assert!(global("").is_empty());
    assert!(global("# only\n\n").is_empty());
}
