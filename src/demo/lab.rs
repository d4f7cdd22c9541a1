//! The demo's test bench: throwaway network namespaces, a private xenstore, and guests whose
//! vifs are plugged by the real `vif-bridge` binary the way libxl runs it (CONTRACT 1.1, 2.1).
//!
//! Nothing here touches the caller's own network namespace: every link and address lives in a
//! namespace this module created, and every such namespace is deleted when its guard drops.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::xenstore::{Client, Server};

/// A plain PATH instead of the demo's own environment, so a run cannot depend on how the
/// demo was started (libxl's children get the toolstack's environment, whatever it is).
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
const SCRIPT: &str = "/etc/xen/scripts/vif-bridge";

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C must not kill the demo before its guards have deleted the namespaces. The handler
/// only raises a flag; children get the default action back at exec, so a running `ping` or
/// `ip` dies at once, and the next [`cmd`] call turns the flag into an error whose way out
/// drops the guards.
pub fn catch_interrupts() -> Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }
            .with_context(|| format!("install a {signal} handler"))?;
    }
    Ok(())
}

/// Runs a command to completion with stdin closed; an interrupt seen meanwhile is an error.
pub fn cmd(command: &mut Command) -> Result<Output> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {command:?}"))?;
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(out)
}

/// Like [`cmd`], but a non-zero exit is an error that quotes the command's stderr.
pub fn must(command: &mut Command) -> Result<String> {
    let out = cmd(command)?;
    if !out.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A network namespace of ours, deleted on drop (also while a panic unwinds).
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: String) -> Result<Netns> {
        must(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn ip(&self, args: &[&str]) -> Result<String> {
        must(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// A command run inside the namespace, with its own /sys as `ip netns exec` mounts it.
    pub fn exec(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        must(
            self.exec("busybox")
                .args(["sysctl", "-q", "-w", &format!("{key}={value}")]),
        )?;
        Ok(())
    }

    /// One echo request per attempt: a port that just came up may drop the first packets.
    pub fn ping(&self, address: &str, attempts: u32) -> Result<bool> {
        let family = if address.contains(':') { "-6" } else { "-4" };
        for _ in 0..attempts {
            let out = cmd(self
                .exec("busybox")
                .args(["ping", family, "-c", "1", "-W", "2", address]))?;
            if out.status.success() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// `ip -o link show dev NAME` as words, or None when there is no such link.
    pub fn link(&self, name: &str) -> Result<Option<Link>> {
        let out =
            cmd(Command::new("ip").args(["-n", &self.name, "-o", "link", "show", "dev", name]))?;
        if !out.status.success() {
            return Ok(None);
        }
        Ok(Some(Link(
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        )))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdin(Stdio::null())
            .output();
    }
}

/// One line of `ip -o link`: `5: vif1.0@if2: <BROADCAST,UP,LOWER_UP> mtu 1500 ... master br0 ...`.
/// The text form keeps the check independent of the netlink code under test.
pub struct Link(Vec<String>);

impl Link {
    fn after(&self, word: &str) -> Option<&str> {
        let at = self.0.iter().position(|w| w == word)?;
        self.0.get(at + 1).map(String::as_str)
    }

    pub fn master(&self) -> Option<&str> {
        self.after("master")
    }

    pub fn mac(&self) -> Option<&str> {
        self.after("link/ether")
    }

    pub fn is_up(&self) -> bool {
        self.0
            .get(2)
            .is_some_and(|flags| flags.trim_matches(['<', '>']).split(',').any(|f| f == "UP"))
    }
}

/// A guest NIC as the xl config line describes it, and the guest-side addresses.
pub struct Guest {
    pub name: &'static str,
    pub domid: u32,
    pub devid: u32,
    pub mac: &'static str,
    pub bridge: &'static str,
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

    /// The port's name once `vif-bridge online` is done.
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
}

/// Deletes the scratch directory (and with it the xenstore socket) on drop.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The "dom0" namespace, the private xenstore, and where `vif-bridge` lives.
pub struct Lab {
    pub prefix: String,
    pub host: Netns,
    vif_bridge: PathBuf,
    socket: PathBuf,
    _scratch: ScratchDir,
}

/// The result of one hotplug run.
pub struct Run {
    pub ok: bool,
    pub took: Duration,
    pub stderr: String,
}

impl Lab {
    pub fn new(vif_bridge: PathBuf) -> Result<Lab> {
        let prefix = format!("vkdemo{}", std::process::id());
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let scratch = ScratchDir(dir);
        let socket = scratch.0.join("xenstored.socket");
        // The server thread lives until the demo exits; nothing else connects to its socket.
        Server::bind(&socket)?.spawn();
        let host = Netns::new(format!("{prefix}-host"))?;
        Ok(Lab {
            prefix,
            host,
            vif_bridge,
            socket,
            _scratch: scratch,
        })
    }

    pub fn netns(&self, tag: &str) -> Result<Netns> {
        Netns::new(format!("{}-{tag}", self.prefix))
    }

    pub fn xenstore(&self) -> Result<Client> {
        Client::connect_path(&self.socket)
    }

    /// What netback and libxl have done by the time libxl runs `vif-bridge online`: the
    /// netdev exists (a veth here, its far end is the guest's eth0) and the backend and
    /// frontend keys are written. Returns the guest's namespace.
    pub fn create_guest(&self, guest: &Guest) -> Result<Netns> {
        let ns = self.netns(guest.name)?;
        let vif = guest.kernel_name();
        self.host.ip(&[
            "link", "add", &vif, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
        ])?;
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
        let mut keys = vec![
            (format!("{b}/frontend"), f.as_str()),
            (format!("{b}/frontend-id"), &domid),
            (format!("{b}/online"), "1"),
            (format!("{b}/state"), "2"),
            (format!("{b}/script"), SCRIPT),
            (format!("{b}/mac"), guest.mac),
            (format!("{b}/bridge"), guest.bridge),
            (format!("{b}/handle"), &devid),
            (format!("{b}/type"), "vif"),
            (format!("{b}/hotplug-status"), ""),
            (format!("{f}/backend"), b.as_str()),
            (format!("{f}/backend-id"), "0"),
            (format!("{f}/handle"), &devid),
            (format!("{f}/mac"), guest.mac),
            (format!("{f}/mtu"), "1500"),
        ];
        if let Some(vifname) = guest.vifname {
            keys.push((format!("{b}/vifname"), vifname));
        }
        let mut xs = self.xenstore()?;
        for (key, value) in keys {
            xs.write(&key, value)?;
        }
        Ok(())
    }

    /// libxl's detach up to the script run: online=0 and Closing, then what netback does
    /// (Closed, hotplug-status removed). The netdev stays: no netback here frees it.
    pub fn begin_detach(&self, guest: &Guest) -> Result<()> {
        let b = guest.backend();
        let mut xs = self.xenstore()?;
        xs.write(&format!("{b}/online"), "0")?;
        xs.write(&format!("{b}/state"), "6")?;
        xs.rm(&format!("{b}/hotplug-status"))
    }

    /// libxl's last detach step.
    pub fn forget(&self, guest: &Guest) -> Result<()> {
        let mut xs = self.xenstore()?;
        xs.rm(&guest.backend())?;
        xs.rm(&guest.frontend())
    }

    /// `vif-bridge online|offline type_if=vif` in the host namespace, with the environment
    /// libxl gives it on a clean slate. The time includes `ip netns exec`.
    pub fn hotplug(&self, guest: &Guest, command: &str) -> Result<Run> {
        let mut run = self.host.exec(&self.vif_bridge);
        run.args([command, "type_if=vif"])
            .env_clear()
            .env("PATH", PATH)
            .env("XENSTORED_PATH", &self.socket)
            .env("VIFKIT_HOOK_DIR", self.socket.with_file_name("no-hooks"))
            .env("script", SCRIPT)
            .env("XENBUS_TYPE", "vif")
            .env("XENBUS_BASE_PATH", "backend")
            .env(
                "XENBUS_PATH",
                format!("backend/vif/{}/{}", guest.domid, guest.devid),
            )
            .env("netdev", "")
            .env("vif", guest.kernel_name());
        let start = Instant::now();
        let out = cmd(&mut run)?;
        Ok(Run {
            ok: out.status.success(),
            took: start.elapsed(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    pub fn read(&self, path: &str) -> Result<Option<String>> {
        self.xenstore()?.read_optional(path)
    }
}

/// `vif-bridge` next to the running `vifkit`, as cargo and the packages install them.
pub fn find_vif_bridge() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("find the running executable")?;
    let path = exe.with_file_name("vif-bridge");
    if !Path::new(&path).is_file() {
        bail!(
            "{} not found: the demo runs the vif-bridge binary installed next to vifkit (cargo build builds both)",
            path.display()
        );
    }
    Ok(path)
}
