//! Installs and removes a port's antispoofing chain, each change one atomic batch.
//!
//! Every port, bridged, routed, NAT or qemu tap, gets a chain of its own hooked on the
//! port's ingress: the frames a guest sends meet its rules before the bridge or the IP
//! stack sees them, and no other port's frames ever traverse them, so a packet costs one
//! chain however many ports exist. The chains live in a fixed number of shared `netdev`
//! tables (`rules::netdev_table`), which keeps a plug's cost nearly flat as ports grow.
//!
//! A bridge-family table dispatching through a verdict map keyed by port (libvirt's design)
//! is also O(1) per packet, but not per plug: each commit re-validates the table through
//! the map, every port's chains included. Measured here it took a plug from 4 to 9 ms with
//! 1,000 ports present.
//!
//! Each batch is an ensure. A chain left by an earlier guest with the same vif name is
//! deleted and rebuilt in the same transaction; deleting only what a lookup found keeps the
//! common plug free of deletions, which would make closing the socket wait for an RCU grace
//! period (about 10 ms) while the kernel frees them. Emptied tables stay: they cost nothing
//! and deleting one could race with another port's plug into it.

use std::io;

use anyhow::{Context, Result};
use nftnl::expr::{Bitwise, Cmp, CmpOp, Meta, Verdict as NftVerdict};
use nftnl::{Batch, Chain, ChainType, Hook, MsgType, Policy, ProtoFamily, Rule, Table};

use super::Nfnl;
use super::exprs::{ChainQuery, Payload, c_name};
use super::rules::{Load, PortFilter, Verdict, netdev_table};
use crate::names::IfName;

/// Ahead of anything an admin hooks on the port's ingress.
const INGRESS_PRIORITY: i32 = -500;

/// Whether the port's chain is there; one round trip, however many ports exist.
fn present(nf: &Nfnl, port: &IfName) -> io::Result<bool> {
    let query = ChainQuery {
        family: ProtoFamily::NetDev,
        table: c_name(&netdev_table(port)),
        chain: c_name(port.as_str()),
    };
    Ok(nf.chains_exist(&[query])?[0])
}

/// Whether the port has antispoofing rules (for `vifkit check`).
pub fn port_filter_present(port: &IfName) -> Result<bool> {
    Nfnl::open()
        .and_then(|nf| present(&nf, port))
        .context("look up nft chains")
}

fn table(port: &IfName) -> Table {
    Table::new(c_name(&netdev_table(port)), ProtoFamily::NetDev)
}

/// Replaces the port's rules with `filter`'s, in one transaction.
pub fn set_port_filter(filter: &PortFilter) -> Result<()> {
    let spec = filter.chain();
    log::debug!("{} {spec}", filter.table());
    let port = &filter.port;
    let install = || -> io::Result<()> {
        let nf = Nfnl::open()?;
        let stale = present(&nf, port)?;
        let mut batch = Batch::new();
        let table = table(port);
        batch.add(&table, MsgType::Add);
        let name = c_name(&spec.name);
        if stale {
            // The kernel deletes a chain's rules with it.
            batch.add(&Chain::new(&name, &table), MsgType::Del);
        }
        let mut chain = Chain::new(&name, &table);
        // NF_NETDEV_INGRESS is 0, the number nftnl calls PreRouting (its Ingress is inet's 5).
        chain.set_hook(Hook::PreRouting, INGRESS_PRIORITY);
        chain.set_type(ChainType::Filter);
        chain.set_policy(Policy::Accept);
        chain.set_device(c_name(port.as_str()));
        batch.add(&chain, MsgType::Add);
        for rule in &spec.rules {
            batch.add(&build_rule(&chain, rule), MsgType::Add);
        }
        nf.send(&batch.finalize())
    };
    install().with_context(|| {
        format!(
            "install antispoofing rules for {port} in {}",
            filter.table()
        )
    })
}

/// Deletes the port's chain, whatever addresses it was built with; none is success.
pub fn remove_port_filter(port: &IfName) -> Result<()> {
    let remove = || -> io::Result<()> {
        let nf = Nfnl::open()?;
        if !present(&nf, port)? {
            return Ok(());
        }
        let mut batch = Batch::new();
        let name = c_name(port.as_str());
        batch.add(&Chain::new(&name, &table(port)), MsgType::Del);
        match nf.send(&batch.finalize()) {
            // Another offline of the same port got there first.
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => match present(&nf, port)? {
                false => Ok(()),
                true => Err(e),
            },
            result => result,
        }
    };
    remove().with_context(|| {
        format!(
            "delete the antispoofing chain of {port} from nft table netdev {}",
            netdev_table(port)
        )
    })
}

fn build_rule<'a>(chain: &'a Chain<'a>, spec: &super::rules::Rule) -> Rule<'a> {
    let mut rule = Rule::new(chain);
    for m in &spec.matches {
        match m.field.load() {
            Load::L4Proto => rule.add_expr(&Meta::L4Proto),
            load => rule.add_expr(&Payload(load)),
        }
        let (data, mask) = m.data();
        if let Some(mask) = mask {
            let zeros = vec![0u8; mask.len()];
            rule.add_expr(&Bitwise::new(&mask[..], &zeros[..]));
        }
        let op = if m.negate { CmpOp::Neq } else { CmpOp::Eq };
        rule.add_expr(&Cmp::new(op, &data[..]));
    }
    let verdict = match &spec.verdict {
        Verdict::Accept => NftVerdict::Accept,
        Verdict::Drop => NftVerdict::Drop,
    };
    rule.add_expr(&verdict);
    rule
}
