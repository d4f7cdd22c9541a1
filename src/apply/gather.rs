//! The one reader of the kernel for planning: a `Needs` in, a `Snapshot` out.

use std::path::Path;

use anyhow::{Context, Result};

use crate::planning::ensure;
use crate::planning::needs::Needs;
use crate::planning::snapshot::Snapshot;
use crate::sys::rtnl::Netlink;
use crate::sys::sysctl::{self, Key};
use crate::sys::{forward, nft, ovsdb};
use crate::types::names::IfName;
use crate::types::prefix::Family;

pub async fn gather(netlink: &Netlink, needs: &Needs) -> Result<Snapshot> {
    let mut names = needs.links.clone();
    if let Some(routed) = &needs.routed {
        names.extend(routed.port.iter().cloned());
        if let Some(netdev) = &routed.netdev {
            names.push(IfName::new(netdev).context("netdev")?);
        }
    }
    let mut kernel = links(netlink, &names).await?;
    if needs.masters || needs.routed.is_some() {
        add_masters(netlink, &mut kernel).await?;
    }
    if needs.default_links || needs.routed.is_some() {
        add_default_links(netlink, &mut kernel).await?;
    }
    // Upstream's last resort when neither netdev nor a default route names the uplink:
    // looked up only then, so a routed plug on a host with a default route pays nothing.
    let unnamed = needs.routed.as_ref().is_some_and(|r| r.netdev.is_none());
    if unnamed && kernel.default_routes.is_empty() {
        let fallback = IfName::new(ensure::FALLBACK_UPLINK)?;
        if let Some(link) = netlink.link(&fallback).await? {
            kernel.add(link);
        }
    }
    for name in &needs.addresses_of {
        let Some(index) = kernel.link(name.as_str()).map(|l| l.index) else {
            continue;
        };
        if kernel.addresses.iter().all(|(i, _)| *i != index) {
            for address in netlink.addresses(index).await? {
                kernel.addresses.push((index, address));
            }
        }
    }
    if needs.bridged_traffic {
        // Only a warning depends on it: a host this probe cannot read still plugs.
        match forward::bridged_traffic_dropped() {
            Ok(why) => kernel.bridged_traffic_dropped = why,
            Err(err) => log::debug!("cannot tell whether bridged traffic is dropped: {err:#}"),
        }
    }
    // One lookup; the chain's rules are read (one dump) only when it exists.
    if let Some(port) = &needs.port_filter
        && let Some(installed) = nft::read_port_filter(port)?
    {
        kernel.port_filters.push((port.clone(), installed));
    }
    if let Some(key) = &needs.nat
        && let Some(fingerprint) = nft::installed_nat(key)?
    {
        kernel.nat_tables.push((key.clone(), fingerprint));
    }
    if let Some(name) = &needs.ovs_port
        && let Some((bridge, port)) = ovsdb::port_state_of(name.as_str())?
    {
        kernel.ovs_ports.push((name.clone(), bridge, port));
    }
    let mut keys = needs.sysctls.clone();
    if let Some(wanted) = &needs.routed {
        kernel.proxies = netlink.proxies().await?;
        keys.push(Key::new("net/ipv4/conf/all/forwarding")?);
        keys.push(Key::new("net/ipv6/conf/all/forwarding")?);
        keys.push(Key::disable_ipv6_all());
        let mut inspected = Vec::new();
        for name in &wanted.port {
            keys.push(Key::proxy_arp(name));
            keys.push(Key::proxy_ndp(name));
            keys.push(Key::disable_ipv6(name));
            if let Some(link) = kernel.link(name.as_str()) {
                inspected.push(link.index);
            }
        }
        for family in [Family::V4, Family::V6] {
            if let Ok(uplink) = ensure::uplink_for(wanted.netdev.as_deref(), family, &kernel) {
                keys.push(Key::proxy_ndp(&uplink.name));
                if !inspected.contains(&uplink.index) {
                    inspected.push(uplink.index);
                }
            }
        }
        inspected.dedup();
        for index in inspected {
            for address in netlink.addresses(index).await? {
                kernel.addresses.push((index, address));
            }
            for (destination, prefix_len, metric) in netlink.routes_via(index).await? {
                kernel.routes.push((index, destination, prefix_len, metric));
            }
        }
    }
    if needs.proxy_arp_of_default_links {
        for index in kernel.default_links() {
            if let Some(link) = kernel.link_by_index(index) {
                keys.push(Key::proxy_arp(&link.name));
            }
        }
    }
    for key in keys {
        let value = sysctl::read(&key)?;
        kernel.sysctls.push((key, value));
    }
    Ok(kernel)
}

/// The named links, each with its sysfs device (a netback vif's is `vif-<domid>-<devid>`).
async fn links(netlink: &Netlink, names: &[IfName]) -> Result<Snapshot> {
    let mut kernel = Snapshot::default();
    // A vif often is its own wanted name, and a bridge the master of a port: one request each.
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            continue;
        }
        if let Some(link) = netlink.link(name).await? {
            if let Some(device) = sysfs_device(name) {
                kernel.devices.push((name.to_string(), device));
            }
            kernel.add(link);
        }
    }
    Ok(kernel)
}

async fn add_masters(netlink: &Netlink, kernel: &mut Snapshot) -> Result<()> {
    let mut masters: Vec<u32> = kernel.links.iter().filter_map(|l| l.master).collect();
    masters.retain(|index| kernel.links.iter().all(|l| l.index != *index));
    masters.sort_unstable();
    masters.dedup();
    for index in masters {
        if let Some(master) = netlink.link_by_index(index).await? {
            kernel.add(master);
        }
    }
    Ok(())
}

fn sysfs_device(name: &IfName) -> Option<String> {
    let target = std::fs::read_link(
        Path::new("/sys/class/net")
            .join(name.as_str())
            .join("device"),
    )
    .ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// The links of the IPv4, then IPv6, default routes, recorded in the snapshot.
async fn add_default_links(netlink: &Netlink, kernel: &mut Snapshot) -> Result<()> {
    for family in [Family::V4, Family::V6] {
        for hop in netlink.default_route_hops(family).await? {
            let index = hop.index;
            if let Some(gateway) = hop.gateway
                && !kernel.default_gateways.contains(&(index, gateway))
            {
                kernel.default_gateways.push((index, gateway));
            }
            if kernel.default_routes.contains(&(family, index)) {
                continue;
            }
            if let Some(link) = netlink.link_by_index(index).await? {
                kernel.add(link);
            }
            kernel.default_routes.push((family, index));
        }
    }
    Ok(())
}
