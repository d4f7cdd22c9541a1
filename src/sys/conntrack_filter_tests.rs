use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::filter::{End, Listing, PINNED_MAX, listing_request, listings};
use super::*;
use crate::types::prefix::Prefix;

const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse::<Ipv4Addr>().unwrap())
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
}

fn pinned(address: IpAddr, end: End) -> Listing {
    Listing::Pinned { address, end }
}

/// A dumped entry, as conntrack_tests builds them, reduced to what the parser reads.
fn entry_message(seq: u32, src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let attr = |kind: u16, value: &[u8]| {
        let mut out = ((4 + value.len()) as u16).to_ne_bytes().to_vec();
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(value);
        out
    };
    let octets = |a: IpAddr| match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let (s, d, family) = if src.is_ipv4() {
        (1, 2, AF_INET)
    } else {
        (3, 4, AF_INET6)
    };
    let ip = attr(
        1 | 0x8000,
        &[attr(s, &octets(src)), attr(d, &octets(dst))].concat(),
    );
    let mut out = request(0, 0, family, seq, &attr(1 | 0x8000, &ip));
    out[4..6].copy_from_slice(&ctnetlink_type(IPCTNL_MSG_CT_NEW).to_ne_bytes());
    out
}

#[test]
fn single_hosts_are_listed_by_source_then_destination() {
    let prefixes = [
        Prefix::host(v4("192.0.2.1")),
        Prefix::host(v6("2001:db8::1")),
        Prefix::host(v4("192.0.2.9")),
        Prefix::new(v4("192.0.2.1"), 32),
    ];
    let (a, b) = (v4("192.0.2.1"), v4("192.0.2.9"));
    assert_eq!(
        listings(&prefixes, true),
        [
            pinned(a, End::Source),
            pinned(a, End::Destination),
            pinned(b, End::Source),
            pinned(b, End::Destination)
        ]
    );
    assert_eq!(listings(&prefixes[..1], false), []);
    assert_eq!(listings(&prefixes[..1], true).len(), 2);
}

#[test]
fn ipv6_is_listed_whole_as_the_kernel_misreads_its_filter() {
    let prefixes = [
        Prefix::host(v6("2001:db8::1")),
        Prefix::host(v4("192.0.2.1")),
    ];
    assert_eq!(listings(&prefixes, false), [Listing::Whole]);
    assert_eq!(listings(&[], true), []);
}

#[test]
fn a_wider_prefix_or_many_hosts_list_the_whole_table() {
    let wide = [
        Prefix::host(v4("192.0.2.1")),
        Prefix::new(v4("198.51.100.0"), 31),
        Prefix::new(v6("2001:db8::"), 64),
    ];
    assert_eq!(listings(&wide, true), [Listing::Whole]);
    assert_eq!(listings(&wide, false), [Listing::Whole]);
    let hosts: Vec<_> = (1..=PINNED_MAX as u8 + 1)
        .map(|i| Prefix::host(IpAddr::from([10, 0, 0, i])))
        .collect();
    assert_eq!(listings(&hosts[..PINNED_MAX], true).len(), 2 * PINNED_MAX);
    assert_eq!(listings(&hosts, true), [Listing::Whole]);
}

#[test]
fn an_ipv4_source_request_carries_the_tuple_and_the_filter() {
    let request = listing_request(AF_INET, 3, &pinned(v4("192.0.2.1"), End::Source));
    let mut want = 48u32.to_ne_bytes().to_vec();
    want.extend(0x0101u16.to_ne_bytes()); // NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET
    want.extend(0x0301u16.to_ne_bytes()); // NLM_F_REQUEST | NLM_F_DUMP
    want.extend(3u32.to_ne_bytes());
    want.extend(0u32.to_ne_bytes());
    want.extend([AF_INET, 0, 0, 0]);
    want.extend([16, 0, 0x01, 0x80]); // CTA_TUPLE_ORIG | NLA_F_NESTED
    want.extend([12, 0, 0x01, 0x80]); // CTA_TUPLE_IP | NLA_F_NESTED
    want.extend([8, 0, 0x01, 0x00, 192, 0, 2, 1]); // CTA_IP_V4_SRC
    want.extend([12, 0, 0x19, 0x80]); // CTA_FILTER | NLA_F_NESTED
    want.extend([8, 0, 0x01, 0x00]); // CTA_FILTER_ORIG_FLAGS
    want.extend(1u32.to_ne_bytes()); // CTA_FILTER_F_CTA_IP_SRC
    assert_eq!(request, want);
}

#[test]
fn an_ipv6_destination_request_carries_the_tuple_and_the_filter() {
    let request = listing_request(AF_INET6, 4, &pinned(v6("2001:db8::1"), End::Destination));
    assert_eq!(request.len(), 60);
    assert_eq!(request[..4], 60u32.to_ne_bytes());
    assert_eq!(request[16..20], [AF_INET6, 0, 0, 0]);
    let mut want = vec![28, 0, 0x01, 0x80, 24, 0, 0x01, 0x80, 20, 0, 0x04, 0x00]; // V6_DST
    want.extend(v6_octets("2001:db8::1"));
    want.extend([12, 0, 0x19, 0x80, 8, 0, 0x01, 0x00]);
    want.extend(2u32.to_ne_bytes()); // CTA_FILTER_F_CTA_IP_DST
    assert_eq!(request[20..], want);
}

fn v6_octets(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().unwrap().octets()
}

#[test]
fn the_whole_listing_is_the_plain_dump() {
    assert_eq!(
        listing_request(AF_INET6, 7, &Listing::Whole),
        dump_request(AF_INET6, 7)
    );
}

#[test]
fn a_listing_selects_its_own_end_only() {
    let (a, b) = (v4("192.0.2.1"), v4("192.0.2.9"));
    assert!(pinned(a, End::Source).selects(a, b));
    assert!(!pinned(a, End::Source).selects(b, a));
    assert!(pinned(a, End::Destination).selects(b, a));
    assert!(!pinned(a, End::Destination).selects(a, b));
    assert!(Listing::Whole.selects(b, b));
    assert_eq!(pinned(a, End::Source).to_string(), "source 192.0.2.1");
    assert_eq!(
        pinned(a, End::Destination).to_string(),
        "destination 192.0.2.1"
    );
}

#[test]
fn a_dump_notices_a_kernel_that_ignored_the_filter() {
    let (a, b, c) = (v4("192.0.2.1"), v4("192.0.2.9"), v4("198.51.100.7"));
    let prefixes = [Prefix::host(a)];
    let mut dump = Dump {
        listing: pinned(a, End::Source),
        ..Dump::default()
    };
    dump.absorb(&entry_message(5, a, c), 5, &prefixes).unwrap();
    assert!(!dump.unselected);
    // The same address as destination: the kernel listed more than it was asked for.
    dump.absorb(&entry_message(5, c, a), 5, &prefixes).unwrap();
    assert!(dump.unselected);
    dump.absorb(&entry_message(5, b, c), 5, &prefixes).unwrap();
    let names: Vec<_> = dump.doomed.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        ["192.0.2.1 -> 198.51.100.7", "198.51.100.7 -> 192.0.2.1"]
    );
}
