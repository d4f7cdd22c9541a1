//! What a run does when xenstore is sick: a xenstored that never accepts, one that answers
//! every request 9.5 s late, one late answer, a regular file named as xenstore. Each run
//! ends well inside libxl's 40 s kill (the bound asserted is 35 s), exit 1, with nothing
//! left plugged, and reports in xenstore where xenstore still answers. Needs root.
//!
//! The slow cases wait up to the run's deadline (about 30 s) by design, so they run in one
//! test, each on a thread of its own: the file takes as long as its slowest case.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::stall_proxy::{NeverAccepts, StallProxy};
use common::*;
use serde_json::Value;

/// libxl kills the script at 40 s; a run must have ended, reported, well before.
const BOUND: Duration = Duration::from_secs(35);

/// A run still going then has hung: it is killed and the test fails.
const HANG: Duration = Duration::from_secs(60);

/// The per-request timeout of vifkit's xenstore client is 10 s: this is past it.
const PAST_A_REQUEST: Duration = Duration::from_secs(11);

/// Host namespace with bridge `xenbr0` (MTU 1500, as the frontend's `mtu` key: online
/// writes nothing before `connected`), vif3.0 whose far end is the guest's `eth0`.
/// With [`Rig::xenstore`] the guest has an address, so its port gets a filter chain.
struct Rig {
    host: Netns,
    _guest: Netns,
    vif: Vif,
}

impl Rig {
    fn new(tag: &str) -> Rig {
        let host = Netns::new(&format!("{tag}h"));
        let guest = Netns::new(&format!("{tag}g"));
        host.bridge("xenbr0", 1500);
        let vif = Vif::new(3, 0);
        host.veth(&vif.kernel_name(), "eth0", &guest);
        Rig {
            host,
            _guest: guest,
            vif,
        }
    }

    /// A test xenstored with what libxl writes for the vif, and the guest's address.
    fn xenstore(&self) -> Xenstore {
        let xs = Xenstore::start();
        xs.write_vif(&self.vif);
        xs.write(&format!("{}/ip", self.vif.backend()), "192.0.2.10");
        xs
    }

    /// `vif-bridge ARGS` as libxl runs it, with xenstore at `xenstored`; the output and how
    /// long the run took.
    fn run(&self, xenstored: &Path, args: &[&str]) -> (Output, Duration) {
        let binary = binary(self.vif.script_name());
        let mut cmd = self.vif.command(&self.host.name, &binary, args, xenstored);
        timed(&mut cmd)
    }

    /// Nothing of the plug is left: vif3.0 in no bridge, no antispoofing chain.
    fn assert_unplugged(&self) {
        assert_eq!(self.host.master_of("vif3.0"), None, "vif3.0 still plugged");
        assert_eq!(chains(&self.host), Vec::<String>::new(), "a chain is left");
    }
}

/// Runs `cmd` to its end, and how long that took; a run still going at [`HANG`] is killed,
/// so a regression fails the test instead of hanging it.
fn timed(cmd: &mut Command) -> (Output, Duration) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    use std::sync::mpsc::{RecvTimeoutError, channel};
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    // `ip netns exec` execs the binary: this is its pid.
    let pid = Pid::from_raw(child.id() as i32);
    let (done, ended) = channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if ended.recv_timeout(HANG) == Err(RecvTimeoutError::Timeout) {
            let _ = kill(pid, Signal::SIGKILL);
        }
    });
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    drop(done);
    watchdog.join().unwrap();
    (out, took)
}

/// Every nf_tables chain in `ns`, as "family table chain".
fn chains(ns: &Netns) -> Vec<String> {
    let out = must(ns.exec().args(["nft", "-j", "list", "chains"]));
    let json: Value = serde_json::from_str(&out).unwrap();
    json["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("chain"))
        .map(|c| format!("{} {} {}", c["family"], c["table"], c["name"]))
        .collect()
}

/// The run failed in time, and said why in one line of its own.
fn assert_failed_in_time(out: &Output, took: Duration, why: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(took <= BOUND, "took {took:?}: {err}");
    let lines: Vec<_> = err.lines().filter(|l| l.contains(why)).collect();
    assert_eq!(lines.len(), 1, "one line saying {why:?}: {err}");
    assert!(!err.contains("payload of"), "a desynchronised read: {err}");
}

/// A xenstored whose listen queue is full: the connect gives up at its own bound.
fn never_accepting_xenstored() -> Duration {
    let rig = Rig::new("xsfull");
    let xenstored = NeverAccepts::start();
    let (out, took) = rig.run(&xenstored.socket, &["online", "type_if=vif"]);
    let why = format!(
        "cannot connect to xenstore (tried {}: no connection accepted in ",
        xenstored.socket.display()
    );
    assert_failed_in_time(&out, took, &why);
    assert!(
        stderr(&out).contains(" s (its listen queue is full)"),
        "{}",
        stderr(&out)
    );
    rig.assert_unplugged();
    took
}

/// Every answer 9.5 s late, each within the request's own 10 s: the keys and the
/// frontend's MTU are read, the port is plugged, and the run's deadline ends the write of
/// `connected`. The attach is undone; the report (its own 2 s) gets no answer either.
fn every_answer_late() -> Duration {
    let rig = Rig::new("xsslow");
    let xs = rig.xenstore();
    let proxy = StallProxy::start(&xs.socket, |_| Duration::from_millis(9500));
    let (out, took) = rig.run(&proxy.socket, &["online", "type_if=vif"]);
    assert_failed_in_time(&out, took, "hotplug-status = connected: write ");
    let err = stderr(&out);
    assert!(err.contains("no reply before the deadline"), "{err}");
    assert!(err.contains("attach vif3.0 to bridge xenbr0"), "{err}");
    assert!(err.contains("undo: detach vif3.0 from its bridge"), "{err}");
    assert!(
        err.contains("undo: delete the antispoofing rules of vif3.0"),
        "{err}"
    );
    assert!(err.contains("cannot report the error in xenstore"), "{err}");
    rig.assert_unplugged();
    took
}

/// One answer (to the write of `connected`) past the request's timeout, every other one at
/// once: the run fails that request and undoes the attach; the report goes over a fresh
/// connection and lands.
fn one_answer_late() -> Duration {
    let rig = Rig::new("xsone");
    let xs = rig.xenstore();
    let delayed = std::sync::Mutex::new(None);
    let proxy = StallProxy::start(&xs.socket, move |batch| {
        let mut delayed = delayed.lock().unwrap();
        match delayed.is_none() && batch.writes("/hotplug-status") {
            true => {
                *delayed = Some(batch.index);
                PAST_A_REQUEST
            }
            false => Duration::ZERO,
        }
    });
    let (out, took) = rig.run(&proxy.socket, &["online", "type_if=vif"]);
    let failed = "hotplug-status = connected: write ";
    assert_failed_in_time(&out, took, failed);
    let err = stderr(&out);
    assert!(
        err.contains("undo: delete the antispoofing rules of vif3.0"),
        "{err}"
    );
    assert!(!err.contains("cannot report"), "{err}");
    rig.assert_unplugged();
    let backend = rig.vif.backend();
    assert_eq!(
        xs.read(&format!("{backend}/hotplug-status")).as_deref(),
        Some("error")
    );
    let error = xs.read(&format!("{backend}/hotplug-error")).unwrap();
    assert!(
        error.ends_with("/hotplug-status: no reply before the deadline"),
        "{error}"
    );
    // The stalled write and the report came over two connections.
    let seen = proxy.seen();
    let stalled = seen.iter().find(|b| b.writes("/hotplug-status")).unwrap();
    let report = seen.iter().find(|b| b.writes("/hotplug-error")).unwrap();
    assert_ne!(stalled.conn, report.conn, "{seen:#?}");
    took
}

/// `vifkit check` of a plugged port, its xenstore answering 9.5 s late: the verb ends by
/// the run's deadline, as a hotplug run does.
fn admin_verb_with_late_answers() -> Duration {
    let rig = Rig::new("xsadm");
    let xs = rig.xenstore();
    let (out, _) = rig.run(&xs.socket, &["online", "type_if=vif"]);
    assert_ok(&out);
    let proxy = StallProxy::start(&xs.socket, |_| Duration::from_millis(9500));
    let mut cmd = rig.host.exec();
    cmd.arg("env")
        .arg(format!("XENSTORED_PATH={}", proxy.socket.display()))
        .arg(binary("vifkit"))
        .args(["check", "vif3.0"]);
    let (out, took) = timed(&mut cmd);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(took <= BOUND, "took {took:?}: {err}");
    assert!(
        err.contains("no reply before the deadline") || err.contains("out of time"),
        "{err}"
    );
    took
}

#[test]
fn sick_xenstores_end_the_run_in_time_and_leave_nothing_plugged() {
    type Case = (&'static str, fn() -> Duration);
    let cases: [Case; 4] = [
        ("a xenstored that never accepts", never_accepting_xenstored),
        ("every answer 9.5 s late", every_answer_late),
        ("one answer past its timeout", one_answer_late),
        ("vifkit check, answers late", admin_verb_with_late_answers),
    ];
    let outcomes = at_once(&cases, |(name, case)| {
        let outcome = std::panic::catch_unwind(*case);
        (*name, outcome)
    });
    let mut failed = vec![];
    for (name, outcome) in outcomes {
        match outcome {
            Ok(took) => eprintln!("{name}: ended in {took:.1?}"),
            Err(_) => failed.push(name),
        }
    }
    assert!(
        failed.is_empty(),
        "failed: {failed:?} (their panics are above)"
    );
}

#[test]
fn a_regular_file_named_as_xenstore_is_refused_and_left_unchanged() {
    let rig = Rig::new("xsfile");
    let dir = scratch("xsfile");
    let file = dir.join("xenbus");
    let bytes = b"not xenstore\n\x00\x01\x02";
    std::fs::write(&file, bytes).unwrap();
    let (out, took) = rig.run(&file, &["online", "type_if=vif"]);
    let why = format!(
        "XENSTORED_PATH={} is a regular file: xenstore is reached through a unix socket \
         or the xenbus character device",
        file.display()
    );
    assert_failed_in_time(&out, took, &why);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
    rig.assert_unplugged();
}
