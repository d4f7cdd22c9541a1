//! A chain's rules read back from the kernel (`NFT_MSG_GETRULE`), each decoded into the
//! `wire::Expr`s vifkit writes, so a planner can tell a chain that is exactly what vifkit
//! installs from one flushed or changed by hand. The chain's comment alone cannot: `nft
//! flush chain` and `nft insert rule` leave it as it was.
//!
//! Decoding goes by attribute type, never by bytes: the kernel dumps attributes in its own
//! order and adds some vifkit never sends (`NFTA_BITWISE_OP`, a rule's handle). What vifkit
//! never writes, another expression or a field with another value (a second register, an
//! extension header offset, a jump, a non-zero xor), decodes to "not ours", which compares
//! unequal to any rule vifkit installs.

use std::io;

use super::Nfnl;
use super::hold::HOLD_TAG;
use super::wire::{self, Base, Expr, MetaKey, NfFamily, Verdict};
use crate::sys::nfnl;

/// A port's chain as the kernel holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstalledFilter {
    /// The chain's comment: what `PortFilter::fingerprint` gave when vifkit installed it;
    /// "" when it has none (not vifkit's, or a kernel older than 5.10).
    pub fingerprint: String,
    /// Its rules in order, each as the expressions vifkit writes; None for a rule with an
    /// expression vifkit never writes.
    pub rules: Vec<Option<Vec<Expr>>>,
}

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
const NLM_F_DUMP: u16 = 0x300;
const NFGENMSG_LEN: usize = 4;
const NLA_TYPE_MASK: u16 = 0x3fff;

const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
/// NFTA_DATA_VALUE and NFTA_DATA_VERDICT, inside an NFTA_*_DATA, MASK or XOR nest.
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;

const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;

/// The rules of `table`'s `chain`, in order: one dump, restricted to that chain.
pub(super) fn chain_rules(
    nf: &Nfnl,
    family: NfFamily,
    table: &str,
    chain: &str,
) -> io::Result<Vec<Option<Vec<Expr>>>> {
    const SEQ: u32 = 2;
    let answers = nf.dump(&rules_request(family, table, chain, SEQ), SEQ)?;
    Ok(answers
        .iter()
        .filter_map(|(kind, payload)| rule_of(*kind, payload, table, chain))
        .collect())
}

/// The handle of the rule of `table`'s netdev `chain` whose comment is `comment`; None when
/// there is none (or no such chain).
pub(super) fn handle_of(
    nf: &Nfnl,
    table: &str,
    chain: &str,
    comment: &str,
) -> io::Result<Option<u64>> {
    const SEQ: u32 = 2;
    let answers = match nf.dump(&rules_request(NfFamily::NetDev, table, chain, SEQ), SEQ) {
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => return Ok(None),
        other => other?,
    };
    Ok(answers.iter().find_map(|(kind, payload)| {
        let attrs = in_chain(*kind, payload, table, chain)?;
        if wire::comment_of(payload, wire::NFTA_RULE_USERDATA) != comment {
            return None;
        }
        let handle = attrs.get(NFTA_RULE_HANDLE)?;
        Some(u64::from_be_bytes(handle.try_into().ok()?))
    }))
}

/// `NFT_MSG_GETRULE` as a dump of one chain's rules (`NFTA_RULE_TABLE`, `NFTA_RULE_CHAIN`).
pub(super) fn rules_request(family: NfFamily, table: &str, chain: &str, seq: u32) -> Vec<u8> {
    let mut buf = vec![];
    let kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE;
    let start = nfnl::begin_message(&mut buf, kind, NLM_F_DUMP, seq, family as u8, 0);
    for (attribute, text) in [(NFTA_RULE_TABLE, table), (NFTA_RULE_CHAIN, chain)] {
        let len = 4 + text.len() + 1;
        buf.extend_from_slice(&(len as u16).to_ne_bytes());
        buf.extend_from_slice(&attribute.to_ne_bytes());
        buf.extend_from_slice(text.as_bytes());
        buf.push(0);
        buf.resize(buf.len().next_multiple_of(4), 0);
    }
    nfnl::end_message(&mut buf, start);
    buf
}

/// One message of the dump (`payload`: after its nlmsghdr): Some for a rule of `table`'s
/// `chain`, holding its expressions or None when one is not vifkit's; None for anything
/// else (a kernel that ignores the dump's filter sends every chain's rules) and for a hold
/// (`hold`): it comes and goes with a plug's background purge, and is not the filter.
pub(super) fn rule_of(
    kind: u16,
    payload: &[u8],
    table: &str,
    chain: &str,
) -> Option<Option<Vec<Expr>>> {
    let attrs = in_chain(kind, payload, table, chain)?;
    if wire::comment_of(payload, wire::NFTA_RULE_USERDATA).starts_with(HOLD_TAG) {
        return None;
    }
    Some(rule_exprs(&attrs))
}

/// The attributes of a dumped rule of `table`'s `chain`; None for any other message.
fn in_chain<'a>(kind: u16, payload: &'a [u8], table: &str, chain: &str) -> Option<Attrs<'a>> {
    if kind != (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE {
        return None;
    }
    let attrs = Attrs::parse(payload.get(NFGENMSG_LEN..)?)?;
    if attrs.string(NFTA_RULE_TABLE)? != table || attrs.string(NFTA_RULE_CHAIN)? != chain {
        return None;
    }
    Some(attrs)
}

/// A rule's expressions, or None when one of them is not vifkit's.
fn rule_exprs(rule: &Attrs<'_>) -> Option<Vec<Expr>> {
    let Some(list) = rule.get(NFTA_RULE_EXPRESSIONS) else {
        return Some(vec![]);
    };
    let list = Attrs::parse(list)?;
    list.0
        .iter()
        .map(|(kind, elem)| match *kind {
            NFTA_LIST_ELEM => expr(elem),
            _ => None,
        })
        .collect()
}

/// One `NFTA_LIST_ELEM`: the expression vifkit writes that it is, or None.
fn expr(elem: &[u8]) -> Option<Expr> {
    let elem = Attrs::parse(elem)?;
    elem.only(&[NFTA_EXPR_NAME, NFTA_EXPR_DATA])?;
    let data = match elem.get(NFTA_EXPR_DATA) {
        Some(data) => Attrs::parse(data)?,
        None => Attrs(vec![]),
    };
    match elem.string(NFTA_EXPR_NAME)? {
        "payload" => payload(&data),
        "meta" => meta(&data),
        "exthdr" => exthdr(&data),
        "bitwise" => bitwise(&data),
        "cmp" => cmp(&data),
        "immediate" => immediate(&data),
        "masq" => data.only(&[]).map(|()| Expr::Masquerade),
        _ => None,
    }
}

/// DREG 1, BASE 2, OFFSET 3, LEN 4 (SREG and the checksum fields would make it a write).
fn payload(data: &Attrs<'_>) -> Option<Expr> {
    data.only(&[1, 2, 3, 4])?;
    data.expect(1, NFT_REG_1)?;
    let base = match data.u32(2)? {
        0 => Base::LinkLayer,
        1 => Base::Network,
        2 => Base::Transport,
        _ => return None,
    };
    Some(Expr::Payload {
        base,
        offset: data.u32(3)?,
        len: data.u32(4)?,
    })
}

/// DREG 1, KEY 2 (SREG would make it a write).
fn meta(data: &Attrs<'_>) -> Option<Expr> {
    data.only(&[1, 2])?;
    data.expect(1, NFT_REG_1)?;
    let key = match data.u32(2)? {
        5 => MetaKey::Oif,
        15 => MetaKey::NfProto,
        16 => MetaKey::L4Proto,
        _ => return None,
    };
    Some(Expr::Meta(key))
}

/// DREG 1, TYPE 2 (u8), OFFSET 3, LEN 4, FLAGS 5, OP 6: vifkit only asks whether an IPv6
/// extension header is present (offset 0, length 1, NFT_EXTHDR_F_PRESENT, NFT_EXTHDR_OP_IPV6;
/// a kernel without the operation attribute knows no other).
fn exthdr(data: &Attrs<'_>) -> Option<Expr> {
    data.only(&[1, 2, 3, 4, 5, 6])?;
    data.expect(1, NFT_REG_1)?;
    let [kind] = data.get(2)? else {
        return None;
    };
    data.expect(3, 0)?;
    data.expect(4, 1)?;
    data.expect(5, 1)?;
    if data.get(6).is_some() {
        data.expect(6, 0)?;
    }
    Some(Expr::ExtHeaderPresent { kind: *kind })
}

/// SREG 1, DREG 2, LEN 3, MASK 4, XOR 5, OP 6: register 1 &= mask, the xor all zeros, the
/// operation (which kernels since 5.6 dump) NFT_BITWISE_BOOL.
fn bitwise(data: &Attrs<'_>) -> Option<Expr> {
    data.only(&[1, 2, 3, 4, 5, 6])?;
    data.expect(1, NFT_REG_1)?;
    data.expect(2, NFT_REG_1)?;
    if data.get(6).is_some() {
        data.expect(6, 0)?;
    }
    let mask = data.value(4)?;
    let xor = data.value(5)?;
    let len = usize::try_from(data.u32(3)?).ok()?;
    let fits = mask.len() == len && xor.len() == len && xor.iter().all(|b| *b == 0);
    fits.then(|| Expr::Mask(mask.to_vec()))
}

/// SREG 1, OP 2 (NFT_CMP_EQ 0, NFT_CMP_NEQ 1), DATA 3.
fn cmp(data: &Attrs<'_>) -> Option<Expr> {
    data.only(&[1, 2, 3])?;
    data.expect(1, NFT_REG_1)?;
    let negate = match data.u32(2)? {
        0 => false,
        1 => true,
        _ => return None,
    };
    Some(Expr::Cmp {
        negate,
        data: data.value(3)?.to_vec(),
    })
}

/// DREG 1 (the verdict register), DATA 2 holding a verdict: accept or drop, nothing else.
fn immediate(data: &Attrs<'_>) -> Option<Expr> {
    data.only(&[1, 2])?;
    data.expect(1, NFT_REG_VERDICT)?;
    let nest = Attrs::parse(data.get(2)?)?;
    nest.only(&[NFTA_DATA_VERDICT])?;
    let verdict = Attrs::parse(nest.get(NFTA_DATA_VERDICT)?)?;
    verdict.only(&[NFTA_VERDICT_CODE])?;
    match verdict.u32(NFTA_VERDICT_CODE)? {
        0 => Some(Expr::Verdict(Verdict::Drop)),
        1 => Some(Expr::Verdict(Verdict::Accept)),
        _ => None,
    }
}

/// The attributes of one level, by type (the nested and byte-order flags masked off).
struct Attrs<'a>(Vec<(u16, &'a [u8])>);

impl<'a> Attrs<'a> {
    /// None when an attribute is malformed.
    fn parse(mut rest: &'a [u8]) -> Option<Attrs<'a>> {
        let mut attrs = vec![];
        while !rest.is_empty() {
            let len = usize::from(nfnl::ne_u16(rest, 0)?);
            let kind = nfnl::ne_u16(rest, 2)? & NLA_TYPE_MASK;
            attrs.push((kind, rest.get(4..len)?));
            rest = rest.get(len.next_multiple_of(4).min(rest.len())..)?;
        }
        Some(Attrs(attrs))
    }

    /// Some when every attribute is one of `known`, each once.
    fn only(&self, known: &[u16]) -> Option<()> {
        let mut seen = vec![];
        for (kind, _) in &self.0 {
            if !known.contains(kind) || seen.contains(kind) {
                return None;
            }
            seen.push(*kind);
        }
        Some(())
    }

    fn get(&self, kind: u16) -> Option<&'a [u8]> {
        self.0.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
    }

    /// A big-endian u32, exactly four bytes.
    fn u32(&self, kind: u16) -> Option<u32> {
        Some(u32::from_be_bytes(self.get(kind)?.try_into().ok()?))
    }

    fn expect(&self, kind: u16, wanted: u32) -> Option<()> {
        (self.u32(kind)? == wanted).then_some(())
    }

    /// A NUL-terminated string.
    fn string(&self, kind: u16) -> Option<&'a str> {
        let value = self.get(kind)?;
        let text = value.split(|b| *b == 0).next()?;
        std::str::from_utf8(text).ok()
    }

    /// The bytes of an `NFTA_DATA_VALUE`, alone in the nest `kind`.
    fn value(&self, kind: u16) -> Option<&'a [u8]> {
        let nest = Attrs::parse(self.get(kind)?)?;
        nest.only(&[NFTA_DATA_VALUE])?;
        nest.get(NFTA_DATA_VALUE)
    }
}

#[cfg(test)]
#[path = "readback_tests.rs"]
mod tests;
