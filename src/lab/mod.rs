//! The lab: the demo's throwaway namespaces, the test xenstored, libxl's side of a hotplug
//! run and self-removing scratch directories, for `vifkit demo`, `vifkit xenstored` and the
//! tests. Not part of any hotplug binary.

pub mod demo;
pub mod libxl;
pub mod scratch;
pub mod xenstored;

pub use scratch::Scratch;
