//! vifkit: Xen and KVM network hotplug, planned as data and applied over netlink.

pub mod xenstore;
