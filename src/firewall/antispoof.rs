//! Installs and removes a port's antispoofing chains, each change one atomic batch.
//!
//! Every port, bridged, routed, NAT or qemu tap, gets a table of its own,
//! `netdev vifkit-<port>`, whose entry chain hooks the port's ingress: the frames a guest
//! sends meet its rules before the bridge or the IP stack sees them, and no other port's
//! frames ever traverse them. So a packet costs one chain however many ports exist, and a
//! commit validates only that port's table.
//!
//! A shared bridge-family table dispatching through a verdict map keyed by port (libvirt's
//! design) is also O(1) per packet, but not per plug: every commit that adds a map element
//! or a rule makes the kernel re-validate the whole table, every port's chains included.
//! Measured here it took a plug from 4 to 9 ms with 1,000 ports present; this design from
//! 3.4 to 5.1 ms: about 1 ms is the kernel walking its table list to find a table by name,
//! the rest the 2,000 extra links (BENCHMARKS.md).
//!
//! Each batch is an ensure. A table left by an earlier guest with the same vif name is
//! deleted and rebuilt in the same transaction; deleting only what a lookup found keeps the
//! common plug free of deletions, which would make closing the socket wait for an RCU grace
//! period (about 10 ms) while the kernel frees them.

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

/// Whether the port's table (with its entry chain) is there.
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
    let chains = filter.chains();
    for chain in &chains {
        log::debug!("{} {chain}", filter.table());
    }
    let port = &filter.port;
    let install = || -> io::Result<()> {
        let nf = Nfnl::open()?;
        let stale = present(&nf, port)?;
        let mut batch = Batch::new();
        let table = table(port);
        if stale {
            batch.add(&table, MsgType::Add);
            batch.add(&table, MsgType::Del);
        }
        batch.add(&table, MsgType::Add);
        let names: Vec<_> = chains.iter().map(|c| c_name(&c.name)).collect();
        let mut objects: Vec<Chain> = names.iter().map(|n| Chain::new(n, &table)).collect();
        let entry = &mut objects[0];
        // NF_NETDEV_INGRESS is 0, the number nftnl calls PreRouting (its Ingress is inet's 5).
        entry.set_hook(Hook::PreRouting, INGRESS_PRIORITY);
        entry.set_type(ChainType::Filter);
        entry.set_policy(Policy::Accept);
        entry.set_device(c_name(port.as_str()));
        // All chains exist before the first rule, so the jumps between them resolve.
        for chain in &objects {
            batch.add(chain, MsgType::Add);
        }
        for (chain, spec) in objects.iter().zip(&chains) {
            for rule in &spec.rules {
                batch.add(&build_rule(chain, rule), MsgType::Add);
            }
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

/// Deletes the port's table, whatever addresses it was built with; none is success.
pub fn remove_port_filter(port: &IfName) -> Result<()> {
    let remove = || -> io::Result<()> {
        let nf = Nfnl::open()?;
        if !present(&nf, port)? {
            return Ok(());
        }
        let mut batch = Batch::new();
        let table = table(port);
        // Added first, so a table deleted meanwhile cannot fail the batch.
        batch.add(&table, MsgType::Add);
        batch.add(&table, MsgType::Del);
        nf.send(&batch.finalize())
    };
    remove().with_context(|| format!("delete nft table netdev {}", netdev_table(port)))
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
        Verdict::Return => NftVerdict::Return,
        Verdict::Jump(chain) => NftVerdict::Jump {
            chain: c_name(chain),
        },
        Verdict::Goto(chain) => NftVerdict::Goto {
            chain: c_name(chain),
        },
    };
    rule.add_expr(&verdict);
    rule
}
