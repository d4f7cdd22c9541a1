//! The lab: the demo's throwaway namespaces and the test xenstored, for `vifkit demo`,
//! `vifkit xenstored` and the tests. Not part of any hotplug binary.

pub mod demo;
pub mod xenstored;
