//! Routed mode (`vif-route`, CONTRACT 4.3 with its FIXes): the guest's addresses are routed
//! to the vif, the host's uplink answers ARP/NDP for them, IPv6 included.

use std::net::IpAddr;

use anyhow::{Result, bail};

use crate::input::invocation::TypeIf;
use crate::input::xen_port::XenPort;
use crate::planning::ensure::{
    Uplinks, check_host_knobs, ensure_address, ensure_mtu, ensure_proxy, ensure_proxy_arp,
    ensure_route, ensure_sysctl, ipv6_disabled, link_ref, main_ip, rename_port, uplink,
    uplink_fallback, uplink_for,
};
use crate::planning::guest_ip;
use crate::planning::modes::xen_device;
use crate::planning::modes::{Attach, Mode};
use crate::planning::needs::Needs;
use crate::planning::plan::{Phase, Plan, Step};
use crate::planning::snapshot::Snapshot;
use crate::sys::rtnl::Link;
use crate::sys::sysctl::Key;
use crate::types::hook::HookRun;
use crate::types::mac::MacAddr;
use crate::types::names::IfName;
use crate::types::prefix::{Family, Prefix};
use crate::types::route::Route;

/// The emulated NIC wins while both exist, as upstream.
pub fn metric(type_if: TypeIf) -> u32 {
    match type_if {
        TypeIf::Tap => 1,
        TypeIf::Vif => 2,
    }
}

/// A routed port, from Xen's backend or from a qemu config rule.
pub struct RoutedPort<'a> {
    pub found: &'a Link,
    pub rename_to: Option<IfName>,
    pub addresses: &'a [Prefix],
    /// With it, IPv6 routes go via the guest's EUI-64 link-local (as the seed writes them);
    /// without it they are on-link and the kernel finds the guest by NDP.
    pub guest_mac: Option<MacAddr>,
    pub metric: Option<u32>,
    /// The uplink named by the caller; else each family's default-route link.
    pub netdev: Option<&'a str>,
    /// `B/mtu` (or the rule's `mtu`): the port's MTU, as the guest is told.
    pub mtu: Option<u32>,
}

/// The largest blocks a guest address may be: each of their addresses gets a proxy entry.
const MAX_PROXIED_V4: u8 = 26;
const MAX_PROXIED_V6: u8 = 120;

/// `vif-route online` / `add`.
pub fn plan_attach(port: &XenPort, kernel: &Snapshot, hooks: Option<HookRun>) -> Result<Plan> {
    let device = xen_device::resolve_attach(port, kernel)?;
    let port = RoutedPort {
        found: device.found,
        rename_to: device.rename_to,
        addresses: &port.addresses,
        guest_mac: port.mac,
        metric: Some(metric(port.type_if)),
        netdev: port.netdev.as_deref(),
        mtu: port.mtu,
    };
    let mut plan = plan_port_attach(&port, kernel)?;
    plan.extend(Phase::Hooks, hooks.map(Step::RunHooks));
    Ok(plan)
}

/// Every address of a guest's block, each to be answered for on the uplink; a block larger
/// than a /26 (IPv4) or /120 (IPv6) is refused: routed blocks that big belong to a router.
pub fn proxied_addresses(block: Prefix) -> Result<Vec<IpAddr>> {
    let (limit, width) = match block.address {
        IpAddr::V4(_) => (MAX_PROXIED_V4, 32),
        IpAddr::V6(_) => (MAX_PROXIED_V6, 128),
    };
    if block.len < limit {
        // ::/0 has 2^128 addresses, one more than a u128 counts.
        let count = match 1u128.checked_shl(u32::from(width - block.len)) {
            Some(count) => count.to_string(),
            None => "2^128".to_owned(),
        };
        bail!(
            "ip= {block} is a block of {count} addresses: vif-route answers ARP/NDP for each address of a block up to a /{MAX_PROXIED_V4} (IPv4) or /{MAX_PROXIED_V6} (IPv6); route a larger block to this host instead"
        );
    }
    let network = block.network();
    let count = 1u128 << (width - block.len);
    Ok((0..count)
        .map(|i| match network.address {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) + i as u32).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) + i).into()),
        })
        .collect())
}

pub fn plan_port_attach(port: &RoutedPort<'_>, kernel: &Snapshot) -> Result<Plan> {
    let name = port.rename_to.as_ref().unwrap_or(&port.found.name);
    guest_ip::refuse_routed(port.addresses, Some(port.found.index), name, kernel)?;
    let mut plan = Plan::default();
    let has_v4 = port.addresses.iter().any(Prefix::is_ipv4);
    let has_v6 = port.addresses.iter().any(|a| !a.is_ipv4());
    let uplinks = Uplinks::of(port.netdev, has_v6, kernel)?;
    // Upstream puts the host address on the vif and answers ARP there even with no ip=.
    let routes_v4 = has_v4 || port.addresses.is_empty();
    let main_ip = main_ip(uplinks.v4, kernel);
    if routes_v4 && main_ip.is_none() {
        bail!(
            "uplink {} has no IPv4 address to serve as the guest's router",
            uplinks.v4.name
        );
    }
    if has_v6 && let Some(why) = ipv6_disabled(kernel, &port.found.name) {
        bail!(why);
    }
    let mut proxied = Vec::new();
    for block in port.addresses {
        let uplink = link_ref(uplinks.of_family(block.is_ipv4()))?;
        proxied.push((uplink, proxied_addresses(*block)?));
    }
    let guest_link_local = port.guest_mac.map(|mac| IpAddr::V6(mac.eui64_link_local()));
    let (vif, current_name) = rename_port(
        port.found,
        port.rename_to.as_ref(),
        plan.phase_mut(Phase::Prepare),
    )?;
    if let Some(mtu) = port.mtu {
        ensure_mtu(port.found, &vif, mtu, plan.phase_mut(Phase::Prepare));
    }
    if let (true, Some(main_ip)) = (routes_v4, main_ip) {
        ensure_address(
            kernel,
            &vif,
            Prefix::host(main_ip),
            plan.phase_mut(Phase::Prepare),
        );
    }
    if !port.found.up || port.rename_to.is_some() {
        plan.phase_mut(Phase::LinkUp).push(Step::SetUp {
            link: vif.clone(),
            was_up: false,
        });
    }
    if routes_v4 {
        ensure_proxy_arp(kernel, &current_name, &vif, plan.phase_mut(Phase::After));
    }
    for (block, (uplink, addresses)) in port.addresses.iter().zip(proxied) {
        let network = block.network();
        let mut route = Route::to(network.address, network.len);
        route.dev = Some(vif.clone());
        route.metric = port.metric;
        // IPv4 answers from the host address; an IPv4 src on an IPv6 route is upstream's bug.
        match block.address {
            IpAddr::V4(_) => route.src = main_ip,
            IpAddr::V6(_) => route.gateway = guest_link_local,
        }
        ensure_route(kernel, route, plan.phase_mut(Phase::After));
        for address in addresses {
            ensure_proxy(kernel, &uplink, address, plan.phase_mut(Phase::After));
        }
    }
    if has_v6 {
        ensure_sysctl(
            kernel,
            &Key::proxy_ndp(&uplinks.v6.name),
            Key::proxy_ndp(&uplinks.v6.name),
            "1",
            plan.phase_mut(Phase::After),
        );
    }
    check_host_knobs(kernel, routes_v4, has_v6, &mut plan.warnings);
    plan.warnings.extend(uplink_fallback(port.netdev, kernel));
    if port.addresses.is_empty() {
        plan.notes.push(format!(
            "no ip= for {}: no guest route is added (the host address and proxy_arp are, as upstream)",
            vif.name
        ));
    }
    plan.notes.push(uplinks.note());
    Ok(plan)
}

/// `vif-route offline` / `remove`: needs no host address. Routes vanish with the vif, but the
/// proxy entries on the uplink do not.
pub fn plan_detach(port: &XenPort, kernel: &Snapshot, hooks: Option<HookRun>) -> Result<Plan> {
    let found = xen_device::resolve_detach(port, kernel)?;
    let netdev = port.netdev.as_deref();
    let mut plan = plan_port_detach(
        found,
        &port.addresses,
        Some(metric(port.type_if)),
        netdev,
        kernel,
    )?;
    if found.is_none() {
        plan.notes
            .push(format!("{} is already gone", port.kernel_name));
    }
    plan.extend(Phase::Hooks, hooks.map(Step::RunHooks));
    Ok(plan)
}

pub fn plan_port_detach(
    found: Option<&Link>,
    addresses: &[Prefix],
    metric: Option<u32>,
    netdev: Option<&str>,
    kernel: &Snapshot,
) -> Result<Plan> {
    let mut plan = Plan::default();
    if let Some(found) = found {
        let vif = link_ref(found)?;
        for block in addresses {
            let network = block.network();
            let mut route = Route::to(network.address, network.len);
            route.dev = Some(vif.clone());
            route.metric = metric;
            plan.push(Phase::Prepare, Step::DelRoute(route));
        }
        plan.phase_mut(Phase::Prepare).push(Step::SetDown {
            link: vif,
            was_up: found.up,
        });
    }
    for block in addresses {
        let family = if block.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        };
        match uplink_for(netdev, family, kernel) {
            Ok(uplink) => {
                let up = link_ref(uplink)?;
                // A block too large to proxy was never proxied.
                for address in proxied_addresses(*block).unwrap_or_default() {
                    let step = Step::DelProxy {
                        link: up.clone(),
                        address,
                    };
                    plan.push(Phase::After, step);
                }
            }
            Err(err) => plan.warnings.push(format!("proxy entries kept: {err:#}")),
        }
    }
    plan.warnings.dedup();
    Ok(plan)
}

#[cfg(test)]
#[path = "routed_tests.rs"]
mod tests;

/// `vif-route`.
pub struct VifRoute;

impl Mode for VifRoute {
    fn own_needs(&self, port: &XenPort) -> Result<Needs> {
        let names = vec![port.kernel_name.clone(), port.name.clone()];
        Ok(Needs::routed(names, port.netdev.as_deref()))
    }

    fn attach(&self, port: &XenPort, kernel: &Snapshot) -> Result<Attach> {
        Ok(Attach {
            plan: plan_attach(port, kernel, hooks(port, kernel))?,
            guest_addresses: port.addresses.clone(),
        })
    }

    fn detach(&self, port: &XenPort, kernel: &Snapshot) -> Result<Plan> {
        plan_detach(port, kernel, hooks(port, kernel))
    }
}

/// Upstream tells vif-route's hooks the uplink's address as `main_ip`.
fn hooks(port: &XenPort, kernel: &Snapshot) -> Option<HookRun> {
    let main_ip = uplink(port.netdev.as_deref(), kernel)
        .ok()
        .and_then(|u| main_ip(u, kernel))
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    port.hook_run("", &main_ip)
}
