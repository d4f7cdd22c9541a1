//! Bridged mode: which bridge, and the steps that make a netdev a port of it
//! (CONTRACT 4.2, 7.11). The port steps serve Xen vifs, Xen taps and qemu taps alike.

use anyhow::{Result, bail};

use crate::backend::Backend;
use crate::invocation::{Command, TypeIf, XenCall};
use crate::kernel::Snapshot;
use crate::mac::MacAddr;
use crate::modes::xen_device;
use crate::names::IfName;
use crate::netlink::Link;
use crate::plan::{HookRun, LinkRef, Plan, Step};

/// The bridge a run was asked for, and the legacy name to try if it is missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeRequest {
    pub name: IfName,
    /// Xen's old network-bridge renamed `ethN` to a bridge: `xenbrN` then means `ethN`.
    pub legacy: Option<IfName>,
}

impl BridgeRequest {
    /// Priority as upstream: xenstore, then the `bridge=` word, then the environment
    /// (already merged into `overrides`). No guess: upstream's "first bridge" is a FIX.
    pub fn for_xen(call: &XenCall, backend: &Backend) -> Result<BridgeRequest> {
        let Some(name) = backend
            .bridge
            .as_deref()
            .or(call.overrides.bridge.as_deref())
        else {
            bail!(
                "no bridge specified: set bridge= in the vif configuration (looked in {}/bridge, the bridge= argument and the bridge environment variable)",
                backend.path
            );
        };
        BridgeRequest::named(name)
    }

    pub fn named(name: &str) -> Result<BridgeRequest> {
        if name.contains(':') {
            bail!(ovs_syntax(name));
        }
        let name = IfName::new(name)?;
        let legacy = name
            .as_str()
            .strip_prefix("xenbr")
            .filter(|n| crate::names::parse_decimal(n).is_some())
            .map(|n| IfName::new(&format!("eth{n}")))
            .transpose()?;
        Ok(BridgeRequest { name, legacy })
    }

    /// Every name the planner may look at, for the kernel snapshot.
    pub fn names(&self) -> Vec<IfName> {
        std::iter::once(self.name.clone())
            .chain(self.legacy.clone())
            .collect()
    }

    /// The Linux bridge to attach to, from the snapshot, with a note when the legacy name was used.
    pub fn find<'k>(&self, kernel: &'k Snapshot) -> Result<(&'k Link, Option<String>)> {
        let name = &self.name;
        match kernel.link(name.as_str()) {
            Some(link) if link.is_bridge() => Ok((link, None)),
            Some(link) => bail!(
                "{name} exists but is not a bridge (it is a {} link)",
                link.kind.as_deref().unwrap_or("physical")
            ),
            None => match self
                .legacy
                .as_ref()
                .and_then(|eth| kernel.link(eth.as_str()))
            {
                Some(eth) if eth.is_bridge() => Ok((
                    eth,
                    Some(format!(
                        "bridge {name} does not exist; using the legacy bridge {}",
                        eth.name
                    )),
                )),
                _ if looks_like_vlan_tag(name.as_str()) => bail!(ovs_syntax(name.as_str())),
                _ => bail!("bridge {name} does not exist"),
            },
        }
    }
}

fn ovs_syntax(name: &str) -> String {
    format!(
        "bridge {name:?} uses Open vSwitch syntax (bridge.tag:trunk): use the vif-openvswitch script for it"
    )
}

/// `br0.10` is how vif-openvswitch writes a VLAN tag; it is only taken so when no link of
/// that name exists, since a Linux bridge may be called that too.
fn looks_like_vlan_tag(name: &str) -> bool {
    name.rsplit_once('.')
        .and_then(|(_, tag)| crate::names::parse_decimal(tag))
        .is_some_and(|tag| (1..=4094).contains(&tag))
}

fn link_ref(link: &Link) -> Result<LinkRef> {
    Ok(LinkRef {
        index: link.index,
        name: IfName::new(&link.name)?,
    })
}

/// Steps 1-4 of CONTRACT 4.2 (plus the rename that precedes them), as ensures: nothing is
/// bounced or rewritten that is already as wanted. Returns the port as later steps address it.
pub fn prepare_port(
    found: &Link,
    rename_to: Option<&IfName>,
    mtu: u32,
    steps: &mut Vec<Step>,
) -> Result<LinkRef> {
    let mut link = link_ref(found)?;
    let needs_mac = found.mac != Some(MacAddr::BACKEND_PORT);
    // The kernel renames only a down link, and many drivers change the MAC only when down.
    if found.up && (rename_to.is_some() || needs_mac) {
        steps.push(Step::SetDown {
            link: link.clone(),
            was_up: true,
        });
    }
    if let Some(to) = rename_to {
        steps.push(Step::Rename {
            link: link.clone(),
            to: to.clone(),
        });
        link.name = to.clone();
    }
    if needs_mac {
        steps.push(Step::SetMac {
            link: link.clone(),
            mac: MacAddr::BACKEND_PORT,
            previous: found.mac,
        });
    }
    steps.push(Step::FlushAddresses { link: link.clone() });
    if found.mtu != mtu {
        steps.push(Step::SetMtu {
            link: link.clone(),
            mtu,
            previous: found.mtu,
        });
    }
    Ok(link)
}

/// Enslave unless already a port of `bridge`, then bring the link up.
pub fn join_bridge(
    found: &Link,
    link: &LinkRef,
    bridge: &Link,
    kernel: &Snapshot,
    steps: &mut Vec<Step>,
) -> Result<()> {
    if found.master != Some(bridge.index) {
        let previous = found
            .master
            .and_then(|index| kernel.link_by_index(index))
            .map(link_ref)
            .transpose()?;
        steps.push(Step::Attach {
            link: link.clone(),
            bridge: link_ref(bridge)?,
            previous,
        });
    }
    let still_up = found.up && !steps.iter().any(|s| matches!(s, Step::SetDown { .. }));
    if !still_up {
        steps.push(Step::SetUp {
            link: link.clone(),
            was_up: false,
        });
    }
    Ok(())
}

/// `vif-bridge online` (vif) and `add` (tap).
pub fn plan_xen_attach(
    call: &XenCall,
    backend: &Backend,
    bridge: &BridgeRequest,
    kernel: &Snapshot,
    hooks: Option<HookRun>,
) -> Result<Plan> {
    let mut plan = Plan::default();
    let (bridge_link, note) = bridge.find(kernel)?;
    plan.notes.extend(note);
    let device = xen_device::resolve_attach(call, backend, kernel)?;
    let mtu = backend.mtu.unwrap_or(bridge_link.mtu);
    plan.notes.push(match backend.mtu {
        Some(_) => format!("MTU {mtu} from {}/mtu", backend.path),
        None => format!("MTU {mtu} from bridge {}", bridge_link.name),
    });
    let link = prepare_port(
        device.found,
        device.rename_to.as_ref(),
        mtu,
        &mut plan.steps,
    )?;
    if let (TypeIf::Vif, Some(key)) = (call.type_if, &backend.frontend_mtu_key) {
        plan.steps.push(Step::WriteXenstore {
            path: key.clone(),
            value: mtu.to_string(),
        });
    }
    join_bridge(device.found, &link, bridge_link, kernel, &mut plan.steps)?;
    plan.steps.extend(hooks.map(Step::RunHooks));
    Ok(plan)
}

/// `vif-bridge offline` / `remove`: down, then out of the bridge; a vanished device is done.
pub fn plan_xen_detach(
    call: &XenCall,
    backend: &Backend,
    kernel: &Snapshot,
    hooks: Option<HookRun>,
) -> Result<Plan> {
    debug_assert!(matches!(call.command, Command::Offline | Command::Remove));
    let mut plan = Plan::default();
    match xen_device::resolve_detach(call, backend, kernel)? {
        Some(found) => detach_port(found, &mut plan.steps)?,
        None => plan.notes.push(format!("{} is already gone", call.dev)),
    }
    plan.steps.extend(hooks.map(Step::RunHooks));
    Ok(plan)
}

pub fn detach_port(found: &Link, steps: &mut Vec<Step>) -> Result<()> {
    let link = link_ref(found)?;
    steps.push(Step::SetDown {
        link: link.clone(),
        was_up: found.up,
    });
    if found.master.is_some() {
        steps.push(Step::Detach { link });
    }
    Ok(())
}

#[cfg(test)]
#[path = "bridge_tests.rs"]
mod tests;
