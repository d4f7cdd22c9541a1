//! Installs and removes a port's antispoofing chains, each change one atomic batch.
//!
//! Bridged ports share `bridge vifkit`: its one base chain looks the input port up in the
//! `ports` verdict map and jumps to that port's chain, so a packet costs one hash lookup
//! however many ports exist (libvirt's nftables design). Routed and NAT ports get a
//! `netdev vifkit-<port>` table hooked on the port's own ingress, which other ports never
//! traverse. Every batch is an ensure: objects are added without NLM_F_EXCL (a no-op when
//! present) and then flushed or deleted, so a rerun, a stale copy from an older guest with
//! the same vif name, or an absent table all end in the same state.

use std::ffi::CStr;
use std::io;

use anyhow::{Context, Result};
use nftnl::expr::{Bitwise, Cmp, CmpOp, Meta, Verdict as NftVerdict};
use nftnl::{Batch, Chain, ChainType, Hook, MsgType, Policy, ProtoFamily, Rule, Table};

use super::exprs::{JumpElement, Payload, VerdictLookup, VerdictMap, c_name};
use super::rules::{
    Attachment, BRIDGE_TABLE, ChainSpec, HELPER_SUFFIXES, Load, PortFilter, Verdict, netdev_table,
};
use super::send;
use crate::names::IfName;

/// The bridge family's `filter` priority.
const BRIDGE_PRIORITY: i32 = -200;
/// Ahead of anything an admin hooks on the port's ingress.
const NETDEV_PRIORITY: i32 = -500;
const PORTS_MAP: &CStr = c"ports";
/// A `/` keeps it apart from every port's chain (interface names cannot hold one).
const DISPATCH_CHAIN: &CStr = c"vifkit/dispatch";

/// Replaces the port's rules with `filter`'s, in one transaction.
pub fn set_port_filter(filter: &PortFilter) -> Result<()> {
    let chains = filter.chains();
    for chain in &chains {
        log::debug!("{} {chain}", filter.table());
    }
    let port = &filter.port;
    let result = match filter.attachment {
        Attachment::Bridged => set_bridged(port, &chains),
        Attachment::Routed => {
            // A bridged guest that had this name before must not keep a map entry.
            remove_bridged(port)?;
            set_routed(port, &chains)
        }
    };
    result.with_context(|| {
        format!(
            "install antispoofing rules for {port} in {}",
            filter.table()
        )
    })
}

/// Deletes whatever rules the port has, in either family; none at all is success.
pub fn remove_port_filter(port: &IfName) -> Result<()> {
    remove_routed(port)
        .with_context(|| format!("delete nft table netdev {}", netdev_table(port)))?;
    remove_bridged(port)
        .with_context(|| format!("delete the chains of {port} in bridge {BRIDGE_TABLE}"))
}

fn set_bridged(port: &IfName, chains: &[ChainSpec]) -> io::Result<()> {
    let mut batch = Batch::new();
    // A routed guest that had this name before: its ingress table would filter this port too.
    let stale = routed_table(port);
    batch.add(&stale, MsgType::Add);
    batch.add(&stale, MsgType::Del);

    let table_name = c_name(BRIDGE_TABLE);
    let table = Table::new(&table_name, ProtoFamily::Bridge);
    batch.add(&table, MsgType::Add);
    let map = VerdictMap::new(&table_name, PORTS_MAP, ProtoFamily::Bridge);
    batch.add(&map, MsgType::Add);
    let mut dispatch = Chain::new(DISPATCH_CHAIN, &table);
    dispatch.set_hook(Hook::PreRouting, BRIDGE_PRIORITY);
    dispatch.set_type(ChainType::Filter);
    dispatch.set_policy(Policy::Accept);
    batch.add(&dispatch, MsgType::Add);
    // Flushed and rewritten on every plug: the one rule exists exactly once, atomically.
    batch.add(&Rule::new(&dispatch), MsgType::Del);
    let mut jump = Rule::new(&dispatch);
    jump.add_expr(&Meta::IifName);
    jump.add_expr(&VerdictLookup(PORTS_MAP));
    batch.add(&jump, MsgType::Add);

    let names: Vec<_> = chains.iter().map(|c| c_name(&c.name)).collect();
    let objects: Vec<Chain> = names.iter().map(|n| Chain::new(n, &table)).collect();
    add_rules(&mut batch, &objects, chains);
    let element = JumpElement::new(
        &table_name,
        PORTS_MAP,
        ProtoFamily::Bridge,
        port.as_str(),
        &names[0],
    );
    batch.add(&element, MsgType::Add);
    send(&batch.finalize())
}

fn set_routed(port: &IfName, chains: &[ChainSpec]) -> io::Result<()> {
    let mut batch = Batch::new();
    let table = routed_table(port);
    batch.add(&table, MsgType::Add);
    batch.add(&table, MsgType::Del);
    batch.add(&table, MsgType::Add);
    let names: Vec<_> = chains.iter().map(|c| c_name(&c.name)).collect();
    let mut objects: Vec<Chain> = names.iter().map(|n| Chain::new(n, &table)).collect();
    let entry = &mut objects[0];
    // NF_NETDEV_INGRESS is 0, the number nftnl calls PreRouting (its Ingress is inet's 5).
    entry.set_hook(Hook::PreRouting, NETDEV_PRIORITY);
    entry.set_type(ChainType::Filter);
    entry.set_policy(Policy::Accept);
    entry.set_device(c_name(port.as_str()));
    add_rules(&mut batch, &objects, chains);
    send(&batch.finalize())
}

fn remove_routed(port: &IfName) -> io::Result<()> {
    let mut batch = Batch::new();
    let table = routed_table(port);
    batch.add(&table, MsgType::Add);
    batch.add(&table, MsgType::Del);
    send(&batch.finalize())
}

/// Element first, then the entry chain (its jumps hold the helpers), then the helpers; each
/// added first so deleting one that is not there cannot fail the batch.
fn remove_bridged(port: &IfName) -> io::Result<()> {
    let table_name = c_name(BRIDGE_TABLE);
    let table = Table::new(&table_name, ProtoFamily::Bridge);
    let names: Vec<_> = std::iter::once(port.to_string())
        .chain(HELPER_SUFFIXES.iter().map(|s| format!("{port}{s}")))
        .map(|n| c_name(&n))
        .collect();
    let chains: Vec<Chain> = names.iter().map(|n| Chain::new(n, &table)).collect();
    let element = JumpElement::new(
        &table_name,
        PORTS_MAP,
        ProtoFamily::Bridge,
        port.as_str(),
        &names[0],
    );
    let mut batch = Batch::new();
    for chain in &chains {
        batch.add(chain, MsgType::Add);
    }
    batch.add(&element, MsgType::Add);
    batch.add(&element, MsgType::Del);
    for chain in &chains {
        batch.add(chain, MsgType::Del);
    }
    match send(&batch.finalize()) {
        // No table (or map): no bridged port was ever filtered here.
        Err(err) if err.raw_os_error() == Some(nix::libc::ENOENT) => Ok(()),
        other => other,
    }
}

fn routed_table(port: &IfName) -> Table {
    Table::new(c_name(&netdev_table(port)), ProtoFamily::NetDev)
}

/// Ensures every chain exists and is empty, then fills them: jumps between them resolve
/// because all exist before the first rule is added.
fn add_rules(batch: &mut Batch, objects: &[Chain], specs: &[ChainSpec]) {
    for chain in objects {
        batch.add(chain, MsgType::Add);
        batch.add(&Rule::new(chain), MsgType::Del);
    }
    for (chain, spec) in objects.iter().zip(specs) {
        for rule in &spec.rules {
            batch.add(&build_rule(chain, rule), MsgType::Add);
        }
    }
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
