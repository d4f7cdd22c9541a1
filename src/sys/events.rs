//! The kernel's change notifications `vifkit watch` reacts to: rtnetlink's multicast groups
//! (links, routes, neighbours) and nf_tables' (`NFNLGRP_NFTABLES`), read from two sockets the
//! caller polls. Each datagram is parsed into the few facts a repair depends on; the rest of
//! the kernel's chatter (statistics, FDB learning, ARP cache updates) is dropped here.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, setsockopt,
    socket, sockopt,
};

use crate::sys::nfnl::{self, attribute, ne_u32};

// rtnetlink message types (linux/rtnetlink.h).
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_DELNEIGH: u16 = 29;
// Their multicast groups, as bind(2)'s bitmask: RTNLGRP_LINK, _NEIGH, _IPV4_ROUTE, _IPV6_ROUTE.
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_NEIGH: u32 = 0x4;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTMGRP_IPV6_ROUTE: u32 = 0x400;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const IFF_UP: u32 = 0x1;
const RT_TABLE_MAIN: u8 = 254;
const RTN_UNICAST: u8 = 1;
const NTF_PROXY: u8 = 0x08;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
// nf_tables (linux/netfilter/nf_tables.h): its subsystem, group and the deletions.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNLGRP_NFTABLES: u32 = 7;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_DELRULE: u16 = 8;
const NFT_MSG_DELSET: u16 = 11;
const NFT_MSG_DELSETELEM: u16 = 14;
/// The table's name is attribute 1 of every table, chain, rule, set and element message;
/// the chain's is attribute 3 of a chain message and 2 of a rule message.
const NFTA_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_RULE_CHAIN: u16 = 2;

/// One fact a repair may depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A link was added or changed (`gone`: deleted).
    Link {
        index: u32,
        name: String,
        bridge: bool,
        /// Administratively up (`ip link set up`, `ifup`).
        up: bool,
        master: Option<u32>,
        gone: bool,
    },
    /// A default route of the main table was added or deleted.
    DefaultRoute,
    /// An IPv4 or IPv6 proxy neighbour entry was deleted.
    ProxyNeighbourGone,
    /// Something of nf_tables table `table` was deleted: the table itself (`chain` None and
    /// `whole_table`), a chain or a rule of `chain`, a set or its elements.
    NftDeleted {
        table: String,
        chain: Option<String>,
        whole_table: bool,
    },
}

/// The socket's queue overflowed (ENOBUFS): notifications were lost, so what the listener
/// knows is stale and it must read the kernel's state afresh.
#[derive(Debug)]
pub struct Overflow;

/// The two subscribed sockets.
pub struct Subscription {
    route: OwnedFd,
    nftables: OwnedFd,
}

impl Subscription {
    /// Subscribes, with receive queues of `queue_bytes` each (as root the size is forced past
    /// `net.core.rmem_max`, so a burst of a thousand notifications fits).
    pub fn open(queue_bytes: usize) -> io::Result<Subscription> {
        let groups = RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
        let route = subscribe(SockProtocol::NetlinkRoute, groups, queue_bytes)?;
        let nftables = subscribe(
            SockProtocol::NetlinkNetFilter,
            1 << (NFNLGRP_NFTABLES - 1),
            queue_bytes,
        )?;
        Ok(Subscription { route, nftables })
    }

    /// The sockets to poll for readability.
    pub fn fds(&self) -> [BorrowedFd<'_>; 2] {
        [self.route.as_fd(), self.nftables.as_fd()]
    }

    /// Reads every datagram queued on both sockets (without waiting) into `events`.
    pub fn drain(&self, buffer: &mut [u8], events: &mut Vec<Event>) -> Result<(), Overflow> {
        let mut overflow = false;
        for (fd, parse) in [
            (&self.route, route_events as fn(&[u8], &mut Vec<Event>)),
            (&self.nftables, nftables_events),
        ] {
            loop {
                match recv(fd.as_raw_fd(), buffer, MsgFlags::MSG_DONTWAIT) {
                    Ok(len) => parse(&buffer[..len], events),
                    Err(Errno::ENOBUFS) => overflow = true,
                    Err(Errno::EINTR) => {}
                    Err(_) => break, // EAGAIN: the queue is empty
                }
            }
        }
        match overflow {
            true => Err(Overflow),
            false => Ok(()),
        }
    }
}

fn subscribe(protocol: SockProtocol, groups: u32, queue_bytes: usize) -> io::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        protocol,
    )?;
    if setsockopt(&fd, sockopt::RcvBufForce, &queue_bytes).is_err() {
        setsockopt(&fd, sockopt::RcvBuf, &queue_bytes)?;
    }
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups))?;
    Ok(fd)
}

/// The events in one datagram of the rtnetlink socket.
pub fn route_events(datagram: &[u8], events: &mut Vec<Event>) {
    for message in nfnl::messages(datagram).map_while(Result::ok) {
        let event = match message.kind {
            RTM_NEWLINK | RTM_DELLINK => link_event(message.payload, message.kind == RTM_DELLINK),
            RTM_NEWROUTE | RTM_DELROUTE => default_route(message.payload),
            RTM_DELNEIGH => proxy_neighbour(message.payload),
            _ => None,
        };
        events.extend(event);
    }
}

/// struct ifinfomsg (16 bytes) and its attributes.
fn link_event(payload: &[u8], gone: bool) -> Option<Event> {
    const IFINFOMSG_LEN: usize = 16;
    // A bridge port's own notifications (family AF_BRIDGE) repeat its link's.
    if *payload.first()? != 0 {
        return None;
    }
    let index = ne_u32(payload, 4)?;
    let flags = ne_u32(payload, 8)?;
    let attrs = payload.get(IFINFOMSG_LEN..)?;
    let name = attribute(attrs, IFLA_IFNAME)?;
    let name = String::from_utf8_lossy(name.strip_suffix(&[0]).unwrap_or(name)).into_owned();
    let kind = attribute(attrs, IFLA_LINKINFO).and_then(|info| attribute(info, IFLA_INFO_KIND));
    let master = attribute(attrs, IFLA_MASTER)
        .and_then(|m| ne_u32(m, 0))
        .filter(|&m| m != 0);
    Some(Event::Link {
        index,
        name,
        bridge: kind.is_some_and(|k| k.strip_suffix(&[0]).unwrap_or(k) == b"bridge"),
        up: flags & IFF_UP != 0,
        master,
        gone,
    })
}

/// struct rtmsg: a unicast route to 0/0 or ::/0 in the main table.
fn default_route(payload: &[u8]) -> Option<Event> {
    let [family, dst_len, _, _, table, _, _, kind, ..] = *payload else {
        return None;
    };
    let default = (family == AF_INET || family == AF_INET6)
        && dst_len == 0
        && table == RT_TABLE_MAIN
        && kind == RTN_UNICAST;
    default.then_some(Event::DefaultRoute)
}

/// struct ndmsg: family at 0, flags at 10. Only proxy entries (not the ARP cache, not the
/// bridge's FDB) are vifkit's.
fn proxy_neighbour(payload: &[u8]) -> Option<Event> {
    let family = *payload.first()?;
    let flags = *payload.get(10)?;
    let proxy = (family == AF_INET || family == AF_INET6) && flags & NTF_PROXY != 0;
    proxy.then_some(Event::ProxyNeighbourGone)
}

/// The events in one datagram of the nf_tables socket: deletions only, since a repair puts
/// back what was deleted and what vifkit adds itself must not wake it.
pub fn nftables_events(datagram: &[u8], events: &mut Vec<Event>) {
    const NFGENMSG_LEN: usize = 4;
    for message in nfnl::messages(datagram).map_while(Result::ok) {
        if message.kind >> 8 != NFNL_SUBSYS_NFTABLES {
            continue;
        }
        let chain_attr = match message.kind & 0xff {
            NFT_MSG_DELTABLE | NFT_MSG_DELSET | NFT_MSG_DELSETELEM => None,
            NFT_MSG_DELCHAIN => Some(NFTA_CHAIN_NAME),
            NFT_MSG_DELRULE => Some(NFTA_RULE_CHAIN),
            _ => continue,
        };
        let Some(attrs) = message.payload.get(NFGENMSG_LEN..) else {
            continue;
        };
        let text = |kind| {
            attribute(attrs, kind)
                .map(|v| String::from_utf8_lossy(v.strip_suffix(&[0]).unwrap_or(v)).into_owned())
        };
        let Some(table) = text(NFTA_TABLE) else {
            continue;
        };
        events.push(Event::NftDeleted {
            table,
            chain: chain_attr.and_then(text),
            whole_table: message.kind & 0xff == NFT_MSG_DELTABLE,
        });
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
