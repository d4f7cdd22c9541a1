//! `vif-route-ifup`: SUSE's routed vif, configured from the device's own sysconfig files
//! natively instead of through `ifup` (CONTRACT 4.6, 5.4). The result is what wicked's
//! `ifup` would give, on hosts that have no `ifup` at all.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::input::sysconfig::{Destination, NamedDevice, StartMode, Sysconfig};
use crate::input::xen_port::XenPort;
use crate::planning::ensure::{
    check_host_knobs, ensure_address, ensure_mtu, ensure_proxy, ensure_proxy_arp, ensure_route,
    ensure_sysctl, link_ref, rename_port,
};
use crate::planning::modes::route_lines::route_from_line;
use crate::planning::modes::xen_device;
use crate::planning::modes::{Attach, Mode};
use crate::planning::needs::Needs;
use crate::planning::plan::{Phase, Plan, Step};
use crate::planning::snapshot::Snapshot;
use crate::sys::sysctl::Key;
use crate::types::hook::HookRun;
use crate::types::link::LinkRef;
use crate::types::names::IfName;
use crate::types::prefix::Prefix;

fn ifcfg_path(dir: &Path, dev: &IfName) -> String {
    dir.join(format!("ifcfg-{dev}")).display().to_string()
}

/// Every name a plan may look at: proxy interfaces and nexthop devices.
pub fn names_used(sc: &Sysconfig) -> Vec<IfName> {
    let mut names: Vec<IfName> = Vec::new();
    for line in &sc.proxies {
        names.push(line.address_interface.clone());
        names.extend(line.proxy_interfaces.iter().cloned());
    }
    for line in &sc.routes {
        names.extend(line.nexthops.iter().filter_map(|h| h.dev.clone()));
    }
    names.sort();
    names.dedup();
    names
}

/// What the guest may send from: the destinations the sysconfig routes send to the vif.
pub fn guest_addresses(sc: &Sysconfig, vif: &IfName) -> Vec<Prefix> {
    sc.routes
        .iter()
        .filter(|line| line.interface.as_ref() == Some(vif))
        .filter_map(|line| match line.destination {
            Destination::Net {
                address,
                prefix_len,
            } => Some(Prefix::new(address, prefix_len)),
            Destination::Default(_) => None,
        })
        .collect()
}

pub fn plan_attach(
    port: &XenPort,
    sc: &Sysconfig,
    dir: &Path,
    kernel: &Snapshot,
    hooks: Option<HookRun>,
) -> Result<Plan> {
    let wanted = port.name.clone();
    if !port.has_vifname {
        bail!(
            "vif-route-ifup needs a static interface name: set vifname= in the vif configuration and describe it in {}",
            ifcfg_path(dir, &IfName::new("<vifname>").unwrap_or(wanted.clone()))
        );
    }
    let path = ifcfg_path(dir, &wanted);
    let Some(ifcfg) = &sc.ifcfg else {
        bail!("{path} does not exist: vif-route-ifup configures {wanted} from it");
    };
    if ifcfg.startmode == StartMode::Off {
        bail!("{path}: STARTMODE=off disables {wanted}");
    }
    if ifcfg.bootproto != "static" {
        bail!(
            "{path}: BOOTPROTO={} is not supported on a routed vif (use static)",
            ifcfg.bootproto
        );
    }
    let device = xen_device::resolve_attach(port, kernel)?;
    let found = device.found;
    let mut plan = Plan::default();
    let mut vif = link_ref(found)?;
    let current_name = vif.name.clone();
    let needs_mac = ifcfg.lladdr.is_some_and(|mac| found.mac != Some(mac));
    let down = found.up && (device.rename_to.is_some() || needs_mac);
    if down {
        plan.phase_mut(Phase::Prepare).push(Step::SetDown {
            link: vif.clone(),
            was_up: true,
        });
    }
    if let Some(to) = &device.rename_to {
        plan.phase_mut(Phase::Prepare).push(Step::Rename {
            link: vif.clone(),
            to: to.clone(),
        });
        vif.name = to.clone();
    }
    if let (true, Some(mac)) = (needs_mac, ifcfg.lladdr) {
        plan.phase_mut(Phase::Prepare).push(Step::SetMac {
            link: vif.clone(),
            mac,
            previous: found.mac,
        });
    }
    if let Some(mtu) = ifcfg.mtu {
        ensure_mtu(found, &vif, mtu, plan.phase_mut(Phase::Prepare));
    }
    for address in &ifcfg.addresses {
        ensure_address(
            kernel,
            &vif,
            Prefix::new(address.address, address.prefix_len),
            plan.phase_mut(Phase::Prepare),
        );
    }
    if !found.up || down {
        plan.phase_mut(Phase::LinkUp).push(Step::SetUp {
            link: vif.clone(),
            was_up: false,
        });
    }
    let mut v4 = ifcfg.addresses.iter().any(|a| a.address.is_ipv4());
    let mut v6 = ifcfg.addresses.iter().any(|a| a.address.is_ipv6());
    let mut routed_v4 = false;
    for line in &sc.routes {
        let route = route_from_line(line, &vif, kernel)?;
        routed_v4 |= !route.is_ipv6() && route.dev.is_some();
        v4 |= !route.is_ipv6();
        v6 |= route.is_ipv6();
        ensure_route(kernel, route, plan.phase_mut(Phase::After));
    }
    if routed_v4 {
        ensure_proxy_arp(kernel, &current_name, &vif, plan.phase_mut(Phase::After));
    }
    plan_proxies(sc, &wanted, &vif, &current_name, kernel, &mut plan)?;
    check_host_knobs(kernel, v4, v6, &mut plan.warnings);
    plan.warnings.extend(
        sc.unconfigured
            .iter()
            .filter(|named| kernel.link(named.device.as_str()).is_none())
            .map(NamedDevice::missing),
    );
    let ndp_interfaces: Vec<&IfName> = sc
        .proxies
        .iter()
        .filter(|l| l.address_interface == wanted && l.address.is_ipv6())
        .flat_map(|l| &l.proxy_interfaces)
        .collect();
    check_uplink_knobs(kernel, routed_v4, &ndp_interfaces, &mut plan.warnings);
    plan.extend(Phase::Hooks, hooks.map(Step::RunHooks));
    Ok(plan)
}

/// CONTRACT 5.4 step 6: the device's own addresses on each listed interface that is up, and
/// other interfaces' addresses on the device when it is listed and they exist.
fn plan_proxies(
    sc: &Sysconfig,
    wanted: &IfName,
    vif: &LinkRef,
    current_name: &IfName,
    kernel: &Snapshot,
    plan: &mut Plan,
) -> Result<()> {
    let mut ndp_on_vif = false;
    for line in &sc.proxies {
        if line.address_interface == *wanted {
            for proxy in &line.proxy_interfaces {
                match kernel.link(proxy.as_str()) {
                    Some(link) if link.up => ensure_proxy(
                        kernel,
                        &link_ref(link)?,
                        line.address,
                        plan.phase_mut(Phase::After),
                    ),
                    _ => plan.notes.push(format!(
                        "{proxy} is not up: {} not proxied there",
                        line.address
                    )),
                }
            }
        }
        if line.proxy_interfaces.contains(wanted)
            && kernel.link(line.address_interface.as_str()).is_some()
        {
            ensure_proxy(kernel, vif, line.address, plan.phase_mut(Phase::After));
            ndp_on_vif |= line.address.is_ipv6();
        }
    }
    if ndp_on_vif {
        ensure_sysctl(
            kernel,
            &Key::proxy_ndp(current_name),
            Key::proxy_ndp(&vif.name),
            "1",
            plan.phase_mut(Phase::After),
        );
    }
    Ok(())
}

/// Neighbours on the uplink only see the guest through proxy ARP / NDP there, which is the
/// host's configuration (sysctl.conf in the seed): say what is off, change nothing.
fn check_uplink_knobs(
    kernel: &Snapshot,
    routed_v4: bool,
    ndp_interfaces: &[&IfName],
    warnings: &mut Vec<String>,
) {
    let on = |key: &str| {
        Key::new(key)
            .ok()
            .and_then(|k| kernel.sysctl(&k).map(|v| v == "1"))
            .unwrap_or(false)
    };
    // The kernel answers for a proxy entry when `all` or the interface's own proxy_ndp is on.
    let mut seen = Vec::new();
    for dev in ndp_interfaces {
        let key = format!("net/ipv6/conf/{dev}/proxy_ndp");
        if !seen.contains(dev) && !on(&key) && !on("net/ipv6/conf/all/proxy_ndp") {
            warnings.push(format!(
                "proxy_ndp is off on {dev}: the guest's NDP proxy entry there has no effect (set {key} = 1)"
            ));
        }
        seen.push(dev);
    }
    if routed_v4 {
        for link in kernel
            .default_links()
            .into_iter()
            .filter_map(|i| kernel.link_by_index(i))
        {
            let key = format!("net/ipv4/conf/{}/proxy_arp", link.name);
            if !on(&key) && !on("net/ipv4/conf/all/proxy_arp") {
                warnings.push(format!("proxy_arp is off on uplink {}: its neighbours will not find the guest (set {key} = 1)", link.name));
            }
        }
    }
}

/// `VIFKIT_IFUP=system`: the admin wants the system's own `ifup` to configure the device,
/// as SUSE's script did; vifkit still does the rename, the hooks and `connected`.
pub fn plan_attach_with_ifup(
    port: &XenPort,
    ifup: &Path,
    kernel: &Snapshot,
    hooks: Option<HookRun>,
) -> Result<Plan> {
    if !port.has_vifname {
        bail!(
            "vif-route-ifup needs a static interface name: set vifname= in the vif configuration"
        );
    }
    let device = xen_device::resolve_attach(port, kernel)?;
    let mut plan = Plan::default();
    let (vif, _) = rename_port(
        device.found,
        device.rename_to.as_ref(),
        plan.phase_mut(Phase::Prepare),
    )?;
    plan.phase_mut(Phase::LinkUp).push(Step::Exec {
        program: ifup.to_owned(),
        args: vec![vif.name.to_string()],
    });
    plan.extend(Phase::Hooks, hooks.map(Step::RunHooks));
    Ok(plan)
}

pub fn plan_detach_with_ifdown(
    port: &XenPort,
    ifdown: &Path,
    kernel: &Snapshot,
    hooks: Option<HookRun>,
) -> Result<Plan> {
    let mut plan = Plan::default();
    match xen_device::resolve_detach(port, kernel)? {
        Some(found) => plan.phase_mut(Phase::Prepare).push(Step::Exec {
            program: ifdown.to_owned(),
            args: vec![found.name.to_string()],
        }),
        None => plan
            .notes
            .push(format!("{} is already gone", port.kernel_name)),
    }
    plan.extend(Phase::Hooks, hooks.map(Step::RunHooks));
    Ok(plan)
}

/// Offline: the proxy entries for the device's addresses on other interfaces outlive it.
pub fn plan_detach(
    port: &XenPort,
    sc: &Sysconfig,
    kernel: &Snapshot,
    hooks: Option<HookRun>,
) -> Result<Plan> {
    let wanted = port.name.clone();
    let mut plan = Plan::default();
    match xen_device::resolve_detach(port, kernel)? {
        Some(found) => plan.phase_mut(Phase::Prepare).push(Step::SetDown {
            link: link_ref(found)?,
            was_up: found.up,
        }),
        None => plan.notes.push(format!("{wanted} is already gone")),
    }
    for line in sc.proxies.iter().filter(|l| l.address_interface == wanted) {
        for proxy in &line.proxy_interfaces {
            if let Some(link) = kernel.link(proxy.as_str()) {
                plan.phase_mut(Phase::After).push(Step::DelProxy {
                    link: link_ref(link)?,
                    address: line.address,
                });
            }
        }
    }
    plan.extend(Phase::Hooks, hooks.map(Step::RunHooks));
    Ok(plan)
}

#[cfg(test)]
#[path = "route_ifup_tests.rs"]
mod tests;

/// `vif-route-ifup`: the system's `ifup`/`ifdown` configure the device
/// (`VIFKIT_IFUP=system`), or vifkit applies the sysconfig files itself.
pub enum VifRouteIfup {
    System { ifup: PathBuf, ifdown: PathBuf },
    Native { sysconfig: Sysconfig, dir: PathBuf },
}

impl Mode for VifRouteIfup {
    fn own_needs(&self, port: &XenPort) -> Result<Needs> {
        let names = vec![port.kernel_name.clone(), port.name.clone()];
        let VifRouteIfup::Native { sysconfig, .. } = self else {
            return Ok(Needs::links_and_masters(names));
        };
        let mut needs = Needs::routed(names, None);
        needs.links = names_used(sysconfig);
        // A line naming a device that neither exists nor has an ifcfg file is warned of.
        needs
            .links
            .extend(sysconfig.unconfigured.iter().map(|n| n.device.clone()));
        needs.sysctls = vec![
            Key::new("net/ipv6/conf/all/proxy_ndp")?,
            Key::new("net/ipv4/conf/all/proxy_arp")?,
        ];
        for line in &sysconfig.proxies {
            needs
                .sysctls
                .extend(line.proxy_interfaces.iter().map(Key::proxy_ndp));
        }
        needs.proxy_arp_of_default_links = true;
        Ok(needs)
    }

    fn attach(&self, port: &XenPort, kernel: &Snapshot) -> Result<Attach> {
        let hooks = port.hook_run("", "");
        Ok(match self {
            // The system's ifup knows nothing of the guest: only B/ip can name its addresses.
            VifRouteIfup::System { ifup, .. } => Attach {
                plan: plan_attach_with_ifup(port, ifup, kernel, hooks)?,
                guest_addresses: port.addresses.clone(),
            },
            VifRouteIfup::Native { sysconfig, dir } => {
                let mut addresses = guest_addresses(sysconfig, &port.name);
                for address in &port.addresses {
                    if !addresses.contains(address) {
                        addresses.push(*address);
                    }
                }
                Attach {
                    plan: plan_attach(port, sysconfig, dir, kernel, hooks)?,
                    guest_addresses: addresses,
                }
            }
        })
    }

    fn detach(&self, port: &XenPort, kernel: &Snapshot) -> Result<Plan> {
        let hooks = port.hook_run("", "");
        match self {
            VifRouteIfup::System { ifdown, .. } => {
                plan_detach_with_ifdown(port, ifdown, kernel, hooks)
            }
            VifRouteIfup::Native { sysconfig, .. } => plan_detach(port, sysconfig, kernel, hooks),
        }
    }
}
