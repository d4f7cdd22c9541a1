//! Antispoofing in a plan (CONTRACT 4.8, 7.18): a port whose guest addresses are known is
//! filtered before its link comes up, and the flows its addresses had under an earlier
//! guest are purged. Every mode uses this, so bridged, routed, NAT and qemu ports match.
//!
//! A port left unfiltered loses any chain of its name: the kernel keeps a netdev chain when
//! its device goes (a guest destroyed without an offline) and hooks it on the next device
//! of that name, which would hold a new guest to the old one's addresses.

use crate::planning::guest_ip;
use crate::planning::plan::{Phase, Plan, Step};
use crate::planning::snapshot::Snapshot;
use crate::sys::nft::PortFilter;
use crate::types::guest_traffic::GuestTraffic;
use crate::types::mac::MacAddr;
use crate::types::names::IfName;
use crate::types::prefix::Prefix;

/// What a mode knows about the guest behind a port being plugged.
pub struct Guest<'a> {
    pub port: &'a IfName,
    pub mac: Option<MacAddr>,
    pub addresses: &'a [Prefix],
    /// From `Config::antispoof_for`: on or off, and the setting that said so.
    pub enabled: (bool, String),
    /// What it may send beyond the allow-list (`allow`, `ethertypes` in vifkit.conf).
    pub traffic: GuestTraffic,
    /// Where the addresses would come from, for the note when there are none.
    pub address_source: &'a str,
    /// Whether the conntrack purge may finish after the run, with the port held meanwhile
    /// (`apply::purge`): not under udev, which kills what a run leaves.
    pub background_purge: bool,
}

/// Adds the filter and the conntrack purge ahead of the port's link-up: the filter is in
/// place before the guest can send a frame.
pub fn add_to_attach(plan: &mut Plan, guest: &Guest<'_>, kernel: &Snapshot) -> anyhow::Result<()> {
    let port = guest.port;
    let (enabled, decided_by) = &guest.enabled;
    // An unfiltered port is said at info level, every run: it may send from anything.
    if !enabled {
        plan.infos
            .push(format!("antispoofing is off for {port} ({decided_by})"));
        remove_stale_chain(plan, port, kernel);
        return Ok(());
    }
    if guest.addresses.is_empty() {
        plan.infos.push(format!(
            "no antispoofing for {port}: its addresses are unknown (set {})",
            guest.address_source
        ));
        remove_stale_chain(plan, port, kernel);
        return Ok(());
    }
    // A routed mode has refused addresses that would take the host's traffic; what is
    // left to say is what the filter lets through (see `guest_ip`).
    plan.warnings
        .extend(guest_ip::bridged_warnings(guest.addresses, port, kernel));
    let mut filter = PortFilter::new(port.clone(), guest.mac, guest.addresses);
    filter.check_size().map_err(anyhow::Error::msg)?;
    filter.tagged_vlans = tagged_vlans(plan, port, kernel);
    filter.traffic = guest.traffic.clone();
    // An ensure: the filter installed for these very addresses, with every rule as vifkit
    // wrote it, stays, and so do the guest's flows (a second online of a running guest must
    // not cut its connections). A chain flushed or changed by hand is installed again; so is
    // an earlier guest's (the install deletes it in the same transaction).
    if kernel
        .port_filter(port)
        .is_some_and(|installed| filter.is_installed_as(installed))
    {
        plan.notes
            .push(format!("antispoofing of {port} is in place"));
        return Ok(());
    }
    let purge = Step::PurgeConntrack {
        addresses: guest.addresses.to_vec(),
        hold: guest.background_purge.then(|| port.clone()),
    };
    plan.extend(Phase::BeforeLinkUp, [Step::SetPortFilter(filter), purge]);
    Ok(())
}

/// Plans the removal of the chain the port has though it is to stay unfiltered: an earlier
/// guest's of the same name, or one from before antispoofing was off for it.
fn remove_stale_chain(plan: &mut Plan, port: &IfName, kernel: &Snapshot) {
    if kernel.port_filter(port).is_none() {
        return;
    }
    plan.notes.push(format!(
        "{port} has a stale antispoofing chain (an earlier guest's of that name, or from before antispoofing was off for it): removed before {port} comes up"
    ));
    plan.push(
        Phase::BeforeLinkUp,
        Step::RemovePortFilter { port: port.clone() },
    );
}

/// The VLANs the port carries tagged: on a Linux bridge its trunks and the untagged
/// members besides its PVID, which a guest also reaches only by tagging; on Open vSwitch
/// the port's trunks, as planned or, when the database already holds them, as read.
fn tagged_vlans(plan: &Plan, port: &IfName, kernel: &Snapshot) -> Vec<u16> {
    let mut vids: Vec<u16> = vec![];
    let mut ovs_planned = false;
    for step in plan.steps() {
        match step {
            Step::SetPortOptions { link, options } if &link.name == port => vids.extend(
                options
                    .vlans
                    .trunks
                    .iter()
                    .chain(&options.vlans.untagged)
                    .map(|vid| vid.get()),
            ),
            Step::OvsAddPort {
                link, port: ovs, ..
            } if &link.name == port => {
                ovs_planned = true;
                vids.extend(&ovs.trunks);
            }
            _ => {}
        }
    }
    if !ovs_planned && let Some((_, ovs)) = kernel.ovs_port(port) {
        vids.extend(&ovs.trunks);
    }
    vids.sort_unstable();
    vids.dedup();
    vids
}

/// Removal is planned whatever the setting or the addresses are now: they may have changed
/// since the port was plugged, and removing what is not there costs one batch.
pub fn add_to_detach(plan: &mut Plan, port: &IfName) {
    plan.push(Phase::After, Step::RemovePortFilter { port: port.clone() });
}

#[cfg(test)]
#[path = "antispoof_tests.rs"]
mod tests;
