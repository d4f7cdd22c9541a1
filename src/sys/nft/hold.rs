//! Holds a port's frames for a while: one rule at the head of its antispoofing chain drops
//! everything the guest sends until a wall-clock time, so a plug can return while its
//! conntrack purge finishes in the background without the new guest opening a flow the
//! purge would then cut. The rule lapses by itself at that time (`meta time`, Linux 5.4),
//! so a purge that dies cannot strand the guest; the purge deletes it as soon as it is done.
//!
//! Each hold is told apart by its comment (the time and the plugging process), never by
//! position, so a purge only ever deletes its own hold: a re-plug rebuilds the chain and
//! with it any hold, and rule handles are never reused.

use std::io;

use anyhow::{Context, Result};

use super::readback;
use super::rules::netdev_table;
use super::wire::{Batch, Expr, MetaKey, NfFamily, Verdict};
use super::{Nfnl, send};
use crate::types::names::IfName;

/// What every hold's comment starts with; `readback` leaves such rules out of the chain it
/// compares with the plan.
pub const HOLD_TAG: &str = "vifkit-hold";

/// The comment of the hold that lasts until `until_ns` (since the epoch), set by process
/// `pid`.
pub fn hold_comment(until_ns: u64, pid: u32) -> String {
    format!("{HOLD_TAG} until {until_ns} for {pid}")
}

/// The hold's expressions: wall clock < `until_ns` → drop. The clock is host byte order and
/// the kernel compares bytes, so it is turned big-endian first, as nft does.
pub(super) fn hold_exprs(until_ns: u64) -> Vec<Expr> {
    vec![
        Expr::Meta(MetaKey::TimeNs),
        Expr::ToNetworkOrder { len: 8 },
        Expr::Below(until_ns.to_be_bytes().to_vec()),
        Expr::Verdict(Verdict::Drop),
    ]
}

/// The transaction that puts the hold at the head of `table`'s netdev `chain`.
pub(super) fn hold_batch(table: &str, chain: &str, until_ns: u64, comment: &str) -> Vec<u8> {
    let mut batch = Batch::new();
    batch.insert_rule(
        NfFamily::NetDev,
        table,
        chain,
        &hold_exprs(until_ns),
        comment,
    );
    batch.finish()
}

/// Drops every frame the port's guest sends until `until_ns`, or until [`release_port`].
/// The port's chain must be in its table (the plug has just installed it).
pub fn hold_port(port: &IfName, until_ns: u64, comment: &str) -> Result<()> {
    let table = netdev_table(port);
    send(&hold_batch(&table, port.as_str(), until_ns, comment))
        .with_context(|| format!("hold the frames of {port} in nft table netdev {table}"))
}

/// Deletes the hold with `comment` from the port's chain. False when it is not there (the
/// chain was rebuilt or deleted meanwhile, or the hold deleted already).
pub fn release_port(port: &IfName, comment: &str) -> Result<bool> {
    let release = || -> io::Result<bool> {
        let nf = Nfnl::open()?;
        let table = netdev_table(port);
        let Some(handle) = readback::handle_of(&nf, &table, port.as_str(), comment)? else {
            return Ok(false);
        };
        let mut batch = Batch::new();
        batch.delete_rule(NfFamily::NetDev, &table, port.as_str(), handle);
        match nf.send(&batch.finish()) {
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => Ok(false),
            other => other.map(|()| true),
        }
    };
    release().with_context(|| {
        format!(
            "release the frames of {port} in nft table netdev {}",
            netdev_table(port)
        )
    })
}
