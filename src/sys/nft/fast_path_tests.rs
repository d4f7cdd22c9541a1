//! The fast rules: what each takes, and that the chain after them is the chain without them.

use super::super::tests::{guest_mac, ip, name};
use super::*;

/// The chain as it was before the fast rules, built from its parts here.
fn without_fast_rules(filter: &PortFilter) -> Vec<Rule> {
    let mut full = filter.link_layer_rules();
    full.extend(filter.ipv4_rules());
    full.extend(filter.ipv6_rules());
    full.extend(filter.arp_rules());
    full
}

/// The chain's fast rules: those ahead of the first drop.
fn fast_rules(filter: &PortFilter) -> Vec<String> {
    let chain = filter.chain();
    let fast = chain
        .rules
        .iter()
        .take_while(|r| r.verdict == Verdict::Accept);
    fast.map(Rule::to_string).collect()
}

#[test]
fn the_fast_rules_take_each_familys_first_block_that_is_not_link_local() {
    let filter = PortFilter::new(
        name("vif3.0"),
        Some(guest_mac()),
        &[
            Prefix::new(ip("2001:db8:1::5"), 64),
            Prefix::new(ip("198.51.100.9"), 30),
            Prefix::new(ip("192.0.2.10"), 32),
            Prefix::new(ip("2001:db8:2::5"), 128),
        ],
    );
    let guest =
        "ether saddr 00:16:3e:10:10:10 ether daddr & ff:ff:ff:ff:ff:f0 != 01:80:c2:00:00:00";
    assert_eq!(
        fast_rules(&filter),
        [
            format!(
                "ether type 0x0800 {guest} ip saddr 198.51.100.8/30 th sport != 67 th dport != 68 accept"
            ),
            format!(
                "ether type 0x86dd {guest} ip6 saddr 2001:db8:1::/64 meta l4proto != 58 th sport != 547 th dport != 546 accept"
            ),
        ]
    );
    // Then the chain as it was without them, whole.
    assert_eq!(filter.chain().rules[2..], without_fast_rules(&filter));
}

#[test]
fn a_family_without_a_block_to_take_has_no_fast_rule() {
    // No MAC: no MAC to check; no IPv4 block; IPv6's link-local only: none at all.
    let filter = PortFilter::new(name("tap0"), None, &[]);
    assert_eq!(fast_rules(&filter), Vec::<String>::new());
    assert_eq!(filter.chain().rules, without_fast_rules(&filter));
    let filter = PortFilter::new(name("tap0"), None, &[Prefix::new(ip("2001:db8::7"), 128)]);
    assert_eq!(
        fast_rules(&filter),
        [
            "ether type 0x86dd ether daddr & ff:ff:ff:ff:ff:f0 != 01:80:c2:00:00:00 ip6 saddr 2001:db8::7 meta l4proto != 58 th sport != 547 th dport != 546 accept"
        ]
    );
    let filter = PortFilter::new(
        name("vif3.0"),
        Some(guest_mac()),
        &[Prefix::new(ip("192.0.2.10"), 32)],
    );
    assert_eq!(
        fast_rules(&filter),
        [
            "ether type 0x0800 ether saddr 00:16:3e:10:10:10 ether daddr & ff:ff:ff:ff:ff:f0 != 01:80:c2:00:00:00 ip saddr 192.0.2.10 th sport != 67 th dport != 68 accept"
        ]
    );
}

#[test]
fn a_dhcp_server_port_leaves_its_ports_unchecked_and_a_trunk_changes_nothing() {
    let mut filter = PortFilter::new(
        name("vif3.0"),
        Some(guest_mac()),
        &[
            Prefix::new(ip("192.0.2.10"), 32),
            Prefix::new(ip("2001:db8::1"), 128),
        ],
    );
    filter.tagged_vlans = vec![20];
    filter.traffic.ethertypes = vec![0x8863];
    let guest =
        "ether saddr 00:16:3e:10:10:10 ether daddr & ff:ff:ff:ff:ff:f0 != 01:80:c2:00:00:00";
    let with_ports = [
        format!(
            "ether type 0x0800 {guest} ip saddr 192.0.2.10 th sport != 67 th dport != 68 accept"
        ),
        format!(
            "ether type 0x86dd {guest} ip6 saddr 2001:db8::1 meta l4proto != 58 th sport != 547 th dport != 546 accept"
        ),
    ];
    assert_eq!(fast_rules(&filter), with_ports);
    filter.traffic.dhcp_server = true;
    filter.traffic.router_advertisements = true;
    assert_eq!(
        fast_rules(&filter),
        [
            format!("ether type 0x0800 {guest} ip saddr 192.0.2.10 accept"),
            format!("ether type 0x86dd {guest} ip6 saddr 2001:db8::1 meta l4proto != 58 accept"),
        ]
    );
}
