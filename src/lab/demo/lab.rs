//! The demo's test bench: a private xenstore, dom0 namespaces, and guests whose vifs are
//! plugged by the real `vif-bridge` or `vif-route-ifup` binary the way libxl runs it
//! (CONTRACT 1.1, 2.1).

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::netns::{Netns, cmd};
use crate::lab::xenstored::Server;
use crate::sys::xenstore::Client;

/// A plain PATH instead of the demo's own environment, so a run cannot depend on how the
/// demo was started (libxl's children get the toolstack's environment, whatever it is).
pub const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
/// What netback names every backend netdev's MAC, and what the scripts must leave on it.
pub const BACKEND_MAC: &str = "fe:ff:ff:ff:ff:ff";
/// The binaries the demo runs; cargo builds them all next to `vifkit`.
const BINARIES: [&str; 5] = [
    "vif-bridge",
    "vif-route-ifup",
    "vif-nat",
    "qemu-ifup",
    "qemu-ifdown",
];

/// How libxl attaches the vif: the xl config's `script=` (and `bridge=`).
#[derive(Clone, Copy)]
pub enum Script {
    Bridge(&'static str),
    RouteIfup,
    Nat,
}

impl Script {
    pub fn binary(self) -> &'static str {
        match self {
            Script::Bridge(_) => "vif-bridge",
            Script::RouteIfup => "vif-route-ifup",
            Script::Nat => "vif-nat",
        }
    }
}

/// A guest NIC as the xl config line describes it, and the guest-side addresses.
pub struct Guest {
    pub name: &'static str,
    pub domid: u32,
    pub devid: u32,
    pub mac: &'static str,
    pub script: Script,
    pub vifname: Option<&'static str>,
    pub ipv4: &'static str,
    pub ipv6: Option<&'static str>,
    /// Default gateway inside the guest; with it a host-only guest at least tries the LAN.
    pub gateway: Option<&'static str>,
}

impl Guest {
    /// The name netback gives the netdev, which libxl passes as `vif` even with `vifname`.
    pub fn kernel_name(&self) -> String {
        format!("vif{}.{}", self.domid, self.devid)
    }

    /// The netdev's name once the script's `online` is done.
    pub fn port_name(&self) -> String {
        self.vifname
            .map_or_else(|| self.kernel_name(), str::to_owned)
    }

    pub fn bridge(&self) -> Option<&'static str> {
        match self.script {
            Script::Bridge(bridge) => Some(bridge),
            Script::RouteIfup | Script::Nat => None,
        }
    }

    pub fn backend(&self) -> String {
        format!("/local/domain/0/backend/vif/{}/{}", self.domid, self.devid)
    }

    pub fn frontend(&self) -> String {
        format!("/local/domain/{}/device/vif/{}", self.domid, self.devid)
    }
}

/// Deletes the scratch directory (and with it the xenstore socket) on drop.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The private xenstore, a scratch directory, and where the binaries live.
pub struct Lab {
    pub prefix: String,
    bin_dir: PathBuf,
    socket: PathBuf,
    scratch: ScratchDir,
}

/// The result of one hotplug run.
pub struct Run {
    pub ok: bool,
    pub took: Duration,
    pub stderr: String,
}

impl Lab {
    pub fn new() -> Result<Lab> {
        let bin_dir = find_bin_dir()?;
        let prefix = format!("vkdemo{}", std::process::id());
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let scratch = ScratchDir(dir);
        let socket = scratch.0.join("xenstored.socket");
        // The server thread lives until the demo exits; nothing else connects to its socket.
        Server::bind(&socket)?.spawn();
        Ok(Lab {
            prefix,
            bin_dir,
            socket,
            scratch,
        })
    }

    pub fn netns(&self, tag: &str) -> Result<Netns> {
        Netns::new(format!("{}-{tag}", self.prefix))
    }

    /// A dom0 of its own: each scenario's host has a different network setup.
    pub fn dom0(&self, tag: &str) -> Result<Dom0<'_>> {
        Ok(Dom0 {
            lab: self,
            ns: self.netns(tag)?,
            env: Vec::new(),
        })
    }

    /// Where the demo may put files; removed with everything else.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.scratch.0.join(name)
    }

    pub fn binary(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    pub fn xenstore(&self) -> Result<Client> {
        Client::connect_path(&self.socket)
    }

    pub fn read(&self, path: &str) -> Result<Option<String>> {
        self.xenstore()?.read_optional(path)
    }
}

/// A dom0 namespace: where netback's vifs appear and where libxl runs the scripts.
pub struct Dom0<'a> {
    pub lab: &'a Lab,
    ns: Netns,
    /// Extra environment for the scripts, e.g. `VIFKIT_SYSCONFIG_DIR`.
    pub env: Vec<(&'static str, String)>,
}

impl Deref for Dom0<'_> {
    type Target = Netns;

    fn deref(&self) -> &Netns {
        &self.ns
    }
}

impl Dom0<'_> {
    /// What netback and libxl have done by the time libxl runs the script's `online`: the
    /// netdev exists (a veth here, its far end is the guest's eth0) and the backend and
    /// frontend keys are written. Returns the guest's namespace.
    pub fn create_guest(&self, guest: &Guest) -> Result<Netns> {
        let ns = self.lab.netns(guest.name)?;
        let vif = guest.kernel_name();
        self.veth(&vif, "eth0", &ns)?;
        if !matches!(guest.script, Script::Bridge(_)) {
            // vif-bridge sets netback's MAC itself; the routed scripts keep what netback gave.
            self.ipw(&format!("link set {vif} address {BACKEND_MAC}"))?;
        }
        // Link-local addresses are what host-only guests talk over (seed 1.2); without DAD
        // they are usable at once instead of after a second or two.
        ns.sysctl("net.ipv6.conf.eth0.accept_dad", "0")?;
        ns.ip(&["link", "set", "eth0", "address", guest.mac, "up"])?;
        ns.ip(&["addr", "add", guest.ipv4, "dev", "eth0"])?;
        if let Some(ipv6) = guest.ipv6 {
            ns.ip(&["addr", "add", ipv6, "dev", "eth0", "nodad"])?;
        }
        if let Some(gateway) = guest.gateway {
            ns.ip(&["route", "add", "default", "via", gateway])?;
        }
        self.write_keys(guest)?;
        Ok(ns)
    }

    /// Exactly the keys libxl writes before the hotplug run (CONTRACT 2.1).
    fn write_keys(&self, guest: &Guest) -> Result<()> {
        let (b, f) = (guest.backend(), guest.frontend());
        let (domid, devid) = (guest.domid.to_string(), guest.devid.to_string());
        let script = format!("/etc/xen/scripts/{}", guest.script.binary());
        let mut keys = vec![
            (format!("{b}/frontend"), f.as_str()),
            (format!("{b}/frontend-id"), &domid),
            (format!("{b}/online"), "1"),
            (format!("{b}/state"), "2"),
            (format!("{b}/script"), &script),
            (format!("{b}/mac"), guest.mac),
            (format!("{b}/handle"), &devid),
            (format!("{b}/type"), "vif"),
            (format!("{b}/hotplug-status"), ""),
            (format!("{f}/backend"), b.as_str()),
            (format!("{f}/backend-id"), "0"),
            (format!("{f}/handle"), &devid),
            (format!("{f}/mac"), guest.mac),
            (format!("{f}/mtu"), "1500"),
        ];
        if let Some(bridge) = guest.bridge() {
            keys.push((format!("{b}/bridge"), bridge));
        }
        if let Some(vifname) = guest.vifname {
            keys.push((format!("{b}/vifname"), vifname));
        }
        let mut xs = self.lab.xenstore()?;
        for (key, value) in keys {
            xs.write(&key, value)?;
        }
        Ok(())
    }

    /// libxl's detach up to the script run: online=0 and Closing, then what netback does
    /// (Closed, hotplug-status removed). The netdev stays: no netback here frees it.
    pub fn begin_detach(&self, guest: &Guest) -> Result<()> {
        let b = guest.backend();
        let mut xs = self.lab.xenstore()?;
        xs.write(&format!("{b}/online"), "0")?;
        xs.write(&format!("{b}/state"), "6")?;
        xs.rm(&format!("{b}/hotplug-status"))
    }

    /// libxl's last detach step.
    pub fn forget(&self, guest: &Guest) -> Result<()> {
        let mut xs = self.lab.xenstore()?;
        xs.rm(&guest.backend())?;
        xs.rm(&guest.frontend())
    }

    /// `<script> online|offline type_if=vif` in this namespace, with the environment libxl
    /// gives it on a clean slate. The time includes `ip netns exec`.
    pub fn hotplug(&self, guest: &Guest, command: &str) -> Result<Run> {
        let script = guest.script.binary();
        let mut run = self.exec(self.lab.binary(script));
        run.args([command, "type_if=vif"])
            .env_clear()
            .env("PATH", PATH)
            .env("XENSTORED_PATH", &self.lab.socket)
            .env("VIFKIT_HOOK_DIR", self.lab.scratch("no-hooks"))
            .env("script", format!("/etc/xen/scripts/{script}"))
            .env("XENBUS_TYPE", "vif")
            .env("XENBUS_BASE_PATH", "backend")
            .env(
                "XENBUS_PATH",
                format!("backend/vif/{}/{}", guest.domid, guest.devid),
            )
            .env("netdev", "")
            .env("vif", guest.kernel_name())
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        timed(&mut run)
    }
}

fn timed(command: &mut Command) -> Result<Run> {
    let start = Instant::now();
    let out = cmd(command)?;
    Ok(Run {
        ok: out.status.success(),
        took: start.elapsed(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The directory of the running `vifkit`, where cargo and the packages install the scripts.
fn find_bin_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("find the running executable")?;
    let dir = exe.parent().context("the executable has no directory")?;
    for name in BINARIES {
        let path = dir.join(name);
        if !Path::new(&path).is_file() {
            bail!(
                "{} not found: the demo runs the {name} binary installed next to vifkit (cargo build builds it)",
                path.display()
            );
        }
    }
    Ok(dir.to_owned())
}
