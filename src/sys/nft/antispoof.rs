//! Installs and removes a port's antispoofing chain, each change one atomic batch.
//!
//! Every port, bridged, routed, NAT or qemu tap, gets a chain of its own hooked on the
//! port's ingress: the frames a guest sends meet its rules before the bridge or the IP
//! stack sees them, and no other port's frames ever traverse them, so a packet costs one
//! chain however many ports exist. The chains live in a fixed number of shared `netdev`
//! tables (`rules::netdev_table`), which keeps a plug's cost nearly flat as ports grow. A
//! chain a previous release left in its table (`rules::legacy_netdev_table`) is deleted by
//! the port's next online or offline.
//!
//! A bridge-family table dispatching through a verdict map keyed by port (libvirt's design)
//! is also O(1) per packet, but not per plug: each commit re-validates the table through
//! the map, every port's chains included. Measured here it took a plug from 4 to 9 ms with
//! 1,000 ports present.
//!
//! The chain's comment is the filter's fingerprint (`PortFilter::fingerprint`), and
//! `read_port_filter` reads it back with the chain's rules (`readback`): a planner that
//! finds the fingerprint of the filter it wants and exactly the rules it installs has
//! nothing to install. The comment alone would not do: `nft flush chain` or a rule added by
//! hand leaves it as it was.
//!
//! Each batch is an ensure. A chain left by an earlier guest with the same vif name is
//! deleted and rebuilt in the same transaction; deleting only what a lookup found keeps the
//! common plug free of deletions, which would make closing the socket wait for an RCU grace
//! period (about 10 ms) while the kernel frees them. Emptied tables stay: they cost nothing
//! and deleting one could race with another port's plug into it.

use std::io;

use anyhow::{Context, Result};

use super::readback::{self, InstalledFilter};
use super::rules::{self, Load, PortFilter, legacy_netdev_table, netdev_table};
use super::wire::{self, Base, Batch, Expr, Hook, MetaKey, NfFamily, Verdict};
use super::{Nfnl, fingerprint};
use crate::types::names::IfName;

/// Ahead of anything an admin hooks on the port's ingress.
const INGRESS_PRIORITY: i32 = -500;
/// NF_NETDEV_INGRESS.
const INGRESS: u32 = 0;

/// Which of the port's chains are there: in its table, and in the table a previous release
/// put it in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Present {
    current: bool,
    legacy: bool,
}

/// Two round trips, however many ports exist.
fn present(nf: &Nfnl, port: &IfName) -> io::Result<Present> {
    let exists = |table: String| nf.chain_exists(NfFamily::NetDev, &table, port.as_str());
    Ok(Present {
        current: exists(netdev_table(port))?,
        legacy: exists(legacy_netdev_table(port))?,
    })
}

/// Whether the port has antispoofing rules (for `vifkit check`).
pub fn port_filter_present(port: &IfName) -> Result<bool> {
    Nfnl::open()
        .and_then(|nf| present(&nf, port))
        .map(|p| p.current || p.legacy)
        .context("look up nft chains")
}

/// The table holding the port's chain: its own, else the one a previous release used when
/// only that one has it.
fn table_holding(nf: &Nfnl, port: &IfName) -> io::Result<Option<(String, Vec<u8>)>> {
    for table in [netdev_table(port), legacy_netdev_table(port)] {
        if let Some(chain) = nf.chain(NfFamily::NetDev, &table, port.as_str())? {
            return Ok(Some((table, chain)));
        }
    }
    Ok(None)
}

/// The comment of the port's chain: None when there is no chain, "" when it has no
/// comment (one vifkit did not install, or a kernel older than 5.10), else what
/// `PortFilter::fingerprint` gave when it was installed. One round trip (two when the
/// chain is not in the port's own table).
pub fn installed_port_filter(port: &IfName) -> Result<Option<String>> {
    let chain = Nfnl::open()
        .and_then(|nf| table_holding(&nf, port))
        .context("look up nft chains")?;
    Ok(chain.map(|(_, chain)| wire::comment_of(&chain, wire::NFTA_CHAIN_USERDATA)))
}

/// The port's chain as the kernel holds it, its comment and its rules; None when there is
/// no chain. One round trip (two for a port whose chain is not in its table), and a dump
/// of that chain's rules when it exists. A previous release's chain has another
/// fingerprint, so the planner installs the port's own, which deletes it.
pub fn read_port_filter(port: &IfName) -> Result<Option<InstalledFilter>> {
    let read = || -> io::Result<Option<InstalledFilter>> {
        let nf = Nfnl::open()?;
        let Some((table, chain)) = table_holding(&nf, port)? else {
            return Ok(None);
        };
        match readback::chain_rules(&nf, NfFamily::NetDev, &table, port.as_str()) {
            Ok(rules) => Ok(Some(InstalledFilter {
                fingerprint: wire::comment_of(&chain, wire::NFTA_CHAIN_USERDATA),
                rules,
            })),
            // Deleted since the lookup (an offline of the same port).
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    };
    read().with_context(|| {
        format!(
            "read the antispoofing chain of {port} in nft table netdev {}",
            netdev_table(port)
        )
    })
}

impl PortFilter {
    /// Names exactly what `set_port_filter` installs: the fingerprint of the batch that
    /// installs it where nothing is (the comment left out). Any change to the port, MAC,
    /// addresses, trunk flag or the rules vifkit writes for them changes it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&install_batch(self, Present::default(), None))
    }

    /// What `set_port_filter` leaves, as `read_port_filter` reads it back.
    pub fn as_installed(&self) -> InstalledFilter {
        InstalledFilter {
            fingerprint: self.fingerprint(),
            rules: self.chain().rules.iter().map(|r| Some(exprs(r))).collect(),
        }
    }

    /// Whether `installed` is exactly what `set_port_filter` installs for this filter: its
    /// fingerprint (so the same port, MAC, addresses and settings) and every rule.
    pub fn is_installed_as(&self, installed: &InstalledFilter) -> bool {
        self.mismatch(installed).is_none()
    }

    /// How `installed` differs from what `set_port_filter` installs for this filter, in a
    /// few words for `vifkit check`; None when it does not.
    pub fn mismatch(&self, installed: &InstalledFilter) -> Option<String> {
        let wanted = self.as_installed();
        if installed.fingerprint.is_empty() {
            return Some("vifkit did not install them (the chain has no fingerprint)".into());
        }
        if installed.fingerprint != wanted.fingerprint {
            return Some("installed for other addresses or settings".into());
        }
        let (have, want) = (installed.rules.len(), wanted.rules.len());
        if have == 0 {
            return Some("the chain is empty (flushed)".into());
        }
        if have != want {
            return Some(format!(
                "the chain has {have} rules where online installs {want} (changed by hand)"
            ));
        }
        let differs = installed
            .rules
            .iter()
            .zip(&wanted.rules)
            .position(|(a, b)| a != b)?;
        Some(format!("rule {} differs (changed by hand)", differs + 1))
    }
}

/// Replaces the port's rules with `filter`'s, in one transaction.
pub fn set_port_filter(filter: &PortFilter) -> Result<()> {
    log::debug!("{} {}", filter.table(), filter.chain());
    let port = &filter.port;
    let install = || -> io::Result<()> {
        let nf = Nfnl::open()?;
        let stale = present(&nf, port)?;
        nf.send(&install_batch(filter, stale, Some(&filter.fingerprint())))
    };
    install().with_context(|| {
        format!(
            "install antispoofing rules for {port} in {}",
            filter.table()
        )
    })
}

/// The transaction that installs `filter`, deleting the port's `stale` chain first; the
/// chain's comment is the filter's fingerprint.
#[cfg(test)]
pub(super) fn filter_batch(filter: &PortFilter, stale: bool) -> Vec<u8> {
    let stale = Present {
        current: stale,
        legacy: false,
    };
    install_batch(filter, stale, Some(&filter.fingerprint()))
}

/// The same, deleting the `stale` chains first.
fn install_batch(filter: &PortFilter, stale: Present, comment: Option<&str>) -> Vec<u8> {
    let spec = filter.chain();
    let table = netdev_table(&filter.port);
    let mut batch = Batch::new();
    batch.add_table(NfFamily::NetDev, &table);
    // The kernel deletes a chain's rules with it.
    if stale.current {
        batch.delete_chain(NfFamily::NetDev, &table, &spec.name);
    }
    if stale.legacy {
        let legacy = legacy_netdev_table(&filter.port);
        batch.delete_chain(NfFamily::NetDev, &legacy, &spec.name);
    }
    let hook = Hook {
        number: INGRESS,
        priority: INGRESS_PRIORITY,
        device: Some(filter.port.to_string()),
        kind: "filter",
        accept_by_default: Some(true),
    };
    batch.add_chain(NfFamily::NetDev, &table, &spec.name, Some(&hook), comment);
    for rule in &spec.rules {
        batch.add_rule(NfFamily::NetDev, &table, &spec.name, &exprs(rule));
    }
    batch.finish()
}

/// The transaction that deletes the port's chain (in its table).
#[cfg(test)]
pub(super) fn remove_batch(port: &IfName) -> Vec<u8> {
    let present = Present {
        current: true,
        legacy: false,
    };
    remove_present_batch(port, present)
}

/// The transaction that deletes the port's chains that are `present`.
fn remove_present_batch(port: &IfName, present: Present) -> Vec<u8> {
    let mut batch = Batch::new();
    if present.current {
        batch.delete_chain(NfFamily::NetDev, &netdev_table(port), port.as_str());
    }
    if present.legacy {
        let legacy = legacy_netdev_table(port);
        batch.delete_chain(NfFamily::NetDev, &legacy, port.as_str());
    }
    batch.finish()
}

/// Deletes the port's chains, whatever addresses they were built with; none is success.
pub fn remove_port_filter(port: &IfName) -> Result<()> {
    let remove = || -> io::Result<()> {
        let nf = Nfnl::open()?;
        let found = present(&nf, port)?;
        if found == Present::default() {
            return Ok(());
        }
        match nf.send(&remove_present_batch(port, found)) {
            // Another offline of the same port got there first.
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => {
                if present(&nf, port)? == Present::default() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
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

/// A rule's expressions: per match a load, a mask for prefixes, a compare; then the verdict.
fn exprs(rule: &rules::Rule) -> Vec<Expr> {
    let mut exprs = vec![];
    for m in &rule.matches {
        exprs.push(match m.field.load() {
            Load::L4Proto => Expr::Meta(MetaKey::L4Proto),
            Load::LinkLayer { offset, len } => payload(Base::LinkLayer, offset, len),
            Load::Network { offset, len } => payload(Base::Network, offset, len),
            Load::Transport { offset, len } => payload(Base::Transport, offset, len),
            Load::Ipv6ExtHeader { kind } => Expr::ExtHeaderPresent { kind },
        });
        let (data, mask) = m.data();
        if let Some(mask) = mask {
            exprs.push(Expr::Mask(mask));
        }
        exprs.push(Expr::Cmp {
            negate: m.negate,
            data,
        });
    }
    exprs.push(Expr::Verdict(match rule.verdict {
        rules::Verdict::Accept => Verdict::Accept,
        rules::Verdict::Drop => Verdict::Drop,
    }));
    exprs
}

fn payload(base: Base, offset: u32, len: u32) -> Expr {
    Expr::Payload { base, offset, len }
}
