//! What a hotplug run may touch besides the network, watched: each run gets a private mount
//! namespace (`ip netns exec` gives it one) with a tmpfs over /var/log whose /var/log/xen is
//! a directory of the test's, and a tmpfs over /dev whose /dev/log is a datagram socket of
//! the test's; a fake xenstored socket counts the connections it gets. The network
//! namespace's state is compared whole before and after.

#![allow(dead_code)] // each test file uses its own subset

use std::ffi::OsString;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

pub struct Sandbox {
    dir: Scratch,
    /// Bound on /var/log/xen in the run's mount namespace.
    pub xen_log_dir: PathBuf,
    syslog: Syslog,
    syslog_path: PathBuf,
    xenstored: UnixListener,
    /// A socket that is listened on and never accepted: a run that connects is counted.
    pub xenstored_path: PathBuf,
}

impl Sandbox {
    pub fn new(tag: &str) -> Sandbox {
        let dir = scratch(tag);
        let xen_log_dir = dir.join("xen");
        std::fs::create_dir(&xen_log_dir).unwrap();
        // Anyone may write there, so that a run as nobody could create its log too.
        std::fs::set_permissions(&xen_log_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let syslog_path = dir.join("log");
        let syslog = Syslog::bind(&syslog_path);
        let xenstored_path = dir.join("xenstored");
        let xenstored = UnixListener::bind(&xenstored_path).unwrap();
        xenstored.set_nonblocking(true).unwrap();
        for socket in [&syslog_path, &xenstored_path] {
            std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        // The scratch directory is root's 0700 by default: nobody must reach the sockets.
        std::fs::set_permissions(&*dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Sandbox {
            dir,
            xen_log_dir,
            syslog,
            syslog_path,
            xenstored,
            xenstored_path,
        }
    }

    /// `program ARGS` in `netns`, with `env` only (and PATH), after the mounts.
    pub fn command(
        &self,
        netns: &str,
        program: impl Into<OsString>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns, "sh", "-c"])
            .arg(
                "mount -t tmpfs vk-log /var/log && mkdir /var/log/xen && \
                 mount --bind \"$1\" /var/log/xen && \
                 mount -t tmpfs vk-dev /dev && mknod -m 666 /dev/null c 1 3 && \
                 touch /dev/log && mount --bind \"$2\" /dev/log && \
                 shift 2 && exec \"$@\"",
            )
            .arg("sh")
            .arg(&self.xen_log_dir)
            .arg(&self.syslog_path)
            .arg(program.into())
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        cmd
    }

    /// `binary ARGS` as nobody, without any capability (setpriv, util-linux).
    pub fn as_nobody(
        &self,
        netns: &str,
        binary: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Command {
        let setpriv = [
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--inh-caps=-all",
        ];
        let mut all: Vec<&str> = setpriv.to_vec();
        let binary = binary.to_str().unwrap();
        all.push(binary);
        all.extend(args);
        self.command(netns, "setpriv", &all, env)
    }

    pub fn run(&self, mut cmd: Command) -> Output {
        cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
    }

    /// The files a run left in /var/log/xen.
    pub fn xen_log_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.xen_log_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    pub fn xen_log(&self) -> String {
        std::fs::read_to_string(self.xen_log_dir.join("xen-hotplug.log")).unwrap_or_default()
    }

    /// The datagrams /dev/log got since the last call.
    pub fn syslog_records(&self) -> Vec<String> {
        self.syslog.take()
    }

    /// How many connections the fake xenstored got since the last call.
    pub fn xenstore_connections(&self) -> usize {
        let mut count = 0;
        loop {
            match self.xenstored.accept() {
                Ok(_) => count += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return count,
                Err(e) => panic!("xenstored socket: {e}"),
            }
        }
    }
}

/// A datagram socket read all the time: its queue holds only `net.unix.max_dgram_qlen` (10)
/// datagrams, fewer than a run sends, and a run drops what finds no room.
struct Syslog {
    socket: UnixDatagram,
    records: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Syslog {
    fn bind(path: &Path) -> Syslog {
        let socket = UnixDatagram::bind(path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let records = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (reader, into, until) = (socket.try_clone().unwrap(), records.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !until.load(Ordering::Relaxed) {
                // Received and kept under the lock: `take` sees every record in order.
                {
                    let mut records = into.lock().unwrap();
                    if let Ok(n) = reader.recv(&mut buf) {
                        records.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                    }
                }
                // Room for `take` to get the lock.
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        Syslog {
            socket,
            records,
            stop,
        }
    }

    /// What came since the last call, the socket's queue included.
    fn take(&self) -> Vec<String> {
        let mut records = self.records.lock().unwrap();
        self.socket.set_nonblocking(true).unwrap();
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = self.socket.recv(&mut buf) {
            records.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        self.socket.set_nonblocking(false).unwrap();
        std::mem::take(&mut *records)
    }
}

impl Drop for Syslog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Everything of a network namespace a hotplug run could change, without what the kernel
/// changes by itself meanwhile (timers, carrier, DAD): each link's name, kind, MTU, MAC,
/// master and whether it is set up, its port role; addresses; routes of every table; proxy
/// neighbours; the nftables ruleset.
pub fn network_state(ns: &Netns) -> String {
    let field = |v: &Value, key: &str| v.get(key).map(Value::to_string).unwrap_or_default();
    let mut state = Vec::new();
    for link in array(ns.ip_json(&["-d", "link", "show"])) {
        let up = link["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == "UP"));
        let info = &link["linkinfo"];
        state.push(format!(
            "link {} {} {} mtu {} master {} up {up} slave {}",
            field(&link, "ifname"),
            field(info, "info_kind"),
            field(&link, "address"),
            field(&link, "mtu"),
            field(&link, "master"),
            field(info, "info_slave_kind"),
        ));
    }
    for link in array(ns.ip_json(&["addr", "show"])) {
        for address in array(link["addr_info"].clone()) {
            state.push(format!(
                "address {} {}/{}",
                field(&link, "ifname"),
                field(&address, "local"),
                field(&address, "prefixlen")
            ));
        }
    }
    for family in ["-4", "-6"] {
        for route in array(ns.ip_json(&[family, "route", "show", "table", "all"])) {
            state.push(format!(
                "route {} {} via {} dev {} table {} metric {}",
                field(&route, "type"),
                field(&route, "dst"),
                field(&route, "gateway"),
                field(&route, "dev"),
                field(&route, "table"),
                field(&route, "metric")
            ));
        }
        for neighbour in array(ns.ip_json(&[family, "neigh", "show", "proxy"])) {
            state.push(format!(
                "proxy {} dev {}",
                field(&neighbour, "dst"),
                field(&neighbour, "dev")
            ));
        }
    }
    state.push(must(ns.exec().args(["nft", "list", "ruleset"])));
    state.join("\n")
}

fn array(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        _ => vec![],
    }
}

/// A namespace with what a plug would change: bridge `xenbr0` with netback's `vif3.0` (a
/// veth, its far end in `far`) and a tap `tap0`, neither attached.
pub struct Host {
    pub ns: Netns,
    pub far: Netns,
}

impl Host {
    pub fn new(tag: &str) -> Host {
        let ns = Netns::new(&format!("{tag}h"));
        // No duplicate address detection: its end would add a local route meanwhile.
        for scope in ["all", "default"] {
            let key = format!("net.ipv6.conf.{scope}.accept_dad=0");
            must(ns.exec().args(["sysctl", "-qw", &key]));
        }
        let far = Netns::new(&format!("{tag}f"));
        ns.bridge("xenbr0", 1500);
        ns.veth("vif3.0", "eth0", &far);
        ns.ip(&["tuntap", "add", "tap0", "mode", "tap"]);
        Host { ns, far }
    }
}

/// What libxl gives `online`/`offline` of vif 3/0 besides the xenstore's path.
pub fn libxl_env(xenstored: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("XENSTORED_PATH", xenstored.display().to_string()),
        ("XENBUS_PATH", "backend/vif/3/0".to_owned()),
        ("XENBUS_TYPE", "vif".to_owned()),
        ("XENBUS_BASE_PATH", "backend".to_owned()),
        ("script", "/etc/xen/scripts/vif-bridge".to_owned()),
        ("vif", "vif3.0".to_owned()),
        ("netdev", String::new()),
        ("VIFKIT_HOOK_DIR", "/nonexistent".to_owned()),
    ]
}

pub const XEN_BINARIES: [&str; 5] = [
    "vif-bridge",
    "vif-route",
    "vif-route-ifup",
    "vif-nat",
    "vif-openvswitch",
];

pub const QEMU_BINARIES: [&str; 2] = ["qemu-ifup", "qemu-ifdown"];
