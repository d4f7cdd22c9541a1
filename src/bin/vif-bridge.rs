//! Drop-in for Xen's `vif-bridge`: attaches a guest's vif or emulated tap to a Linux bridge.

use std::process::ExitCode;

use vifkit::entry::{XenScript, xen_main};

fn main() -> ExitCode {
    xen_main(XenScript::Bridge, "vif-bridge")
}
