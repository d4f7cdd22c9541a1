//! libxl as a hotplug script sees it, for `vifkit demo` and the integration tests: the
//! backend and frontend keys it writes for a vif before it runs the script, the keys it
//! changes around `offline`, and the script's argv and environment (CONTRACT 2.1).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::sys::xenstore::Client;

/// A plain PATH instead of the caller's own environment, so a run cannot depend on how the
/// demo or the tests were started (libxl's children get the toolstack's environment,
/// whatever it is).
pub const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the scripts look for hooks: nowhere, so the host's own hooks never run.
pub const NO_HOOKS: &str = "/nonexistent";

/// A vif as the xl config line describes it and libxl hands it to the script.
#[derive(Clone, Debug)]
pub struct Vif {
    pub domid: u32,
    pub devid: u32,
    pub mac: &'static str,
    /// `bridge=`, written only when set (the routed scripts take none).
    pub bridge: Option<&'static str>,
    /// `script=` as libxl writes it and passes it in `script`: `/etc/xen/scripts/<binary>`.
    pub script: &'static str,
    /// The backend's `type`: `vif`, or `vif_ioemu` for an HVM guest's emulated NIC, whose
    /// tap libxl then names in `INTERFACE`.
    pub nic_type: &'static str,
    /// `vifname=`, written only when set: the name the script gives the netdev.
    pub vifname: Option<&'static str>,
}

impl Vif {
    /// libxl's defaults (script vif-bridge, bridge xenbr0), with a fixed Xen MAC.
    pub fn new(domid: u32, devid: u32) -> Vif {
        Vif {
            domid,
            devid,
            mac: "00:16:3e:10:10:10",
            bridge: Some("xenbr0"),
            script: "/etc/xen/scripts/vif-bridge",
            nic_type: "vif",
            vifname: None,
        }
    }

    /// The name netback gives the netdev, which libxl passes as `vif` even with `vifname`.
    pub fn kernel_name(&self) -> String {
        format!("vif{}.{}", self.domid, self.devid)
    }

    /// The netdev's name once the script's `online` is done.
    pub fn port_name(&self) -> String {
        self.vifname
            .map_or_else(|| self.kernel_name(), str::to_owned)
    }

    pub fn backend(&self) -> String {
        format!("/local/domain/0/backend/vif/{}/{}", self.domid, self.devid)
    }

    pub fn frontend(&self) -> String {
        format!("/local/domain/{}/device/vif/{}", self.domid, self.devid)
    }

    /// The script's file name, which is also the binary's.
    pub fn script_name(&self) -> &'static str {
        self.script.rsplit('/').next().unwrap_or(self.script)
    }

    /// Exactly the keys libxl writes before the hotplug run.
    pub fn keys(&self) -> Vec<(String, String)> {
        let (b, f) = (self.backend(), self.frontend());
        let (domid, devid) = (self.domid.to_string(), self.devid.to_string());
        let mut keys = vec![
            (format!("{b}/frontend"), f.clone()),
            (format!("{b}/frontend-id"), domid),
            (format!("{b}/online"), "1".to_owned()),
            (format!("{b}/state"), "2".to_owned()),
            (format!("{b}/script"), self.script.to_owned()),
            (format!("{b}/mac"), self.mac.to_owned()),
            (format!("{b}/handle"), devid.clone()),
            (format!("{b}/type"), self.nic_type.to_owned()),
            (format!("{b}/hotplug-status"), String::new()),
            (format!("{f}/backend"), b.clone()),
            (format!("{f}/backend-id"), "0".to_owned()),
            (format!("{f}/handle"), devid),
            (format!("{f}/mac"), self.mac.to_owned()),
            (format!("{f}/mtu"), "1500".to_owned()),
        ];
        if let Some(bridge) = self.bridge {
            keys.push((format!("{b}/bridge"), bridge.to_owned()));
        }
        if let Some(vifname) = self.vifname {
            keys.push((format!("{b}/vifname"), vifname.to_owned()));
        }
        keys
    }

    /// What libxl has written by the time it runs the script's `online`.
    pub fn write_keys(&self, xs: &mut Client) -> Result<()> {
        for (key, value) in self.keys() {
            xs.write(&key, &value)?;
        }
        Ok(())
    }

    /// libxl's detach up to the script run: online=0 and Closing, then what netback does
    /// (Closed, hotplug-status removed). The netdev is netback's to free, not libxl's.
    pub fn begin_detach(&self, xs: &mut Client) -> Result<()> {
        let b = self.backend();
        xs.write(&format!("{b}/online"), "0")?;
        xs.write(&format!("{b}/state"), "6")?;
        xs.rm(&format!("{b}/hotplug-status"))
    }

    /// libxl's last detach step: both directories go.
    pub fn forget(&self, xs: &mut Client) -> Result<()> {
        xs.rm(&self.backend())?;
        xs.rm(&self.frontend())
    }

    /// `binary ARGS` (libxl passes `online|offline type_if=vif`) in network namespace
    /// `netns`, on a clean environment with what libxl sets, the xenstore at `xenstored` and
    /// no hooks. Callers add to or override that environment with [`Command::env`].
    pub fn command(&self, netns: &str, binary: &Path, args: &[&str], xenstored: &Path) -> Command {
        let kernel_name = self.kernel_name();
        let mut command = Command::new(ip_binary());
        command
            .args(["netns", "exec", netns])
            .arg(binary)
            .args(args)
            .env_clear()
            .env("PATH", PATH)
            .env("XENSTORED_PATH", xenstored)
            .env("VIFKIT_HOOK_DIR", NO_HOOKS)
            .env("script", self.script)
            .env("XENBUS_TYPE", "vif")
            .env("XENBUS_BASE_PATH", "backend")
            .env(
                "XENBUS_PATH",
                format!("backend/vif/{}/{}", self.domid, self.devid),
            )
            .env("netdev", "");
        if self.nic_type == "vif_ioemu" {
            command.env("INTERFACE", format!("{kernel_name}-emu"));
        }
        command.env("vif", kernel_name);
        command
    }
}

/// `ip` as the caller's PATH finds it: [`Command`] looks a bare name up in the PATH it gives
/// the child, and a caller may well give the script a PATH without `ip` in it.
fn ip_binary() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("ip"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("ip"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bridged_vif_gets_libxls_keys_and_environment() {
        let mut vif = Vif::new(3, 1);
        vif.vifname = Some("xen3.1");
        let keys = vif.keys();
        let get = |k: &str| {
            keys.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let b = "/local/domain/0/backend/vif/3/1";
        assert_eq!(
            get(&format!("{b}/frontend")),
            Some("/local/domain/3/device/vif/1")
        );
        assert_eq!(get(&format!("{b}/bridge")), Some("xenbr0"));
        assert_eq!(get(&format!("{b}/vifname")), Some("xen3.1"));
        assert_eq!(get(&format!("{b}/hotplug-status")), Some(""));
        assert_eq!(vif.port_name(), "xen3.1");
        assert_eq!(vif.script_name(), "vif-bridge");

        let command = vif.command(
            "ns",
            Path::new("/bin/vif-bridge"),
            &["online"],
            Path::new("/s"),
        );
        let env: Vec<_> = command
            .get_envs()
            .map(|(k, v)| (k.to_str().unwrap(), v.unwrap().to_str().unwrap()))
            .collect();
        assert!(env.contains(&("XENBUS_PATH", "backend/vif/3/1")), "{env:?}");
        assert!(env.contains(&("vif", "vif3.1")), "{env:?}");
        assert!(!env.iter().any(|(k, _)| *k == "INTERFACE"), "{env:?}");
        let args: Vec<_> = command.get_args().map(|a| a.to_str().unwrap()).collect();
        assert!(command.get_program().to_str().unwrap().ends_with("ip"));
        assert_eq!(args, ["netns", "exec", "ns", "/bin/vif-bridge", "online"]);
    }
}
