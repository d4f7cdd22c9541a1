//! SUSE's `/etc/sysconfig/network/` files as vif-route-ifup reads them
//! (`vifkit::input::sysconfig`): `parse_ifcfg`, `parse_routes` (the global `routes` and
//! an `ifroute-<dev>`), `parse_ndp_proxy` (global and per interface) and
//! `routes_for_device`, which picks the device's routes from both route files.
//!
//! Input: `DEV\0ifcfg-DEV\0routes\0ifroute-DEV\0ifndp-proxy`, any part may be missing. An
//! invalid DEV falls back to `xen1.0` (seed 2.1's device).

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vifkit::input::sysconfig::{
    Destination, RouteLine, RoutesFile, parse_ifcfg, parse_ndp_proxy, parse_routes,
    routes_for_device,
};
use vifkit::types::names::IfName;
use vifkit::types::prefix::Prefix;

mod common;

/// What `RouteLine` documents of itself, which the planners rely on.
fn check_line(line: &RouteLine) {
    if let Destination::Net {
        address,
        prefix_len,
    } = line.destination
    {
        assert!(prefix_len >= 1, "{line:?}: a Net destination of length 0");
        let prefix = Prefix::new(address, prefix_len);
        assert_eq!(
            prefix.len, prefix_len,
            "{line:?}: length beyond the family's width"
        );
        assert_eq!(prefix.network(), prefix, "{line:?}: host bits set");
    }
    assert!(
        line.gateway.is_none() || line.nexthops.is_empty(),
        "{line:?}: a gateway and nexthops"
    );
    if line.kind.is_reject() {
        assert!(
            line.interface.is_none() && line.gateway.is_none() && line.nexthops.is_empty(),
            "{line:?}: a reject route with a gateway or an interface"
        );
    }
    let _ = (line.family(), line.destination.to_string());
}

fuzz_target!(|data: &[u8]| {
    let parts = common::parts(data);
    let part = |i: usize| parts.get(i).map(String::as_str).unwrap_or("");
    let dev = IfName::new(part(0)).unwrap_or_else(|_| IfName::new("xen1.0").unwrap());
    let dir = Path::new("/etc/sysconfig/network");

    let ifcfg = parse_ifcfg(&dir.join(format!("ifcfg-{dev}")), part(1)).ok();
    for address in ifcfg.iter().flat_map(|ifcfg| &ifcfg.addresses) {
        let width = if address.address.is_ipv4() { 32 } else { 128 };
        assert!(
            address.prefix_len <= width,
            "{address:?}: length beyond the family's width"
        );
        assert!(
            address.broadcast.is_none() || address.address.is_ipv4(),
            "{address:?}: an IPv6 broadcast"
        );
    }
    let global = parse_routes(&dir.join("routes"), part(2), RoutesFile::Global);
    let ifroute = parse_routes(
        &dir.join(format!("ifroute-{dev}")),
        part(3),
        RoutesFile::Interface(dev.clone()),
    );
    if let (Ok(global), Ok(ifroute)) = (&global, &ifroute) {
        for line in global.iter().chain(ifroute) {
            check_line(line);
        }
        let picked = routes_for_device(&dev, ifcfg.as_ref(), global, ifroute);
        for line in &picked {
            check_line(line);
        }
    }
    let _ = parse_ndp_proxy(&dir.join("ifndp-proxy"), part(4), None);
    let _ = parse_ndp_proxy(&dir.join(format!("ifndp-proxy-{dev}")), part(4), Some(&dev));
});
