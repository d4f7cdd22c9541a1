//! Xenstore wire protocol: a native client and a small test server.
//!
//! `wire` and `path` hold the framing and path rules both sides share;
//! `client` is what hotplug runs use; `server` (over `store` and `tree`)
//! stands in for xenstored where no Xen hypervisor runs.

pub mod client;
pub mod error;
pub mod path;
mod sanitise;
pub mod server;
mod store;
pub mod transport;
mod tree;
pub mod wire;

pub use client::{Client, Transaction};
pub use error::{XsError, is_eagain, is_enoent};
pub use sanitise::sanitise_error_text;
pub use server::Server;
