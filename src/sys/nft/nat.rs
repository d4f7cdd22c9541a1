//! vif-nat's masquerade: each port gets a table of its own, named after its Xen device,
//! changed in one atomic batch; removing the port deletes that table whole, whatever `B/ip`
//! says by then, so nothing leaks and a reused domid starts clean.

use std::fmt;
use std::net::IpAddr;

use anyhow::{Context, Result};

use super::send;
use super::wire::{Base, Batch, Expr, Hook, MetaKey, NfFamily};
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

pub(super) fn nat_batch(key: &str, rules: &[Masquerade]) -> Vec<u8> {
    let table = nat_table(key);
    let mut batch = Batch::new();
    batch.add_table(NfFamily::Inet, &table);
    batch.delete_table(NfFamily::Inet, &table);
    batch.add_table(NfFamily::Inet, &table);
    let hook = Hook {
        number: NF_INET_POST_ROUTING,
        priority: SRCNAT_PRIORITY,
        device: None,
        kind: "nat",
        accept_by_default: None,
    };
    batch.add_chain(NfFamily::Inet, &table, CHAIN, Some(&hook));
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
    super::Nfnl::open()
        .and_then(|nf| nf.chain_exists(NfFamily::Inet, &table, CHAIN))
        .context("look up nft chains")
}
