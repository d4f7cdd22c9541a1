//! Plain values every layer shares: parsed once at the boundary, never re-parsed.

pub mod bridge_word;
pub mod guest_traffic;
pub mod hook;
pub mod link;
pub mod mac;
pub mod names;
pub mod port;
pub mod prefix;
pub mod route;
pub mod vlan;
pub mod xen_vlan;
