//! vif-nat's masquerade: each port gets a table of its own, named after its Xen device,
//! changed in one atomic batch; removing the port deletes that table whole, whatever `B/ip`
//! says by then, so nothing leaks and a reused domid starts clean. The table's comment is
//! the fingerprint of its rules (`nat_fingerprint`), which `installed_nat` reads back.

use std::fmt;
use std::net::IpAddr;

use anyhow::{Context, Result};

use super::wire::{self, Base, Batch, Expr, Hook, MetaKey, NfFamily};
use super::{Nfnl, fingerprint, send};
use crate::types::link::LinkRef;

const SRCNAT_PRIORITY: i32 = 100;
const NF_INET_POST_ROUTING: u32 = 4;
const CHAIN: &str = "postrouting";
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;

/// Masquerade one guest source address on its way out of the uplink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Masquerade {
    pub source: IpAddr,
    pub uplink: LinkRef,
}

impl fmt::Display for Masquerade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} out of {}", self.source, self.uplink)
    }
}

/// The table that holds one port's NAT rules, e.g. `vifkit-nat-3-0`.
pub fn nat_table(key: &str) -> String {
    format!("vifkit-nat-{key}")
}

/// Replaces the port's NAT table in one transaction: add + delete drops a stale copy (a
/// reused domid, an older `B/ip`) without failing when there is none, then it is rebuilt.
pub fn set_port_nat(key: &str, rules: &[Masquerade]) -> Result<()> {
    send(&nat_batch(key, rules)).with_context(|| format!("nft table inet {}", nat_table(key)))
}

/// Names exactly what `set_port_nat` installs: the fingerprint of its batch (the comment
/// left out). Any change to the key, a source address, an uplink's index or the rules
/// vifkit writes for them changes it.
pub fn nat_fingerprint(key: &str, rules: &[Masquerade]) -> String {
    fingerprint(&install_batch(key, rules, None))
}

/// The comment of the port's NAT table: None when there is no table, "" when it has no
/// comment (one vifkit did not install, a kernel older than 5.13) or lacks its chain, else
/// what `nat_fingerprint` gave when it was installed. Two round trips on one socket.
pub fn installed_nat(key: &str) -> Result<Option<String>> {
    let table = nat_table(key);
    let lookup = || -> std::io::Result<Option<String>> {
        let nf = Nfnl::open()?;
        let Some(found) = nf.table(NfFamily::Inet, &table)? else {
            return Ok(None);
        };
        if !nf.chain_exists(NfFamily::Inet, &table, CHAIN)? {
            return Ok(Some(String::new()));
        }
        Ok(Some(wire::comment_of(&found, wire::NFTA_TABLE_USERDATA)))
    };
    lookup().context("look up nft tables")
}

/// The transaction that replaces the port's NAT table; the table's comment is the rules'
/// fingerprint.
pub(super) fn nat_batch(key: &str, rules: &[Masquerade]) -> Vec<u8> {
    install_batch(key, rules, Some(&nat_fingerprint(key, rules)))
}

fn install_batch(key: &str, rules: &[Masquerade], comment: Option<&str>) -> Vec<u8> {
    let table = nat_table(key);
    let mut batch = Batch::new();
    batch.add_table(NfFamily::Inet, &table);
    batch.delete_table(NfFamily::Inet, &table);
    match comment {
        Some(comment) => batch.add_table_with_comment(NfFamily::Inet, &table, comment),
        None => batch.add_table(NfFamily::Inet, &table),
    }
    let hook = Hook {
        number: NF_INET_POST_ROUTING,
        priority: SRCNAT_PRIORITY,
        device: None,
        kind: "nat",
        accept_by_default: None,
    };
    batch.add_chain(NfFamily::Inet, &table, CHAIN, Some(&hook), None);
    for masquerade in rules {
        let (nfproto, offset, address) = match masquerade.source {
            IpAddr::V4(source) => (NFPROTO_IPV4, 12, source.octets().to_vec()),
            IpAddr::V6(source) => (NFPROTO_IPV6, 8, source.octets().to_vec()),
        };
        let len = address.len() as u32;
        let exprs = [
            Expr::Meta(MetaKey::NfProto),
            eq(vec![nfproto]),
            Expr::Payload {
                base: Base::Network,
                offset,
                len,
            },
            eq(address),
            Expr::Meta(MetaKey::Oif),
            // The kernel keeps interface indexes in host order.
            eq(masquerade.uplink.index.to_ne_bytes().to_vec()),
            Expr::Masquerade,
        ];
        batch.add_rule(NfFamily::Inet, &table, CHAIN, &exprs);
    }
    batch.finish()
}

fn eq(data: Vec<u8>) -> Expr {
    Expr::Cmp {
        negate: false,
        data,
    }
}

/// Deletes the port's NAT table; one that is not there is already removed.
pub fn remove_port_nat(key: &str) -> Result<()> {
    send(&nat_remove_batch(key))
        .with_context(|| format!("delete nft table inet {}", nat_table(key)))
}

pub(super) fn nat_remove_batch(key: &str) -> Vec<u8> {
    let table = nat_table(key);
    let mut batch = Batch::new();
    // Added first, so a table that is not there cannot fail the batch.
    batch.add_table(NfFamily::Inet, &table);
    batch.delete_table(NfFamily::Inet, &table);
    batch.finish()
}

/// Whether the port's NAT table is there (for `vifkit check`).
pub fn nat_present(key: &str) -> Result<bool> {
    let table = nat_table(key);
    Nfnl::open()
        .and_then(|nf| nf.chain_exists(NfFamily::Inet, &table, CHAIN))
        .context("look up nft chains")
}
