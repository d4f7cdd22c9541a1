//! KVM: the real Debian qemu runs our `qemu-ifup` and `qemu-ifdown` for a `-netdev tap`,
//! as it runs /etc/qemu-ifup and /etc/qemu-ifdown. `-machine none` boots no guest: the
//! scripts only need the tap, which qemu opens before anything else.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::lab::{BACKEND_MAC, Dom0, Lab, PATH};
use super::netns::{Netns, check_interrupted};
use super::report::{Report, indent};

const QEMU: &str = "qemu-system-x86_64";
const TAP: &str = "tap0";
/// TCG start-up and a script run take well under a second; this only bounds a hang.
const TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(host: &Dom0, report: &mut Report) -> Result<()> {
    report.heading(
        "KVM: qemu -netdev tap,script=qemu-ifup,downscript=qemu-ifdown, VIFKIT_BRIDGE=br0",
    );
    if !PATH
        .split(':')
        .any(|dir| Path::new(dir).join(QEMU).is_file())
    {
        report.skip(format!(
            "KVM: {QEMU} is not installed (Debian package qemu-system-x86)"
        ));
        return Ok(());
    }
    // An empty config: what /etc/vifkit/vifkit.conf on this machine says must not matter.
    let config = host.lab.scratch("vifkit.conf");
    std::fs::write(&config, "").with_context(|| format!("write {}", config.display()))?;
    attach_and_quit(host, &config, report)?;
    fail_closed(host.lab, &config, report)
}

/// Seed 1.1's br0, a tap for qemu, and QMP `quit` as libvirt sends it.
fn attach_and_quit(host: &Dom0, config: &Path, report: &mut Report) -> Result<()> {
    // Persistent: qemu opens the tap instead of making one, so the tap outlives qemu and
    // shows what the downscript did. A big MTU shows qemu-ifup giving it br0's.
    host.ipw(&format!("tuntap add {TAP} mode tap"))?;
    host.ipw(&format!("link set {TAP} mtu 9000"))?;
    let br0_mtu = host.link("br0")?.and_then(|l| l.mtu().map(str::to_owned));
    let socket = host.lab.scratch("qmp.sock");
    let mut qemu = Qemu::start(host, host.lab, config, Some("br0"), Some(&socket))?;
    let Some(mut qmp) = qemu.qmp(&socket)? else {
        let (_, stderr) = qemu.finish()?;
        let what = "qemu starts, running qemu-ifup";
        report.check(false, what, format!(": it did not{}", indent(&stderr)));
        return Ok(());
    };
    let took = qemu.started.elapsed().as_millis();
    report.check(
        true,
        format!("qemu started, ran qemu-ifup, QMP ready: {took} ms"),
        "",
    );
    let link = host.link(TAP)?;
    let ok = link.as_ref().is_some_and(|l| {
        l.master() == Some("br0")
            && l.is_up()
            && l.mtu() == br0_mtu.as_deref()
            && l.mac() == Some(BACKEND_MAC)
    });
    let found = link.map_or_else(
        || format!(": no {TAP}"),
        |l| {
            let (up, mtu, mac) = (l.is_up(), l.mtu(), l.mac());
            format!(
                ": master {:?}, up {up}, mtu {mtu:?}, MAC {mac:?}",
                l.master()
            )
        },
    );
    let mtu = br0_mtu.as_deref().unwrap_or("?");
    report.check(
        ok,
        format!("{TAP} is an up port of br0, MTU 9000 -> {mtu} (br0's), MAC {BACKEND_MAC}"),
        found,
    );

    let quit = Instant::now();
    qmp.get_mut()
        .write_all(b"{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n")
        .context("send QMP quit")?;
    let (status, stderr) = qemu.finish()?;
    let took = quit.elapsed().as_millis();
    report.check(
        status.is_some_and(|s| s.success()),
        format!("QMP quit: qemu exited 0 in {took} ms, running qemu-ifdown"),
        format!(": exit {status:?}{}", indent(&stderr)),
    );
    let link = host.link(TAP)?;
    let ok = link
        .as_ref()
        .is_some_and(|l| l.master().is_none() && !l.is_up());
    let said = stderr
        .lines()
        .find(|l| l.starts_with("qemu-ifdown"))
        .unwrap_or("nothing");
    let master = link.as_ref().and_then(|l| l.master());
    report.check(
        ok,
        format!("{TAP} left br0 and is down; qemu's stderr: {said}"),
        format!(": master {master:?}{}", indent(&stderr)),
    );
    Ok(())
}

/// Debian's script attaches to nothing and lets qemu run with a dead NIC; ours refuses. Its
/// own namespace: the host's br0 carries a default route, which would be a bridge source.
fn fail_closed(lab: &Lab, config: &Path, report: &mut Report) -> Result<()> {
    let ns = lab.netns("kvm")?;
    ns.bridge("br0")?;
    ns.ipw("link set br0 up")?;
    ns.ipw(&format!("tuntap add {TAP} mode tap"))?;
    let mac_before = ns.link(TAP)?.and_then(|l| l.mac().map(str::to_owned));
    let mut qemu = Qemu::start(&ns, lab, config, None, None)?;
    let (status, stderr) = qemu.finish()?;
    report.check(
        status.is_some_and(|s| !s.success()),
        "no VIFKIT_BRIDGE, no [port] rule, no default route: qemu refuses to start",
        format!(": exit {status:?}{}", indent(&stderr)),
    );
    let ours = stderr.lines().find(|l| l.starts_with("qemu-ifup: error:"));
    report.check(
        ours.is_some(),
        format!("qemu's stderr: {}", ours.unwrap_or("qemu-ifup: error: ...")),
        format!(": not found in{}", indent(&stderr)),
    );
    let link = ns.link(TAP)?;
    let ok = link
        .as_ref()
        .is_some_and(|l| l.master().is_none() && l.mac().map(str::to_owned) == mac_before);
    report.check(
        ok,
        format!("{TAP} was left alone: no bridge, its own MAC"),
        ": it was changed",
    );
    Ok(())
}

/// A qemu child, killed and reaped on drop so that its namespace can go.
struct Qemu {
    child: Child,
    started: Instant,
}

impl Qemu {
    fn start(
        ns: &Netns,
        lab: &Lab,
        config: &Path,
        bridge: Option<&str>,
        qmp: Option<&Path>,
    ) -> Result<Qemu> {
        let netdev = format!(
            "tap,id=n0,ifname={TAP},script={},downscript={}",
            lab.binary("qemu-ifup").display(),
            lab.binary("qemu-ifdown").display()
        );
        let mut command = ns.exec(QEMU);
        command
            .args(["-machine", "none", "-accel", "tcg", "-nodefaults"])
            .args(["-display", "none", "-netdev", &netdev])
            .env_clear()
            .env("PATH", PATH)
            .env("VIFKIT_CONFIG", config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(bridge) = bridge {
            command.env("VIFKIT_BRIDGE", bridge);
        }
        if let Some(socket) = qmp {
            let chardev = format!("unix:{},server=on,wait=off", socket.display());
            command.args(["-qmp", &chardev]);
        }
        let started = Instant::now();
        // `ip netns exec` execs qemu in place: the child's pid is qemu's.
        let child = command.spawn().context("start qemu-system-x86_64")?;
        Ok(Qemu { child, started })
    }

    /// Polls `done` until it holds, qemu exits or [`TIMEOUT`] passes.
    fn wait_until(&mut self, mut done: impl FnMut() -> Result<bool>) -> Result<bool> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            // First: Ctrl-C also reaches qemu, whose exit must not read as a failed check.
            check_interrupted()?;
            if done()? {
                return Ok(true);
            }
            if self.child.try_wait()?.is_some() || Instant::now() > deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Connects to QMP and reads its greeting. qemu's main loop sends it, so by then the
    /// netdev, and with it qemu-ifup, is done; a signal sent earlier would race the script.
    /// None when qemu exited or hung first.
    fn qmp(&mut self, socket: &Path) -> Result<Option<BufReader<UnixStream>>> {
        let mut stream = None;
        self.wait_until(|| {
            stream = UnixStream::connect(socket).ok();
            Ok(stream.is_some())
        })?;
        let Some(stream) = stream else {
            return Ok(None);
        };
        stream.set_read_timeout(Some(TIMEOUT))?;
        let mut reader = BufReader::new(stream);
        let mut greeting = String::new();
        let read = reader.read_line(&mut greeting);
        check_interrupted()?;
        Ok((read.is_ok() && greeting.contains("\"QMP\"")).then_some(reader))
    }

    fn terminate(&self) -> Result<()> {
        let pid = Pid::from_raw(self.child.id() as i32);
        kill(pid, Signal::SIGTERM).context("SIGTERM qemu")
    }

    /// Waits for qemu to exit: its status (None if it had to be killed) and its stderr.
    fn finish(&mut self) -> Result<(Option<ExitStatus>, String)> {
        self.wait_until(|| Ok(false))?;
        let status = self.child.try_wait()?;
        if status.is_none() {
            let _ = self.child.kill();
        }
        self.child.wait()?;
        check_interrupted()?;
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            pipe.read_to_string(&mut stderr)?;
        }
        Ok((status, stderr))
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SIGTERM first, so that qemu-ifdown still runs; then no more waiting.
            let _ = self.terminate();
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
