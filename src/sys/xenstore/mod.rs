//! Xenstore wire protocol: the native client hotplug runs use.
//!
//! `wire` and `path` hold the framing and path rules the client shares with the lab's
//! test xenstored (`lab::xenstored`).

pub mod client;
pub mod error;
pub mod path;
mod sanitise;
pub mod transport;
pub mod wire;

pub use client::{Client, Transaction};
pub use error::{XsError, is_eagain, is_enoent};
pub use sanitise::sanitise_error_text;
