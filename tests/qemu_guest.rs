//! End to end with a real guest: `qemu-system-x86_64` (TCG) boots a Debian kernel whose
//! virtio NIC is a tap that qemu hands to our `qemu-ifup` (`script=`) and `qemu-ifdown`
//! (`downscript=`), inside a throwaway namespace with bridge `br0`. The guest must ping the
//! bridge's address. Needs root, `qemu-system-x86`, `busybox-static`, and the kernel that
//! `scripts/guest-kernel` fetches from the Debian archive on first use (the test fails, and
//! says so, when it cannot).

mod common;
mod guest;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::*;
use guest::{GuestNet, MARK_FAIL, MARK_INIT, MARK_OK};
use serde_json::Value;

const QEMU: &str = "qemu-system-x86_64";
const BRIDGE: &str = "br0";
const BRIDGE_MTU: u32 = 1400;
const PEER: &str = "192.0.2.1";
const GUEST_ADDRESS: &str = "192.0.2.20/24";
const GUEST_MAC: &str = "52:54:00:12:34:56";
/// Kill qemu after this long: a TCG boot to the first ping takes a few seconds.
const TIMEOUT: Duration = Duration::from_secs(120);

static TAPS: AtomicU32 = AtomicU32::new(0);

/// A tap name unique across parallel tests and test binaries (at most 15 bytes).
fn tap_name() -> String {
    let name = format!(
        "vkt{}x{}",
        std::process::id(),
        TAPS.fetch_add(1, Ordering::Relaxed)
    );
    assert!(name.len() <= 15, "{name}");
    name
}

/// The qemu process, killed on drop (a timeout or a failed assertion).
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Single-quotes a path for sh.
fn sh_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

fn qemu_available() -> bool {
    Command::new(QEMU)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn has_flag(link: &Value, flag: &str) -> bool {
    link["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == flag))
}

/// The `uptime=` a marker line printed on the console.
fn guest_uptime(console: &str, marker: &str) -> Option<String> {
    let line = console.lines().find(|l| l.contains(marker))?;
    let value = line.split("uptime=").nth(1)?;
    Some(value.split_whitespace().next()?.to_owned())
}

#[test]
fn guest_pings_its_bridge_through_qemu_ifup_and_qemu_ifdown_detaches() {
    let started = Instant::now();
    assert!(
        qemu_available(),
        "{QEMU} not found: install the Debian package qemu-system-x86"
    );
    let kernel = guest::kernel();
    let fetched = started.elapsed();

    let work = scratch("qemu");
    let initrd = work.join("initramfs.cpio");
    let net = GuestNet {
        address: GUEST_ADDRESS,
        peer: PEER,
    };
    std::fs::write(&initrd, guest::initramfs(&kernel, &net)).unwrap();

    let ifup = PathBuf::from(env!("CARGO_BIN_EXE_qemu-ifup"));
    let ifdown = PathBuf::from(env!("CARGO_BIN_EXE_qemu-ifdown"));
    // qemu runs `downscript ifname` with its own environment; this wrapper runs the real
    // qemu-ifdown with exactly those arguments, then records what it left behind while the
    // tap still exists (qemu closes the tap fd only after the downscript returns).
    let ifdown_status = work.join("ifdown.status");
    let ifdown_link = work.join("ifdown.link");
    let downscript = work.join("ifdown.sh");
    std::fs::write(
        &downscript,
        format!(
            "#!/bin/sh\n{} \"$@\"\necho $? > {}\nip -j -d link show dev \"$1\" > {} 2>&1\n",
            sh_quote(&ifdown),
            sh_quote(&ifdown_status),
            sh_quote(&ifdown_link),
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&downscript, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for p in [&ifup, &downscript, &kernel.vmlinuz, &initrd] {
        assert!(
            !p.to_string_lossy().contains(','),
            "qemu option values cannot hold a comma: {}",
            p.display()
        );
    }

    let ns = Netns::new("guest");
    ns.bridge(BRIDGE, BRIDGE_MTU);
    ns.ip(&["addr", "add", &format!("{PEER}/24"), "dev", BRIDGE]);
    let tap = tap_name();
    let console = work.join("console.log");
    let qemu_stderr = work.join("qemu.stderr");

    let mut cmd = ns.exec();
    cmd.arg(QEMU)
        .args(["-accel", "tcg", "-m", "256", "-smp", "1"])
        .args(["-nodefaults", "-display", "none", "-no-reboot"])
        .arg("-kernel")
        .arg(&kernel.vmlinuz)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", "console=ttyS0 panic=-1 quiet"])
        .arg("-netdev")
        .arg(format!(
            "tap,id=n0,ifname={tap},script={},downscript={}",
            ifup.display(),
            downscript.display()
        ))
        .arg("-device")
        .arg(format!("virtio-net-pci,netdev=n0,mac={GUEST_MAC}"))
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        // qemu passes its environment to the scripts: the bridge comes from here.
        .env("VIFKIT_BRIDGE", BRIDGE)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&qemu_stderr).unwrap());
    let booted = Instant::now();
    let mut qemu = Qemu(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start {QEMU}: {e}")),
    );

    // While the guest runs: snapshot the tap once /init has started (qemu-ifup ran before
    // the VM started), and time the first ping reply.
    let mut tap_while_running: Option<Value> = None;
    let mut ping_after: Option<Duration> = None;
    let status = loop {
        if let Some(status) = qemu.0.try_wait().unwrap() {
            break status;
        }
        let log = read_lossy(&console);
        if tap_while_running.is_none() && log.contains(MARK_INIT) {
            tap_while_running = Some(ns.link(&tap).unwrap_or(Value::Null));
        }
        if ping_after.is_none() && log.contains(MARK_OK) {
            ping_after = Some(booted.elapsed());
        }
        if booted.elapsed() > TIMEOUT {
            drop(qemu);
            panic!(
                "{QEMU} still running after {TIMEOUT:?}; killed.\nconsole:\n{log}\nstderr:\n{}",
                read_lossy(&qemu_stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let ran = booted.elapsed();
    let log = read_lossy(&console);
    let stderr = read_lossy(&qemu_stderr);
    let context = format!("console:\n{log}\nqemu stderr:\n{stderr}");

    assert!(
        !stderr.contains("network script"),
        "qemu reports a script failure: {context}"
    );
    assert!(status.success(), "{QEMU} exited with {status}: {context}");
    assert!(
        !log.contains(MARK_FAIL),
        "the guest could not ping {PEER}: {context}"
    );
    assert!(
        log.contains(MARK_OK),
        "no {MARK_OK} on the guest console: {context}"
    );

    // qemu-ifup's effects, seen while the guest was running.
    let link = tap_while_running
        .unwrap_or_else(|| panic!("qemu exited before the tap could be inspected: {context}"));
    assert!(
        !link.is_null(),
        "tap {tap} did not exist while the guest ran"
    );
    assert_eq!(link["master"], BRIDGE, "tap not a port of {BRIDGE}: {link}");
    assert_eq!(
        link["mtu"], BRIDGE_MTU,
        "tap MTU is not the bridge's: {link}"
    );
    assert_eq!(link["address"], "fe:ff:ff:ff:ff:ff", "tap MAC: {link}");
    assert!(has_flag(&link, "UP"), "tap not up: {link}");
    assert_eq!(link["linkinfo"]["info_kind"], "tun", "{link}");

    // qemu-ifdown ran at qemu's exit, with the tap still there, and detached it.
    let ifdown_ran = read_lossy(&ifdown_status);
    assert_eq!(
        ifdown_ran.trim(),
        "0",
        "qemu-ifdown did not run or failed (status {ifdown_ran:?}): {context}"
    );
    let after = read_lossy(&ifdown_link);
    let after: Value = serde_json::from_str(&after)
        .unwrap_or_else(|e| panic!("ip -j link show {tap} after qemu-ifdown: {e}: {after}"));
    let after = &after[0];
    assert!(
        after.get("master").is_none(),
        "still enslaved after qemu-ifdown: {after}"
    );
    assert!(
        !has_flag(after, "UP"),
        "still up after qemu-ifdown: {after}"
    );

    // And once qemu has closed it, the tap is gone (or at least out of the bridge).
    assert!(
        ns.master_of(&tap).is_none(),
        "tap {tap} still enslaved after qemu exited"
    );

    eprintln!(
        "qemu guest: kernel {} ({}), modules {:?}; first ping reply {:?} after qemu start \
         (guest uptime {}s); qemu ran {ran:?}; kernel fetch {fetched:?}; total {:?}",
        kernel.package,
        kernel.dir.display(),
        kernel
            .modules
            .iter()
            .map(|m| m.file_name().unwrap().to_string_lossy().into_owned())
            .collect::<Vec<_>>(),
        ping_after,
        guest_uptime(&log, MARK_OK).unwrap_or_default(),
        started.elapsed()
    );
}
