//! NAT mode (`vif-nat`, CONTRACT 4.4 with its FIXes): the guest's private addresses are
//! routed to the vif with the host-side router address as source, and masqueraded on the
//! uplink in the port's own nft table.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{Result, bail};

use crate::input::config::PortRule;
use crate::input::invocation::TypeIf;
use crate::input::xen_port::XenPort;
use crate::planning::ensure::{
    Uplinks, check_host_knobs, ensure_address, ensure_mtu, ensure_proxy_arp, ensure_route,
    ipv6_disabled, link_ref, rename_port, uplink_fallback,
};
use crate::planning::guest_ip;
use crate::planning::modes::routed::metric;
use crate::planning::modes::xen_device;
use crate::planning::modes::{Attach, Mode};
use crate::planning::needs::Needs;
use crate::planning::plan::{Phase, Plan, Step};
use crate::planning::snapshot::Snapshot;
use crate::sys::nft::{Masquerade, nat_fingerprint};
use crate::types::hook::HookRun;
use crate::types::names::VifId;
use crate::types::prefix::Prefix;
use crate::types::route::Route;

/// Upstream's address when `ip` is empty: 10.<d/256>.<d%256>.<n+1>/16.
pub fn derived_address(vif: VifId) -> Result<Prefix> {
    let last = vif.devid + 1;
    if vif.domid > 0xffff || last > 254 {
        bail!(
            "cannot derive a NAT address for domain {} device {}: set ip= in the vif configuration",
            vif.domid,
            vif.devid
        );
    }
    let address = Ipv4Addr::new(
        10,
        (vif.domid / 256) as u8,
        (vif.domid % 256) as u8,
        last as u8,
    );
    Ok(Prefix::new(IpAddr::V4(address), 16))
}

/// The host side of a guest address: the configured router of that family, else upstream's
/// rule for IPv4 (last octet + 127, refused where it would overflow) and the prefix's `::1`
/// for IPv6.
pub fn router_for(guest: IpAddr, prefix_len: u8, configured: &[IpAddr]) -> Result<IpAddr> {
    if let Some(router) = configured.iter().find(|r| r.is_ipv4() == guest.is_ipv4()) {
        return Ok(*router);
    }
    match guest {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            if d == 0 || d > 127 {
                bail!(
                    "cannot derive a router address for {guest}: its last octet must be 1 to 127 (upstream adds 127); set router= in vifkit.conf"
                );
            }
            Ok(IpAddr::V4(Ipv4Addr::new(a, b, c, d + 127)))
        }
        // A /0 netmask gives no prefix to take ::1 of (and its mask would overflow).
        IpAddr::V6(v6) if (1..128).contains(&prefix_len) => {
            let mask = u128::MAX << (128 - u32::from(prefix_len));
            let router = Ipv6Addr::from((u128::from(v6) & mask) | 1);
            if router == v6 {
                bail!(
                    "cannot derive a router address for {guest}: it is its prefix's ::1 itself; set router= in vifkit.conf"
                );
            }
            Ok(IpAddr::V6(router))
        }
        IpAddr::V6(_) => bail!(
            "cannot derive a router address for {guest}: give it a prefix length (e.g. /64) or set router= in vifkit.conf"
        ),
    }
}

/// The port's nft table is keyed by its Xen device, not its name or addresses.
/// The port's table: an HVM guest's emulated NIC (`type_if=tap`) has its own beside the
/// vif's, so removing one leaves the other's NAT intact.
pub fn nat_key(vif: VifId, type_if: TypeIf) -> String {
    match type_if {
        TypeIf::Vif => format!("{}-{}", vif.domid, vif.devid),
        TypeIf::Tap => format!("{}-{}-emu", vif.domid, vif.devid),
    }
}

/// The guest's own addresses (B/ip, else upstream's derived one), each as a host address:
/// a prefix in B/ip is the guest's netmask, not a block it may send from.
pub fn guest_addresses(port: &XenPort) -> Result<Vec<Prefix>> {
    let guests = match port.addresses.is_empty() {
        true => vec![derived_address(port.vif)?],
        false => port.addresses.clone(),
    };
    Ok(guests
        .into_iter()
        .map(|guest| Prefix::host(guest.address))
        .collect())
}

pub fn plan_attach(
    port: &XenPort,
    rule: Option<&PortRule>,
    kernel: &Snapshot,
    hooks: Option<HookRun>,
) -> Result<Plan> {
    let guests = match port.addresses.is_empty() {
        true => vec![derived_address(port.vif)?],
        false => port.addresses.clone(),
    };
    let configured = rule.map(|r| r.router.as_slice()).unwrap_or(&[]);
    let masquerade6 = rule.and_then(|r| r.masquerade6).unwrap_or(false);
    let pairs = guests
        .iter()
        .map(|guest| {
            Ok((
                guest.address,
                router_for(guest.address, guest.len, configured)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let device = xen_device::resolve_attach(port, kernel)?;
    // Each guest address is routed to the vif as a host route (its prefix is a netmask).
    let routed: Vec<Prefix> = pairs.iter().map(|(g, _)| Prefix::host(*g)).collect();
    let name = device.rename_to.as_ref().unwrap_or(&device.found.name);
    guest_ip::refuse_routed(&routed, Some(device.found.index), name, kernel)?;
    let netdev = port.netdev.as_deref();
    let has_v6 = pairs.iter().any(|(g, _)| g.is_ipv6());
    let uplinks = Uplinks::of(netdev, has_v6, kernel)?;
    if has_v6 && let Some(why) = ipv6_disabled(kernel, &device.found.name) {
        bail!(why);
    }
    let mut plan = Plan::default();
    let (vif, current_name) = rename_port(
        device.found,
        device.rename_to.as_ref(),
        plan.phase_mut(Phase::Prepare),
    )?;
    if let Some(mtu) = port.mtu {
        ensure_mtu(device.found, &vif, mtu, plan.phase_mut(Phase::Prepare));
    }
    if !device.found.up || device.rename_to.is_some() {
        plan.phase_mut(Phase::LinkUp).push(Step::SetUp {
            link: vif.clone(),
            was_up: false,
        });
    }
    let mut routers: Vec<IpAddr> = pairs.iter().map(|(_, r)| *r).collect();
    routers.dedup();
    for router in &routers {
        ensure_address(
            kernel,
            &vif,
            Prefix::host(*router),
            plan.phase_mut(Phase::After),
        );
    }
    let has_v4 = pairs.iter().any(|(g, _)| g.is_ipv4());
    if has_v4 {
        ensure_proxy_arp(kernel, &current_name, &vif, plan.phase_mut(Phase::After));
    }
    let mut rules = Vec::new();
    for &(guest, router) in &pairs {
        let guest = Prefix::host(guest);
        let mut route = Route::to(guest.address, guest.len);
        route.dev = Some(vif.clone());
        route.src = Some(router);
        // An HVM guest's emulated NIC wins while both exist, as with vif-route.
        route.metric = Some(metric(port.type_if));
        ensure_route(kernel, route, plan.phase_mut(Phase::After));
        let uplink = uplinks.of_family(guest.is_ipv4());
        if guest.is_ipv4() || masquerade6 {
            rules.push(Masquerade {
                source: guest.address,
                uplink: link_ref(uplink)?,
            });
        }
    }
    // Replaces whatever an earlier run (or domain) left in the table, unless the table
    // holds exactly these rules.
    let key = nat_key(port.vif, port.type_if);
    if kernel.nat_table(&key) != Some(nat_fingerprint(&key, &rules).as_str()) {
        plan.phase_mut(Phase::After)
            .push(Step::SetNat { key, rules });
    }
    check_host_knobs(kernel, has_v4, has_v6, &mut plan.warnings);
    plan.warnings.extend(uplink_fallback(netdev, kernel));
    plan.notes.push(uplinks.note());
    plan.extend(Phase::Hooks, hooks.map(Step::RunHooks));
    Ok(plan)
}

/// Offline deletes the port's table by key, so a `B/ip` changed since online leaks nothing;
/// routes and addresses vanish with the vif. The guest's masqueraded flows go with the vif
/// (they would hold their ports for days); an emulated NIC going away leaves them to the vif.
pub fn plan_detach(port: &XenPort, kernel: &Snapshot, hooks: Option<HookRun>) -> Result<Plan> {
    let mut plan = Plan::default();
    plan.phase_mut(Phase::Prepare).push(Step::RemoveNat {
        key: nat_key(port.vif, port.type_if),
    });
    if port.type_if == TypeIf::Vif {
        // A guest whose address cannot be derived had none to masquerade.
        let addresses = guest_addresses(port).unwrap_or_default();
        if !addresses.is_empty() {
            plan.push(
                Phase::After,
                Step::PurgeConntrack {
                    addresses,
                    hold: None,
                },
            );
        }
    }
    match xen_device::resolve_detach(port, kernel)? {
        Some(found) => plan.phase_mut(Phase::Prepare).push(Step::SetDown {
            link: link_ref(found)?,
            was_up: found.up,
        }),
        None => plan
            .notes
            .push(format!("{} is already gone", port.kernel_name)),
    }
    plan.extend(Phase::Hooks, hooks.map(Step::RunHooks));
    Ok(plan)
}

#[cfg(test)]
#[path = "nat_tests.rs"]
mod tests;

/// `vif-nat`; `rule` is the vif's `[port]` section (its `router` and `masquerade6`).
#[derive(Clone, Debug, Default)]
pub struct VifNat {
    pub rule: Option<PortRule>,
}

impl Mode for VifNat {
    fn own_needs(&self, port: &XenPort) -> Result<Needs> {
        let names = vec![port.kernel_name.clone(), port.name.clone()];
        Ok(Needs {
            nat: port.is_attach().then(|| nat_key(port.vif, port.type_if)),
            ..Needs::routed(names, port.netdev.as_deref())
        })
    }

    fn attach(&self, port: &XenPort, kernel: &Snapshot) -> Result<Attach> {
        let hooks = port.hook_run("", "");
        let mut plan = plan_attach(port, self.rule.as_ref(), kernel, hooks)?;
        if let Some(dhcp) = port.dhcp.as_deref().filter(|d| *d != "no") {
            plan.warnings.push(format!(
                "dhcp={dhcp}: vif-nat does not edit dhcpd.conf; configure the guest address statically"
            ));
        }
        Ok(Attach {
            plan,
            guest_addresses: guest_addresses(port)?,
        })
    }

    fn detach(&self, port: &XenPort, kernel: &Snapshot) -> Result<Plan> {
        plan_detach(port, kernel, port.hook_run("", ""))
    }
}
