//! Routed mode (`vif-route`, CONTRACT 4.3 with its FIXes): the guest's addresses are routed
//! to the vif, the host's uplink answers ARP/NDP for them, IPv6 included.

use std::net::IpAddr;

use anyhow::{Result, bail};

use crate::input::invocation::TypeIf;
use crate::input::xen_port::XenPort;
use crate::planning::ensure::{
    check_host_knobs, ensure_address, ensure_proxy, ensure_route, ensure_sysctl, link_ref, main_ip,
    rename_port, uplink,
};
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
use crate::types::prefix::Prefix;
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
    /// The uplink named by the caller; else the default-route link.
    pub netdev: Option<&'a str>,
}

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
    };
    let mut plan = plan_port_attach(&port, kernel)?;
    plan.extend(Phase::Hooks, hooks.map(Step::RunHooks));
    Ok(plan)
}

pub fn plan_port_attach(port: &RoutedPort<'_>, kernel: &Snapshot) -> Result<Plan> {
    let mut plan = Plan::default();
    let uplink = uplink(port.netdev, kernel)?;
    let up = link_ref(uplink)?;
    let has_v4 = port.addresses.iter().any(Prefix::is_ipv4);
    let has_v6 = port.addresses.iter().any(|a| !a.is_ipv4());
    let main_ip = main_ip(uplink, kernel);
    if has_v4 && main_ip.is_none() {
        bail!(
            "uplink {} has no IPv4 address to serve as the guest's router",
            uplink.name
        );
    }
    let guest_link_local = port.guest_mac.map(|mac| IpAddr::V6(mac.eui64_link_local()));
    let (vif, current_name) = rename_port(
        port.found,
        port.rename_to.as_ref(),
        plan.phase_mut(Phase::Prepare),
    )?;
    if let (true, Some(main_ip)) = (has_v4, main_ip) {
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
    if has_v4 {
        ensure_sysctl(
            kernel,
            &Key::proxy_arp(&current_name),
            Key::proxy_arp(&vif.name),
            "1",
            plan.phase_mut(Phase::After),
        );
    }
    for &Prefix {
        address,
        len: prefix_len,
    } in port.addresses
    {
        let mut route = Route::to(address, prefix_len);
        route.dev = Some(vif.clone());
        route.metric = port.metric;
        // IPv4 answers from the host address; an IPv4 src on an IPv6 route is upstream's bug.
        match address {
            IpAddr::V4(_) => route.src = main_ip,
            IpAddr::V6(_) => route.gateway = guest_link_local,
        }
        ensure_route(kernel, route, plan.phase_mut(Phase::After));
        ensure_proxy(kernel, &up, address, plan.phase_mut(Phase::After));
    }
    if has_v6 {
        ensure_sysctl(
            kernel,
            &Key::proxy_ndp(&up.name),
            Key::proxy_ndp(&up.name),
            "1",
            plan.phase_mut(Phase::After),
        );
    }
    check_host_knobs(kernel, has_v4, has_v6, &mut plan.warnings);
    plan.notes.push(format!("uplink {}", uplink.name));
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
        for &Prefix {
            address,
            len: prefix_len,
        } in addresses
        {
            let mut route = Route::to(address, prefix_len);
            route.dev = Some(vif.clone());
            route.metric = metric;
            plan.push(Phase::Prepare, Step::DelRoute(route));
        }
        plan.phase_mut(Phase::Prepare).push(Step::SetDown {
            link: vif,
            was_up: found.up,
        });
    }
    match uplink(netdev, kernel) {
        Ok(uplink) => {
            let up = link_ref(uplink)?;
            for &Prefix { address, .. } in addresses {
                plan.phase_mut(Phase::After).push(Step::DelProxy {
                    link: up.clone(),
                    address,
                });
            }
        }
        Err(err) if !addresses.is_empty() => {
            plan.warnings.push(format!("proxy entries kept: {err:#}"))
        }
        Err(_) => {}
    }
    Ok(plan)
}

#[cfg(test)]
#[path = "routed_tests.rs"]
mod tests;

/// `vif-route`.
pub struct VifRoute;

impl Mode for VifRoute {
    fn needs(&self, port: &XenPort) -> Result<Needs> {
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
