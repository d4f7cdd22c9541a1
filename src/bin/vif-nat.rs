//! Drop-in for Xen's `vif-nat`: routes the guest's private addresses to its vif and
//! masquerades them on the uplink, IPv6 included.

use std::process::ExitCode;

use vifkit::entry::{XenScript, xen_main};

fn main() -> ExitCode {
    xen_main(XenScript::Nat, "vif-nat")
}
