//! vif-nat's masquerade: each port gets a table of its own, named after its Xen device,
//! changed in one atomic batch; removing the port deletes that table whole, whatever `B/ip`
//! says by then, so nothing leaks and a reused domid starts clean.

use std::ffi::CString;
use std::fmt;
use std::net::IpAddr;

use anyhow::{Context, Result};
use nftnl::{Batch, Chain, ChainType, Hook, MsgType, ProtoFamily, Rule, Table, nft_expr};

use super::send;

use crate::plan::LinkRef;

/// `srcnat`: where nft puts masquerade rules.
const SRCNAT_PRIORITY: i32 = 100;
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

fn table_name(key: &str) -> Result<CString> {
    CString::new(nat_table(key)).context("nft table name")
}

/// Replaces the port's NAT table in one transaction: add + delete drops a stale copy (a
/// reused domid, an older `B/ip`) without failing when there is none, then it is rebuilt.
pub fn set_port_nat(key: &str, rules: &[Masquerade]) -> Result<()> {
    let name = table_name(key)?;
    let table = Table::new(&name, ProtoFamily::Inet);
    let mut batch = Batch::new();
    batch.add(&table, MsgType::Add);
    batch.add(&table, MsgType::Del);
    batch.add(&table, MsgType::Add);
    let mut chain = Chain::new(c"postrouting", &table);
    chain.set_type(ChainType::Nat);
    chain.set_hook(Hook::PostRouting, SRCNAT_PRIORITY);
    batch.add(&chain, MsgType::Add);
    for masquerade in rules {
        let mut rule = Rule::new(&chain);
        rule.add_expr(&nft_expr!(meta nfproto));
        match masquerade.source {
            IpAddr::V4(source) => {
                rule.add_expr(&nft_expr!(cmp == NFPROTO_IPV4));
                rule.add_expr(&nft_expr!(payload ipv4 saddr));
                rule.add_expr(&nft_expr!(cmp == source));
            }
            IpAddr::V6(source) => {
                rule.add_expr(&nft_expr!(cmp == NFPROTO_IPV6));
                rule.add_expr(&nft_expr!(payload ipv6 saddr));
                rule.add_expr(&nft_expr!(cmp == source));
            }
        }
        rule.add_expr(&nft_expr!(meta oif));
        rule.add_expr(&nft_expr!(cmp == masquerade.uplink.index));
        rule.add_expr(&nft_expr!(masquerade));
        batch.add(&rule, MsgType::Add);
    }
    send(&batch.finalize()).with_context(|| format!("nft table inet {}", nat_table(key)))
}

/// Deletes the port's NAT table; one that is not there is already removed.
pub fn remove_port_nat(key: &str) -> Result<()> {
    let name = table_name(key)?;
    let table = Table::new(&name, ProtoFamily::Inet);
    let mut batch = Batch::new();
    batch.add(&table, MsgType::Add);
    batch.add(&table, MsgType::Del);
    send(&batch.finalize()).with_context(|| format!("delete nft table inet {}", nat_table(key)))
}

/// Whether the port's NAT table is there (for `vifkit check`).
pub fn nat_present(key: &str) -> Result<bool> {
    let query = super::exprs::ChainQuery {
        family: ProtoFamily::Inet,
        table: table_name(key)?,
        chain: c"postrouting".to_owned(),
    };
    let found = super::Nfnl::open().and_then(|nf| nf.chains_exist(&[query]));
    Ok(found.context("look up nft chains")?[0])
}
