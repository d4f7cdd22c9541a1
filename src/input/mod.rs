//! What a run is told: the caller's argv and environment, the backend's xenstore keys,
//! `vifkit.conf` and the sysconfig files, each parsed into typed values.

pub mod backend;
pub mod config;
pub mod invocation;
pub mod sysconfig;
pub mod xen_port;
