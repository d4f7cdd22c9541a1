//! A snapshot of the kernel objects a planner looks at, so planners stay pure.

use crate::netlink::Link;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub links: Vec<Link>,
    /// `(link name, basename of /sys/class/net/<name>/device)` for links that have one:
    /// a netback vif's device is `vif-<domid>-<devid>`.
    pub devices: Vec<(String, String)>,
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

    pub fn add(&mut self, link: Link) {
        if self.link_by_index(link.index).is_none() {
            self.links.push(link);
        }
    }
}
