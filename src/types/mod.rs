//! Plain values every layer shares: parsed once at the boundary, never re-parsed.

pub mod bridge_word;
pub mod mac;
pub mod names;
pub mod route;
pub mod vlan;
