//! What a bridge port gets beyond membership (CONTRACT 6: libvirt and Proxmox do the same):
//! VLANs on a VLAN-aware Linux bridge, isolation, learning off with the guest MAC pinned in
//! the FDB, and hairpin. Parsed at the boundary, validated against the bridge before any
//! step runs, applied by one step after the port joins the bridge.

use anyhow::{Result, bail};

use crate::planning::plan::{Phase, Plan, Step};
use crate::sys::rtnl::Link;
use crate::types::link::LinkRef;
use crate::types::port::{PortOptions, Rate};

/// Adds the tap's rate limit, both ways, before it comes up.
pub fn add_rate_limit(plan: &mut Plan, link: &LinkRef, rate: Rate) {
    let steps = [
        Step::SetRateLimit {
            link: link.clone(),
            rate,
        },
        Step::SetIngressLimit {
            link: link.clone(),
            rate,
        },
    ];
    plan.extend(Phase::BeforeLinkUp, steps);
}

/// A tap going away loses the limit on what its guest sends, whatever the config says by
/// then.
pub fn add_rate_limit_removal(plan: &mut Plan, link: &LinkRef) {
    let step = Step::RemoveIngressLimit { link: link.clone() };
    plan.push(Phase::After, step);
}

/// Adds the options step after the port joins `bridge` and before it comes up, so the
/// guest's first frame already meets its VLAN and flags. Refuses VLANs on a bridge that
/// cannot filter them: the guest would land untagged among every other port.
pub fn add_to_attach(
    plan: &mut Plan,
    link: &LinkRef,
    bridge: &Link,
    options: PortOptions,
) -> Result<()> {
    if options.is_default() {
        return Ok(());
    }
    if !options.vlans.is_empty() && !bridge.vlan_filtering {
        bail!(
            "bridge {} is not VLAN-aware: {} for {} needs vlan_filtering (ip link set {} type bridge vlan_filtering 1)",
            bridge.name,
            options.vlans,
            link.name,
            bridge.name
        );
    }
    let step = Step::SetPortOptions {
        link: link.clone(),
        options,
    };
    plan.push(Phase::BeforeLinkUp, step);
    Ok(())
}

#[cfg(test)]
#[path = "port_options_tests.rs"]
mod tests;
