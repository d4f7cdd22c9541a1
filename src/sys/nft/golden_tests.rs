//! The requests vifkit sends, byte for byte against what libnftnl encoded for the same
//! objects (goldens.txt, taken before vifkit stopped linking it). Pure, no root.

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

#[test]
fn a_masquerade_is_encoded_as_libnftnl_did() {
    let uplink = LinkRef {
        index: 7,
        name: IfName::new("eth0").unwrap(),
    };
    let rules = [
        Masquerade {
            source: "192.0.2.10".parse().unwrap(),
            uplink: uplink.clone(),
        },
        Masquerade {
            source: "2001:db8::10".parse().unwrap(),
            uplink,
        },
    ];
    assert_bytes("nat", &nat::nat_batch("1-0", &rules));
    assert_bytes("nat-remove", &nat::nat_remove_batch("1-0"));
}

#[test]
fn a_chain_lookup_is_encoded_as_libnftnl_did() {
    let request = wire::get_chain(NfFamily::NetDev, "vifkit-antispoof-21", "vif3.0", 1);
    assert_bytes("get-chain", &request);
}
