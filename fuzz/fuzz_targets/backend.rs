//! A vif's backend keys as xenstore holds them, arbitrary strings from the toolstack
//! (`vifkit::input::backend::Backend::parse`), and what a run then derives from them:
//! `XenPort::new` (names, `-emu`), `bridge_word` (`BridgeWord::parse`), `xen_vlan`
//! (`XenVlan::parse` of `B/vlan`) and the hooks' environment (`hook_run`).
//!
//! Input: NUL-separated parts; `B/KEY=VALUE` parts are backend keys (`bridge`, `mtu`,
//! `frontend`, `frontend-id`, `handle`, `vifname`, `type`, `ip`, `mac`, `vlan`), `$KEY=VALUE`
//! parts the environment, the others argv. When argv and environment make no call, the
//! call is libxl's `online` of `vif1.0`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vifkit::input::backend::{Backend, BackendKeys, parse_ip_list};
use vifkit::input::invocation::{Parsed, XenCall, parse_xen_call};
use vifkit::input::xen_port::XenPort;
use vifkit::types::mac::MacAddr;

mod common;

fn libxl_online() -> XenCall {
    let env = |key: &str| match key {
        "XENBUS_PATH" => Some("backend/vif/1/0".to_owned()),
        "vif" => Some("vif1.0".to_owned()),
        "script" => Some("/etc/xen/scripts/vif-bridge".to_owned()),
        _ => None,
    };
    match parse_xen_call(&["online".to_owned(), "type_if=vif".to_owned()], &env) {
        Ok(Parsed::Run(call)) => call,
        other => panic!("libxl's own call: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let input = common::Call::from_parts(common::parts(data));
    let call = match parse_xen_call(&input.args, &|key| input.env(key)) {
        Ok(Parsed::Run(call)) => call,
        _ => libxl_online(),
    };
    let key = |name: &str| input.keys.get(name).cloned();
    let keys = BackendKeys {
        bridge: key("bridge"),
        mtu: key("mtu"),
        frontend: key("frontend"),
        frontend_id: key("frontend-id"),
        handle: key("handle"),
        vifname: key("vifname"),
        nic_type: key("type"),
        ip: key("ip"),
        mac: key("mac"),
        vlan: key("vlan"),
    };
    let Ok(backend) = Backend::parse(&call, keys) else {
        return;
    };
    if let Some(mtu) = backend.mtu {
        assert!((68..=65535).contains(&mtu), "{backend:?}: MTU out of range");
    }
    // What is parsed prints back to what parses to the same value (logs, hooks, plans).
    if let Some(mac) = backend.mac {
        assert_eq!(MacAddr::parse(&mac.to_string()).ok(), Some(mac), "{mac:?}");
    }
    let printed: Vec<String> = backend.addresses.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        parse_ip_list(&printed.join(" ")).ok().as_ref(),
        Some(&backend.addresses),
        "{printed:?}"
    );
    let _ = backend.bridge_word(&call);
    let Ok(port) = XenPort::new(call, backend) else {
        return;
    };
    if port.is_attach()
        && let Some(mac) = port.mac
    {
        assert!(
            mac.check_guest().is_ok(),
            "an attach took {mac}, no guest's MAC"
        );
    }
    let _ = port.bridge_word();
    if let Ok(Some(vlan)) = port.xen_vlan() {
        // As XenVlan documents itself: members sorted, the PVID apart from them.
        let sorted_apart = |vids: &[_]| vids.is_sorted() && !vids.contains(&vlan.pvid);
        assert!(sorted_apart(&vlan.tagged), "{vlan:?}");
        assert!(sorted_apart(&vlan.untagged), "{vlan:?}");
        assert!(
            !vlan.tagged.iter().any(|v| vlan.untagged.contains(v)),
            "{vlan:?}"
        );
        let _ = vlan.vlans();
    }
    let _ = port.hook_run("xenbr0", "192.0.2.1");
});
