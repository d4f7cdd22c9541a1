use super::*;
use crate::types::prefix::Prefix;

pub(super) fn name(s: &str) -> IfName {
    IfName::new(s).unwrap()
}

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(super) fn guest_mac() -> MacAddr {
    MacAddr::parse("00:16:3e:10:10:10").unwrap()
}

#[test]
fn blocks_are_networks_shown_as_nft_does() {
    let block = |a, len| Prefix::new(ip(a), len).network();
    assert_eq!(
        block("192.0.2.77", 24).compact().to_string(),
        "192.0.2.0/24"
    );
    assert_eq!(block("192.0.2.77", 40).compact().to_string(), "192.0.2.77");
    assert_eq!(
        block("2001:db8::5", 64).compact().to_string(),
        "2001:db8::/64"
    );
    assert_eq!(block("10.1.2.3", 0).compact().to_string(), "0.0.0.0/0");
    assert_eq!(block("192.0.2.77", 20).mask_bytes(), [255, 255, 240, 0]);
    assert_eq!(block("2001:db8::1", 56).mask_bytes()[6..8], [0xff, 0x00]);
}

#[test]
fn allowed_sets_add_the_eui64_link_local_and_drop_duplicates() {
    let filter = PortFilter::new(
        name("vif3.0"),
        Some(guest_mac()),
        &[
            Prefix::new(ip("192.0.2.10"), 32),
            Prefix::new(ip("2001:db8::10"), 128),
            Prefix::new(ip("192.0.2.10"), 32),
            Prefix::new(ip("10.9.9.9"), 29),
        ],
    );
    let shown: Vec<String> = filter
        .ipv4
        .iter()
        .map(|n| n.compact().to_string())
        .collect();
    assert_eq!(shown, ["192.0.2.10", "10.9.9.8/29"]);
    let shown: Vec<String> = filter
        .ipv6
        .iter()
        .map(|n| n.compact().to_string())
        .collect();
    assert_eq!(shown, ["fe80::216:3eff:fe10:1010", "2001:db8::10"]);
    assert_eq!(
        filter.to_string(),
        "vif3.0 (netdev vifkit-antispoof-085): mac 00:16:3e:10:10:10, ipv4 192.0.2.10 10.9.9.8/29, ipv6 fe80::216:3eff:fe10:1010 2001:db8::10"
    );
}

#[test]
fn without_a_mac_any_link_local_is_allowed_and_no_mac_rule_exists() {
    let filter = PortFilter::new(name("tap0"), None, &[Prefix::new(ip("2001:db8::7"), 128)]);
    assert_eq!(
        filter.to_string(),
        "tap0 (netdev vifkit-antispoof-214): mac any, ipv4 none, ipv6 fe80::/64 2001:db8::7"
    );
    let chain = filter.chain();
    let mac_checks = [Field::EtherSource, Field::ArpSenderMac];
    assert!(
        chain
            .rules
            .iter()
            .all(|r| r.matches.iter().all(|m| !mac_checks.contains(&m.field)))
    );
    // No IPv4 address: only DHCP discovery and ARP probes get through.
    let text = chain.to_string();
    for rule in [
        "\tether type 0x0806 arp saddr ip != 0.0.0.0 drop\n",
        "\tether type 0x0800 ip saddr 0.0.0.0 meta l4proto 17 udp dport 67 accept\n\tether type 0x0800 drop\n",
    ] {
        assert!(text.contains(rule), "{rule:?} not in {text}");
    }
}

#[test]
fn the_rules_in_nft_words() {
    let filter = PortFilter::new(
        name("vif3.0"),
        Some(guest_mac()),
        &[
            Prefix::new(ip("192.0.2.10"), 32),
            Prefix::new(ip("2001:db8::"), 64),
        ],
    );
    assert_eq!(
        filter.chain().to_string(),
        "chain vif3.0 {
\tether type 0x0800 ether saddr 00:16:3e:10:10:10 ether daddr & ff:ff:ff:ff:ff:f0 != 01:80:c2:00:00:00 ip saddr 192.0.2.10 th sport != 67 th dport != 68 accept
\tether type 0x86dd ether saddr 00:16:3e:10:10:10 ether daddr & ff:ff:ff:ff:ff:f0 != 01:80:c2:00:00:00 ip6 saddr 2001:db8::/64 meta l4proto != 58 th sport != 547 th dport != 546 accept
\tether saddr != 00:16:3e:10:10:10 drop
\tether daddr & ff:ff:ff:ff:ff:f0 == 01:80:c2:00:00:00 drop
\tether type != 0x0800 ether type != 0x0806 ether type != 0x86dd drop
\tether type 0x0800 meta l4proto 17 udp sport 67 drop
\tether type 0x0800 meta l4proto 17 udp dport 68 drop
\tether type 0x0800 ip saddr 0.0.0.0 meta l4proto 17 udp dport 67 accept
\tether type 0x0800 ip saddr != 192.0.2.10 drop
\tether type 0x0800 accept
\tether type 0x86dd exthdr frag exists meta l4proto 58 drop
\tether type 0x86dd meta l4proto 58 icmpv6 type 134 drop
\tether type 0x86dd meta l4proto 58 icmpv6 type 137 drop
\tether type 0x86dd meta l4proto 17 udp sport 547 drop
\tether type 0x86dd meta l4proto 17 udp dport 546 drop
\tether type 0x86dd meta l4proto 58 icmpv6 type 136 icmpv6 taddr != fe80::216:3eff:fe10:1010 icmpv6 taddr != 2001:db8::/64 drop
\tether type 0x86dd meta l4proto 58 icmpv6 type 133 @th,64,16 != 0x0101 drop
\tether type 0x86dd meta l4proto 58 icmpv6 type 133 @th,64,16 0x0101 @th,80,48 != 00:16:3e:10:10:10 drop
\tether type 0x86dd meta l4proto 58 icmpv6 type 135 @th,192,16 != 0x0101 @th,192,16 != 0x0e01 drop
\tether type 0x86dd meta l4proto 58 icmpv6 type 135 @th,192,16 0x0101 @th,208,48 != 00:16:3e:10:10:10 drop
\tether type 0x86dd meta l4proto 58 icmpv6 type 135 @th,192,16 0x0e01 ip6 saddr != :: drop
\tether type 0x86dd meta l4proto 58 icmpv6 type 136 @th,192,16 != 0x0201 drop
\tether type 0x86dd meta l4proto 58 icmpv6 type 136 @th,192,16 0x0201 @th,208,48 != 00:16:3e:10:10:10 drop
\tether type 0x86dd meta l4proto 58 icmpv6 type 135 ip6 saddr :: icmpv6 taddr != fe80::216:3eff:fe10:1010 icmpv6 taddr != 2001:db8::/64 drop
\tether type 0x86dd meta l4proto 58 icmpv6 type 135 ip6 saddr :: accept
\tether type 0x86dd meta l4proto 58 icmpv6 type 131 ip6 saddr :: accept
\tether type 0x86dd meta l4proto 58 icmpv6 type 143 ip6 saddr :: accept
\tether type 0x86dd ip6 saddr != fe80::216:3eff:fe10:1010 ip6 saddr != 2001:db8::/64 drop
\tether type 0x86dd accept
\tether type 0x0806 arp htype . ptype . hlen . plen != 0x000108000604 drop
\tether type 0x0806 arp saddr ether != 00:16:3e:10:10:10 drop
\tether type 0x0806 arp saddr ip != 0.0.0.0 arp saddr ip != 192.0.2.10 drop
}"
    );
}

fn vif3_filter() -> PortFilter {
    PortFilter::new(
        name("vif3.0"),
        Some(guest_mac()),
        &[Prefix::new(ip("192.0.2.10"), 32)],
    )
}

#[test]
fn a_trunk_passes_tagged_frames_of_its_vlans_only() {
    let mut filter = vif3_filter();
    filter.tagged_vlans = vec![20, 30];
    let text = filter.chain().to_string();
    for rule in [
        "\tether type != 0x0800 ether type != 0x0806 ether type != 0x86dd ether type != 0x8100 drop\n",
        "\tether type 0x8100 vlan id != 20 vlan id != 30 drop\n",
    ] {
        assert!(text.contains(rule), "{rule:?} not in {text}");
    }
    assert!(
        filter
            .to_string()
            .ends_with(", tagged frames on VLANs 20,30")
    );
    // The priority bits are masked off: a tag of priority 5 on VLAN 20 is VLAN 20.
    let vid = Match {
        field: Field::VlanId,
        negate: true,
        value: Value::Number(20),
    };
    assert_eq!(vid.data(), (vec![0, 20], Some(vec![0x0f, 0xff])));
    // Past MAX_CHECKED_VLANS ids, any VLAN passes rather than a rule too long to load.
    filter.tagged_vlans = (1..=MAX_CHECKED_VLANS as u16 + 1).collect();
    let text = filter.chain().to_string();
    assert!(text.contains("ether type != 0x8100 drop") && !text.contains("vlan id"));
}

#[test]
fn a_port_without_a_trunk_drops_every_tag() {
    let text = vif3_filter().chain().to_string();
    assert!(
        !text.contains("0x8100") && !text.contains("vlan id"),
        "{text}"
    );
}

#[test]
fn the_admin_opts_in_to_server_traffic_and_more_ether_types() {
    let mut filter = vif3_filter();
    filter.traffic.dhcp_server = true;
    filter.traffic.router_advertisements = true;
    filter.traffic.ethertypes = vec![0x8863, 0x8864];
    let text = filter.chain().to_string();
    for gone in [
        "udp sport 67",
        "udp dport 68",
        "udp sport 547",
        "udp dport 546",
        "icmpv6 type 134",
    ] {
        assert!(!text.contains(gone), "{gone:?} in {text}");
    }
    for kept in [
        "ether type != 0x86dd ether type != 0x8863 ether type != 0x8864 drop",
        "icmpv6 type 137 drop",
        "ip saddr != 192.0.2.10 drop",
    ] {
        assert!(text.contains(kept), "{kept:?} not in {text}");
    }
    assert!(
        filter
            .to_string()
            .ends_with(", also dhcp-server, router-advertisements, ether types 0x8863 0x8864")
    );
}

#[test]
fn without_a_mac_the_ndp_options_are_not_checked() {
    let filter = PortFilter::new(name("tap0"), None, &[Prefix::new(ip("2001:db8::7"), 128)]);
    let text = filter.chain().to_string();
    assert!(!text.contains("@th"), "{text}");
    assert!(text.contains("exthdr frag exists meta l4proto 58 drop"));
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
            Value::Net(Prefix::new(ip("198.51.100.9"), 30).network())
        )
        .data(),
        (vec![198, 51, 100, 8], Some(vec![255, 255, 255, 252]))
    );
}

#[test]
fn the_chain_is_named_after_the_port() {
    let filter = PortFilter::new(name("a-b.c"), None, &[]);
    assert_eq!(filter.chain().name, "a-b.c");
    assert_eq!(filter.table(), "netdev vifkit-antispoof-060");
}

#[test]
fn a_port_table_depends_on_the_name_alone_and_ports_spread_evenly() {
    // FNV-1a of the name, fixed: an upgrade must find the tables the old release wrote.
    assert_eq!(netdev_table(&name("vif3.0")), "vifkit-antispoof-085");
    assert_eq!(netdev_table(&name("vif1.0")), "vifkit-antispoof-159");
    assert_eq!(legacy_netdev_table(&name("vif3.0")), "vifkit-antispoof-21");
    assert_eq!(legacy_netdev_table(&name("vif1.0")), "vifkit-antispoof-31");
    let mut load = vec![0u32; TABLES as usize];
    for domid in 1..=10_000 {
        let table = netdev_table(&name(&format!("vif{domid}.0")));
        let index: usize = table["vifkit-antispoof-".len()..].parse().unwrap();
        load[index] += 1;
    }
    // 10,000 ports over 256 tables: about 39 each.
    assert!(load.iter().all(|&n| (20..=60).contains(&n)), "{load:?}");
}

#[test]
fn a_masked_match_shows_its_mask_and_either_operator() {
    let m = |negate, field, data: &[u8], mask: &[u8]| {
        Match {
            field,
            negate,
            value: Value::Masked {
                data: data.to_vec(),
                mask: mask.to_vec(),
            },
        }
        .to_string()
    };
    let (group, mask) = (
        [1, 0x80, 0xc2, 0, 0, 0],
        [0xff, 0xff, 0xff, 0xff, 0xff, 0xf0],
    );
    assert_eq!(
        m(false, Field::EtherDestination, &group, &mask),
        "ether daddr & ff:ff:ff:ff:ff:f0 == 01:80:c2:00:00:00"
    );
    assert_eq!(
        m(true, Field::EtherDestination, &group, &mask),
        "ether daddr & ff:ff:ff:ff:ff:f0 != 01:80:c2:00:00:00"
    );
    assert_eq!(
        m(true, Field::UdpDestination, &[0, 0x40], &[0xff, 0xc0]),
        "udp dport & 0xffc0 != 0x0040"
    );
    // Masked or not, the bytes compared and the mask are the same.
    let ne = Match::ne(Field::EtherDestination, reserved_groups());
    assert_eq!(ne.data(), (group.to_vec(), Some(mask.to_vec())));
}

#[test]
fn any_transports_ports_are_its_first_four_bytes() {
    assert_eq!(
        Field::TransportSource.load(),
        Load::Transport { offset: 0, len: 2 }
    );
    assert_eq!(
        Field::TransportDestination.load(),
        Load::Transport { offset: 2, len: 2 }
    );
    assert_eq!(
        Match::ne(Field::TransportDestination, Value::Number(546)).data(),
        (vec![0x02, 0x22], None)
    );
}
