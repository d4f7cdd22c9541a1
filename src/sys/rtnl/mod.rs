//! The only module that speaks rtnetlink. Domain types at its edge: callers see `Link`,
//! interface indexes and `std::io::Error`s carrying the kernel's errno.

use std::io;
use std::net::IpAddr;

use anyhow::{Context, Result};
use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressMessage;
use rtnetlink::packet_route::link::{
    InfoBridge, InfoData, InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::AsyncSocket;
use rtnetlink::{Handle, LinkUnspec};

use crate::types::mac::MacAddr;
use crate::types::names::IfName;
use crate::types::prefix::Family;

/// What the planners need to know about one link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: IfName,
    pub mtu: u32,
    pub mac: Option<MacAddr>,
    pub up: bool,
    /// Index of the bridge (or other controller) this link is a port of.
    pub master: Option<u32>,
    /// rtnetlink kind: "bridge", "veth", "tun", ...; None for physical devices.
    pub kind: Option<String>,
    pub alias: Option<String>,
    /// A bridge with `vlan_filtering 1`: its ports can be given VLANs.
    pub vlan_filtering: bool,
}

impl Link {
    pub fn is_bridge(&self) -> bool {
        self.kind.as_deref() == Some("bridge")
    }

    /// The test fixture every planner test starts from: a netback-like veth, down, MTU
    /// 1500, with netback's MAC. Tests change fields with struct update syntax.
    #[cfg(test)]
    pub fn veth(index: u32, name: &str) -> Link {
        Link {
            index,
            name: IfName::new(name).unwrap(),
            mtu: 1500,
            mac: Some(MacAddr::BACKEND_PORT),
            up: false,
            master: None,
            kind: Some("veth".into()),
            alias: None,
            vlan_filtering: false,
        }
    }

    /// A Linux bridge that is up, for tests.
    #[cfg(test)]
    pub fn bridge(index: u32, name: &str) -> Link {
        Link {
            up: true,
            kind: Some("bridge".into()),
            mac: Some(MacAddr([2, 0, 0, 0, 0, 1])),
            ..Link::veth(index, name)
        }
    }
}

/// True for the errnos that mean "that object is not there".
pub fn is_missing(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
            .is_some_and(|errno| {
                errno == nix::libc::ENODEV
                    || errno == nix::libc::ENOENT
                    || errno == nix::libc::ESRCH
                    || errno == nix::libc::EADDRNOTAVAIL
            })
    })
}

pub(crate) fn os_error(err: rtnetlink::Error) -> anyhow::Error {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.to_io().into(),
        other => anyhow::Error::new(other),
    }
}

mod bridge_port;
mod dump;
mod layer3;
mod police;
mod rate;

pub use police::IngressLimit;
pub use rate::RootQdisc;

pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens a route netlink socket; the connection task runs on the current-thread runtime.
    pub fn connect() -> Result<Netlink> {
        let (mut connection, handle, _) =
            rtnetlink::new_connection().context("open a route netlink socket")?;
        // Strict checking makes the kernel honour the interface index of an address dump,
        // so listing one port's addresses costs the same however many links the host has.
        connection
            .socket_mut()
            .socket_mut()
            .set_netlink_get_strict_chk(true)
            .context("set NETLINK_GET_STRICT_CHK")?;
        // Every dump goes through `dump`, which reads NLM_F_DUMP_INTR off NLMSG_DONE too.
        connection.set_forward_done(true);
        tokio::spawn(connection);
        Ok(Netlink { handle })
    }

    pub async fn link(&self, name: &IfName) -> Result<Option<Link>> {
        let request = self
            .handle
            .link()
            .get()
            .match_name(name.as_str().to_owned());
        self.first_link(request.execute())
            .await
            .with_context(|| format!("look up link {name}"))
    }

    pub async fn link_by_index(&self, index: u32) -> Result<Option<Link>> {
        let request = self.handle.link().get().match_index(index);
        self.first_link(request.execute())
            .await
            .with_context(|| format!("look up link #{index}"))
    }

    /// The link whose alias is `alias` (a dump: for an offline that cannot read xenstore,
    /// where the alias our rename left is all that names a renamed vif).
    pub async fn link_by_alias(&self, alias: &str) -> Result<Option<Link>> {
        let links = self.links().await?;
        Ok(links
            .into_iter()
            .find(|link| link.alias.as_deref() == Some(alias)))
    }

    /// The names of every tun/tap link (a dump: for `vifkit reattach`, not the plug path).
    pub async fn tap_names(&self) -> Result<Vec<IfName>> {
        let links = self.links().await?;
        Ok(links
            .into_iter()
            .filter(|link| link.kind.as_deref() == Some("tun"))
            .map(|link| link.name)
            .collect())
    }

    /// Every link (a dump).
    pub async fn links(&self) -> Result<Vec<Link>> {
        let request = RouteNetlinkMessage::GetLink(LinkMessage::default());
        let messages = self.dump(request).await.context("list links")?;
        messages
            .iter()
            .filter_map(|message| match message {
                RouteNetlinkMessage::NewLink(link) => Some(link_from_message(link)),
                _ => None,
            })
            .collect()
    }

    async fn first_link(
        &self,
        stream: impl futures::Stream<Item = Result<LinkMessage, rtnetlink::Error>>,
    ) -> Result<Option<Link>> {
        futures::pin_mut!(stream);
        match stream.try_next().await {
            Ok(Some(msg)) => link_from_message(&msg).map(Some),
            Ok(None) => Ok(None),
            Err(err) => {
                let err = os_error(err);
                if is_missing(&err) { Ok(None) } else { Err(err) }
            }
        }
    }

    async fn set(&self, message: LinkMessage) -> Result<()> {
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(os_error)
    }

    pub async fn set_up(&self, index: u32, up: bool) -> Result<()> {
        let builder = LinkUnspec::new_with_index(index);
        let builder = if up { builder.up() } else { builder.down() };
        self.set(builder.build()).await
    }

    pub async fn set_mac(&self, index: u32, mac: MacAddr) -> Result<()> {
        self.set(
            LinkUnspec::new_with_index(index)
                .address(mac.0.to_vec())
                .build(),
        )
        .await
    }

    pub async fn set_mtu(&self, index: u32, mtu: u32) -> Result<()> {
        self.set(LinkUnspec::new_with_index(index).mtu(mtu).build())
            .await
    }

    pub async fn set_master(&self, index: u32, master: Option<u32>) -> Result<()> {
        let builder = LinkUnspec::new_with_index(index);
        let builder = match master {
            Some(master) => builder.controller(master),
            None => builder.nocontroller(),
        };
        self.set(builder.build()).await
    }

    /// Renames link `index` to `name` and gives it `alias` (an empty one clears it) in one
    /// RTM_NEWLINK: the kernel applies both in one `do_setlink` under the RTNL lock, so no
    /// kill can leave a renamed link without the alias a rerun recognises it by.
    pub async fn rename(&self, index: u32, name: &IfName, alias: &str) -> Result<()> {
        self.set(rename_message(index, name, alias)).await
    }

    /// The address messages of one link: the kernel filters (strict checking), and so does
    /// this code, for kernels that ignore the index.
    pub(super) async fn address_messages(&self, index: u32) -> Result<Vec<AddressMessage>> {
        let mut query = AddressMessage::default();
        query.header.index = index;
        let messages = self
            .dump(RouteNetlinkMessage::GetAddress(query))
            .await
            .with_context(|| format!("list the addresses of link #{index}"))?;
        Ok(messages
            .into_iter()
            .filter_map(|message| match message {
                RouteNetlinkMessage::NewAddress(m) if m.header.index == index => Some(m),
                _ => None,
            })
            .collect())
    }
}

impl Netlink {
    /// Every route of one address family (all tables).
    pub(super) async fn route_dump(&self, family: AddressFamily) -> Result<Vec<RouteMessage>> {
        let mut query = RouteMessage::default();
        query.header.address_family = family;
        let messages = self.dump(RouteNetlinkMessage::GetRoute(query)).await?;
        Ok(messages
            .into_iter()
            .filter_map(|message| match message {
                RouteNetlinkMessage::NewRoute(route) => Some(route),
                _ => None,
            })
            .collect())
    }

    /// Interfaces that carry a default route of the main table, in the kernel's order.
    pub async fn default_route_links(&self, family: Family) -> Result<Vec<u32>> {
        let hops = self.default_route_hops(family).await?;
        Ok(hops.into_iter().map(|hop| hop.index).collect())
    }

    /// The hops of the main table's default routes of `family`: each link, and the
    /// gateway when the route names one (a multipath route gives one per path).
    pub async fn default_route_hops(&self, family: Family) -> Result<Vec<DefaultHop>> {
        let routes = self
            .route_dump(match family {
                Family::V4 => AddressFamily::Inet,
                Family::V6 => AddressFamily::Inet6,
            })
            .await
            .context("list routes")?;
        let mut hops = Vec::new();
        for route in routes {
            let table = route
                .attributes
                .iter()
                .find_map(|a| match a {
                    RouteAttribute::Table(t) => Some(*t),
                    _ => None,
                })
                .unwrap_or(u32::from(route.header.table));
            if route.header.destination_prefix_length != 0
                || route.header.kind != RouteType::Unicast
                || table != u32::from(RouteHeader::RT_TABLE_MAIN)
            {
                continue;
            }
            let gateway = gateway_of(&route.attributes);
            for attribute in &route.attributes {
                match attribute {
                    RouteAttribute::Oif(index) => hops.push(DefaultHop {
                        index: *index,
                        gateway,
                    }),
                    RouteAttribute::MultiPath(paths) => {
                        hops.extend(paths.iter().map(|path| DefaultHop {
                            index: path.interface_index,
                            gateway: gateway_of(&path.attributes),
                        }))
                    }
                    _ => {}
                }
            }
        }
        Ok(hops)
    }
}

/// One way out by a default route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefaultHop {
    pub index: u32,
    pub gateway: Option<IpAddr>,
}

fn gateway_of(attributes: &[RouteAttribute]) -> Option<IpAddr> {
    attributes.iter().find_map(|a| match a {
        RouteAttribute::Gateway(RouteAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
        RouteAttribute::Gateway(RouteAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
        _ => None,
    })
}

/// The one request that renames link `index` and sets its alias.
fn rename_message(index: u32, name: &IfName, alias: &str) -> LinkMessage {
    LinkUnspec::new_with_index(index)
        .name(name.as_str().to_owned())
        .alias(alias)
        .build()
}

/// A link as the kernel reports it; the kernel's own name rules are IfName's, so a name
/// that fails them means a message this code misread.
fn link_from_message(msg: &LinkMessage) -> Result<Link> {
    let name = msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.as_str()),
        _ => None,
    });
    let Some(name) = name else {
        anyhow::bail!(
            "the kernel reported link {} without a name",
            msg.header.index
        );
    };
    let mut link = Link {
        index: msg.header.index,
        name: IfName::new(name)?,
        mtu: 0,
        mac: None,
        up: msg.header.flags.contains(LinkFlags::Up),
        master: None,
        kind: None,
        alias: None,
        vlan_filtering: false,
    };
    for attribute in &msg.attributes {
        match attribute {
            LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
            LinkAttribute::Address(bytes) => link.mac = MacAddr::from_slice(bytes),
            LinkAttribute::Controller(index) => link.master = Some(*index),
            LinkAttribute::IfAlias(alias) => link.alias = Some(alias.clone()),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(kind) => {
                            link.kind = Some(match kind {
                                InfoKind::Bridge => "bridge".to_owned(),
                                other => other.to_string(),
                            });
                        }
                        LinkInfo::Data(InfoData::Bridge(data)) => {
                            link.vlan_filtering = data.contains(&InfoBridge::VlanFiltering(true));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rename_and_its_alias_are_one_request() {
        let name = IfName::new("web1").unwrap();
        let message = rename_message(7, &name, "vif3.0");
        assert_eq!(message.header.index, 7);
        assert_eq!(
            message.attributes,
            [
                LinkAttribute::IfName("web1".into()),
                LinkAttribute::IfAlias("vif3.0".into())
            ]
        );
        // Back: the alias is cleared in the same request.
        let back = rename_message(7, &IfName::new("vif3.0").unwrap(), "");
        assert_eq!(back.attributes[1], LinkAttribute::IfAlias(String::new()));
    }
}
