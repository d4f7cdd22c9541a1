//! Fingerprints of what vifkit installs, and the comments that carry them. Pure, no root
//! (tests/nft_fingerprint.rs reads them back from a kernel).

use std::collections::HashSet;

use super::*;
use crate::types::link::LinkRef;
use crate::types::mac::MacAddr;
use crate::types::names::IfName;
use crate::types::prefix::Prefix;

fn name(s: &str) -> IfName {
    IfName::new(s).unwrap()
}

fn mac(s: &str) -> MacAddr {
    MacAddr::parse(s).unwrap()
}

fn prefix(address: &str, len: u8) -> Prefix {
    Prefix::new(address.parse().unwrap(), len)
}

/// golden_tests.rs's filter.
fn filter() -> PortFilter {
    let addresses = [prefix("192.0.2.10", 32), prefix("2001:db8::", 64)];
    PortFilter::new(name("vif3.0"), Some(mac("00:16:3e:10:10:10")), &addresses)
}

fn masquerade(source: &str, index: u32) -> Masquerade {
    Masquerade {
        source: source.parse().unwrap(),
        uplink: LinkRef {
            index,
            name: name("eth0"),
        },
    }
}

/// golden_tests.rs's masquerade.
fn nat_rules() -> Vec<Masquerade> {
    vec![masquerade("192.0.2.10", 7), masquerade("2001:db8::10", 7)]
}

/// The payload (after nlmsghdr) of each message of a batch, by message type.
fn messages_of(batch: &[u8]) -> Vec<(u16, Vec<u8>)> {
    nfnl::messages(batch)
        .map(|m| m.map(|m| (m.kind, m.payload.to_vec())).unwrap())
        .collect()
}

#[test]
fn fnv1a64_is_the_published_function() {
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn fingerprints_are_a_tag_and_16_hex_digits_of_the_bytes_libnftnl_encoded() {
    // FNV-1a 64 of goldens.txt's filter-fresh and nat before they carried comments, that
    // is of the bytes libnftnl encoded for the same objects (computed outside vifkit).
    assert_eq!(filter().fingerprint(), "vifkit1:b22ccf91f54f4906");
    assert_eq!(
        nat_fingerprint("1-0", &nat_rules()),
        "vifkit1:25e6a2c3bc1dd827"
    );
    let print = filter().fingerprint();
    let hex = print.strip_prefix("vifkit1:").unwrap();
    assert_eq!(hex.len(), 16);
    assert!(
        hex.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
}

#[test]
fn fingerprints_are_stable() {
    assert_eq!(filter().fingerprint(), filter().fingerprint());
    assert_eq!(filter().clone().fingerprint(), filter().fingerprint());
    assert_eq!(
        nat_fingerprint("1-0", &nat_rules()),
        nat_fingerprint("1-0", &nat_rules().clone())
    );
}

#[test]
fn a_filter_fingerprint_changes_with_each_input() {
    let base = filter();
    let with = |change: &dyn Fn(&mut PortFilter)| {
        let mut f = filter();
        change(&mut f);
        f
    };
    let variants = [
        base.clone(),
        with(&|f| f.port = name("vif3.1")),
        with(&|f| f.mac = Some(mac("00:16:3e:10:10:11"))),
        with(&|f| f.mac = None),
        with(&|f| f.ipv4[0] = prefix("192.0.2.11", 32)),
        with(&|f| f.ipv4[0] = prefix("192.0.2.0", 24)),
        with(&|f| f.ipv4.push(prefix("198.51.100.1", 32))),
        with(&|f| f.ipv4.clear()),
        with(&|f| f.ipv6[1] = prefix("2001:db8:1::", 64)),
        with(&|f| f.ipv6[1] = prefix("2001:db8::", 56)),
        with(&|f| f.ipv6.truncate(1)),
        with(&|f| f.ipv6.reverse()),
        with(&|f| f.tagged_vlans = vec![20]),
        with(&|f| f.traffic.dhcp_server = true),
        with(&|f| f.traffic.ethertypes = vec![0x8863]),
    ];
    let prints: HashSet<String> = variants.iter().map(PortFilter::fingerprint).collect();
    assert_eq!(prints.len(), variants.len(), "{prints:?}");
}

#[test]
fn a_nat_fingerprint_changes_with_each_input() {
    let base = nat_rules();
    let variants = [
        ("1-0", base.clone()),
        ("1-1", base.clone()),
        ("1-0", vec![masquerade("192.0.2.11", 7), base[1].clone()]),
        ("1-0", vec![base[0].clone(), masquerade("2001:db8::11", 7)]),
        ("1-0", vec![masquerade("192.0.2.10", 8), base[1].clone()]),
        ("1-0", vec![base[1].clone(), base[0].clone()]),
        ("1-0", vec![base[0].clone()]),
        ("1-0", vec![]),
    ];
    let prints: HashSet<String> = variants
        .iter()
        .map(|(key, rules)| nat_fingerprint(key, rules))
        .collect();
    assert_eq!(prints.len(), variants.len(), "{prints:?}");
    // The uplink's name is not sent, only its index.
    let mut renamed = base.clone();
    renamed[0].uplink.name = name("eth1");
    assert_eq!(
        nat_fingerprint("1-0", &renamed),
        nat_fingerprint("1-0", &base)
    );
}

#[test]
fn the_port_chain_carries_the_filter_fingerprint_as_its_comment() {
    for stale in [false, true] {
        let batch = antispoof::filter_batch(&filter(), stale);
        let chains: Vec<String> = messages_of(&batch)
            .iter()
            .filter(|(kind, _)| *kind == 0x0a03)
            .map(|(_, payload)| wire::comment_of(payload, wire::NFTA_CHAIN_USERDATA))
            .collect();
        assert_eq!(chains, [filter().fingerprint()]);
    }
}

#[test]
fn the_nat_table_carries_the_rules_fingerprint_as_its_comment() {
    let batch = nat::nat_batch("1-0", &nat_rules());
    let tables: Vec<String> = messages_of(&batch)
        .iter()
        .filter(|(kind, _)| *kind == 0x0a00)
        .map(|(_, payload)| wire::comment_of(payload, wire::NFTA_TABLE_USERDATA))
        .collect();
    // Only the table that the batch creates anew has one.
    let print = nat_fingerprint("1-0", &nat_rules());
    assert_eq!(tables, ["".to_owned(), print]);
}

/// struct nfgenmsg and attributes, as the kernel answers a lookup.
fn reply(attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut out = vec![5, 0, 0, 0];
    for (kind, value) in attrs {
        out.extend_from_slice(&(4 + value.len() as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(value);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    out
}

#[test]
fn comments_are_read_from_libnftnl_userdata() {
    let chain = wire::NFTA_CHAIN_USERDATA;
    let comment = |attrs: &[(u16, &[u8])]| wire::comment_of(&reply(attrs), chain);
    let udata = b"\x00\x0dvifkit1:abcd\x00";
    assert_eq!(comment(&[(1, b"t\0"), (chain, udata)]), "vifkit1:abcd");
    // Another TLV first, as a newer nft might write.
    let udata = b"\x07\x02zz\x00\x03ab\x00";
    assert_eq!(comment(&[(chain, udata)]), "ab");
    // No userdata, no comment TLV, or a truncated one: no comment.
    assert_eq!(comment(&[(1, b"t\0"), (3, b"c\0")]), "");
    assert_eq!(comment(&[(chain, b"\x07\x02zz")]), "");
    assert_eq!(comment(&[(chain, b"\x00\x09short\x00")]), "");
    assert_eq!(comment(&[]), "");
    assert_eq!(wire::comment_of(&[], chain), "");
    // A malformed attribute ends the search.
    assert_eq!(wire::comment_of(&[5, 0, 0, 0, 2, 0, 12, 0], chain), "");
}
