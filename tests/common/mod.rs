//! Shared helpers for the root-only integration tests: network namespaces that delete
//! themselves, `ip -j` queries, a private xenstore server, and hotplug runs with the exact
//! environment libxl gives a script.

#![allow(dead_code)] // each test file uses its own subset

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;
pub use vifkit::lab::Scratch;
pub use vifkit::lab::libxl::Vif;
use vifkit::lab::xenstored::Server;
use vifkit::sys::xenstore::Client;
pub mod frames;
pub mod hub;
pub mod stall_proxy;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique across the parallel test threads and concurrent test binaries.
pub fn unique(tag: &str) -> String {
    format!(
        "vk{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        tag
    )
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

pub fn must(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace, deleted on drop (also when the test panics).
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = unique(tag);
        must(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn ip(&self, args: &[&str]) -> String {
        must(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    pub fn ip_json(&self, args: &[&str]) -> Value {
        let out = must(
            Command::new("ip")
                .arg("-n")
                .arg(&self.name)
                .arg("-j")
                .args(args),
        );
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j {args:?}: {e}: {out}"))
    }

    /// `ip -j link show DEV`, or None when it does not exist.
    pub fn link(&self, dev: &str) -> Option<Value> {
        let out = run(
            Command::new("ip").args(["-n", &self.name, "-j", "-d", "link", "show", "dev", dev])
        );
        if !out.status.success() {
            return None;
        }
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array().and_then(|a| a.first()).cloned()
    }

    pub fn master_of(&self, dev: &str) -> Option<String> {
        self.link(dev)?.get("master")?.as_str().map(str::to_owned)
    }

    pub fn addresses(&self, dev: &str) -> Vec<String> {
        let v = self.ip_json(&["addr", "show", "dev", dev]);
        v[0]["addr_info"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| format!("{}/{}", i["local"].as_str().unwrap(), i["prefixlen"]))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn exec(&self) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]);
        cmd
    }

    /// One ICMP echo from this namespace (busybox: these machines have no iputils).
    pub fn ping(&self, address: &str) -> bool {
        run(self
            .exec()
            .args(["busybox", "ping", "-c", "1", "-W", "2", address]))
        .status
        .success()
    }

    /// A veth pair `name` (here) / `peer` (in `peer_ns`), both up on the peer side.
    pub fn veth(&self, name: &str, peer: &str, peer_ns: &Netns) {
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
            &peer_ns.name,
        ]);
        peer_ns.ip(&["link", "set", peer, "up"]);
    }

    /// What netback and the guest kernel make of `vif` on a routed host: the kernel-named
    /// vif here with netback's MAC fe:ff:ff:ff:ff:ff (so guests reach the host at
    /// fe80::fcff:ffff:feff:ffff), its far end the guest's `eth0` with the guest MAC, up.
    pub fn netback_vif(&self, vif: &Vif, guest: &Netns) {
        let name = vif.kernel_name();
        self.veth(&name, "eth0", guest);
        self.ip(&["link", "set", &name, "address", "fe:ff:ff:ff:ff:ff"]);
        guest.ip(&["link", "set", "eth0", "down"]);
        guest.ip(&["link", "set", "eth0", "address", vif.mac, "up"]);
    }

    pub fn bridge(&self, name: &str, mtu: u32) {
        self.ip(&["link", "add", name, "type", "bridge"]);
        self.ip(&["link", "set", name, "mtu", &mtu.to_string(), "up"]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // The records vifkit's runs left for a watcher go with the namespace.
        let bound = PathBuf::from(format!("/run/netns/{}", self.name));
        if let Ok(dir) = vifkit::sys::rundir::RunDir::of_namespace(&bound) {
            dir.remove();
        }
        let _ = run(Command::new("ip").args(["netns", "del", &self.name]));
    }
}

/// A `&'static str` for [`Vif`]'s fields, from a string made at run time.
pub fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A scratch directory of the test's own, removed on drop (also when the test panics).
pub fn scratch(tag: &str) -> Scratch {
    Scratch::new(tag).unwrap_or_else(|e| panic!("create a scratch directory for {tag}: {e}"))
}

/// A hook directory (for `VIFKIT_HOOK_DIR`) holding one executable hook, `name` with `body`.
pub fn hook_dir(tag: &str, name: &str, body: &str) -> Scratch {
    let dir = scratch(tag);
    let hook = dir.join(name);
    std::fs::write(&hook, body).unwrap();
    must(Command::new("chmod").arg("755").arg(&hook));
    dir
}

/// A private xenstore server on a socket of its own; the thread ends with the test binary.
pub struct Xenstore {
    pub socket: PathBuf,
    _dir: Scratch,
}

impl Xenstore {
    pub fn start() -> Xenstore {
        let dir = scratch("xs");
        let socket = dir.join("socket");
        Server::bind(&socket)
            .expect("bind the xenstore test server")
            .spawn();
        Xenstore { socket, _dir: dir }
    }

    pub fn client(&self) -> Client {
        Client::connect_path(&self.socket).expect("connect to the xenstore test server")
    }

    pub fn read(&self, path: &str) -> Option<String> {
        self.client().read_optional(path).unwrap()
    }

    pub fn write(&self, path: &str, value: &str) {
        self.client().write(path, value).unwrap()
    }

    pub fn rm(&self, path: &str) {
        self.client().rm(path).unwrap()
    }

    /// The keys libxl writes for `vif` before it runs the script's `online`.
    pub fn write_vif(&self, vif: &Vif) {
        vif.write_keys(&mut self.client())
            .unwrap_or_else(|e| panic!("write {}: {e:#}", vif.backend()))
    }
}

pub fn binary(name: &str) -> PathBuf {
    let path = match name {
        "vif-bridge" => env!("CARGO_BIN_EXE_vif-bridge"),
        "vif-route" => env!("CARGO_BIN_EXE_vif-route"),
        "vif-route-ifup" => env!("CARGO_BIN_EXE_vif-route-ifup"),
        "vif-nat" => env!("CARGO_BIN_EXE_vif-nat"),
        "vif-openvswitch" => env!("CARGO_BIN_EXE_vif-openvswitch"),
        "vifkit" => env!("CARGO_BIN_EXE_vifkit"),
        "qemu-ifup" => env!("CARGO_BIN_EXE_qemu-ifup"),
        "qemu-ifdown" => env!("CARGO_BIN_EXE_qemu-ifdown"),
        other => panic!("unknown binary {other}"),
    };
    PathBuf::from(path)
}

/// Bridge xenbr0 in a host namespace with a peer (192.0.2.242 behind vif9.0, MAC
/// 00:16:3e:20:20:20) for guests to reach, and a test xenstore.
pub fn bridge_with_peer(tag: &str) -> (Netns, Netns, Xenstore) {
    let host = Netns::new(&format!("{tag}h"));
    let peer = Netns::new(&format!("{tag}p"));
    host.bridge("xenbr0", 1500);
    host.veth("vif9.0", "eth0", &peer);
    peer.ip(&["link", "set", "eth0", "address", "00:16:3e:20:20:20"]);
    peer.ip(&["addr", "add", "192.0.2.242/24", "dev", "eth0"]);
    host.ip(&["link", "set", "vif9.0", "master", "xenbr0", "up"]);
    (host, peer, Xenstore::start())
}

/// Runs a Xen hotplug binary in `ns` with exactly what libxl sets (on a clean environment,
/// plus PATH and the test server's socket), for `online type_if=vif` style argv.
pub fn hotplug(
    ns: &Netns,
    xs: &Xenstore,
    vif: &Vif,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> Output {
    let binary = binary(vif.script_name());
    let mut cmd = vif.command(&ns.name, &binary, args, &xs.socket);
    cmd.envs(extra_env.iter().copied());
    run(&mut cmd)
}

/// The steps of the plan a dry run of `args` prints (`VIFKIT_DRY_RUN=1`): every line but
/// the `#` notes, so none when the kernel is already as the plan wants it.
pub fn dry_run_steps(
    ns: &Netns,
    xs: &Xenstore,
    vif: &Vif,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> Vec<String> {
    let env = [extra_env, &[("VIFKIT_DRY_RUN", "1")]].concat();
    let out = hotplug(ns, xs, vif, args, &env);
    assert_ok(&out);
    plan_steps(&out)
}

/// The step lines of a printed plan (a dry run's stdout).
pub fn plan_steps(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// `run` for every item, all at once (a thread each), and the results in the items' order:
/// what libxl does when many guests start together.
pub fn at_once<T: Sync, R: Send>(items: &[T], run: impl Fn(&T) -> R + Sync) -> Vec<R> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.iter().map(|item| scope.spawn(|| run(item))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The run succeeded; on failure the message carries its exit code and stderr.
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        stderr(out)
    );
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
