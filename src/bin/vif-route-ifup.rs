//! Drop-in for SUSE's `vif-route-ifup`: configures a routed vif from its own
//! `/etc/sysconfig/network` files (ifcfg, routes, ifroute, ifndp-proxy) without `ifup`.

use std::process::ExitCode;

use vifkit::entry::{XenScript, xen_main};

fn main() -> ExitCode {
    xen_main(XenScript::RouteIfup, "vif-route-ifup")
}
