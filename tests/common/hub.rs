//! qemu with no machine (`-M none`): its network hub joins the tap it hands to our
//! `qemu-ifup` (and `qemu-ifdown`) to a second tap the test moves into a guest namespace.
//! Real qemu runs our scripts with its own environment, and no guest has to boot.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::{Netns, binary, must, run};

pub struct HubQemu {
    pidfile: PathBuf,
}

impl HubQemu {
    /// Starts qemu in `ns` with tap `tap` (plugged by our scripts, run with `env`) and a
    /// second tap `far` left unplugged, and moves `far` up into `guest` with `address`.
    pub fn start(
        ns: &Netns,
        pidfile: PathBuf,
        tap: &str,
        far: &str,
        env: &[(&str, &str)],
        guest: &Netns,
        address: &str,
    ) -> HubQemu {
        let qemu = HubQemu { pidfile };
        let scripted = format!(
            "tap,id=t,ifname={tap},script={},downscript={}",
            binary("qemu-ifup").display(),
            binary("qemu-ifdown").display()
        );
        let mut cmd = ns.exec();
        cmd.arg("env");
        for (key, value) in env {
            cmd.arg(format!("{key}={value}"));
        }
        must(
            cmd.args([
                "qemu-system-x86_64",
                "-M",
                "none",
                "-nodefaults",
                "-display",
                "none",
            ])
            .arg("-daemonize")
            .arg("-pidfile")
            .arg(&qemu.pidfile)
            .args(["-netdev", &scripted])
            .args([
                "-netdev",
                &format!("tap,id=u,ifname={far},script=no,downscript=no"),
            ])
            .args(["-netdev", "hubport,id=p1,hubid=0,netdev=t"])
            .args(["-netdev", "hubport,id=p2,hubid=0,netdev=u"]),
        );
        ns.ip(&["link", "set", far, "netns", &guest.name]);
        guest.ip(&["addr", "add", address, "dev", far]);
        guest.ip(&["link", "set", far, "up"]);
        qemu
    }

    /// SIGTERM, then wait for qemu to run the downscript and exit.
    pub fn stop(&self) {
        let Ok(pid) = std::fs::read_to_string(&self.pidfile) else {
            return;
        };
        let pid = pid.trim().to_owned();
        let _ = run(Command::new("kill").arg(&pid));
        let proc = PathBuf::from(format!("/proc/{pid}/status"));
        for _ in 0..500 {
            match std::fs::read_to_string(&proc) {
                Ok(status) if !status.contains("State:\tZ") => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => return,
            }
        }
        panic!("qemu {pid} did not exit");
    }
}

impl Drop for HubQemu {
    fn drop(&mut self) {
        self.stop();
    }
}
