//! Which routes vif-route-ifup adds for one device (CONTRACT 5.4 step 4).

use std::net::IpAddr;

use crate::input::sysconfig::ifcfg::Ifcfg;
use crate::input::sysconfig::route_line::{Destination, RouteLine};
use crate::types::names::IfName;
use crate::types::prefix::Family;
use crate::types::prefix::Prefix;

const MAIN_TABLE: u32 = 254;

/// Every `ifroute-<dev>` line, then the `routes` lines that are `dev`'s: those naming it, and
/// those with `-` that wicked would assign to it (a gateway inside the network of one of its
/// ifcfg addresses or of a device route already selected, or equal to a peer address).
///
/// Lines for other interfaces and reject routes from `routes` are never selected: the host
/// owns them. wicked's "first match" is per device here, as we only read `dev`'s ifcfg.
/// A line whose kernel identity (table, destination, metric, and TOS for IPv4) was already
/// selected is skipped, so `ifroute-<dev>` wins over `routes`, as in wicked.
///
/// The result puts routes without a gateway first (keeping file order within each group):
/// the kernel refuses a gateway it cannot reach yet.
pub fn routes_for_device(
    dev: &IfName,
    ifcfg: Option<&Ifcfg>,
    routes: &[RouteLine],
    ifroute: &[RouteLine],
) -> Vec<RouteLine> {
    let mut selected: Vec<RouteLine> = Vec::new();
    for route in ifroute {
        push_unless_duplicate(&mut selected, route);
    }
    for route in routes {
        let mine = match &route.interface {
            Some(interface) => interface == dev,
            None => assigned_by_gateway(dev, ifcfg, &selected, route),
        };
        if mine {
            push_unless_duplicate(&mut selected, route);
        }
    }
    let (direct, via): (Vec<_>, Vec<_>) = selected
        .into_iter()
        .partition(|r| r.gateway.is_none() && r.nexthops.is_empty());
    direct.into_iter().chain(via).collect()
}

fn push_unless_duplicate(selected: &mut Vec<RouteLine>, route: &RouteLine) {
    match selected.iter().find(|r| same_kernel_route(r, route)) {
        Some(first) => log::debug!(
            "route to {} on line {} skipped: line {} already adds it",
            route.destination,
            route.line,
            first.line
        ),
        None => selected.push(route.clone()),
    }
}

fn same_kernel_route(a: &RouteLine, b: &RouteLine) -> bool {
    a.table.unwrap_or(MAIN_TABLE) == b.table.unwrap_or(MAIN_TABLE)
        && a.destination == b.destination
        && a.metric == b.metric
        && (a.family() == Family::V6 || a.tos == b.tos)
}

fn assigned_by_gateway(
    dev: &IfName,
    ifcfg: Option<&Ifcfg>,
    selected: &[RouteLine],
    route: &RouteLine,
) -> bool {
    let hops: Vec<(IpAddr, Option<&IfName>)> = match route.gateway {
        Some(gateway) => vec![(gateway, None)],
        None => route
            .nexthops
            .iter()
            .map(|hop| (hop.gateway, hop.dev.as_ref()))
            .collect(),
    };
    hops.into_iter().any(|(gateway, hop_dev)| match hop_dev {
        Some(hop_dev) => hop_dev == dev,
        None => reaches(dev, ifcfg, selected, route, gateway),
    })
}

fn reaches(
    dev: &IfName,
    ifcfg: Option<&Ifcfg>,
    selected: &[RouteLine],
    route: &RouteLine,
    gateway: IpAddr,
) -> bool {
    // Every interface has fe80::/64, so a link-local gateway needs an explicit interface.
    if let IpAddr::V6(v6) = gateway
        && v6.is_unicast_link_local()
    {
        return false;
    }
    let via_device_route = selected.iter().any(|r| {
        r.interface.as_ref() == Some(dev)
            && r.gateway.is_none()
            && r.nexthops.is_empty()
            && r.table.unwrap_or(MAIN_TABLE) == route.table.unwrap_or(MAIN_TABLE)
            && matches!(r.destination, Destination::Net { address, .. } if !address.is_loopback())
            && r.destination.contains(gateway)
    });
    via_device_route
        || ifcfg.is_some_and(|ifcfg| {
            ifcfg.addresses.iter().any(|a| {
                Prefix::new(a.address, a.prefix_len).contains(gateway) || a.peer == Some(gateway)
            })
        })
}

#[cfg(test)]
#[path = "route_select_tests.rs"]
mod tests;
