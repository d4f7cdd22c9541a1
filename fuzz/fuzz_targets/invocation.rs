//! How the binaries are called. A vif script: argv and environment as libxl, `xl devd` or
//! the legacy udev rules pass them (`vifkit::input::invocation::parse_xen_call`,
//! `vif_from_backend_path` on `XENBUS_PATH`, and `report_path`: where a failed attach is
//! reported). qemu-ifup/qemu-ifdown: `IFNAME [BRIDGE]` and `VIFKIT_BRIDGE`, as their
//! private `parse_args` reads them (`IfName::new`), then the pure choice of what to do with
//! the tap (`planning::modes::qemu::choose_up`, `choose_down`).
//!
//! Input: NUL-separated parts; `$KEY=VALUE` parts are the environment, the others argv.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vifkit::input::invocation::{
    Parsed, TypeIf, parse_xen_call, report_path, vif_from_backend_path,
};
use vifkit::planning::modes::qemu::{BridgeSources, choose_down, choose_up};
use vifkit::types::names::{IfName, VifId};

mod common;

fuzz_target!(|data: &[u8]| {
    let call = common::Call::from_parts(common::parts(data));

    if let Ok(Parsed::Run(xen)) = parse_xen_call(&call.args, &|key| call.env(key)) {
        // What the rest of a run takes for granted: the backend path names the device.
        assert_eq!(
            vif_from_backend_path(&xen.backend).ok(),
            Some(xen.vif),
            "{xen:?}"
        );
        if xen.type_if == TypeIf::Tap && call.env("XENBUS_PATH").is_none_or(|p| p.is_empty()) {
            assert_eq!(
                VifId::from_tap_name(&xen.dev).ok(),
                Some(xen.vif),
                "{xen:?}"
            );
        }
        assert!(IfName::new(xen.dev.as_str()).is_ok());
    }
    // Where a failed attach is reported: only ever a vif backend's XENBUS_PATH.
    if let Some(path) = report_path(&call.args, &|key| call.env(key)) {
        assert_eq!(call.env("XENBUS_PATH").as_ref(), Some(&path));
        assert!(vif_from_backend_path(&path).is_ok(), "{path:?}");
    }

    let (tap, argument) = match call.args.as_slice() {
        [tap] => (tap, None),
        [tap, bridge] => (tap, Some(bridge.as_str())),
        _ => return,
    };
    let Ok(tap) = IfName::new(tap) else {
        return;
    };
    let env = call.env("VIFKIT_BRIDGE");
    let sources = BridgeSources {
        argument,
        env: env.as_deref(),
        rule: None,
        config_path: Path::new("/etc/vifkit/vifkit.conf"),
    };
    let _ = choose_up(&tap, &sources);
    let _ = choose_down(&sources);
});
