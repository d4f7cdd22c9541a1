//! Drop-in for Xen's `vif-route`, with IPv6: routes the guest's addresses to its vif.

use std::process::ExitCode;

use vifkit::entry::{XenScript, xen_main};

fn main() -> ExitCode {
    xen_main(XenScript::Route, "vif-route")
}
