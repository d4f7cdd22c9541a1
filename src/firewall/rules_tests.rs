use super::*;

fn name(s: &str) -> IfName {
    IfName::new(s).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn guest_mac() -> MacAddr {
    MacAddr::parse("00:16:3e:10:10:10").unwrap()
}

fn chain<'a>(chains: &'a [ChainSpec], name: &str) -> &'a ChainSpec {
    chains.iter().find(|c| c.name == name).unwrap()
}

#[test]
fn net_clears_host_bits_and_caps_the_length() {
    assert_eq!(Net::new(ip("192.0.2.77"), 24).to_string(), "192.0.2.0/24");
    assert_eq!(Net::new(ip("192.0.2.77"), 40).to_string(), "192.0.2.77");
    assert_eq!(Net::new(ip("2001:db8::5"), 64).to_string(), "2001:db8::/64");
    assert_eq!(Net::new(ip("10.1.2.3"), 0).to_string(), "0.0.0.0/0");
    assert_eq!(Net::new(ip("192.0.2.77"), 32).mask(), None);
    assert_eq!(
        Net::new(ip("192.0.2.77"), 20).mask(),
        Some(vec![255, 255, 240, 0])
    );
    assert_eq!(
        Net::new(ip("2001:db8::1"), 56).mask().unwrap()[6..8],
        [0xff, 0x00]
    );
}

#[test]
fn allowed_sets_add_the_eui64_link_local_and_drop_duplicates() {
    let filter = PortFilter::new(
        name("vif3.0"),
        Some(guest_mac()),
        &[
            (ip("192.0.2.10"), 32),
            (ip("2001:db8::10"), 128),
            (ip("192.0.2.10"), 32),
            (ip("10.9.9.9"), 29),
        ],
    );
    let shown: Vec<String> = filter.ipv4.iter().map(|n| n.to_string()).collect();
    assert_eq!(shown, ["192.0.2.10", "10.9.9.8/29"]);
    let shown: Vec<String> = filter.ipv6.iter().map(|n| n.to_string()).collect();
    assert_eq!(shown, ["fe80::216:3eff:fe10:1010", "2001:db8::10"]);
    assert_eq!(
        filter.to_string(),
        "vif3.0 (netdev vifkit-vif3.0): mac 00:16:3e:10:10:10, ipv4 192.0.2.10 10.9.9.8/29, ipv6 fe80::216:3eff:fe10:1010 2001:db8::10"
    );
}

#[test]
fn without_a_mac_any_link_local_is_allowed_and_no_mac_rule_exists() {
    let filter = PortFilter::new(name("tap0"), None, &[(ip("2001:db8::7"), 128)]);
    assert_eq!(
        filter.to_string(),
        "tap0 (netdev vifkit-tap0): mac any, ipv4 none, ipv6 fe80::/64 2001:db8::7"
    );
    let chains = filter.chains();
    assert!(
        chains[0]
            .rules
            .iter()
            .all(|r| r.matches.iter().all(|m| m.field != Field::EtherSource))
    );
    // No IPv4 address: only DHCP discovery and ARP probes get through.
    assert_eq!(
        chain(&chains, "tap0/ip4").to_string(),
        "chain tap0/ip4 {\n\tmeta l4proto 17 udp sport 67 drop\n\tip saddr 0.0.0.0 meta l4proto 17 udp dport 67 accept\n\tdrop\n}"
    );
}

#[test]
fn the_rules_in_nft_words() {
    let filter = PortFilter::new(
        name("vif3.0"),
        Some(guest_mac()),
        &[(ip("192.0.2.10"), 32), (ip("2001:db8::"), 64)],
    );
    let text: Vec<String> = filter.chains().iter().map(|c| c.to_string()).collect();
    assert_eq!(
        text.join("\n"),
        "chain vif3.0 {
\tether saddr != 00:16:3e:10:10:10 drop
\tether type 0x8100 drop
\tether type 0x88a8 drop
\tether type 0x0806 goto vif3.0/arp
\tether type 0x0800 goto vif3.0/ip4
\tether type 0x86dd goto vif3.0/ip6
}
chain vif3.0/arp {
\tarp htype . ptype . hlen . plen != 0x000108000604 drop
\tarp saddr ether != 00:16:3e:10:10:10 drop
\tarp saddr ip 0.0.0.0 accept
\tarp saddr ip 192.0.2.10 accept
\tdrop
}
chain vif3.0/ip4 {
\tmeta l4proto 17 udp sport 67 drop
\tip saddr 0.0.0.0 meta l4proto 17 udp dport 67 accept
\tip saddr 192.0.2.10 accept
\tdrop
}
chain vif3.0/ip6 {
\tmeta l4proto 58 icmpv6 type 134 drop
\tmeta l4proto 58 icmpv6 type 137 drop
\tmeta l4proto 17 udp sport 547 drop
\tmeta l4proto 58 icmpv6 type 136 jump vif3.0/nd
\tip6 saddr :: meta l4proto 58 accept
\tip6 saddr fe80::216:3eff:fe10:1010 accept
\tip6 saddr 2001:db8::/64 accept
\tdrop
}
chain vif3.0/nd {
\ticmpv6 taddr fe80::216:3eff:fe10:1010 return
\ticmpv6 taddr 2001:db8::/64 return
\tdrop
}"
    );
}

#[test]
fn match_data_is_network_order_at_the_field_width() {
    let m = |field, value| Match {
        field,
        negate: false,
        value,
    };
    assert_eq!(
        m(Field::EtherType, Value::Number(ETH_P_IPV6)).data(),
        (vec![0x86, 0xdd], None)
    );
    assert_eq!(
        m(Field::L4Proto, Value::Number(58)).data(),
        (vec![58], None)
    );
    assert_eq!(
        m(Field::UdpSource, Value::Number(547)).data(),
        (vec![0x02, 0x23], None)
    );
    assert_eq!(
        m(
            Field::Ipv4Source,
            Value::Net(Net::new(ip("198.51.100.9"), 30))
        )
        .data(),
        (vec![198, 51, 100, 8], Some(vec![255, 255, 255, 252]))
    );
}

#[test]
fn every_chain_name_is_the_port_or_carries_a_slash() {
    let filter = PortFilter::new(name("a-b.c"), None, &[]);
    let names: Vec<String> = filter.chains().into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        ["a-b.c", "a-b.c/arp", "a-b.c/ip4", "a-b.c/ip6", "a-b.c/nd"]
    );
    assert_eq!(filter.table(), "netdev vifkit-a-b.c");
}
