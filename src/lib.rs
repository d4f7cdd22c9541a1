//! vifkit: Xen and KVM network hotplug, planned as data and applied over netlink.
//!
//! The layers, lowest first (ARCHITECTURE.md): `types` (values), `sys` (one module per
//! kernel or daemon interface), `input` (argv, env, xenstore keys and config files parsed
//! into typed values), `planning` (pure: a snapshot in, a `Plan` out), `apply` (runs a
//! plan), `entry` (the binaries' mains and the one error reporter), and `lab` (the demo
//! and the test xenstored, behind the `lab` feature). A layer only uses those below it.

pub mod apply;
pub mod entry;
pub mod input;
#[cfg(feature = "lab")]
pub mod lab;
pub mod planning;
pub mod sys;
pub mod types;
