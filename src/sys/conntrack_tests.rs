use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::types::prefix::Prefix;

const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;
const NLA_F_NESTED: u16 = libc::NLA_F_NESTED as u16;

fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse::<Ipv4Addr>().unwrap())
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
}

fn octets(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// A netlink attribute, padded to 4 bytes as the kernel lays them out.
fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut out = ((4 + value.len()) as u16).to_ne_bytes().to_vec();
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(out.len().next_multiple_of(4), 0);
    out
}

/// Nested as the kernel's nla_nest_start does: with NLA_F_NESTED set.
fn nested(kind: u16, children: &[Vec<u8>]) -> Vec<u8> {
    attr(kind | NLA_F_NESTED, &children.concat())
}

/// CTA_TUPLE_{ORIG,REPLY} for UDP between the two addresses (ports 1000 -> 53).
fn tuple(kind: u16, src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let (s, d) = if src.is_ipv4() { (1, 2) } else { (3, 4) };
    let ip = nested(1, &[attr(s, &octets(src)), attr(d, &octets(dst))]);
    let proto = nested(
        2,
        &[
            attr(1, &[17]),
            attr(2, &1000u16.to_be_bytes()),
            attr(3, &53u16.to_be_bytes()),
        ],
    );
    nested(kind, &[ip, proto])
}

/// A netlink message with a struct nfgenmsg, as a dump delivers it.
fn message(kind: u16, flags: u16, seq: u32, family: u8, attrs: &[u8]) -> Vec<u8> {
    let mut out = request(0, 0, family, seq, attrs);
    out[4..6].copy_from_slice(&kind.to_ne_bytes());
    out[6..8].copy_from_slice(&(libc::NLM_F_MULTI as u16 | flags).to_ne_bytes());
    out
}

/// A dumped entry: status and the reply tuple around the original one, as the kernel sends them.
fn entry_message(seq: u32, src: IpAddr, dst: IpAddr, zone: Option<u16>) -> Vec<u8> {
    let family = if src.is_ipv4() { AF_INET } else { AF_INET6 };
    let mut attrs = [
        tuple(CTA_TUPLE_ORIG, src, dst),
        tuple(2, dst, src),
        attr(3, &8u32.to_be_bytes()),
    ]
    .concat();
    if let Some(zone) = zone {
        attrs.extend(attr(CTA_ZONE, &zone.to_be_bytes()));
    }
    message(ctnetlink_type(IPCTNL_MSG_CT_NEW), 0, seq, family, &attrs)
}

fn done(seq: u32, errno: i32) -> Vec<u8> {
    let mut out = message(NLMSG_DONE, 0, seq, 0, &[]);
    out.truncate(NLMSG_HDRLEN);
    out.extend_from_slice(&(-errno).to_ne_bytes());
    let len = out.len() as u32;
    out[..4].copy_from_slice(&len.to_ne_bytes());
    out
}

fn payload(message: &[u8]) -> &[u8] {
    &message[NLMSG_HDRLEN..]
}

#[test]
fn dump_request_is_a_ctnetlink_get_with_dump_flags() {
    let mut want = 20u32.to_ne_bytes().to_vec();
    want.extend(0x0101u16.to_ne_bytes()); // NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET
    want.extend(0x0301u16.to_ne_bytes()); // NLM_F_REQUEST | NLM_F_DUMP
    want.extend(7u32.to_ne_bytes());
    want.extend(0u32.to_ne_bytes());
    want.extend([AF_INET6, 0, 0, 0]);
    assert_eq!(dump_request(AF_INET6, 7), want);
}

#[test]
fn delete_request_carries_the_attributes_and_asks_for_an_ack() {
    let attrs = tuple(CTA_TUPLE_ORIG, v4("10.0.0.5"), v4("10.0.0.9"));
    let request = delete_request(AF_INET, 9, &attrs);
    let message = messages(&request).next().unwrap().unwrap();
    assert_eq!(request.len(), 20 + attrs.len());
    assert_eq!(message.kind, 0x0102); // IPCTNL_MSG_CT_DELETE
    assert_eq!(message.flags, 0x0005); // NLM_F_REQUEST | NLM_F_ACK
    assert_eq!(message.seq, 9);
    assert_eq!(message.payload[..4], [AF_INET, 0, 0, 0]);
    assert_eq!(message.payload[4..], attrs[..]);
}

#[test]
fn parse_entry_takes_the_original_tuple_byte_for_byte() {
    let (src, dst) = (v4("10.0.0.5"), v4("10.0.0.9"));
    let message = entry_message(1, src, dst, None);
    let entry = parse_entry(payload(&message)).unwrap();
    assert_eq!((entry.src, entry.dst), (src, dst));
    assert_eq!(entry.tuple, tuple(CTA_TUPLE_ORIG, src, dst));
    assert_eq!(entry.zone, None);
    assert_eq!(entry.to_string(), "10.0.0.5 -> 10.0.0.9");
    assert_eq!(entry.delete_attributes(), entry.tuple);
}

#[test]
fn parse_entry_reads_ipv6_and_the_zone() {
    let (src, dst) = (v6("2001:db8::5"), v6("2001:db8::9"));
    let message = entry_message(1, src, dst, Some(5));
    let entry = parse_entry(payload(&message)).unwrap();
    assert_eq!((entry.src, entry.dst), (src, dst));
    assert_eq!(entry.zone, Some(&[6, 0, 18, 0, 0, 5][..]));
    assert_eq!(entry.to_string(), "2001:db8::5 -> 2001:db8::9 zone 5");
    // The 6-byte zone attribute is padded to 8 after the tuple.
    let want = [
        tuple(CTA_TUPLE_ORIG, src, dst),
        vec![6, 0, 18, 0, 0, 5, 0, 0],
    ]
    .concat();
    assert_eq!(entry.delete_attributes(), want);
}

#[test]
fn parse_entry_rejects_incomplete_messages() {
    let orig = tuple(CTA_TUPLE_ORIG, v4("10.0.0.5"), v4("10.0.0.9"));
    let reply_only = [vec![2, 0, 0, 0], tuple(2, v4("10.0.0.9"), v4("10.0.0.5"))].concat();
    assert_eq!(parse_entry(&reply_only), None);
    assert_eq!(parse_entry(&[2, 0, 0]), None);
    let no_dst = nested(CTA_TUPLE_ORIG, &[nested(1, &[attr(1, &[10, 0, 0, 5])])]);
    assert_eq!(parse_entry(&[vec![2, 0, 0, 0], no_dst].concat()), None);
    let bad_len = nested(
        CTA_TUPLE_ORIG,
        &[nested(1, &[attr(1, &[10, 0, 5]), attr(2, &[1; 3])])],
    );
    assert_eq!(parse_entry(&[vec![2, 0, 0, 0], bad_len].concat()), None);
    // An attribute claiming more bytes than there are ends the walk.
    let mut truncated = [vec![2, 0, 0, 0], orig].concat();
    truncated.truncate(truncated.len() - 4);
    assert_eq!(parse_entry(&truncated), None);
}

#[test]
fn find_skips_padding_and_ignores_the_nested_flag() {
    let buf = [attr(7, &[1]), nested(9, &[attr(1, &[2, 3, 4, 5])])].concat();
    assert_eq!(find(&buf, 7), Some((&[5, 0, 7, 0, 1][..], &[1][..])));
    assert_eq!(find(&buf, 9).unwrap().1, attr(1, &[2, 3, 4, 5]));
    assert_eq!(find(&buf, 8), None);
    assert_eq!(find(&[], 7), None);
}

#[test]
fn messages_splits_a_datagram_even_when_unaligned() {
    let datagram = [
        vec![0],
        entry_message(3, v4("10.0.0.5"), v4("10.0.0.9"), None),
        done(3, 0),
    ]
    .concat();
    let parsed: Vec<_> = messages(&datagram[1..]).map(Result::unwrap).collect();
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0].kind, 0x0100);
    assert_eq!(parsed[1].kind, NLMSG_DONE);
    assert_eq!(parsed[1].errno(), 0);
}

#[test]
fn messages_reports_a_truncated_datagram_once() {
    let message = done(1, 0);
    let mut results = messages(&message[..message.len() - 1]);
    assert!(results.next().unwrap().is_err());
    assert!(results.next().is_none());
    assert!(messages(&[1, 0, 0]).next().unwrap().is_err());
}

#[test]
fn dump_keeps_matches_over_several_datagrams_until_done() {
    let prefixes = [
        Prefix::new(v4("10.0.0.5"), 32),
        Prefix::new(v6("2001:db8::"), 64),
    ];
    let mut dump = Dump::default();
    let first = [
        entry_message(4, v4("10.0.0.5"), v4("10.0.0.9"), None),
        entry_message(4, v4("10.0.0.7"), v4("10.0.0.9"), None),
        entry_message(3, v4("10.0.0.5"), v4("10.0.0.1"), None), // a stale reply
    ]
    .concat();
    dump.absorb(&first, 4, &prefixes).unwrap();
    assert!(!dump.done);
    let second = [
        entry_message(4, v4("10.0.0.9"), v4("10.0.0.5"), Some(5)),
        entry_message(4, v6("2001:db8::5"), v6("2001:db8:1::9"), None),
        done(4, 0),
    ]
    .concat();
    dump.absorb(&second, 4, &prefixes).unwrap();
    assert!(dump.done && !dump.interrupted);
    let names: Vec<_> = dump.doomed.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "10.0.0.5 -> 10.0.0.9",
            "10.0.0.9 -> 10.0.0.5 zone 5",
            "2001:db8::5 -> 2001:db8:1::9"
        ]
    );
}

#[test]
fn dump_notices_interruption_and_errors() {
    let mut dump = Dump::default();
    let interrupted = message(ctnetlink_type(0), NLM_F_DUMP_INTR, 2, AF_INET, &[]);
    dump.absorb(&[interrupted, done(2, 0)].concat(), 2, &[])
        .unwrap();
    assert!(dump.done && dump.interrupted);

    let err = Dump::default()
        .absorb(&done(2, libc::EOPNOTSUPP), 2, &[])
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EOPNOTSUPP));
    assert!(is_absent(&err));
    let mut error = done(2, libc::EPERM);
    error[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
    let err = Dump::default().absorb(&error, 2, &[]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    assert!(!is_absent(&err));
}

#[test]
fn prefix_zero_matches_its_own_family_only() {
    assert!(Prefix::new(v4("0.0.0.0"), 0).contains(v4("203.0.113.1")));
    assert!(Prefix::new(v4("10.0.0.0"), 0).contains(v4("255.255.255.255")));
    assert!(Prefix::new(v6("::"), 0).contains(v6("2001:db8::1")));
    assert!(Prefix::new(v6("2001:db8::"), 0).contains(v6("ffff::1")));
    assert!(!Prefix::new(v4("0.0.0.0"), 0).contains(v6("::1")));
    assert!(!Prefix::new(v6("::"), 0).contains(v4("10.0.0.1")));
}

#[test]
fn prefix_host_lengths_match_one_address() {
    assert!(Prefix::new(v4("10.0.0.5"), 32).contains(v4("10.0.0.5")));
    assert!(!Prefix::new(v4("10.0.0.5"), 32).contains(v4("10.0.0.4")));
    assert!(Prefix::new(v4("10.0.0.5"), 31).contains(v4("10.0.0.4")));
    assert!(!Prefix::new(v4("10.0.0.5"), 31).contains(v4("10.0.0.6")));
    assert!(Prefix::new(v6("2001:db8::5"), 128).contains(v6("2001:db8::5")));
    assert!(!Prefix::new(v6("2001:db8::5"), 128).contains(v6("2001:db8::4")));
}

#[test]
fn prefix_compares_leading_bits_only() {
    assert!(Prefix::new(v4("10.0.0.5"), 24).contains(v4("10.0.0.200")));
    assert!(!Prefix::new(v4("10.0.0.5"), 24).contains(v4("10.0.1.5")));
    assert!(Prefix::new(v4("0.0.0.0"), 1).contains(v4("127.255.0.1")));
    assert!(!Prefix::new(v4("0.0.0.0"), 1).contains(v4("128.0.0.0")));
    assert!(Prefix::new(v6("2001:db8::"), 64).contains(v6("2001:db8::ffff:1")));
    assert!(!Prefix::new(v6("2001:db8::"), 64).contains(v6("2001:db8:0:1::1")));
    assert!(!Prefix::new(v6("8000::"), 1).contains(v6("7fff::")));
}

#[test]
fn ipv4_mapped_addresses_never_match_ipv4_prefixes() {
    assert!(!Prefix::new(v4("10.0.0.5"), 32).contains(v6("::ffff:10.0.0.5")));
    assert!(!Prefix::new(v6("::ffff:10.0.0.5"), 128).contains(v4("10.0.0.5")));
}

#[test]
fn entry_matches_source_or_destination() {
    let message = entry_message(1, v4("10.0.0.9"), v4("10.0.0.5"), None);
    let entry = parse_entry(payload(&message)).unwrap();
    assert!(entry.matches(&[Prefix::new(v4("10.0.0.5"), 32)]));
    assert!(entry.matches(&[Prefix::new(v6("::"), 0), Prefix::new(v4("10.0.0.9"), 32)]));
    assert!(!entry.matches(&[
        Prefix::new(v4("10.0.0.7"), 32),
        Prefix::new(v6("::ffff:10.0.0.5"), 128)
    ]));
    assert!(!entry.matches(&[]));
}

#[test]
fn purge_of_nothing_deletes_nothing() {
    assert_eq!(purge(&[]).unwrap(), 0);
}
