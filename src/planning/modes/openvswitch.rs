//! vif-openvswitch (CONTRACT 4.5): the port prepared as for a Linux bridge (down, MAC,
//! addresses flushed), added to an Open vSwitch bridge with its tag, trunks (from the bridge
//! word, or from `B/vlan`) and external-ids in one OVSDB transaction, then brought up. No
//! MTU copy and no hooks, as upstream; the frontend's MTU goes to OVS as `mtu_request` when
//! `B/mtu` names one.

use anyhow::{Result, bail};

use crate::input::xen_port::XenPort;
use crate::planning::modes::bridge::{prepare_port, vlan_clash};
use crate::planning::modes::xen_device;
use crate::planning::modes::{Attach, Mode};
use crate::planning::needs::Needs;
use crate::planning::plan::{Phase, Plan, Step};
use crate::planning::snapshot::Snapshot;
use crate::sys::ovsdb::OvsPort;
use crate::sys::rtnl::Link;
use crate::types::bridge_word::{BadWord, BridgeWord, Tagged};
use crate::types::link::LinkRef;
use crate::types::mac::MacAddr;
use crate::types::names::IfName;
use crate::types::port::Requested;
use crate::types::vlan::{Vid, Vlans};
use crate::types::xen_vlan::XenVlan;

/// Open vSwitch reads the word only as `bridge[.tag][:trunk...]` (here `br0.10` is br0's
/// VLAN 10); anything else is upstream's "No valid bridge was specified".
pub fn switch_port(word: Result<&BridgeWord, &BadWord>) -> Result<Tagged> {
    match word.and_then(BridgeWord::tagged) {
        Ok(tagged) => Ok(tagged.clone()),
        Err(bad) => bail!(
            "No valid bridge was specified: {:?} is not bridge[.tag][:trunk...] ({})",
            bad.word(),
            bad.why()
        ),
    }
}

/// `B/vlan` on Open vSwitch: the PVID is the port's tag, the tagged VLANs its trunks. OVS
/// sends untagged only on the tag of an access or trunk port: another untagged VLAN is refused.
fn switch_vlans(port: &XenPort, vlan: &XenVlan) -> Result<Vlans> {
    if let Some(first) = vlan.untagged.first() {
        bail!(
            "{}/vlan {:?} sends VLAN {first} untagged besides the PVID {}, which an Open vSwitch port cannot: mark only the PVID untagged, or use a VLAN-aware Linux bridge",
            port.backend,
            vlan.as_str(),
            vlan.pvid
        );
    }
    Ok(Vlans {
        access: Some(vlan.pvid),
        trunks: vlan.tagged.clone(),
        untagged: vec![],
    })
}

/// The guest's VM record, for the interface's external-ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmInfo {
    pub name: Option<String>,
    pub uuid: Option<String>,
}

pub fn plan_attach(port: &XenPort, kernel: &Snapshot, vm: &VmInfo) -> Result<Plan> {
    let Some(word) = port.bridge_word() else {
        bail!(
            "No valid bridge was specified: set bridge= in the vif configuration (looked in {}/bridge and the bridge= argument)",
            port.backend
        );
    };
    let Tagged { bridge, vlans } = switch_port(word.as_ref())?;
    let mut plan = Plan::default();
    let vlans = match (&port.xen_vlan()?, &word) {
        (Some(vlan), Ok(word)) if !vlans.is_empty() => bail!(vlan_clash(port, word, vlan)),
        (Some(vlan), _) => {
            plan.notes
                .push(format!("VLANs from {}/vlan: {vlan}", port.backend));
            switch_vlans(port, vlan)?
        }
        (None, _) => vlans,
    };
    let device = xen_device::resolve_attach(port, kernel)?;
    let mut external_ids = vec![];
    if let Some(mac) = port.mac {
        external_ids.push(("attached-mac".to_owned(), mac.to_string()));
    }
    if let Some(name) = &vm.name {
        external_ids.push(("xen-vm-name".to_owned(), name.clone()));
    }
    if let Some(uuid) = &vm.uuid {
        external_ids.push(("xen-vm-uuid".to_owned(), uuid.clone()));
    }
    let port = Port {
        bridge,
        vlans,
        external_ids,
        mtu: port.mtu,
    };
    add_port(
        &mut plan,
        device.found,
        device.rename_to.as_ref(),
        port,
        kernel,
    )?;
    Ok(plan)
}

/// Where a port goes and what OVS records of it.
struct Port {
    bridge: IfName,
    vlans: Vlans,
    external_ids: Vec<(String, String)>,
    mtu: Option<u32>,
}

/// Down, MAC, no addresses (as for a Linux bridge), the OVS port, then up.
fn add_port(
    plan: &mut Plan,
    found: &Link,
    rename_to: Option<&IfName>,
    port: Port,
    kernel: &Snapshot,
) -> Result<()> {
    let link = prepare_port(
        found,
        rename_to,
        found.mtu,
        kernel,
        plan.phase_mut(Phase::Prepare),
    )?;
    let wanted = OvsPort {
        name: link.name.to_string(),
        tag: port.vlans.access.map(|v| v.get()),
        trunks: port.vlans.trunks.iter().map(|v| v.get()).collect(),
        external_ids: port.external_ids,
        mtu: port.mtu,
    };
    let bridge = port.bridge.to_string();
    // An ensure: a port the database already holds as wanted is left alone.
    if kernel.ovs_port(&link.name) != Some((&bridge, &wanted)) {
        let step = Step::OvsAddPort {
            link: link.clone(),
            bridge,
            port: wanted,
        };
        plan.push(Phase::Prepare, step);
    }
    let still_up = found.up
        && !plan
            .phase(Phase::Prepare)
            .iter()
            .any(|s| matches!(s, Step::SetDown { .. }));
    if !still_up {
        plan.phase_mut(Phase::LinkUp).push(Step::SetUp {
            link,
            was_up: false,
        });
    }
    Ok(())
}

/// A qemu tap on an Open vSwitch bridge (`openvswitch = yes` in its `[port]` section): the
/// bridge word's VLANs together with the section's `vlan`/`trunks`; `mac` names the guest.
pub fn plan_tap_attach(
    tap: &IfName,
    word: &BridgeWord,
    requested: &Requested,
    mac: Option<MacAddr>,
    mtu: Option<u32>,
    kernel: &Snapshot,
) -> Result<Plan> {
    let Tagged { bridge, vlans } = switch_port(Ok(word))?;
    let vlans = tap_vlans(tap, word, vlans, &requested.vlans)?;
    if requested.isolated.is_some() || requested.learning.is_some() || requested.hairpin.is_some() {
        bail!(
            "isolated, learning and hairpin are Linux bridge options: {tap} is on Open vSwitch bridge {bridge}, which takes vlan and trunks"
        );
    }
    let Some(found) = kernel.link(tap.as_str()) else {
        bail!("{tap} does not exist");
    };
    let external_ids = mac
        .map(|mac| ("attached-mac".to_owned(), mac.to_string()))
        .into_iter()
        .collect();
    let mut plan = Plan::default();
    let port = Port {
        bridge,
        vlans,
        external_ids,
        mtu,
    };
    add_port(&mut plan, found, None, port, kernel)?;
    Ok(plan)
}

/// The word's tag with the section's trunks, or the section's `vlan` with the word's trunks
/// (`bridge = ovsbr0.10` and `trunks = 20`): each part from whichever gives it, and where
/// both give one it must be the same.
fn tap_vlans(tap: &IfName, word: &BridgeWord, from_word: Vlans, section: &Vlans) -> Result<Vlans> {
    let access = match (from_word.access, section.access) {
        (Some(ours), Some(theirs)) if ours != theirs => bail!(
            "the bridge word {:?} gives {tap} VLAN {ours} and its [port] section's vlan = {theirs}: set the VLAN in one place",
            word.as_str()
        ),
        (ours, theirs) => ours.or(theirs),
    };
    let list = |vids: &[Vid]| {
        vids.iter()
            .map(Vid::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let trunks = match (from_word.trunks, &section.trunks) {
        (ours, theirs) if ours.is_empty() => theirs.clone(),
        (ours, theirs) if theirs.is_empty() || ours == *theirs => ours,
        (ours, theirs) => bail!(
            "the bridge word {:?} gives {tap} trunks {} and its [port] section's trunks = {}: set the trunks in one place",
            word.as_str(),
            list(&ours),
            list(theirs)
        ),
    };
    Ok(Vlans {
        access,
        trunks,
        untagged: vec![],
    })
}

/// The tap's OVS port, then the tap down; a tap already gone only loses its port.
pub fn plan_tap_detach(tap: &IfName, kernel: &Snapshot) -> Plan {
    let mut plan = Plan::default();
    plan.phase_mut(Phase::Prepare)
        .push(Step::OvsDelPort { name: tap.clone() });
    if let Some(found) = kernel.link(tap.as_str()) {
        plan.phase_mut(Phase::Prepare).push(Step::SetDown {
            link: LinkRef {
                index: found.index,
                name: tap.clone(),
            },
            was_up: found.up,
        });
    }
    plan
}

/// `--if-exists del-port`, then link down; a vanished device only loses its port.
pub fn plan_detach(port: &XenPort, kernel: &Snapshot) -> Result<Plan> {
    let mut plan = Plan::default();
    let found = xen_device::resolve_detach(port, kernel)?;
    let name = match found {
        Some(link) => link.name.clone(),
        None => port.name.clone(),
    };
    plan.phase_mut(Phase::Prepare)
        .push(Step::OvsDelPort { name: name.clone() });
    if let Some(link) = found {
        plan.phase_mut(Phase::Prepare).push(Step::SetDown {
            link: LinkRef {
                index: link.index,
                name,
            },
            was_up: link.up,
        });
    }
    Ok(plan)
}

#[cfg(test)]
#[path = "openvswitch_tests.rs"]
mod tests;

/// `vif-openvswitch`; `vm` names the guest in the port's external-ids.
#[derive(Clone, Debug, Default)]
pub struct VifOpenvswitch {
    pub vm: VmInfo,
}

impl Mode for VifOpenvswitch {
    fn own_needs(&self, port: &XenPort) -> Result<Needs> {
        let names = vec![port.kernel_name.clone(), port.name.clone()];
        match port.is_attach() {
            true => Ok(Needs {
                addresses_of: names.clone(),
                ovs_port: Some(port.name.clone()),
                ..Needs::links(names)
            }),
            false => Ok(Needs::links(names)),
        }
    }

    fn attach(&self, port: &XenPort, kernel: &Snapshot) -> Result<Attach> {
        Ok(Attach {
            plan: plan_attach(port, kernel, &self.vm)?,
            guest_addresses: port.addresses.clone(),
        })
    }

    fn detach(&self, port: &XenPort, kernel: &Snapshot) -> Result<Plan> {
        plan_detach(port, kernel)
    }
}
