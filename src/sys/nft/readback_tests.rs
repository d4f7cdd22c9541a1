//! Rules read back: what vifkit encodes decodes to the same expressions, the kernel's own
//! layout (other order, extra attributes) too, and anything vifkit never writes is "not
//! ours". Pure, no root (tests/antispoof_lifecycle.rs reads a real kernel's chain).

use super::*;
use crate::sys::nft::rules::{self, PortFilter};
use crate::sys::nft::{antispoof, wire};
use crate::types::mac::MacAddr;
use crate::types::names::IfName;
use crate::types::prefix::Prefix;

const NEWRULE: u16 = 0x0a06;
const NEWCHAIN: u16 = 0x0a03;

fn filter() -> PortFilter {
    let mac = MacAddr::parse("00:16:3e:10:10:10").unwrap();
    let addresses = [
        Prefix::new("192.0.2.10".parse().unwrap(), 32),
        Prefix::new("2001:db8::".parse().unwrap(), 64),
    ];
    let mut filter = PortFilter::new(IfName::new("vif3.0").unwrap(), Some(mac), &addresses);
    filter.tagged_vlans = vec![20];
    filter
}

fn table() -> String {
    rules::netdev_table(&IfName::new("vif3.0").unwrap())
}

/// What the kernel would hold after `batch`: the first chain's comment and the rules of
/// chain `vif3.0`, read through the decoder as if dumped.
fn read_batch(batch: &[u8]) -> InstalledFilter {
    let mut installed = InstalledFilter::default();
    for message in nfnl::messages(batch) {
        let message = message.unwrap();
        if message.kind == NEWCHAIN {
            installed.fingerprint = wire::comment_of(message.payload, wire::NFTA_CHAIN_USERDATA);
        }
        installed
            .rules
            .extend(rule_of(message.kind, message.payload, &table(), "vif3.0"));
    }
    installed
}

/// One netlink attribute, padded.
fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut buf = vec![];
    buf.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len().next_multiple_of(4), 0);
    buf
}

fn nest(kind: u16, parts: &[Vec<u8>]) -> Vec<u8> {
    attr(kind | 0x8000, &parts.concat())
}

fn be32(kind: u16, value: u32) -> Vec<u8> {
    attr(kind, &value.to_be_bytes())
}

fn string(kind: u16, value: &str) -> Vec<u8> {
    attr(kind, &[value.as_bytes(), &[0]].concat())
}

/// An NFTA_LIST_ELEM: the expression's name and its data nest.
fn elem(name: &str, data: &[Vec<u8>]) -> Vec<u8> {
    nest(1, &[string(1, name), nest(2, data)])
}

fn value(kind: u16, bytes: &[u8]) -> Vec<u8> {
    nest(kind, &[attr(1, bytes)])
}

/// A NEWRULE as the kernel dumps it: nfgenmsg, table, chain, handle, expressions, userdata.
fn kernel_rule(chain: &str, elems: &[Vec<u8>]) -> Vec<u8> {
    [
        vec![5, 0, 0, 0],
        string(1, &table()),
        string(2, chain),
        attr(3, &7u64.to_be_bytes()),
        nest(4, elems),
        attr(7, &[0, 2, b'x', 0]),
    ]
    .concat()
}

fn decode(elems: &[Vec<u8>]) -> Option<Vec<Expr>> {
    rule_of(NEWRULE, &kernel_rule("vif3.0", elems), &table(), "vif3.0")
        .expect("a rule of the chain")
}

fn accept() -> Vec<u8> {
    elem(
        "immediate",
        &[be32(1, 0), nest(2, &[nest(2, &[be32(1, 1)])])],
    )
}

#[test]
fn what_vifkit_installs_reads_back_as_the_rules_it_wrote() {
    let filter = filter();
    let installed = read_batch(&antispoof::filter_batch(&filter, false));
    assert_eq!(installed, filter.as_installed());
    assert!(filter.is_installed_as(&installed));
    assert_eq!(filter.mismatch(&installed), None);
    // Every kind of expression a filter uses went through the decoder.
    let exprs: Vec<&Expr> = installed.rules.iter().flatten().flatten().collect();
    for (what, seen) in [
        (
            "payload",
            exprs.iter().any(|e| matches!(e, Expr::Payload { .. })),
        ),
        ("meta", exprs.iter().any(|e| matches!(e, Expr::Meta(_)))),
        (
            "exthdr",
            exprs
                .iter()
                .any(|e| matches!(e, Expr::ExtHeaderPresent { .. })),
        ),
        ("bitwise", exprs.iter().any(|e| matches!(e, Expr::Mask(_)))),
        (
            "cmp ==",
            exprs.contains(&&Expr::Cmp {
                negate: false,
                data: vec![0x86, 0xdd],
            }),
        ),
        (
            "cmp !=",
            exprs
                .iter()
                .any(|e| matches!(e, Expr::Cmp { negate: true, .. })),
        ),
        ("accept", exprs.contains(&&Expr::Verdict(Verdict::Accept))),
        ("drop", exprs.contains(&&Expr::Verdict(Verdict::Drop))),
    ] {
        assert!(seen, "no {what} in {exprs:?}");
    }
}

#[test]
fn a_flushed_shortened_or_edited_chain_is_not_what_vifkit_installs() {
    let filter = filter();
    let good = filter.as_installed();
    let mut flushed = good.clone();
    flushed.rules.clear();
    assert!(!filter.is_installed_as(&flushed));
    assert_eq!(
        filter.mismatch(&flushed).as_deref(),
        Some("the chain is empty (flushed)")
    );

    let mut accept_first = good.clone();
    accept_first
        .rules
        .insert(0, Some(vec![Expr::Verdict(Verdict::Accept)]));
    assert!(!filter.is_installed_as(&accept_first));
    let want = good.rules.len();
    assert_eq!(
        filter.mismatch(&accept_first),
        Some(format!(
            "the chain has {} rules where online installs {want} (changed by hand)",
            want + 1
        ))
    );

    let mut one_gone = good.clone();
    one_gone.rules.remove(3);
    assert!(!filter.is_installed_as(&one_gone));

    let mut foreign = good.clone();
    foreign.rules[2] = None;
    assert_eq!(
        filter.mismatch(&foreign).as_deref(),
        Some("rule 3 differs (changed by hand)")
    );

    let mut other = good.clone();
    other.fingerprint = "vifkit1:0000000000000000".into();
    assert_eq!(
        filter.mismatch(&other).as_deref(),
        Some("installed for other addresses or settings")
    );
    let mut unmarked = good;
    unmarked.fingerprint.clear();
    assert!(!filter.is_installed_as(&unmarked));
}

#[test]
fn the_kernels_layout_decodes_by_attribute_not_by_bytes() {
    // The kernel's order (not libnftnl's), NFTA_BITWISE_OP, a handle and userdata on the
    // rule: none of it matters.
    let exprs = decode(&[
        elem("meta", &[be32(2, 15), be32(1, 1)]),
        elem("cmp", &[be32(1, 1), be32(2, 0), value(3, &[10])]),
        elem(
            "payload",
            &[be32(4, 4), be32(3, 12), be32(2, 1), be32(1, 1)],
        ),
        elem(
            "bitwise",
            &[
                be32(1, 1),
                be32(2, 1),
                be32(3, 4),
                be32(6, 0),
                value(4, &[255, 255, 255, 0]),
                value(5, &[0, 0, 0, 0]),
            ],
        ),
        elem("cmp", &[be32(1, 1), be32(2, 1), value(3, &[192, 0, 2, 0])]),
        elem(
            "exthdr",
            &[
                be32(1, 1),
                attr(2, &[44]),
                be32(3, 0),
                be32(4, 1),
                be32(5, 1),
                be32(6, 0),
            ],
        ),
        elem(
            "immediate",
            &[be32(1, 0), nest(2, &[nest(2, &[be32(1, 0)])])],
        ),
    ]);
    assert_eq!(
        exprs,
        Some(vec![
            Expr::Meta(MetaKey::NfProto),
            Expr::Cmp {
                negate: false,
                data: vec![10],
            },
            Expr::Payload {
                base: Base::Network,
                offset: 12,
                len: 4,
            },
            Expr::Mask(vec![255, 255, 255, 0]),
            Expr::Cmp {
                negate: true,
                data: vec![192, 0, 2, 0],
            },
            Expr::ExtHeaderPresent { kind: 44 },
            Expr::Verdict(Verdict::Drop),
        ])
    );
    assert_eq!(
        decode(&[accept()]),
        Some(vec![Expr::Verdict(Verdict::Accept)])
    );
}

#[test]
fn what_vifkit_never_writes_is_not_ours() {
    let payload = |extra: Vec<u8>, dreg: u32| {
        elem(
            "payload",
            &[be32(1, dreg), be32(2, 1), be32(3, 12), be32(4, 4), extra],
        )
    };
    let bitwise = |op: u32, xor: [u8; 4]| {
        elem(
            "bitwise",
            &[
                be32(1, 1),
                be32(2, 1),
                be32(3, 4),
                be32(6, op),
                value(4, &[255; 4]),
                value(5, &xor),
            ],
        )
    };
    let exthdr = |offset: u32| {
        elem(
            "exthdr",
            &[
                be32(1, 1),
                attr(2, &[44]),
                be32(3, offset),
                be32(4, 1),
                be32(5, 1),
                be32(6, 0),
            ],
        )
    };
    // Sane controls first, so each case below differs from ours in one field.
    assert!(decode(&[payload(vec![], 1)]).is_some());
    assert!(decode(&[bitwise(0, [0; 4])]).is_some());
    assert!(decode(&[exthdr(0)]).is_some());
    let jump = nest(
        2,
        &[nest(2, &[be32(1, (-3i32) as u32), string(2, "elsewhere")])],
    );
    for (what, elem) in [
        ("another register", payload(vec![], 2)),
        ("a payload write (SREG)", payload(be32(5, 1), 1)),
        ("a bitwise xor", bitwise(0, [0, 0, 0, 1])),
        ("a bitwise shift", bitwise(1, [0; 4])),
        ("an extension header's field", exthdr(8)),
        (
            "a less-than compare",
            elem("cmp", &[be32(1, 1), be32(2, 2), value(3, &[1])]),
        ),
        ("a meta mark", elem("meta", &[be32(1, 1), be32(2, 3)])),
        ("a jump", elem("immediate", &[be32(1, 0), jump])),
        (
            "a counter",
            elem("counter", &[attr(1, &[0; 8]), attr(2, &[0; 8])]),
        ),
        (
            "a truncated attribute",
            elem("cmp", &[vec![40, 0, 1, 0, 0, 0, 0, 1]]),
        ),
    ] {
        assert_eq!(decode(std::slice::from_ref(&elem)), None, "{what}");
        // One such expression makes the whole rule not ours.
        assert_eq!(decode(&[elem, accept()]), None, "{what}");
    }
}

#[test]
fn only_rules_of_the_chain_asked_for_are_read() {
    let rule = kernel_rule("vif3.0", &[accept()]);
    assert!(rule_of(NEWRULE, &rule, &table(), "vif3.0").is_some());
    assert_eq!(rule_of(NEWRULE, &rule, &table(), "vif4.0"), None);
    assert_eq!(rule_of(NEWRULE, &rule, "other", "vif3.0"), None);
    assert_eq!(rule_of(NEWCHAIN, &rule, &table(), "vif3.0"), None);
    // A rule without expressions is read, and matches nothing vifkit writes.
    let empty = [vec![5, 0, 0, 0], string(1, &table()), string(2, "vif3.0")].concat();
    assert_eq!(
        rule_of(NEWRULE, &empty, &table(), "vif3.0"),
        Some(Some(vec![]))
    );
}

#[test]
fn the_request_dumps_one_chains_rules() {
    let request = rules_request(NfFamily::NetDev, "t", "vif3.0", 2);
    let message = nfnl::messages(&request).next().unwrap().unwrap();
    assert_eq!(message.kind, 0x0a07, "NFT_MSG_GETRULE");
    assert_eq!(message.flags, 0x301, "NLM_F_REQUEST | NLM_F_DUMP");
    assert_eq!(message.seq, 2);
    assert_eq!(message.payload[0], 5, "NFPROTO_NETDEV");
    let attrs = Attrs::parse(&message.payload[4..]).unwrap();
    assert_eq!(attrs.string(NFTA_RULE_TABLE), Some("t"));
    assert_eq!(attrs.string(NFTA_RULE_CHAIN), Some("vif3.0"));
    assert_eq!(attrs.0.len(), 2);
}

#[test]
fn a_hold_is_left_out_of_the_chain_read_back() {
    let comment = crate::sys::nft::hold_comment(1_796_385_600_000_000_000, 4937);
    let hold = crate::sys::nft::hold::hold_batch(&table(), "vif3.0", 1, &comment);
    let filter = filter();
    let mut batch = antispoof::filter_batch(&filter, false);
    // The filter's batch without its end, then the hold's without its beginning: one
    // dump of a chain holding both.
    batch.truncate(batch.len() - 20);
    batch.extend_from_slice(&hold[20..]);
    let installed = read_batch(&batch);
    assert_eq!(installed.rules.len(), filter.chain().rules.len());
    assert!(filter.is_installed_as(&installed));
    // Only a hold's comment leaves a rule out: the decoder still sees an unknown rule.
    let hold_rule = nfnl::messages(&hold)
        .map(Result::unwrap)
        .find(|m| m.kind == NEWRULE)
        .unwrap()
        .payload
        .to_vec();
    assert_eq!(rule_of(NEWRULE, &hold_rule, &table(), "vif3.0"), None);
    let mut relabelled = hold_rule.clone();
    let at = hold_rule
        .windows(11)
        .position(|w| w == b"vifkit-hold")
        .unwrap();
    relabelled[at + 7..at + 11].copy_from_slice(b"keep");
    assert_eq!(
        rule_of(NEWRULE, &relabelled, &table(), "vif3.0"),
        Some(None)
    );
}

#[test]
fn the_fast_rule_is_written_as_loads_masks_and_compares() {
    let installed = read_batch(&antispoof::filter_batch(&filter(), false));
    let ll = |offset, len| Expr::Payload {
        base: Base::LinkLayer,
        offset,
        len,
    };
    let th = |offset| Expr::Payload {
        base: Base::Transport,
        offset,
        len: 2,
    };
    let cmp = |negate, data: &[u8]| Expr::Cmp {
        negate,
        data: data.to_vec(),
    };
    let mac = [0x00, 0x16, 0x3e, 0x10, 0x10, 0x10];
    assert_eq!(
        installed.rules[0],
        Some(vec![
            ll(12, 2),
            cmp(false, &[0x08, 0x00]),
            ll(6, 6),
            cmp(false, &mac),
            ll(0, 6),
            Expr::Mask(vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xf0]),
            cmp(true, &[0x01, 0x80, 0xc2, 0, 0, 0]),
            Expr::Payload {
                base: Base::Network,
                offset: 12,
                len: 4,
            },
            cmp(false, &[192, 0, 2, 10]),
            th(0),
            cmp(true, &[0, 67]),
            th(2),
            cmp(true, &[0, 68]),
            Expr::Verdict(Verdict::Accept),
        ])
    );
}
