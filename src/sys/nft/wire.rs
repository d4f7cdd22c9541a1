//! nf_tables requests as bytes: the batch framing, tables, chains, rules and the handful of
//! expressions vifkit uses. Written in Rust rather than through libnftnl so the binaries
//! link no C library and can be static, which saves about 0.4 ms of start-up on every plug
//! (BENCHMARKS.md). The attributes and their order are libnftnl's, byte for byte (the
//! golden tests compare against its output).

/// Address families of nf_tables tables (`NFPROTO_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NfFamily {
    Inet = 1,
    NetDev = 5,
}

/// Where a payload load starts (`NFT_PAYLOAD_*_HEADER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    LinkLayer = 0,
    Network = 1,
    Transport = 2,
}

/// `NFT_META_*` keys vifkit reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaKey {
    Oif = 5,
    NfProto = 15,
    L4Proto = 16,
    /// The wall clock, in nanoseconds since the epoch (8 bytes, host byte order; Linux 5.4).
    TimeNs = 30,
}

/// The final verdicts vifkit's rules give (`NF_DROP`, `NF_ACCEPT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Drop = 0,
    Accept = 1,
}

/// One expression of a rule. Loads and compares all use register 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    Payload {
        base: Base,
        offset: u32,
        len: u32,
    },
    Meta(MetaKey),
    /// register 1 = 1 if the IPv6 packet has the extension header `kind`, else 0.
    ExtHeaderPresent {
        kind: u8,
    },
    /// register 1 &= mask.
    Mask(Vec<u8>),
    /// register 1 == data, or != when `negate`.
    Cmp {
        negate: bool,
        data: Vec<u8>,
    },
    /// register 1, `len` bytes of host-order integers `len` wide, to network byte order:
    /// what a [`Expr::Below`] of a host-order value needs, as the kernel compares bytes.
    ToNetworkOrder {
        len: u32,
    },
    /// register 1 < data, compared as big-endian bytes.
    Below(Vec<u8>),
    Verdict(Verdict),
    Masquerade,
}

/// A chain's hook: netfilter hook number, priority, and the device for netdev chains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    pub number: u32,
    pub priority: i32,
    pub device: Option<String>,
    /// `filter` or `nat`.
    pub kind: &'static str,
    /// Accept (true) or drop what no rule decides; None leaves the kernel's default.
    pub accept_by_default: Option<bool>,
}

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLA_F_NESTED: u16 = 0x8000;
const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
const NFT_CMP_LT: u32 = 2;
const NFT_BYTEORDER_HTON: u32 = 1;
const NFT_EXTHDR_F_PRESENT: u32 = 1;
const NFT_EXTHDR_OP_IPV6: u32 = 0;
/// NFTA_TABLE_USERDATA (Linux 5.13) and NFTA_CHAIN_USERDATA (5.10): bytes the kernel keeps
/// for userspace; older kernels ignore them.
pub const NFTA_TABLE_USERDATA: u16 = 6;
pub const NFTA_CHAIN_USERDATA: u16 = 12;
pub const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_RULE_HANDLE: u16 = 3;
/// NFTNL_UDATA_TABLE_COMMENT and NFTNL_UDATA_CHAIN_COMMENT: the one libnftnl userdata type
/// `nft` shows, as `comment "..."`.
const UDATA_COMMENT: u8 = 0;
/// NFTNL_UDATA_COMMENT_MAXLEN: the longest comment `nft` writes.
const COMMENT_MAX: usize = 128;

/// Netlink messages and attributes appended to one buffer.
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Starts a message with its nfgenmsg header; `finish` fills in the length.
    fn message(&mut self, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
        nfnl::begin_message(&mut self.buf, kind, flags, seq, family, res_id)
    }

    fn finish(&mut self, start: usize) {
        nfnl::end_message(&mut self.buf, start);
    }

    fn attr(&mut self, kind: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        let padded = self.buf.len().next_multiple_of(4);
        self.buf.resize(padded, 0);
    }

    fn string(&mut self, kind: u16, value: &str) {
        let mut data = Vec::with_capacity(value.len() + 1);
        data.extend_from_slice(value.as_bytes());
        data.push(0);
        self.attr(kind, &data);
    }

    fn be32(&mut self, kind: u16, value: u32) {
        self.attr(kind, &value.to_be_bytes());
    }

    fn nest(&mut self, kind: u16, fill: impl FnOnce(&mut Writer)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        fill(self);
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// NFTA_DATA_VALUE inside the nest `kind`.
    fn value(&mut self, kind: u16, data: &[u8]) {
        self.nest(kind, |w| w.attr(1, data));
    }

    /// A userdata attribute holding `comment` as libnftnl's TLV does (a type byte, a length
    /// byte, the string and its NUL), which is how `nft` stores and shows a comment.
    fn comment(&mut self, kind: u16, comment: &str) {
        self.attr(kind, &udata_comment(comment));
    }
}

/// `comment` as one libnftnl udata TLV (`nftnl_udata_put_strz`).
fn udata_comment(comment: &str) -> Vec<u8> {
    assert!(
        comment.len() <= COMMENT_MAX,
        "nft comment too long: {comment:?}"
    );
    let len = comment.len() + 1;
    let mut data = Vec::with_capacity(2 + len);
    data.extend_from_slice(&[UDATA_COMMENT, len as u8]);
    data.extend_from_slice(comment.as_bytes());
    data.push(0);
    data
}

/// One nf_tables transaction: the kernel applies all its messages or none.
pub struct Batch {
    writer: Writer,
    seq: u32,
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    pub fn new() -> Batch {
        let mut batch = Batch {
            writer: Writer::default(),
            seq: 0,
        };
        batch.frame(NFNL_MSG_BATCH_BEGIN);
        batch
    }

    fn frame(&mut self, kind: u16) {
        let seq = self.next_seq();
        let start = self
            .writer
            .message(kind, NLM_F_ACK, seq, 0, NFNL_SUBSYS_NFTABLES);
        self.writer.finish(start);
    }

    fn next_seq(&mut self) -> u32 {
        self.seq += 1;
        self.seq
    }

    fn object(&mut self, msg: u16, flags: u16, family: NfFamily, fill: impl FnOnce(&mut Writer)) {
        let seq = self.next_seq();
        let kind = (NFNL_SUBSYS_NFTABLES << 8) | msg;
        let start = self
            .writer
            .message(kind, flags | NLM_F_ACK, seq, family as u8, 0);
        fill(&mut self.writer);
        self.writer.finish(start);
    }

    /// Creates the table, or leaves an existing one as it is.
    pub fn add_table(&mut self, family: NfFamily, name: &str) {
        self.object(NFT_MSG_NEWTABLE, 0, family, |w| table_attrs(w, name));
    }

    /// Creates the table with `comment`, or leaves an existing one as it is (its comment
    /// included).
    pub fn add_table_with_comment(&mut self, family: NfFamily, name: &str, comment: &str) {
        self.object(NFT_MSG_NEWTABLE, 0, family, |w| {
            table_attrs(w, name);
            w.comment(NFTA_TABLE_USERDATA, comment);
        });
    }

    /// Deletes the table with everything in it.
    pub fn delete_table(&mut self, family: NfFamily, name: &str) {
        self.object(NFT_MSG_DELTABLE, 0, family, |w| table_attrs(w, name));
    }

    /// Creates the chain (a base chain with `hook`, with `comment`), or leaves an existing
    /// one as it is.
    pub fn add_chain(
        &mut self,
        family: NfFamily,
        table: &str,
        name: &str,
        hook: Option<&Hook>,
        comment: Option<&str>,
    ) {
        self.object(NFT_MSG_NEWCHAIN, NLM_F_CREATE, family, |w| {
            w.string(1, table);
            w.string(3, name);
            if let Some(hook) = hook {
                w.nest(4, |w| {
                    w.be32(1, hook.number);
                    w.be32(2, hook.priority as u32);
                    if let Some(device) = &hook.device {
                        w.string(3, device);
                    }
                });
                if let Some(accept) = hook.accept_by_default {
                    w.be32(5, u32::from(accept));
                }
                w.string(7, hook.kind);
            }
            if let Some(comment) = comment {
                w.comment(NFTA_CHAIN_USERDATA, comment);
            }
        });
    }

    /// Deletes the chain and its rules.
    pub fn delete_chain(&mut self, family: NfFamily, table: &str, name: &str) {
        self.object(NFT_MSG_DELCHAIN, 0, family, |w| {
            w.string(1, table);
            w.string(3, name);
        });
    }

    /// Appends a rule to the chain.
    pub fn add_rule(&mut self, family: NfFamily, table: &str, chain: &str, exprs: &[Expr]) {
        let flags = NLM_F_CREATE | NLM_F_APPEND | NLM_F_EXCL;
        self.object(NFT_MSG_NEWRULE, flags, family, |w| {
            rule_attrs(w, table, chain, exprs)
        });
    }

    /// Puts a rule with `comment` at the head of the chain, as `nft insert rule` does.
    pub fn insert_rule(
        &mut self,
        family: NfFamily,
        table: &str,
        chain: &str,
        exprs: &[Expr],
        comment: &str,
    ) {
        self.object(NFT_MSG_NEWRULE, NLM_F_CREATE, family, |w| {
            rule_attrs(w, table, chain, exprs);
            w.comment(NFTA_RULE_USERDATA, comment);
        });
    }

    /// Deletes the rule with `handle` from the chain.
    pub fn delete_rule(&mut self, family: NfFamily, table: &str, chain: &str, handle: u64) {
        self.object(NFT_MSG_DELRULE, 0, family, |w| {
            w.string(1, table);
            w.string(2, chain);
            w.attr(NFTA_RULE_HANDLE, &handle.to_be_bytes());
        });
    }

    /// The batch's bytes, ready for one `send`.
    pub fn finish(mut self) -> Vec<u8> {
        self.frame(NFNL_MSG_BATCH_END);
        self.writer.buf
    }
}

/// A rule's table, chain and expressions, in libnftnl's order.
fn rule_attrs(w: &mut Writer, table: &str, chain: &str, exprs: &[Expr]) {
    w.string(1, table);
    w.string(2, chain);
    w.nest(4, |w| {
        for expr in exprs {
            w.nest(1, |w| write_expr(w, expr));
        }
    });
}

fn table_attrs(w: &mut Writer, name: &str) {
    w.string(1, name);
    w.be32(2, 0);
}

fn write_expr(w: &mut Writer, expr: &Expr) {
    let name = match expr {
        Expr::Payload { .. } => "payload",
        Expr::Meta(_) => "meta",
        Expr::ExtHeaderPresent { .. } => "exthdr",
        Expr::Mask(_) => "bitwise",
        Expr::Cmp { .. } | Expr::Below(_) => "cmp",
        Expr::ToNetworkOrder { .. } => "byteorder",
        Expr::Verdict(_) => "immediate",
        Expr::Masquerade => "masq",
    };
    w.string(1, name);
    w.nest(2, |w| match expr {
        Expr::Payload { base, offset, len } => {
            w.be32(1, NFT_REG_1);
            w.be32(2, *base as u32);
            w.be32(3, *offset);
            w.be32(4, *len);
        }
        Expr::Meta(key) => {
            w.be32(2, *key as u32);
            w.be32(1, NFT_REG_1);
        }
        Expr::ExtHeaderPresent { kind } => {
            w.be32(1, NFT_REG_1);
            w.attr(2, &[*kind]);
            w.be32(3, 0);
            w.be32(4, 1);
            // libnftnl's order: the operation before the flags.
            w.be32(6, NFT_EXTHDR_OP_IPV6);
            w.be32(5, NFT_EXTHDR_F_PRESENT);
        }
        Expr::Mask(mask) => {
            w.be32(1, NFT_REG_1);
            w.be32(2, NFT_REG_1);
            w.be32(3, mask.len() as u32);
            w.value(4, mask);
            w.value(5, &vec![0; mask.len()]);
        }
        Expr::Cmp { negate, data } => {
            w.be32(1, NFT_REG_1);
            w.be32(2, if *negate { NFT_CMP_NEQ } else { NFT_CMP_EQ });
            w.value(3, data);
        }
        Expr::ToNetworkOrder { len } => {
            w.be32(1, NFT_REG_1);
            w.be32(2, NFT_REG_1);
            w.be32(3, NFT_BYTEORDER_HTON);
            w.be32(4, *len);
            w.be32(5, *len);
        }
        Expr::Below(data) => {
            w.be32(1, NFT_REG_1);
            w.be32(2, NFT_CMP_LT);
            w.value(3, data);
        }
        Expr::Verdict(verdict) => {
            w.be32(1, NFT_REG_VERDICT);
            w.nest(2, |w| w.nest(2, |w| w.be32(1, *verdict as u32)));
        }
        Expr::Masquerade => {}
    });
}

/// `NFT_MSG_GETCHAIN` for one chain: answered with the chain, or ENOENT.
pub fn get_chain(family: NfFamily, table: &str, chain: &str, seq: u32) -> Vec<u8> {
    let mut w = Writer::default();
    let kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN;
    let start = w.message(kind, NLM_F_ACK, seq, family as u8, 0);
    w.string(1, table);
    w.string(3, chain);
    w.finish(start);
    w.buf
}

/// `NFT_MSG_GETTABLE` for one table: answered with the table, or ENOENT.
pub fn get_table(family: NfFamily, name: &str, seq: u32) -> Vec<u8> {
    let mut w = Writer::default();
    let kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE;
    let start = w.message(kind, NLM_F_ACK, seq, family as u8, 0);
    w.string(1, name);
    w.finish(start);
    w.buf
}

/// The comment in the userdata attribute `kind` of a table or chain the kernel sent
/// (`payload`: the message after its struct nlmsghdr); empty when it has none.
pub fn comment_of(payload: &[u8], kind: u16) -> String {
    const NFGENMSG_LEN: usize = 4;
    let userdata = payload
        .get(NFGENMSG_LEN..)
        .and_then(|attrs| attribute(attrs, kind))
        .unwrap_or_default();
    let mut rest = userdata;
    // TLVs: a type byte, a length byte, that many bytes.
    while let [kind, len, tail @ ..] = rest {
        let Some(value) = tail.get(..usize::from(*len)) else {
            break;
        };
        if *kind == UDATA_COMMENT {
            let text = value.strip_suffix(&[0]).unwrap_or(value);
            return String::from_utf8_lossy(text).into_owned();
        }
        rest = &tail[value.len()..];
    }
    String::new()
}

pub(super) use crate::sys::nfnl::attribute;

use crate::sys::nfnl;

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
