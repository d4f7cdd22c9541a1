//! One module per interface to the kernel or a daemon: rtnetlink, nf_tables, conntrack,
//! sysctl, xenstore, the Open vSwitch database; and the run's deadline they all draw from.

pub mod conntrack;
pub mod deadline;
pub mod forward;
pub mod nfnl;
pub mod nft;
pub mod ovsdb;
pub mod rtnl;
pub mod sysctl;
pub mod xenstore;
