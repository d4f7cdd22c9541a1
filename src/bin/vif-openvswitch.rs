//! Drop-in for Xen's `vif-openvswitch`: adds a guest's vif or emulated tap to an Open vSwitch
//! bridge (`bridge[.tag][:trunk...]`) through OVSDB, without ovs-vsctl.

use std::process::ExitCode;

use vifkit::entry::{XenScript, xen_main};

fn main() -> ExitCode {
    xen_main(XenScript::OpenVswitch, "vif-openvswitch")
}
