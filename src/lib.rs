//! vifkit: Xen and KVM network hotplug, planned as data and applied over netlink.

pub mod admin;
pub mod apply;
pub mod backend;
pub mod bridge_word;
pub mod config;
pub mod conntrack;
pub mod demo;
pub mod firewall;
pub mod hooks;
pub mod hotplug;
pub mod invocation;
pub mod kernel;
pub mod logging;
pub mod mac;
pub mod modes;
pub mod names;
pub mod netlink;
pub mod nfnl;
pub mod ovsdb;
pub mod plan;
pub mod route;
pub mod sysconfig;
pub mod sysctl;
pub mod system;
pub mod vlan;
pub mod xenstore;
