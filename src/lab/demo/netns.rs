//! Throwaway network namespaces and the commands run in them, interruptible by Ctrl-C.
//!
//! Nothing here touches the caller's own network namespace: every link and address lives in a
//! namespace this module created, and every such namespace is deleted when its guard drops.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};

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

/// For loops that wait on something other than [`cmd`] (a qemu child, say).
pub fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// Runs a command to completion with stdin closed; an interrupt seen meanwhile is an error.
pub fn cmd(command: &mut Command) -> Result<Output> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {command:?}"))?;
    check_interrupted()?;
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
        // Out of the terminal's process group, so that Ctrl-C cannot kill it half-way (a
        // namespace file without its mount), and not [`must`], which would report the
        // interrupt before the guard below exists.
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .stdin(Stdio::null())
            .process_group(0)
            .output()
            .context("run ip netns add")?;
        if !out.status.success() {
            bail!(
                "ip netns add {name} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let ns = Netns { name };
        check_interrupted()?;
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn ip(&self, args: &[&str]) -> Result<String> {
        must(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// [`Netns::ip`] with the arguments written as one line, which reads like the seed's
    /// shell examples (no argument here ever contains a space).
    pub fn ipw(&self, line: &str) -> Result<String> {
        self.ip(&line.split_whitespace().collect::<Vec<_>>())
    }

    /// The lines `ip` prints, trimmed, or none when it fails.
    pub fn ip_lines(&self, line: &str) -> Result<Vec<String>> {
        let out = cmd(Command::new("ip")
            .args(["-n", &self.name])
            .args(line.split_whitespace()))?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect())
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

    /// `key = value` lines as in /etc/sysctl.conf; `#` starts a comment.
    pub fn sysctl_conf(&self, text: &str) -> Result<()> {
        for line in text.lines().map(str::trim) {
            if let Some((key, value)) = line.split_once('=').filter(|_| !line.starts_with('#')) {
                self.sysctl(key.trim(), value.trim())?;
            }
        }
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

    /// A veth pair: `name` here, `peer` in `other`.
    pub fn veth(&self, name: &str, peer: &str, other: &Netns) -> Result<()> {
        self.ip(&[
            "link",
            "add",
            name,
            "type",
            "veth",
            "peer",
            "name",
            peer,
            "netns",
            &other.name,
        ])?;
        Ok(())
    }

    /// The seed's bridges: `BRIDGE_STP='off'`, `BRIDGE_FORWARDDELAY='0'`.
    pub fn bridge(&self, name: &str) -> Result<()> {
        self.ipw(&format!(
            "link add {name} type bridge stp_state 0 forward_delay 0"
        ))?;
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // The records vifkit's runs left for a watcher go with the namespace.
        let bound = std::path::PathBuf::from(format!("/run/netns/{}", self.name));
        if let Ok(run) = crate::sys::rundir::RunDir::of_namespace(&bound) {
            run.remove();
        }
        // A second Ctrl-C during clean-up must not kill the clean-up.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stdin(Stdio::null())
            .process_group(0)
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

    pub fn mtu(&self) -> Option<&str> {
        self.after("mtu")
    }

    pub fn is_up(&self) -> bool {
        self.0
            .get(2)
            .is_some_and(|flags| flags.trim_matches(['<', '>']).split(',').any(|f| f == "UP"))
    }
}
