//! What a planner reads from the kernel, declared as data: `apply::gather` reads exactly
//! this into a `Snapshot`, and the planner looks at nothing else.

use crate::sys::sysctl::Key;
use crate::types::names::IfName;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Links by name; a missing one is simply absent from the snapshot.
    pub links: Vec<IfName>,
    /// The bridge (or other master) of each link found, too.
    pub masters: bool,
    /// The links of the IPv4 and IPv6 default routes.
    pub default_links: bool,
    /// Links whose addresses the planner looks at (a bridge port must have none).
    pub addresses_of: Vec<IfName>,
    /// Whether the host's netfilter drops bridged traffic (a bridged port's warning).
    pub bridged_traffic: bool,
    /// This port's antispoofing chain, if it has one (its fingerprint and rules). Every
    /// attach asks, filtered or not: a chain outlives its device and hooks on the next one
    /// of the same name, so an earlier guest's must go even when this one is unfiltered.
    pub port_filter: Option<IfName>,
    /// The fingerprint of the NAT table of this key, if one is installed.
    pub nat: Option<String>,
    /// The Open vSwitch port of this name, as the database holds it.
    pub ovs_port: Option<IfName>,
    /// What routed planners look at besides (routed and NAT vifs, routed taps).
    pub routed: Option<RoutedNeeds>,
    /// Sysctls to read before any write.
    pub sysctls: Vec<Key>,
    /// `proxy_arp` of every default-route link (vif-route-ifup's host checks).
    pub proxy_arp_of_default_links: bool,
}

/// A routed port's view: the port's links (kernel name, then final name) with their
/// addresses, routes and `proxy_arp`/`proxy_ndp`; the uplink (`netdev`, else the
/// default-route link) with its addresses and `proxy_ndp`; every proxy entry; the
/// forwarding knobs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoutedNeeds {
    pub port: Vec<IfName>,
    pub netdev: Option<String>,
}

impl Needs {
    /// The named links alone: all a detach of a bridged or Open vSwitch port looks at.
    pub fn links(links: Vec<IfName>) -> Needs {
        Needs {
            links,
            ..Needs::default()
        }
    }

    /// The named links and the bridges they are ports of.
    pub fn links_and_masters(links: Vec<IfName>) -> Needs {
        Needs {
            links,
            masters: true,
            ..Needs::default()
        }
    }

    pub fn routed(port: Vec<IfName>, netdev: Option<&str>) -> Needs {
        Needs {
            routed: Some(RoutedNeeds {
                port,
                netdev: netdev.map(str::to_owned),
            }),
            ..Needs::default()
        }
    }
}
