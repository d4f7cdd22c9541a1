//! A Xen port, resolved once from libxl's call and the backend's keys: every mode plans
//! from this one value instead of re-deriving names and settings from the pair.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::input::backend::Backend;
use crate::input::invocation::{Command, TypeIf, XenCall};
use crate::sys::xenstore::Client;
use crate::types::bridge_word::{BadWord, BridgeWord, GivenBridge};
use crate::types::hook::HookRun;
use crate::types::mac::MacAddr;
use crate::types::names::{IfName, VifId};
use crate::types::prefix::Prefix;
use crate::types::xen_vlan::XenVlan;

/// Where upstream's hooks live; `VIFKIT_HOOK_DIR` moves it (tests, the demo).
pub const DEFAULT_HOOK_DIR: &str = "/etc/xen/scripts/vif-post.d";

/// The hook directory, when there is one.
pub fn hook_dir_from_env() -> Option<PathBuf> {
    let dir = std::env::var_os("VIFKIT_HOOK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_HOOK_DIR));
    dir.is_dir().then_some(dir)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XenPort {
    pub command: Command,
    pub type_if: TypeIf,
    pub vif: VifId,
    /// The name the kernel gave the device (`vif3.0`, `vif3.0-emu`).
    pub kernel_name: IfName,
    /// The name it ends up with: `vifname` (plus `-emu` for a tap), else the kernel name.
    pub name: IfName,
    /// `vifname` was set: the device is renamed (or was, by an earlier run).
    pub has_vifname: bool,
    /// The backend directory (`XENBUS_PATH`).
    pub backend: String,
    /// The bridge word as given and where: `B/bridge`, else the `bridge=` argument or
    /// variable.
    pub bridge: Option<GivenBridge>,
    /// `B/vlan` as written: the port's VLANs (bridged modes; see `xen_vlan`).
    pub vlan: Option<String>,
    /// The uplink named by `netdev=` (routed and NAT modes).
    pub netdev: Option<String>,
    /// `B/mtu`: the port's MTU, as the guest is told it.
    pub mtu: Option<u32>,
    /// `<B/frontend>/mtu`, once the frontend path is proven to be this device's.
    pub frontend_mtu_key: Option<String>,
    /// What that key holds now (read on attach only).
    pub frontend_mtu: Option<String>,
    /// `B/mac`: the guest's MAC.
    pub mac: Option<MacAddr>,
    /// The guest's addresses from `ip`, each with its prefix length.
    pub addresses: Vec<Prefix>,
    /// vif-nat's `dhcp=` word (it edits no dhcpd.conf; logged).
    pub dhcp: Option<String>,
    /// Run by the legacy udev rules, which honour `libxl/disable_udev`.
    pub udev: bool,
    /// What hooks are told, and where they are (None: no hook directory).
    pub hooks: Option<HookEnv>,
}

/// The hook variables common to every mode (CONTRACT 4.7); modes add `bridge` and `main_ip`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookEnv {
    pub dir: PathBuf,
    /// The raw `ip` setting, as upstream's hooks read it.
    pub ip: String,
    pub script: String,
}

impl XenPort {
    /// Fails when the caller's device name (`vif`, `INTERFACE`) is not this backend's,
    /// before anything is planned: see `XenCall::check_dev`.
    pub fn new(call: XenCall, backend: Backend) -> Result<XenPort> {
        call.check_dev(backend.vifname.as_ref())?;
        let name = match (&backend.vifname, call.type_if) {
            (None, _) => call.dev.clone(),
            (Some(name), TypeIf::Vif) => name.clone(),
            (Some(name), TypeIf::Tap) => name.emu()?,
        };
        let ip = backend.ip.clone().or(call.overrides.ip.clone());
        let bridge = backend.given_bridge(&call);
        Ok(XenPort {
            command: call.command,
            type_if: call.type_if,
            vif: call.vif,
            kernel_name: call.dev,
            name,
            has_vifname: backend.vifname.is_some(),
            bridge,
            vlan: backend.vlan,
            netdev: call.overrides.netdev.filter(|n| !n.is_empty()),
            backend: backend.path,
            mtu: backend.mtu,
            frontend_mtu_key: backend.frontend_mtu_key,
            frontend_mtu: None,
            mac: backend.mac,
            addresses: backend.addresses,
            dhcp: call.overrides.dhcp,
            udev: call.udev,
            hooks: Some(HookEnv {
                dir: PathBuf::new(),
                ip: ip.unwrap_or_default(),
                script: call.script.unwrap_or_default(),
            }),
        })
    }

    /// Hooks run from `dir` when it is Some; without one the plan runs none.
    pub fn with_hook_dir(mut self, dir: Option<PathBuf>) -> XenPort {
        self.hooks = match (dir, self.hooks.take()) {
            (Some(dir), Some(env)) => Some(HookEnv { dir, ..env }),
            _ => None,
        };
        self
    }

    /// Reads what the frontend's `mtu` key holds, so the write is planned only to change it.
    pub fn read_frontend_mtu(&mut self, xs: &mut Client) -> Result<()> {
        if let Some(key) = &self.frontend_mtu_key {
            self.frontend_mtu = xs.read_optional(key)?;
        }
        Ok(())
    }

    pub fn is_attach(&self) -> bool {
        self.command.is_attach()
    }

    /// The bridge word, parsed when a bridged mode asks: a bad one fails only them.
    pub fn bridge_word(&self) -> Option<Result<BridgeWord, BadWord>> {
        self.bridge.as_ref().map(GivenBridge::word)
    }

    /// The bridge word as given (hooks see it so), or empty.
    pub fn bridge_text(&self) -> &str {
        self.bridge.as_ref().map_or("", |given| given.text.as_str())
    }

    /// `B/vlan`, parsed when a bridged mode attaches: a bad one fails only that, not a
    /// detach nor a mode that has no use for it.
    pub fn xen_vlan(&self) -> Result<Option<XenVlan>> {
        let parse = |text: &str| XenVlan::parse(text.trim());
        let context = || format!("{}/vlan", self.backend);
        self.vlan
            .as_deref()
            .map(parse)
            .transpose()
            .with_context(context)
    }

    /// The hook run for this port, with the mode's `bridge` and `main_ip`.
    pub fn hook_run(&self, bridge: &str, main_ip: &str) -> Option<HookRun> {
        let env = self.hooks.as_ref()?;
        let vif = match self.type_if {
            TypeIf::Vif => self.kernel_name.to_string(),
            TypeIf::Tap => self.vif.kernel_name().to_string(),
        };
        Some(HookRun {
            dir: env.dir.clone(),
            vars: vec![
                ("command", self.command.to_string()),
                ("dev", self.name.to_string()),
                ("vif", vif),
                ("type_if", self.type_if.to_string()),
                ("ip", env.ip.clone()),
                ("main_ip", main_ip.to_owned()),
                ("XENBUS_PATH", self.backend.clone()),
                ("bridge", bridge.to_owned()),
                ("script", env.script.clone()),
            ],
        })
    }
}

#[cfg(test)]
impl XenPort {
    /// For the planners' unit tests: the port a call and its backend resolve to, no hooks.
    pub fn for_test(call: &XenCall, backend: &Backend) -> XenPort {
        XenPort::new(call.clone(), backend.clone())
            .unwrap()
            .with_hook_dir(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::invocation::Overrides;
    use crate::types::bridge_word::BridgeOrigin;

    fn backend() -> Backend {
        Backend {
            path: "backend/vif/3/0".into(),
            bridge: None,
            mtu: None,
            vifname: None,
            frontend_mtu_key: None,
            ip: None,
            addresses: vec![],
            mac: None,
            vlan: None,
        }
    }

    #[test]
    fn the_final_name_is_resolved_once_for_vifs_and_taps() {
        let call = XenCall::for_test(Command::Online, 3, 0);
        assert_eq!(XenPort::for_test(&call, &backend()).name.as_str(), "vif3.0");
        let named = Backend {
            vifname: Some(IfName::new("web").unwrap()),
            ..backend()
        };
        let port = XenPort::for_test(&call, &named);
        assert_eq!(
            (port.name.as_str(), port.kernel_name.as_str()),
            ("web", "vif3.0")
        );
        let tap = XenCall {
            type_if: TypeIf::Tap,
            dev: IfName::new("vif3.0-emu").unwrap(),
            ..call
        };
        assert_eq!(XenPort::for_test(&tap, &named).name.as_str(), "web-emu");
    }

    #[test]
    fn the_callers_device_must_be_the_backends() {
        let call = XenCall {
            dev: IfName::new("eth0").unwrap(),
            ..XenCall::for_test(Command::Online, 3, 0)
        };
        assert_eq!(
            XenPort::new(call.clone(), backend())
                .unwrap_err()
                .to_string(),
            "vif=eth0 is not the device of backend/vif/3/0: expected vif3.0"
        );
        let named = Backend {
            vifname: Some(IfName::new("web").unwrap()),
            ..backend()
        };
        assert_eq!(
            XenPort::new(call, named.clone()).unwrap_err().to_string(),
            "vif=eth0 is not the device of backend/vif/3/0: expected vif3.0 or web"
        );
        // netback's uevent names the device as it is now: renamed by an earlier online.
        let renamed = XenCall {
            dev: IfName::new("web").unwrap(),
            udev: true,
            ..XenCall::for_test(Command::Offline, 3, 0)
        };
        let port = XenPort::new(renamed, named).unwrap();
        assert_eq!(port.name.as_str(), "web");
    }

    #[test]
    fn b_vlan_is_parsed_when_asked_and_a_bad_one_names_the_key() {
        let call = XenCall::for_test(Command::Online, 3, 0);
        let port = |vlan: &str| {
            let b = Backend {
                vlan: Some(vlan.into()),
                ..backend()
            };
            XenPort::for_test(&call, &b)
        };
        assert_eq!(
            XenPort::for_test(&call, &backend()).xen_vlan().unwrap(),
            None
        );
        let vlan = port("10p/20/30u").xen_vlan().unwrap().unwrap();
        assert_eq!(
            vlan.vlans().to_string(),
            "vlan 10 untagged, trunks 20, untagged 30"
        );
        assert_eq!(
            format!("{:#}", port("10/20").xen_vlan().unwrap_err()),
            "backend/vif/3/0/vlan: no PVID in \"10/20\": mark one VLAN with p, as in 10p/20"
        );
    }

    #[test]
    fn the_backend_wins_over_the_callers_words_and_hooks_see_both() {
        let call = XenCall {
            overrides: Overrides {
                bridge: Some(GivenBridge::new("xenbr1", BridgeOrigin::XenArgument)),
                netdev: Some(String::new()),
                ip: Some("192.0.2.9".into()),
                dhcp: None,
            },
            script: Some("/etc/xen/scripts/vif-bridge".into()),
            ..XenCall::for_test(Command::Online, 3, 0)
        };
        let port = XenPort::new(call.clone(), backend()).unwrap();
        assert_eq!(
            port.bridge,
            Some(GivenBridge::new("xenbr1", BridgeOrigin::XenArgument))
        );
        assert_eq!(port.netdev, None, "an empty netdev= names no uplink");
        let with_key = Backend {
            bridge: Some("xenbr0".into()),
            ip: Some("192.0.2.10".into()),
            ..backend()
        };
        let port = XenPort::new(call.clone(), with_key)
            .unwrap()
            .with_hook_dir(Some("/etc/xen/scripts/vif-post.d".into()));
        let key = BridgeOrigin::Xenstore("backend/vif/3/0/bridge".into());
        assert_eq!(port.bridge, Some(GivenBridge::new("xenbr0", key)));
        assert_eq!(port.bridge_text(), "xenbr0");
        let run = port.hook_run("xenbr0", "").unwrap();
        let var = |name| run.vars.iter().find(|(k, _)| *k == name).unwrap().1.clone();
        assert_eq!(var("ip"), "192.0.2.10");
        assert_eq!(var("script"), "/etc/xen/scripts/vif-bridge");
        assert_eq!(var("bridge"), "xenbr0");
        let without = XenPort::new(call, backend()).unwrap().with_hook_dir(None);
        assert_eq!(without.hook_run("xenbr0", ""), None);
    }
}
