//! One module per interface to the kernel or a daemon: rtnetlink (requests and its
//! notifications), nf_tables, conntrack, sysctl, xenstore, the Open vSwitch database, the run
//! directory shared with `vifkit watch`, other processes in `/proc`; and the run's deadline
//! they all draw from.

pub mod conntrack;
pub mod deadline;
pub mod events;
pub mod forward;
pub mod nfnl;
pub mod nft;
pub mod ovsdb;
pub mod process;
pub mod rtnl;
pub mod rundir;
pub mod sysctl;
pub mod xenstore;
