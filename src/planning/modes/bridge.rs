//! Bridged mode: which bridge, and the steps that make a netdev a port of it
//! (CONTRACT 4.2, 7.11). The port steps serve Xen vifs, Xen taps and qemu taps alike.

use anyhow::{Result, bail};

use crate::input::invocation::{Command, TypeIf};
use crate::input::xen_port::XenPort;
use crate::planning::ensure::{ensure_mtu, link_ref};
use crate::planning::modes::port_options;
use crate::planning::modes::xen_device;
use crate::planning::modes::{Attach, Mode};
use crate::planning::needs::Needs;
use crate::planning::plan::{Phase, Plan, Step};
use crate::planning::snapshot::Snapshot;
use crate::sys::rtnl::Link;
use crate::types::bridge_word::{BridgeOrigin, BridgeWord};
use crate::types::hook::HookRun;
use crate::types::link::LinkRef;
use crate::types::mac::MacAddr;
use crate::types::names::IfName;
use crate::types::port::Requested;
use crate::types::vlan::Vlans;
use crate::types::xen_vlan::XenVlan;

/// The bridge a run was asked for, and the legacy name to try if it is missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeRequest {
    /// The link to look for first: the whole word, else the bridge before its VLANs.
    pub name: IfName,
    /// Xen's old network-bridge renamed `ethN` to a bridge: `xenbrN` then means `ethN`.
    pub legacy: Option<IfName>,
    /// The word as given. Read as vif-openvswitch's `bridge[.tag][:trunk...]` it is taken
    /// on a VLAN-aware Linux bridge; `br0.10` only so when no link has that name.
    pub word: BridgeWord,
    /// Where the word was given, for the error that says the bridge is missing.
    pub origin: BridgeOrigin,
}

impl BridgeRequest {
    /// Priority as upstream: xenstore, then the `bridge=` word, then the environment
    /// (already merged into `overrides`). No guess: upstream's "first bridge" is a FIX.
    pub fn for_xen(port: &XenPort) -> Result<BridgeRequest> {
        let Some(given) = &port.bridge else {
            bail!(
                "no bridge specified: set bridge= in the vif configuration (looked in {}/bridge, the bridge= argument and the bridge environment variable)",
                port.backend
            );
        };
        BridgeRequest::new(given.word()?, given.origin.clone())
    }

    pub fn new(word: BridgeWord, origin: BridgeOrigin) -> Result<BridgeRequest> {
        let name = word.link_name().clone();
        let legacy = name
            .as_str()
            .strip_prefix("xenbr")
            .filter(|n| crate::types::names::parse_decimal(n).is_some())
            .map(|n| IfName::new(&format!("eth{n}")))
            .transpose()?;
        Ok(BridgeRequest {
            name,
            legacy,
            word,
            origin,
        })
    }

    /// Every name the planner may look at, for the kernel snapshot.
    pub fn names(&self) -> Vec<IfName> {
        std::iter::once(self.name.clone())
            .chain(self.legacy.clone())
            .chain(self.word.with_vlans().map(|t| t.bridge.clone()))
            .collect()
    }

    /// The Linux bridge to attach to, from the snapshot, with a note when the legacy name
    /// or the VLAN syntax chose it.
    pub fn find<'k>(&self, kernel: &'k Snapshot) -> Result<(&'k Link, Option<String>)> {
        let name = &self.name;
        let vlan_bridge = self
            .word
            .with_vlans()
            .and_then(|t| Some((kernel.link(t.bridge.as_str())?, &t.vlans)))
            .filter(|(link, _)| link.is_bridge());
        let with_vlans = |(link, vlans): (&'k Link, &Vlans)| {
            let note = format!("bridge {} with {vlans}", link.name);
            (link, Some(note))
        };
        if self.word.name().is_none() {
            // The word has trunks (or is too long for a link): it names no link of its own.
            return match vlan_bridge {
                Some(found) => Ok(with_vlans(found)),
                None => bail!(ovs_syntax(&self.word)),
            };
        }
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
                _ => match vlan_bridge {
                    Some(found) => Ok(with_vlans(found)),
                    None if self.word.with_vlans().is_some() => bail!(ovs_syntax(&self.word)),
                    None => bail!("bridge {name} does not exist (named by {})", self.origin),
                },
            },
        }
    }

    /// The VLANs the bridge word gives a port of `found` (none unless the VLAN syntax chose it).
    pub fn vlans_for(&self, found: &Link) -> Vlans {
        match self.word.with_vlans() {
            Some(t) if t.bridge == found.name => t.vlans.clone(),
            _ => Vlans::default(),
        }
    }
}

/// `B/vlan` and a bridge word with VLANs: two answers to one question.
pub fn vlan_clash(port: &XenPort, word: &BridgeWord, vlan: &XenVlan) -> String {
    format!(
        "bridge {:?} and {}/vlan {:?} both give {} its VLANs: give them once, with vlan= and a bridge without VLANs or with the bridge word alone",
        word.as_str(),
        port.backend,
        vlan.as_str(),
        port.name
    )
}

fn ovs_syntax(word: &BridgeWord) -> String {
    format!(
        "bridge {:?} uses the bridge.tag:trunk syntax but names no Linux bridge here: for Open vSwitch use the vif-openvswitch script",
        word.as_str()
    )
}

/// Steps 1-4 of CONTRACT 4.2 (plus the rename that precedes them), as ensures: nothing is
/// bounced or rewritten that is already as wanted. Returns the port as later steps address it.
pub fn prepare_port(
    found: &Link,
    rename_to: Option<&IfName>,
    mtu: u32,
    kernel: &Snapshot,
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
    // A bridge port carries no address of its own; the IPv6 link-local the kernel gives
    // every up link is left alone (it comes straight back).
    for address in kernel.addresses_of(found.index) {
        if !address.is_ipv6_link_local() {
            let link = link.clone();
            steps.push(Step::DelAddress { link, address });
        }
    }
    ensure_mtu(found, &link, mtu, steps);
    Ok(link)
}

/// Enslave unless already a port of `bridge`, then bring the link up.
pub fn join_bridge(
    found: &Link,
    link: &LinkRef,
    bridge: &Link,
    kernel: &Snapshot,
    plan: &mut Plan,
) -> Result<()> {
    // The host's own firewall may drop what the bridge forwards; say so, change nothing.
    plan.warnings.extend(kernel.bridged_traffic_dropped.clone());
    if found.master != Some(bridge.index) {
        let previous = found
            .master
            .and_then(|index| kernel.link_by_index(index))
            .map(link_ref)
            .transpose()?;
        let step = Step::Attach {
            link: link.clone(),
            bridge: link_ref(bridge)?,
            previous,
        };
        plan.push(Phase::Prepare, step);
    }
    let taken_down = plan
        .phase(Phase::Prepare)
        .iter()
        .any(|s| matches!(s, Step::SetDown { .. }));
    if !found.up || taken_down {
        let step = Step::SetUp {
            link: link.clone(),
            was_up: false,
        };
        plan.push(Phase::LinkUp, step);
    }
    Ok(())
}

/// `vif-bridge online` (vif) and `add` (tap).
pub fn plan_xen_attach(
    port: &XenPort,
    bridge: &BridgeRequest,
    requested: &Requested,
    kernel: &Snapshot,
    hooks: Option<HookRun>,
) -> Result<Plan> {
    let mut plan = Plan::default();
    let (bridge_link, note) = bridge.find(kernel)?;
    plan.notes.extend(note);
    let device = xen_device::resolve_attach(port, kernel)?;
    let mtu = port.mtu.unwrap_or(bridge_link.mtu);
    plan.notes.push(match port.mtu {
        Some(_) => format!("MTU {mtu} from {}/mtu", port.backend),
        None => format!("MTU {mtu} from bridge {}", bridge_link.name),
    });
    let link = prepare_port(
        device.found,
        device.rename_to.as_ref(),
        mtu,
        kernel,
        plan.phase_mut(Phase::Prepare),
    )?;
    let told = port.frontend_mtu.as_deref() == Some(mtu.to_string().as_str());
    if let (TypeIf::Vif, Some(key), false) = (port.type_if, &port.frontend_mtu_key, told) {
        plan.phase_mut(Phase::Prepare).push(Step::WriteXenstore {
            path: key.clone(),
            value: mtu.to_string(),
        });
    }
    join_bridge(device.found, &link, bridge_link, kernel, &mut plan)?;
    // VLANs in the bridge word or B/vlan are this vif's own; they win over a [port] section's.
    let mut wanted = requested.clone();
    let from_word = bridge.vlans_for(bridge_link);
    match &port.xen_vlan()? {
        Some(vlan) if !from_word.is_empty() => bail!(vlan_clash(port, &bridge.word, vlan)),
        Some(vlan) => {
            plan.notes
                .push(format!("VLANs from {}/vlan: {vlan}", port.backend));
            wanted.vlans = vlan.vlans();
        }
        None if !from_word.is_empty() => wanted.vlans = from_word,
        None => {}
    }
    let source = format!("mac= in the vif configuration ({}/mac)", port.backend);
    let options = wanted.resolve(link.name.as_str(), port.mac, &source)?;
    port_options::add_to_attach(&mut plan, &link, bridge_link, options)?;
    plan.extend(Phase::Hooks, hooks.map(Step::RunHooks));
    Ok(plan)
}

/// `vif-bridge offline` / `remove`: down, then out of the bridge; a vanished device is done.
pub fn plan_xen_detach(port: &XenPort, kernel: &Snapshot, hooks: Option<HookRun>) -> Result<Plan> {
    debug_assert!(matches!(port.command, Command::Offline | Command::Remove));
    let mut plan = Plan::default();
    match xen_device::resolve_detach(port, kernel)? {
        Some(found) => detach_port(found, plan.phase_mut(Phase::Prepare))?,
        None => plan
            .notes
            .push(format!("{} is already gone", port.kernel_name)),
    }
    plan.extend(Phase::Hooks, hooks.map(Step::RunHooks));
    Ok(plan)
}

/// An offline that cannot read xenstore knows only the kernel name: whatever mode plugged
/// the port, it goes down, out of its bridge, and loses its antispoofing chain, which is
/// all that needs no backend key. `found` is the link by that name, or renamed from it.
pub fn plan_detach_without_xenstore(found: Option<&Link>, kernel_name: &IfName) -> Result<Plan> {
    let mut plan = Plan::default();
    let port = match found {
        Some(found) => {
            detach_port(found, plan.phase_mut(Phase::Prepare))?;
            found.name.clone()
        }
        None => {
            plan.notes.push(format!("{kernel_name} is already gone"));
            kernel_name.clone()
        }
    };
    plan.push(Phase::After, Step::RemovePortFilter { port });
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

/// `vif-bridge`; `requested` are the port options of the vif's `[port]` section.
#[derive(Clone, Debug, Default)]
pub struct VifBridge {
    pub requested: Requested,
}

impl Mode for VifBridge {
    fn own_needs(&self, port: &XenPort) -> Result<Needs> {
        let mut names = vec![port.kernel_name.clone(), port.name.clone()];
        if !port.is_attach() {
            return Ok(Needs::links(names));
        }
        let port_names = names.clone();
        let bridge_names = BridgeRequest::for_xen(port)?.names();
        names.extend(bridge_names.iter().cloned());
        Ok(Needs {
            // The port's (a bridge port has none) and the bridge's: a guest given the
            // host's own address is warned about (`guest_ip`).
            addresses_of: port_names.into_iter().chain(bridge_names).collect(),
            bridged_traffic: true,
            ..Needs::links_and_masters(names)
        })
    }

    fn attach(&self, port: &XenPort, kernel: &Snapshot) -> Result<Attach> {
        let request = BridgeRequest::for_xen(port)?;
        let hooks = port.hook_run(port.bridge_text(), "");
        Ok(Attach {
            plan: plan_xen_attach(port, &request, &self.requested, kernel, hooks)?,
            guest_addresses: port.addresses.clone(),
        })
    }

    fn detach(&self, port: &XenPort, kernel: &Snapshot) -> Result<Plan> {
        let hooks = port.hook_run(port.bridge_text(), "");
        plan_xen_detach(port, kernel, hooks)
    }
}
