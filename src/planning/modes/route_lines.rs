//! A sysconfig route line as the kernel takes it: kinds, gateways, nexthop devices and
//! metrics resolved against the snapshot (CONTRACT 5.2).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{Context, Result};

use crate::input::sysconfig::{Destination, Family, RouteKind, RouteLine};
use crate::planning::ensure::link_ref;
use crate::planning::snapshot::Snapshot;
use crate::types::link::LinkRef;
use crate::types::route::{self, Nexthop, Route};

fn route_kind(kind: RouteKind) -> u8 {
    match kind {
        RouteKind::Unicast => route::kind::UNICAST,
        RouteKind::Local => route::kind::LOCAL,
        RouteKind::Broadcast => route::kind::BROADCAST,
        RouteKind::Multicast => route::kind::MULTICAST,
        RouteKind::Anycast => route::kind::ANYCAST,
        RouteKind::Nat => route::kind::NAT,
        RouteKind::Throw => route::kind::THROW,
        RouteKind::Unreachable => route::kind::UNREACHABLE,
        RouteKind::Prohibit => route::kind::PROHIBIT,
        RouteKind::Blackhole => route::kind::BLACKHOLE,
    }
}

/// A route line as the kernel route it describes, on `vif` unless it is a reject route.
pub fn route_from_line(line: &RouteLine, vif: &LinkRef, kernel: &Snapshot) -> Result<Route> {
    let (destination, prefix_len) = match line.destination {
        Destination::Default(Family::V4) => (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        Destination::Default(Family::V6) => (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        Destination::Net {
            address,
            prefix_len,
        } => (address, prefix_len),
    };
    let mut route = Route::to(destination, prefix_len);
    route.kind = route_kind(line.kind);
    route.gateway = line.gateway;
    route.dev = (!line.kind.is_reject()).then(|| vif.clone());
    route.src = line.src;
    route.metric = line.metric;
    route.table = line.table.unwrap_or(route::TABLE_MAIN);
    route.scope = line.scope;
    route.protocol = line.protocol.unwrap_or(route::PROTOCOL_BOOT);
    route.realm = line.realm;
    route.tos = line.tos.map(|t| t as u8).unwrap_or(0);
    if let Some((mtu, lock)) = line.mtu {
        route.metrics.push((2, mtu, lock));
    }
    route.metrics.extend(
        line.metrics
            .iter()
            .map(|m| (m.kind.kernel_id(), m.value, m.lock)),
    );
    for hop in &line.nexthops {
        let dev = match &hop.dev {
            Some(name) => {
                let link = kernel.link(name.as_str()).with_context(|| {
                    format!("line {}: nexthop device {name} does not exist", line.line)
                })?;
                Some(link_ref(link)?)
            }
            None => Some(vif.clone()),
        };
        route.nexthops.push(Nexthop {
            gateway: hop.gateway,
            dev,
            weight: u32::from(hop.weight.unwrap_or(1)),
            onlink: hop.onlink,
        });
    }
    if !route.nexthops.is_empty() {
        route.dev = None;
    }
    Ok(route)
}
