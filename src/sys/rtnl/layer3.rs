//! Addresses, routes and proxy neighbours (layer 3), for every mode that has them.

use std::net::IpAddr;

use anyhow::{Context, Result};
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteMetric, RouteNextHop,
    RouteNextHopFlags, RouteProtocol, RouteRealm, RouteScope, RouteType,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{Netlink, is_missing, os_error};
use crate::types::prefix::Prefix;
use crate::types::route::{Route, kind};

fn family(ip: &IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn route_address(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(v4) => RouteAddress::Inet(v4),
        IpAddr::V6(v6) => RouteAddress::Inet6(v6),
    }
}

fn metric(number: u16, value: u32) -> Option<RouteMetric> {
    Some(match number {
        2 => RouteMetric::Mtu(value),
        3 => RouteMetric::Window(value),
        4 => RouteMetric::Rtt(value),
        5 => RouteMetric::RttVar(value),
        6 => RouteMetric::SsThresh(value),
        7 => RouteMetric::Cwnd(value),
        8 => RouteMetric::Advmss(value),
        9 => RouteMetric::Reordering(value),
        10 => RouteMetric::Hoplimit(value),
        11 => RouteMetric::InitCwnd(value),
        13 => RouteMetric::RtoMin(value),
        14 => RouteMetric::InitRwnd(value),
        _ => return None,
    })
}

/// The message `ip route add` would send for `route`, with iproute2's defaults.
fn route_message(route: &Route) -> RouteMessage {
    let mut msg = RouteMessage::default();
    let header = &mut msg.header;
    header.address_family = family(&route.destination);
    header.destination_prefix_length = route.prefix_len;
    header.protocol = RouteProtocol::from(route.protocol);
    header.kind = RouteType::from(route.kind);
    header.tos = route.tos;
    header.table = u8::try_from(route.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    header.scope = match route.scope {
        Some(scope) => RouteScope::from(scope),
        None if route.kind == kind::LOCAL => RouteScope::Host,
        None if route.kind == kind::UNICAST
            && route.gateway.is_none()
            && route.nexthops.is_empty() =>
        {
            RouteScope::Link
        }
        None => RouteScope::Universe,
    };
    if route.onlink {
        header.flags |= RouteFlags::Onlink;
    }
    let attrs = &mut msg.attributes;
    attrs.push(RouteAttribute::Table(route.table));
    if route.prefix_len > 0 {
        attrs.push(RouteAttribute::Destination(route_address(
            route.destination,
        )));
    }
    if let Some(gateway) = route.gateway {
        attrs.push(RouteAttribute::Gateway(route_address(gateway)));
    }
    if let Some(dev) = &route.dev {
        attrs.push(RouteAttribute::Oif(dev.index));
    }
    if let Some(src) = route.src {
        attrs.push(RouteAttribute::PrefSource(route_address(src)));
    }
    if let Some(realm) = route.realm {
        attrs.push(RouteAttribute::Realm(RouteRealm {
            source: (realm >> 16) as u16,
            destination: realm as u16,
        }));
    }
    if let Some(priority) = route.metric {
        attrs.push(RouteAttribute::Priority(priority));
    }
    if !route.metrics.is_empty() {
        let mut metrics: Vec<RouteMetric> = route
            .metrics
            .iter()
            .filter_map(|(n, v, _)| metric(*n, *v))
            .collect();
        // RTAX_LOCK is a bit mask over the metric numbers.
        let locked = route
            .metrics
            .iter()
            .filter(|(_, _, lock)| *lock)
            .fold(0u32, |m, (n, _, _)| m | 1 << n);
        if locked != 0 {
            metrics.push(RouteMetric::Lock(locked));
        }
        attrs.push(RouteAttribute::Metrics(metrics));
    }
    if !route.nexthops.is_empty() {
        let hops = route
            .nexthops
            .iter()
            .map(|hop| {
                let mut next = RouteNextHop::default();
                next.hops = u8::try_from(hop.weight.saturating_sub(1)).unwrap_or(u8::MAX);
                next.interface_index = hop.dev.as_ref().map_or(0, |d| d.index);
                if hop.onlink {
                    next.flags |= RouteNextHopFlags::Onlink;
                }
                next.attributes
                    .push(RouteAttribute::Gateway(route_address(hop.gateway)));
                next
            })
            .collect();
        attrs.push(RouteAttribute::MultiPath(hops));
    }
    msg
}

fn proxy_message(index: u32, address: IpAddr) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = family(&address);
    msg.header.ifindex = index;
    msg.header.flags = NeighbourFlags::Proxy;
    msg.header.state = NeighbourState::Permanent;
    msg.attributes
        .push(NeighbourAttribute::Destination(match address {
            IpAddr::V4(v4) => NeighbourAddress::Inet(v4),
            IpAddr::V6(v6) => NeighbourAddress::Inet6(v6),
        }));
    msg
}

impl Netlink {
    /// Adds (or refreshes) an address; adding one that is there already is success. IPv6
    /// addresses skip duplicate address detection: the routes planned next use them as `src`,
    /// which the kernel refuses while they are tentative, and a vif is a point-to-point link.
    pub async fn add_address(&self, index: u32, address: Prefix) -> Result<()> {
        let mut request = self
            .handle
            .address()
            .add(index, address.address, address.len)
            .replace();
        if !address.is_ipv4() {
            let message = request.message_mut();
            message.header.flags |= AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        request.execute().await.map_err(os_error)
    }

    pub async fn del_address(&self, index: u32, address: Prefix) -> Result<()> {
        let Prefix { address, len } = address;
        let mut msg = AddressMessage::default();
        msg.header.family = family(&address);
        msg.header.index = index;
        msg.header.prefix_len = len;
        msg.attributes.push(AddressAttribute::Local(address));
        msg.attributes.push(AddressAttribute::Address(address));
        self.handle
            .address()
            .del(msg)
            .execute()
            .await
            .map_err(os_error)
    }

    /// The addresses on a link.
    pub async fn addresses(&self, index: u32) -> Result<Vec<Prefix>> {
        let messages = self.address_messages(index).await?;
        Ok(messages
            .iter()
            .filter_map(|m| {
                let address = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Local(ip) => Some(*ip),
                    _ => None,
                });
                let address = address.or_else(|| {
                    m.attributes.iter().find_map(|a| match a {
                        AddressAttribute::Address(ip) => Some(*ip),
                        _ => None,
                    })
                })?;
                Some(Prefix::new(address, m.header.prefix_len))
            })
            .collect())
    }

    /// `ip route replace`: safe to repeat.
    pub async fn add_route(&self, route: &Route) -> Result<()> {
        self.handle
            .route()
            .add(route_message(route))
            .replace()
            .execute()
            .await
            .map_err(os_error)
    }

    pub async fn del_route(&self, route: &Route) -> Result<()> {
        self.handle
            .route()
            .del(route_message(route))
            .execute()
            .await
            .map_err(os_error)
    }

    /// `ip neigh replace proxy ADDRESS dev LINK` (ARP proxy for IPv4, NDP proxy for IPv6).
    pub async fn add_proxy(&self, index: u32, address: IpAddr) -> Result<()> {
        let mut request = self.handle.neighbours().add(index, address).replace();
        *request.message_mut() = proxy_message(index, address);
        request.execute().await.map_err(os_error)
    }

    /// Every proxy entry (`ip neigh show proxy`, both families), as (ifindex, address).
    pub async fn proxies(&self) -> Result<Vec<(u32, IpAddr)>> {
        let mut found = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut query = NeighbourMessage::default();
            query.header.family = family;
            query.header.flags = NeighbourFlags::Proxy;
            let messages = self
                .dump(RouteNetlinkMessage::GetNeighbour(query))
                .await
                .context("list proxy neighbours")?;
            let proxies = messages.iter().filter_map(|message| match message {
                RouteNetlinkMessage::NewNeighbour(m)
                    if m.header.flags.contains(NeighbourFlags::Proxy) =>
                {
                    Some(m)
                }
                _ => None,
            });
            for message in proxies {
                for attribute in &message.attributes {
                    match attribute {
                        NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                            found.push((message.header.ifindex, IpAddr::V4(*v4)))
                        }
                        NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                            found.push((message.header.ifindex, IpAddr::V6(*v6)))
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(found)
    }

    /// The routes whose output interface is `index`, as (destination, prefix, metric).
    pub async fn routes_via(&self, index: u32) -> Result<Vec<(IpAddr, u8, Option<u32>)>> {
        let mut found = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            for route in self.route_dump(family).await? {
                let oif = route.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Oif(i) => Some(*i),
                    _ => None,
                });
                if oif != Some(index) {
                    continue;
                }
                let destination = route.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Destination(RouteAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
                    RouteAttribute::Destination(RouteAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
                    _ => None,
                });
                let metric = route.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Priority(p) => Some(*p),
                    _ => None,
                });
                if let Some(destination) = destination {
                    found.push((destination, route.header.destination_prefix_length, metric));
                }
            }
        }
        Ok(found)
    }

    pub async fn del_proxy(&self, index: u32, address: IpAddr) -> Result<()> {
        match self
            .handle
            .neighbours()
            .del(proxy_message(index, address))
            .execute()
            .await
        {
            Err(err) => {
                let err = os_error(err);
                if is_missing(&err) { Ok(()) } else { Err(err) }
            }
            Ok(()) => Ok(()),
        }
    }
}
