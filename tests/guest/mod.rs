//! A real Linux guest for the qemu tests: the Debian kernel that `scripts/guest-kernel`
//! caches outside the repository, and an initramfs built here at run time from the host's
//! static busybox and an `/init` that brings up the virtio NIC and pings a peer.

pub mod cpio;

use std::path::{Path, PathBuf};
use std::process::Command;

/// What `/init` prints on the serial console.
pub const MARK_INIT: &str = "VIFKIT-GUEST-INIT";
pub const MARK_OK: &str = "VIFKIT-GUEST-PING-OK";
pub const MARK_FAIL: &str = "VIFKIT-GUEST-PING-FAIL";

/// A kernel image and the virtio networking modules it needs, in load order.
pub struct Kernel {
    pub dir: PathBuf,
    pub vmlinuz: PathBuf,
    pub modules: Vec<PathBuf>,
    /// `<package> <version> <kernel release>`.
    pub package: String,
}

/// Runs `scripts/guest-kernel` (downloading the kernel on first use) and reads its cache
/// directory. Panics with the script's own words when it cannot: a machine that reaches no
/// package registry fails this test rather than skipping it.
pub fn kernel() -> Kernel {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/guest-kernel");
    let out = Command::new("bash")
        .arg(&script)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed ({}): the qemu guest test needs a Debian kernel from the package \
         registry (or an already filled cache, VIFKIT_GUEST_CACHE):\n{stderr}",
        script.display(),
        out.status
    );
    if !stderr.trim().is_empty() {
        eprintln!("{stderr}");
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()))
    };
    let modules = read("modules.load")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| dir.join("modules").join(l.trim()))
        .collect();
    let package = read("package").trim().to_owned();
    Kernel {
        vmlinuz: dir.join("vmlinuz"),
        modules,
        package,
        dir,
    }
}

/// The host's busybox, which must be statically linked (package `busybox-static`): the
/// initramfs carries no shared libraries.
pub fn busybox() -> (PathBuf, Vec<u8>) {
    for candidate in ["/bin/busybox", "/usr/bin/busybox"] {
        let path = PathBuf::from(candidate);
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        match elf_interpreter(&bytes) {
            Ok(None) => return (path, bytes),
            Ok(Some(interp)) => panic!(
                "{candidate} is dynamically linked (interpreter {interp}): install busybox-static"
            ),
            Err(e) => panic!("{candidate}: {e}"),
        }
    }
    panic!("no /bin/busybox: install busybox-static")
}

/// The PT_INTERP of a little-endian ELF64 executable, or None for a static one.
pub fn elf_interpreter(elf: &[u8]) -> Result<Option<String>, String> {
    const PT_INTERP: u32 = 3;
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        return Err("not a little-endian ELF64 file".into());
    }
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if ph + 56 > elf.len() {
            return Err("truncated program headers".into());
        }
        if u32_at(ph) == PT_INTERP {
            let (off, size) = (u64_at(ph + 8), u64_at(ph + 32));
            let raw = elf.get(off..off + size).ok_or("truncated PT_INTERP")?;
            let text = String::from_utf8_lossy(raw);
            return Ok(Some(text.trim_end_matches('\0').to_owned()));
        }
    }
    Ok(None)
}

/// The guest's view of its network: its own address and the peer it must reach.
pub struct GuestNet<'a> {
    /// `ADDRESS/PREFIX` for the guest's `eth0`.
    pub address: &'a str,
    pub peer: &'a str,
}

/// The guest's `/init`: mounts, loads the modules in order, configures `eth0`, pings the
/// peer (up to 10 one-second tries), prints a marker with its uptime, powers off.
pub fn init_script(modules: &[String], net: &GuestNet) -> String {
    let insmods: String = modules
        .iter()
        .map(|m| format!("insmod /lib/modules/{m} || echo \"guest: insmod {m} failed\"\n"))
        .collect();
    format!(
        r#"#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "{MARK_INIT} uptime=$(cut -d' ' -f1 /proc/uptime)"
{insmods}i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
ip link set lo up
ip addr add {address} dev eth0
ip link set eth0 up
ok=0
n=0
while [ $n -lt 10 ]; do
  n=$((n+1))
  if ping -c 1 -W 1 {peer} >/dev/null 2>&1; then ok=1; break; fi
done
if [ $ok = 1 ]; then
  echo "{MARK_OK} tries=$n uptime=$(cut -d' ' -f1 /proc/uptime)"
else
  echo "{MARK_FAIL} tries=$n"
  ip addr
  ip link
  ip neigh
fi
sleep 1
poweroff -f
"#,
        address = net.address,
        peer = net.peer,
    )
}

/// The busybox applets `/init` uses (each a symlink in `/bin`).
const APPLETS: &[&str] = &[
    "sh", "mount", "insmod", "ip", "ping", "poweroff", "sleep", "cat", "cut", "echo",
];

/// A newc initramfs: `/bin/busybox` and its applet links, `/dev/console`, the kernel's
/// modules in `/lib/modules`, and `/init`.
pub fn initramfs(kernel: &Kernel, net: &GuestNet) -> Vec<u8> {
    let (_, busybox) = busybox();
    let mut a = cpio::Archive::new();
    for dir in ["bin", "dev", "proc", "sys", "lib", "lib/modules"] {
        a.dir(dir);
    }
    // The kernel opens /dev/console for init's stdio before any devtmpfs is mounted.
    a.char_dev("dev/console", 0o600, 5, 1);
    a.file("bin/busybox", 0o755, &busybox);
    for applet in APPLETS {
        a.symlink(&format!("bin/{applet}"), "busybox");
    }
    let mut names = Vec::new();
    for module in &kernel.modules {
        let name = module.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(module).unwrap_or_else(|e| panic!("{}: {e}", module.display()));
        a.file(&format!("lib/modules/{name}"), 0o644, &data);
        names.push(name);
    }
    a.file("init", 0o755, init_script(&names, net).as_bytes());
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_busybox_is_static() {
        let (path, bytes) = busybox();
        assert_eq!(elf_interpreter(&bytes), Ok(None), "{}", path.display());
    }

    #[test]
    fn a_dynamic_executable_has_an_interpreter() {
        // Any dynamically linked system binary will do; `ip` is always there for these tests.
        let ip = std::fs::read("/usr/bin/ip")
            .or_else(|_| std::fs::read("/bin/ip"))
            .expect("ip");
        let interp = elf_interpreter(&ip).unwrap().expect("ip is dynamic");
        assert!(interp.contains("ld-linux"), "{interp}");
        assert!(elf_interpreter(b"#!/bin/sh\n").is_err());
    }

    #[test]
    fn init_loads_modules_in_the_given_order_and_prints_markers() {
        let init = init_script(
            &["a.ko".into(), "b.ko".into()],
            &GuestNet {
                address: "192.0.2.20/24",
                peer: "192.0.2.1",
            },
        );
        assert!(init.starts_with("#!/bin/sh\n"));
        let a = init.find("insmod /lib/modules/a.ko").unwrap();
        let b = init.find("insmod /lib/modules/b.ko").unwrap();
        assert!(a < b);
        assert!(init.contains("ip addr add 192.0.2.20/24 dev eth0"));
        assert!(init.contains("ping -c 1 -W 1 192.0.2.1"));
        assert!(init.contains(MARK_OK) && init.contains(MARK_FAIL));
        assert!(init.trim_end().ends_with("poweroff -f"));
    }
}
