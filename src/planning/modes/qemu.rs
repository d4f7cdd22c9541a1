//! qemu taps (`-netdev tap,script=,downscript=`): which bridge, and the port steps shared
//! with Xen (CONTRACT 1.3, 7.14). Debian's script fails open; this one fails closed.

use std::path::Path;

use anyhow::{Result, bail};

use crate::input::config::PortRule;
use crate::planning::modes::bridge;
use crate::planning::plan::{Phase, Plan, Step};
use crate::planning::snapshot::Snapshot;
use crate::sys::rtnl::Link;
use crate::types::bridge_word::{BridgeOrigin, BridgeWord};
use crate::types::link::LinkRef;
use crate::types::names::IfName;

/// Where a bridge may come from, in the order they are tried.
pub struct BridgeSources<'a> {
    /// argv[2], as qemu-dm passed it.
    pub argument: Option<&'a str>,
    /// `VIFKIT_BRIDGE` from qemu's environment (libvirt passes the script only LC_ALL, PATH
    /// and HOME).
    pub env: Option<&'a str>,
    pub rule: Option<&'a PortRule>,
    pub config_path: &'a Path,
}

/// The explicitly named bridge and where it was named, or None to use the default route.
/// Only the word that is used is parsed (the config's was parsed when it was loaded).
pub fn named_bridge(sources: &BridgeSources<'_>) -> Result<Option<(BridgeWord, BridgeOrigin)>> {
    let given = [
        (sources.argument, BridgeOrigin::TapArgument),
        (sources.env, BridgeOrigin::TapEnvironment),
    ];
    for (text, origin) in given {
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            return Ok(Some((BridgeWord::parse(text)?, origin)));
        }
    }
    Ok(sources.rule.and_then(|rule| {
        let origin = BridgeOrigin::Config {
            path: sources.config_path.to_owned(),
            line: rule.line,
        };
        Some((rule.bridge.clone()?, origin))
    }))
}

/// How `qemu-ifup` connects a tap, decided from its inputs alone (no kernel state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TapUp {
    /// `openvswitch = yes` in its section: the named bridge is an Open vSwitch one.
    OpenVswitch {
        word: BridgeWord,
        source: BridgeOrigin,
    },
    /// A Linux bridge named by the argument, `VIFKIT_BRIDGE` or `bridge =`.
    Bridge {
        word: BridgeWord,
        source: BridgeOrigin,
    },
    /// Routed by the section's `route =` addresses.
    Routed,
    /// Debian's rule: the bridge carrying a default route.
    DefaultRoute,
}

pub fn choose_up(tap: &IfName, sources: &BridgeSources<'_>) -> Result<TapUp> {
    let named = named_bridge(sources)?;
    match (sources.rule, named) {
        (Some(rule), named) if rule.openvswitch == Some(true) => match named {
            Some((word, source)) => Ok(TapUp::OpenVswitch { word, source }),
            None => bail!(
                "openvswitch = yes for {tap} needs the Open vSwitch bridge: set bridge = in its [port] section of {}",
                sources.config_path.display()
            ),
        },
        (_, Some((word, source))) => Ok(TapUp::Bridge { word, source }),
        (Some(rule), None) if !rule.route.is_empty() => Ok(TapUp::Routed),
        _ => Ok(TapUp::DefaultRoute),
    }
}

/// How `qemu-ifdown` takes a tap apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapDown {
    OpenVswitch,
    /// Its proxy entries on the uplink outlive the tap.
    Routed,
    Bridged,
}

/// A bridge argument or `VIFKIT_BRIDGE` means the tap was bridged whatever the config says.
pub fn choose_down(sources: &BridgeSources<'_>) -> TapDown {
    let named = |s: Option<&str>| s.is_some_and(|s| !s.is_empty());
    match sources.rule {
        Some(rule) if rule.openvswitch == Some(true) => TapDown::OpenVswitch,
        Some(rule)
            if !rule.route.is_empty() && sources.argument.is_none() && !named(sources.env) =>
        {
            TapDown::Routed
        }
        _ => TapDown::Bridged,
    }
}

/// Debian's rule, extended to IPv6: the first default-route device that is a Linux bridge.
pub fn default_route_bridge(kernel: &Snapshot) -> Option<&Link> {
    kernel
        .default_links()
        .into_iter()
        .filter_map(|index| kernel.link_by_index(index))
        .find(|link| link.is_bridge())
}

pub fn no_bridge_error(tap: &IfName, config_path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "no bridge for {tap}: no bridge argument, VIFKIT_BRIDGE is unset, no [port] rule in {} matches {tap}, and no IPv4 or IPv6 default route goes through a bridge",
        config_path.display()
    )
}

pub fn plan_ifup(tap: &IfName, bridge: &Link, mtu: Option<u32>, kernel: &Snapshot) -> Result<Plan> {
    let Some(found) = kernel.link(tap.as_str()) else {
        bail!("{tap} does not exist");
    };
    let mtu = mtu.unwrap_or(bridge.mtu);
    let mut plan = Plan::default();
    let link = bridge::prepare_port(found, None, mtu, kernel, plan.phase_mut(Phase::Prepare))?;
    bridge::join_bridge(found, &link, bridge, kernel, &mut plan)?;
    Ok(plan)
}

/// Out of the bridge, then down; a tap that is already gone needs nothing.
pub fn plan_ifdown(tap: &IfName, kernel: &Snapshot) -> Plan {
    let mut plan = Plan::default();
    match kernel.link(tap.as_str()) {
        Some(found) => {
            let link = LinkRef {
                index: found.index,
                name: tap.clone(),
            };
            if found.master.is_some() {
                plan.push(Phase::Prepare, Step::Detach { link: link.clone() });
            }
            plan.phase_mut(Phase::Prepare).push(Step::SetDown {
                link,
                was_up: found.up,
            });
        }
        None => plan.notes.push(format!("{tap} is already gone")),
    }
    plan
}

#[cfg(test)]
#[path = "qemu_tests.rs"]
mod tests;
