//! A snapshot of the kernel objects a planner looks at, so planners stay pure.

use std::net::IpAddr;

use crate::sys::nft::InstalledFilter;
use crate::sys::ovsdb::OvsPort;
use crate::sys::rtnl::Link;
use crate::sys::sysctl::Key;
use crate::types::names::IfName;
use crate::types::prefix::{Family, Prefix};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub links: Vec<Link>,
    /// `(link name, basename of /sys/class/net/<name>/device)` for links that have one:
    /// a netback vif's device is `vif-<domid>-<devid>`.
    pub devices: Vec<(String, String)>,
    /// `(ifindex, address)` for the links whose addresses a planner needs.
    pub addresses: Vec<(u32, Prefix)>,
    /// Values read before any write; None where the key does not exist.
    pub sysctls: Vec<(Key, Option<String>)>,
    /// Links carrying a default route of the main table, by family: IPv4 ones first.
    pub default_routes: Vec<(Family, u32)>,
    /// `(ifindex, next hop)` of those default routes that have a gateway: a guest given
    /// one of them would take the host's traffic (`guest_ip`).
    pub default_gateways: Vec<(u32, IpAddr)>,
    /// Proxy ARP/NDP entries present: (ifindex, address).
    pub proxies: Vec<(u32, IpAddr)>,
    /// Why bridged guests' traffic is dropped by the host's forward chains, if it is.
    pub bridged_traffic_dropped: Option<String>,
    /// Antispoofing chains asked for, as the kernel holds them: (port, its comment and
    /// rules). A port without a chain is absent.
    pub port_filters: Vec<(IfName, InstalledFilter)>,
    /// Installed NAT tables asked for: (key, fingerprint; "" for none).
    pub nat_tables: Vec<(String, String)>,
    /// Open vSwitch ports asked for: (name, bridge, port as the database holds it).
    pub ovs_ports: Vec<(IfName, String, OvsPort)>,
    /// Routes present through the links a planner changes: (ifindex, destination, prefix, metric).
    pub routes: Vec<(u32, IpAddr, u8, Option<u32>)>,
}

impl Snapshot {
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }

    /// The links of the default routes, IPv4 ones first, each once.
    pub fn default_links(&self) -> Vec<u32> {
        let mut links: Vec<u32> = Vec::new();
        for (_, index) in &self.default_routes {
            if !links.contains(index) {
                links.push(*index);
            }
        }
        links
    }

    /// The first link with a default route of `family`.
    pub fn default_link(&self, family: Family) -> Option<&Link> {
        self.default_routes
            .iter()
            .filter(|(f, _)| *f == family)
            .find_map(|(_, index)| self.link_by_index(*index))
    }

    pub fn link_by_index(&self, index: u32) -> Option<&Link> {
        self.links.iter().find(|l| l.index == index)
    }

    pub fn device_of(&self, name: &str) -> Option<&str> {
        self.devices
            .iter()
            .find(|(link, _)| link == name)
            .map(|(_, device)| device.as_str())
    }

    pub fn addresses_of(&self, index: u32) -> impl Iterator<Item = Prefix> + '_ {
        self.addresses
            .iter()
            .filter(move |(i, _)| *i == index)
            .map(|(_, address)| *address)
    }

    /// The port's antispoofing chain, if it has one: its fingerprint and rules.
    pub fn port_filter(&self, port: &IfName) -> Option<&InstalledFilter> {
        self.port_filters
            .iter()
            .find(|(p, _)| p == port)
            .map(|(_, installed)| installed)
    }

    /// What the NAT table of `key` was installed as.
    pub fn nat_table(&self, key: &str) -> Option<&str> {
        self.nat_tables
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, fingerprint)| fingerprint.as_str())
    }

    /// The bridge and record of the Open vSwitch port `name`, if the database has one.
    pub fn ovs_port(&self, name: &IfName) -> Option<(&String, &OvsPort)> {
        self.ovs_ports
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, bridge, port)| (bridge, port))
    }

    /// The key was read and does not exist (a module or family the kernel runs without).
    pub fn sysctl_absent(&self, key: &Key) -> bool {
        self.sysctls.iter().any(|(k, v)| k == key && v.is_none())
    }

    pub fn sysctl(&self, key: &Key) -> Option<&str> {
        self.sysctls
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    pub fn has_proxy(&self, index: u32, address: IpAddr) -> bool {
        self.proxies.contains(&(index, address))
    }

    pub fn has_address(&self, index: u32, address: Prefix) -> bool {
        self.addresses.contains(&(index, address))
    }

    /// Whether the kernel already holds a route with this identity on this link. Metric 0
    /// is what the kernel records for IPv4 routes added without one.
    pub fn has_route(
        &self,
        index: u32,
        destination: IpAddr,
        prefix_len: u8,
        metric: Option<u32>,
    ) -> bool {
        // What the kernel records when no metric is given: 0 for IPv4, 1024 for IPv6.
        let implied = if destination.is_ipv6() { 1024 } else { 0 };
        let wanted = metric.unwrap_or(implied);
        self.routes.iter().any(|&(i, d, p, m)| {
            i == index && d == destination && p == prefix_len && m.unwrap_or(implied) == wanted
        })
    }

    pub fn add(&mut self, link: Link) {
        if self.link_by_index(link.index).is_none() {
            self.links.push(link);
        }
    }
}
