//! The demo's test bench: a private xenstore, dom0 namespaces, and guests whose vifs are
//! plugged by the real `vif-bridge` or `vif-route-ifup` binary the way libxl runs it
//! (CONTRACT 1.1, 2.1).

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::netns::{Netns, cmd};
use crate::lab::Scratch;
pub use crate::lab::libxl::PATH;
use crate::lab::libxl::Vif;
use crate::lab::xenstored::Server;
use crate::sys::xenstore::Client;

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

    /// What libxl writes to the backend's `script` and passes in `script`.
    pub fn path(self) -> &'static str {
        match self {
            Script::Bridge(_) => "/etc/xen/scripts/vif-bridge",
            Script::RouteIfup => "/etc/xen/scripts/vif-route-ifup",
            Script::Nat => "/etc/xen/scripts/vif-nat",
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
    /// The vif as libxl describes it to the script.
    pub fn vif(&self) -> Vif {
        Vif {
            domid: self.domid,
            devid: self.devid,
            mac: self.mac,
            bridge: self.bridge(),
            script: self.script.path(),
            nic_type: "vif",
            vifname: self.vifname,
        }
    }

    pub fn kernel_name(&self) -> String {
        self.vif().kernel_name()
    }

    pub fn port_name(&self) -> String {
        self.vif().port_name()
    }

    pub fn bridge(&self) -> Option<&'static str> {
        match self.script {
            Script::Bridge(bridge) => Some(bridge),
            Script::RouteIfup | Script::Nat => None,
        }
    }

    pub fn backend(&self) -> String {
        self.vif().backend()
    }

    pub fn frontend(&self) -> String {
        self.vif().frontend()
    }
}

/// The private xenstore, a scratch directory, and where the binaries live.
pub struct Lab {
    pub prefix: String,
    bin_dir: PathBuf,
    socket: PathBuf,
    scratch: Scratch,
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
        let scratch =
            Scratch::at(dir.clone()).with_context(|| format!("create {}", dir.display()))?;
        let socket = scratch.join("xenstored.socket");
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
        self.scratch.join(name)
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
        guest.vif().write_keys(&mut self.lab.xenstore()?)?;
        Ok(ns)
    }

    /// libxl's detach up to the script run (the netdev stays: no netback here frees it).
    pub fn begin_detach(&self, guest: &Guest) -> Result<()> {
        guest.vif().begin_detach(&mut self.lab.xenstore()?)
    }

    /// libxl's last detach step.
    pub fn forget(&self, guest: &Guest) -> Result<()> {
        guest.vif().forget(&mut self.lab.xenstore()?)
    }

    /// `<script> online|offline type_if=vif` in this namespace, as libxl runs it. The time
    /// includes `ip netns exec`.
    pub fn hotplug(&self, guest: &Guest, command: &str) -> Result<Run> {
        let vif = guest.vif();
        let binary = self.lab.binary(vif.script_name());
        let mut run = vif.command(
            &self.name,
            &binary,
            &[command, "type_if=vif"],
            &self.lab.socket,
        );
        run.envs(self.env.iter().map(|(k, v)| (k, v)));
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
