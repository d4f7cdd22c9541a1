//! A snapshot of the kernel objects a planner looks at, so planners stay pure.

use std::net::IpAddr;

use crate::netlink::Link;
use crate::sysctl::Key;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub links: Vec<Link>,
    /// `(link name, basename of /sys/class/net/<name>/device)` for links that have one:
    /// a netback vif's device is `vif-<domid>-<devid>`.
    pub devices: Vec<(String, String)>,
    /// `(ifindex, address, prefix length)` for the links whose addresses a planner needs.
    pub addresses: Vec<(u32, IpAddr, u8)>,
    /// Values read before any write; None where the key does not exist.
    pub sysctls: Vec<(Key, Option<String>)>,
    /// Links carrying a default route of the main table: IPv4 ones, then IPv6 ones.
    pub default_links: Vec<u32>,
}

impl Snapshot {
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
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

    pub fn addresses_of(&self, index: u32) -> impl Iterator<Item = (IpAddr, u8)> + '_ {
        self.addresses
            .iter()
            .filter(move |(i, _, _)| *i == index)
            .map(|(_, ip, len)| (*ip, *len))
    }

    pub fn sysctl(&self, key: &Key) -> Option<&str> {
        self.sysctls
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    pub fn add(&mut self, link: Link) {
        if self.link_by_index(link.index).is_none() {
            self.links.push(link);
        }
    }
}
