//! A plug that does not finish (issue 17): `vif-bridge online` of a vif renamed by `vifname`
//! SIGKILLed at many moments, and once deterministically after its rename (while a hook
//! runs), is repaired by a rerun, and an offline then removes everything; a hook that hangs
//! ends the run by its deadline, with the attach undone and nothing of the hook left
//! running. Needs root.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The guest's address: its port gets an antispoofing chain.
const GUEST_IP: &str = "192.0.2.10";

/// How long a rerun may take: a plug takes tens of milliseconds.
const RERUN_BOUND: Duration = Duration::from_secs(5);

/// A host with `xenbr0` and a guest whose `eth0` is the far end of vif3.0, which libxl
/// plugs with `vifname=web1` and `ip=192.0.2.10`.
struct Rig {
    host: Netns,
    _guest: Netns,
    xs: Xenstore,
    vif: Vif,
}

impl Rig {
    fn new(tag: &str) -> Rig {
        let host = Netns::new(&format!("{tag}h"));
        let guest = Netns::new(&format!("{tag}g"));
        host.bridge("xenbr0", 1500);
        let mut vif = Vif::new(3, 0);
        vif.vifname = Some("web1");
        host.netback_vif(&vif, &guest);
        let xs = Xenstore::start();
        xs.write_vif(&vif);
        xs.write(&format!("{}/ip", vif.backend()), GUEST_IP);
        Rig {
            host,
            _guest: guest,
            xs,
            vif,
        }
    }

    fn command(&self, args: &[&str], hooks: Option<&Path>) -> Command {
        let binary = binary(self.vif.script_name());
        let mut command = self
            .vif
            .command(&self.host.name, &binary, args, &self.xs.socket);
        if let Some(hooks) = hooks {
            command.env("VIFKIT_HOOK_DIR", hooks);
        }
        command
    }

    /// `online` started, not waited for. `ip netns exec` execs the binary: the child is it.
    fn start_online(&self, hooks: Option<&Path>) -> Child {
        self.command(&["online", "type_if=vif"], hooks)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start vif-bridge online")
    }

    /// Runs `args` to the end; returns its output and how long it took.
    fn run(&self, args: &[&str], hooks: Option<&Path>) -> (std::process::Output, Duration) {
        let started = Instant::now();
        let out = run(&mut self.command(args, hooks));
        (out, started.elapsed())
    }

    fn status(&self) -> Option<String> {
        self.xs
            .read(&format!("{}/hotplug-status", self.vif.backend()))
    }

    fn error(&self) -> Option<String> {
        self.xs
            .read(&format!("{}/hotplug-error", self.vif.backend()))
    }

    fn chains(&self) -> String {
        must(self.host.exec().args(["nft", "list", "chains", "netdev"]))
    }

    fn filtered(&self, name: &str) -> bool {
        self.chains().contains(&format!("chain {name} "))
    }

    /// Where the kill left the port, in words, for the test's log.
    fn state(&self) -> String {
        match (self.host.link("vif3.0"), self.host.link("web1")) {
            (Some(_), None) => "not renamed".to_owned(),
            (None, Some(web1)) => format!(
                "renamed (alias {}, master {}, {}, {})",
                web1["ifalias"],
                web1["master"],
                if is_up(&web1) { "up" } else { "down" },
                if self.filtered("web1") {
                    "filtered"
                } else {
                    "unfiltered"
                }
            ),
            other => panic!("vif3.0 and web1: {other:?}"),
        }
    }

    /// Plugged as libxl wants it: web1, recognisable by its alias, in xenbr0, up, filtered,
    /// and libxl told so.
    fn assert_plugged(&self) {
        assert!(self.host.link("vif3.0").is_none(), "vif3.0 is not renamed");
        let web1 = self.host.link("web1").expect("web1 exists");
        assert_eq!(web1["ifalias"], "vif3.0", "{web1}");
        assert_eq!(web1["master"], "xenbr0", "{web1}");
        assert!(is_up(&web1), "web1 is down: {web1}");
        assert!(self.filtered("web1"), "no chain web1: {}", self.chains());
        assert_eq!(self.status().as_deref(), Some("connected"));
    }

    /// What an offline leaves: web1 down, out of its bridge, without its chain.
    fn assert_unplugged(&self) {
        let web1 = self.host.link("web1").expect("web1 is netback's to delete");
        assert!(
            web1.get("master").is_none(),
            "web1 is still in a bridge: {web1}"
        );
        assert!(!is_up(&web1), "web1 is still up: {web1}");
        assert!(
            !self.filtered("web1"),
            "chain web1 is left: {}",
            self.chains()
        );
    }

    /// A rerun of `online` converges within [`RERUN_BOUND`], and `offline` then removes
    /// everything.
    fn rerun_and_unplug(&self) {
        let (out, took) = self.run(&["online", "type_if=vif"], None);
        assert_ok(&out);
        assert!(took < RERUN_BOUND, "the rerun took {took:?}");
        self.assert_plugged();
        let (out, _) = self.run(&["offline", "type_if=vif"], None);
        assert_ok(&out);
        self.assert_unplugged();
    }
}

fn is_up(link: &serde_json::Value) -> bool {
    link["flags"]
        .as_array()
        .is_some_and(|flags| flags.iter().any(|f| f == "UP"))
}

/// Waits (at most 10 s) for `path` to hold a process id, and returns it.
fn pid_in(path: &Path) -> Pid {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            return Pid::from_raw(pid);
        }
        assert!(Instant::now() < until, "nothing wrote {}", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether process `pid` is gone, or a zombie its parent has yet to reap (waits 2 s).
fn gone(pid: Pid) -> bool {
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        let dead = !vifkit::sys::process::running(pid.as_raw() as u32);
        if dead || Instant::now() >= until {
            return dead;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_plug_killed_at_any_moment_is_repaired_by_a_rerun() {
    // The moments spread over a whole plug, as long as one takes on this machine.
    let whole = {
        let rig = Rig::new("skt");
        let (out, took) = rig.run(&["online", "type_if=vif"], None);
        assert_ok(&out);
        took
    };
    let mut seen = vec![];
    for n in 0..=12u32 {
        let delay = whole * n / 12;
        let rig = Rig::new(&format!("sk{n}"));
        let mut child = rig.start_online(None);
        std::thread::sleep(delay);
        child.kill().expect("SIGKILL vif-bridge");
        child.wait().unwrap();
        seen.push(format!("{delay:.1?}: {}", rig.state()));
        rig.rerun_and_unplug();
    }
    eprintln!(
        "a whole plug took {whole:.1?}; killed at:\n  {}",
        seen.join("\n  ")
    );
}

#[test]
fn a_plug_killed_as_its_rename_shows_is_repaired_by_a_rerun() {
    let rig = Rig::new("skm");
    let mut monitor = Command::new("ip")
        .args(["-n", &rig.host.name, "-o", "monitor", "link"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ip monitor");
    // ip monitor says nothing when it listens: give it the time to subscribe.
    std::thread::sleep(Duration::from_millis(200));
    let mut child = rig.start_online(None);
    // Read on a thread of its own, so that a monitor that never shows web1 fails the test
    // rather than hanging it. A veth shows as "3: web1@if2: ...".
    let stdout = monitor.stdout.take().unwrap();
    let (shown, renames) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if (line.contains(": web1:") || line.contains(": web1@")) && shown.send(()).is_err() {
                break;
            }
        }
    });
    let renamed = renames.recv_timeout(Duration::from_secs(10)).is_ok();
    child.kill().expect("SIGKILL vif-bridge");
    child.wait().unwrap();
    monitor.kill().unwrap();
    monitor.wait().unwrap();
    assert!(renamed, "the monitor never showed web1");
    let state = rig.state();
    assert!(state.starts_with("renamed (alias \"vif3.0\""), "{state}");
    eprintln!("killed as the rename showed: {state}");
    rig.rerun_and_unplug();
}

#[test]
fn a_plug_killed_after_its_rename_is_repaired_by_a_rerun() {
    let rig = Rig::new("skh");
    let scratch = scratch("skh-files");
    let (blocking, pidfile) = (scratch.join("block"), scratch.join("hook.pid"));
    // Only while `block` exists: the rerun's hook passes.
    let body = format!(
        "[ -e {block} ] || return 0\necho $$ > {pid}\nsleep 120\n",
        block = blocking.display(),
        pid = pidfile.display()
    );
    let hooks = hook_dir("skh-hooks", "50-test.hook", &body);
    std::fs::write(&blocking, "").unwrap();
    let mut child = rig.start_online(Some(hooks.path()));
    // The hook runs after every other step, the rename first among them.
    let hook = pid_in(&pidfile);
    child.kill().expect("SIGKILL vif-bridge");
    child.wait().unwrap();
    // The hook leads its own process group; libxl would leave it running, the test does not.
    killpg(hook, Signal::SIGKILL).unwrap();
    assert!(gone(hook));
    std::fs::remove_file(&blocking).unwrap();

    let web1 = rig.host.link("web1").expect("renamed before the hook");
    assert_eq!(web1["ifalias"], "vif3.0", "{web1}");
    assert_ne!(
        rig.status().as_deref(),
        Some("connected"),
        "killed before it said so"
    );

    let (out, took) = rig.run(&["online", "type_if=vif"], Some(hooks.path()));
    assert_ok(&out);
    assert!(took < RERUN_BOUND, "the rerun took {took:?}");
    rig.assert_plugged();
    let (out, _) = rig.run(&["offline", "type_if=vif"], Some(hooks.path()));
    assert_ok(&out);
    rig.assert_unplugged();
}

#[test]
fn a_hook_that_hangs_ends_the_plug_by_its_deadline_and_the_plug_is_undone() {
    let rig = Rig::new("skd");
    let scratch = scratch("skd-files");
    let (pidfile, background) = (scratch.join("hook.pid"), scratch.join("sleep.pid"));
    let body = format!(
        "echo $$ > {pid}\nsleep 120 &\necho $! > {bg}\nsleep 120\n",
        pid = pidfile.display(),
        bg = background.display()
    );
    let hooks = hook_dir("skd-hooks", "50-test.hook", &body);
    let (out, took) = rig.run(&["online", "type_if=vif"], Some(hooks.path()));
    assert!(
        took <= Duration::from_secs(35),
        "online took {took:?}: {}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let error = format!(
        "run hooks in {}: hook 50-test.hook did not finish in time: killed it and its process group",
        hooks.display()
    );
    assert!(stderr(&out).contains(&error), "{}", stderr(&out));
    assert_eq!(rig.error().as_deref(), Some(error.as_str()));
    assert_eq!(rig.status().as_deref(), Some("error"));

    // Undone: back to its kernel name without the alias, down, out of the bridge, unfiltered.
    assert!(rig.host.link("web1").is_none(), "web1 was not renamed back");
    let vif = rig.host.link("vif3.0").expect("vif3.0 is back");
    assert!(vif.get("ifalias").is_none(), "the alias is left: {vif}");
    assert!(
        vif.get("master").is_none(),
        "vif3.0 is still in a bridge: {vif}"
    );
    assert!(!is_up(&vif), "vif3.0 is up: {vif}");
    assert!(
        !rig.filtered("vif3.0") && !rig.filtered("web1"),
        "{}",
        rig.chains()
    );
    // Nothing of the hook runs on.
    assert!(gone(pid_in(&pidfile)), "the hook runs on");
    assert!(gone(pid_in(&background)), "what the hook started runs on");
    eprintln!("online with a hanging hook ended after {took:?}");
}
