//! The requests vifkit sends, byte for byte against what libnftnl encodes for the same
//! objects (goldens.txt: taken before vifkit stopped linking it, the comments since added
//! through libnftnl by goldens.c). Pure, no root.

use super::*;
use crate::types::link::LinkRef;
use crate::types::mac::MacAddr;
use crate::types::names::IfName;
use crate::types::prefix::Prefix;

fn golden(name: &str) -> String {
    include_str!("goldens.txt")
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no golden {name}"))
        .to_owned()
}

fn assert_bytes(name: &str, bytes: &[u8]) {
    let ours: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let theirs = golden(name);
    if ours != theirs {
        let at = ours
            .bytes()
            .zip(theirs.bytes())
            .take_while(|(a, b)| a == b)
            .count()
            / 2;
        panic!(
            "{name}: first difference at byte {at} (lengths {} and {})\nours:    {ours}\nlibnftnl: {theirs}",
            ours.len() / 2,
            theirs.len() / 2
        );
    }
}

fn vif3() -> IfName {
    IfName::new("vif3.0").unwrap()
}

fn filter() -> PortFilter {
    let mac = MacAddr::parse("00:16:3e:10:10:10").unwrap();
    let addresses = [
        Prefix::new("192.0.2.10".parse().unwrap(), 32),
        Prefix::new("2001:db8::".parse().unwrap(), 64),
    ];
    PortFilter::new(vif3(), Some(mac), &addresses)
}

#[test]
fn a_port_filter_is_encoded_as_libnftnl_did() {
    assert_bytes("filter-stale", &antispoof::filter_batch(&filter(), true));
    assert_bytes("filter-fresh", &antispoof::filter_batch(&filter(), false));
    assert_bytes("filter-remove", &antispoof::remove_batch(&vif3()));
}

fn nat_rules() -> [Masquerade; 2] {
    let uplink = LinkRef {
        index: 7,
        name: IfName::new("eth0").unwrap(),
    };
    [
        Masquerade {
            source: "192.0.2.10".parse().unwrap(),
            uplink: uplink.clone(),
        },
        Masquerade {
            source: "2001:db8::10".parse().unwrap(),
            uplink,
        },
    ]
}

#[test]
fn a_masquerade_is_encoded_as_libnftnl_did() {
    assert_bytes("nat", &nat::nat_batch("1-0", &nat_rules()));
    assert_bytes("nat-remove", &nat::nat_remove_batch("1-0"));
}

#[test]
fn a_chain_lookup_is_encoded_as_libnftnl_did() {
    let request = wire::get_chain(NfFamily::NetDev, "vifkit-antispoof-21", "vif3.0", 1);
    assert_bytes("get-chain", &request);
}

/// The messages of a batch: (type, payload after the nlmsghdr).
fn messages_of(batch: &[u8]) -> Vec<(u16, Vec<u8>)> {
    crate::sys::nfnl::messages(batch)
        .map(|m| m.map(|m| (m.kind, m.payload.to_vec())).unwrap())
        .collect()
}

/// A message's payload as its nfgenmsg and its attributes, whole, sorted.
fn attributes_of(payload: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let (header, mut rest) = payload.split_at(4);
    let mut attrs = vec![];
    while !rest.is_empty() {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        attrs.push(rest[..len].to_vec());
        rest = &rest[len.next_multiple_of(4).min(rest.len())..];
    }
    attrs.sort();
    (header.to_vec(), attrs)
}

/// The last message of `kind` in a batch.
fn last(batch: &[u8], kind: u16) -> Vec<u8> {
    let found = messages_of(batch).into_iter().rfind(|(k, _)| *k == kind);
    found.unwrap_or_else(|| panic!("no message {kind:#x}")).1
}

#[test]
fn comments_are_encoded_as_nft_sends_them() {
    const NEWTABLE: u16 = 0x0a00;
    const NEWCHAIN: u16 = 0x0a03;
    let nft = hex(&golden("nft-comments"));
    // The NAT table's comment: the same bytes as nft's.
    let ours = last(&nat::nat_batch("1-0", &nat_rules()), NEWTABLE);
    assert_eq!(ours, last(&nft, NEWTABLE));
    // The chain: the same attributes, each byte for byte; nft writes the type, policy and
    // hook in another order than libnftnl's.
    let ours = last(&antispoof::filter_batch(&filter(), false), NEWCHAIN);
    assert_eq!(attributes_of(&ours), attributes_of(&last(&nft, NEWCHAIN)));
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn a_table_lookup_is_encoded_as_libnftnl_does() {
    let request = wire::get_table(NfFamily::Inet, "vifkit-nat-1-0", 1);
    assert_bytes("get-table", &request);
}

#[test]
fn a_hold_is_encoded_as_nft_sends_it() {
    const NEWRULE: u16 = 0x0a06;
    let nft = hex(&golden("nft-hold"));
    // 2026-12-04 12:00:00 UTC.
    let ours = hold::hold_batch("t", "vif3.0", 1_796_385_600_000_000_000, "vifkit-hold 1 2");
    // The same attributes, byte for byte, in the same order; nft asks for no acknowledgement.
    assert_eq!(last(&ours, NEWRULE), last(&nft, NEWRULE));
}
