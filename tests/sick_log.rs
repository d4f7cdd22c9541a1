//! Log sinks that would hold a run up or garble its lines (issue 17): a syslog that stopped
//! reading, `xen-hotplug.log` as a FIFO without a reader or with one that stopped reading,
//! a stuck stderr pipe, and 100 runs appending to one log file at once. Each fixture is
//! mounted in the private mount namespace `ip netns exec` gives the run (a tmpfs over
//! `/dev` or `/var/log`, so the host's are never touched). Needs root.

mod common;

use std::io::{ErrorKind, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

/// A run must end within this whatever its log sinks do; a normal plug here takes well
/// under a second (each test prints what its runs took).
const BOUND: Duration = Duration::from_secs(5);
/// A run still going after this is killed and the test fails (an old build would wait for
/// ever).
const KILL_AFTER: Duration = Duration::from_secs(30);

/// What the run's private mount namespace gets before the binary starts; `$1` is the
/// fixture's path.
#[derive(Clone, Copy)]
enum Mounts {
    /// A tmpfs over `/dev` with `null` and a `log` that is the fixture socket.
    DevLog,
    /// A tmpfs over `/var/log` with `xen/` the fixture directory.
    XenLogDir,
}

impl Mounts {
    fn script(self) -> &'static str {
        match self {
            Mounts::DevLog => {
                "mount -t tmpfs vk-dev /dev && mknod -m 666 /dev/null c 1 3 && \
                 touch /dev/log && mount --bind \"$1\" /dev/log"
            }
            Mounts::XenLogDir => {
                "mount -t tmpfs vk-log /var/log && mkdir /var/log/xen && \
                 mount --bind \"$1\" /var/log/xen"
            }
        }
    }
}

/// Host namespace with bridge `xenbr0`, the far ends of the vifs in a peer namespace, the
/// vifs' keys in a test xenstore, and a scratch directory for the fixtures.
struct Rig {
    host: Netns,
    _peers: Netns,
    xs: Xenstore,
    vifs: Vec<Vif>,
    dir: Scratch,
}

impl Rig {
    fn new(tag: &str, count: u32) -> Rig {
        let host = Netns::new(&format!("{tag}h"));
        let peers = Netns::new(&format!("{tag}p"));
        host.bridge("xenbr0", 1500);
        let xs = Xenstore::start();
        let vifs: Vec<Vif> = (1..=count).map(|domid| Vif::new(domid, 0)).collect();
        for vif in &vifs {
            host.veth(&vif.kernel_name(), &format!("p{}", vif.domid), &peers);
            xs.write_vif(vif);
        }
        Rig {
            host,
            _peers: peers,
            xs,
            vifs,
            dir: scratch(tag),
        }
    }

    /// `vif-bridge ARGS` for `vif` as libxl runs it, after `mounts` of `fixture`.
    fn command(&self, vif: &Vif, args: &[&str], mounts: Mounts, fixture: &Path) -> Command {
        let base = vif.command(
            &self.host.name,
            &binary(vif.script_name()),
            args,
            &self.xs.socket,
        );
        let mut cmd = Command::new(base.get_program());
        cmd.args(["netns", "exec", &self.host.name, "sh", "-c"])
            .arg(format!("{} && shift && exec \"$@\"", mounts.script()))
            .arg("sh")
            .arg(fixture)
            // `netns exec NS` is the base's first three arguments; the binary and its
            // arguments follow.
            .args(base.get_args().skip(3))
            .stderr(Stdio::piped())
            .env_clear();
        for (key, value) in base.get_envs() {
            if let Some(value) = value {
                cmd.env(key, value);
            }
        }
        cmd
    }

    /// online with `env` added, checked within [`BOUND`]: the port is on the bridge and
    /// libxl hears `connected`.
    fn online(&self, vif: &Vif, mounts: Mounts, fixture: &Path, env: &[(&str, &str)]) -> Run {
        self.xs.write_vif(vif);
        let mut cmd = self.command(vif, &["online", "type_if=vif"], mounts, fixture);
        cmd.envs(env.iter().copied());
        let run = run_bounded(cmd);
        assert_ok(&run.out);
        assert!(
            run.took < BOUND,
            "online took {:?}: {}",
            run.took,
            stderr(&run.out)
        );
        self.assert_plugged(vif);
        run
    }

    /// offline after libxl's detach, with `env` added, checked within [`BOUND`]: the port is
    /// out of the bridge and down.
    fn offline(&self, vif: &Vif, mounts: Mounts, fixture: &Path, env: &[(&str, &str)]) -> Run {
        vif.begin_detach(&mut self.xs.client()).unwrap();
        let mut cmd = self.command(vif, &["offline", "type_if=vif"], mounts, fixture);
        cmd.envs(env.iter().copied());
        let run = run_bounded(cmd);
        assert_ok(&run.out);
        assert!(
            run.took < BOUND,
            "offline took {:?}: {}",
            run.took,
            stderr(&run.out)
        );
        self.assert_unplugged(vif);
        run
    }

    fn assert_plugged(&self, vif: &Vif) {
        assert_eq!(
            self.host.master_of(&vif.kernel_name()).as_deref(),
            Some("xenbr0")
        );
        assert_eq!(
            self.xs
                .read(&format!("{}/hotplug-status", vif.backend()))
                .as_deref(),
            Some("connected")
        );
    }

    fn assert_unplugged(&self, vif: &Vif) {
        let link = self.host.link(&vif.kernel_name()).unwrap();
        assert!(link.get("master").is_none(), "{link}");
        assert!(!link["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    }

    /// A directory to mount over `/var/log/xen`.
    fn log_dir(&self) -> PathBuf {
        let dir = self.dir.join("xen");
        std::fs::create_dir(&dir).unwrap();
        dir
    }

    /// A plain online and offline of `vif`, no fixture: what a plug costs here.
    fn normal_plug(&self, vif: &Vif) -> (Duration, Duration) {
        self.xs.write_vif(vif);
        let started = Instant::now();
        assert_ok(&hotplug(
            &self.host,
            &self.xs,
            vif,
            &["online", "type_if=vif"],
            &[],
        ));
        let online = started.elapsed();
        vif.begin_detach(&mut self.xs.client()).unwrap();
        let started = Instant::now();
        assert_ok(&hotplug(
            &self.host,
            &self.xs,
            vif,
            &["offline", "type_if=vif"],
            &[],
        ));
        (online, started.elapsed())
    }
}

/// A finished run: its output, how long it took, and its pid (`ip netns exec` and `sh`
/// exec the binary, so the child's pid is the binary's: the pid in its log lines).
struct Run {
    out: Output,
    took: Duration,
    pid: u32,
}

/// Runs `cmd` (stdout captured; stderr as the caller set it), killing it after
/// [`KILL_AFTER`].
fn run_bounded(mut cmd: Command) -> Run {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    let started = Instant::now();
    let child = cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(KILL_AFTER) {
        Ok(out) => Run {
            out: out.unwrap(),
            took: started.elapsed(),
            pid,
        },
        Err(_) => {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            panic!("{cmd:?} still running after {KILL_AFTER:?}: killed");
        }
    }
}

#[test]
fn a_syslog_that_stopped_reading_holds_no_run_up() {
    let rig = Rig::new("slog", 2);
    let socket = rig.dir.join("log.sock");
    // The daemon's socket, never read; its queue filled first, as a stuck daemon's is.
    let daemon = UnixDatagram::bind(&socket).unwrap();
    let filler = UnixDatagram::unbound().unwrap();
    filler.set_nonblocking(true).unwrap();
    filler.connect(&socket).unwrap();
    let mut queued = 0;
    loop {
        match filler.send(b"<30>filler: queued") {
            Ok(_) => queued += 1,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("fill the syslog queue: {e}"),
        }
        assert!(queued < 100_000, "the syslog queue never filled");
    }

    let normal = rig.normal_plug(&rig.vifs[1]);
    let vif = &rig.vifs[0];
    let mut took = Vec::new();
    for _ in 0..3 {
        let online = rig.online(vif, Mounts::DevLog, &socket, &[]);
        assert_drops_reported(&online.out, "syslog (/dev/log)");
        let offline = rig.offline(vif, Mounts::DevLog, &socket, &[]);
        assert_drops_reported(&offline.out, "syslog (/dev/log)");
        took.push((online.took, offline.took));
    }
    eprintln!("normal plug (online, offline): {normal:?}; with a stuck syslog: {took:?}");

    // Nothing of ours was queued: every record was dropped, none waited for room.
    daemon.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    let mut left = 0;
    while let Ok(n) = daemon.recv(&mut buf) {
        assert_eq!(&buf[..n], b"<30>filler: queued");
        left += 1;
    }
    assert_eq!(left, queued);
}

/// The run's last stderr line counts the records `sink` dropped because it had no room.
fn assert_drops_reported(out: &Output, sink: &str) {
    let err = stderr(out);
    let last = err.lines().last().unwrap_or_default();
    let count = last
        .strip_prefix("vif-bridge: warning: ")
        .and_then(|rest| rest.strip_prefix("vif").and_then(|r| r.split_once(".0: ")))
        .and_then(|(_domid, rest)| {
            rest.strip_suffix(&format!(
                " dropped by {sink}: Resource temporarily unavailable (os error 11)"
            ))
        })
        .and_then(|rest| {
            rest.strip_suffix(" log records")
                .or(rest.strip_suffix(" log record"))
        })
        .and_then(|count| count.parse::<u32>().ok());
    assert!(count.is_some_and(|n| n > 0), "{err}");
}

/// A line of `xen-hotplug.log`, checked whole: `2026-11-23T20:14:16.123Z
/// vif-bridge[1234]: info: MESSAGE`, the message one line of text with no second record in
/// it.
#[derive(Debug, PartialEq)]
struct LogLine {
    pid: u32,
    level: String,
    message: String,
}

fn parse_line(line: &str) -> Result<LogLine, String> {
    let (at, rest) = line.split_once(' ').ok_or("no timestamp")?;
    let stamp: jiff::Timestamp = at.parse().map_err(|e| format!("timestamp {at:?}: {e}"))?;
    if format!("{stamp:.3}") != at {
        return Err(format!("timestamp {at:?} is not UTC to the millisecond"));
    }
    let rest = rest.strip_prefix("vif-bridge[").ok_or("no vif-bridge[")?;
    let (pid, rest) = rest.split_once("]: ").ok_or("no ]: after the pid")?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("pid {pid:?}"));
    }
    let (level, message) = rest.split_once(": ").ok_or("no level")?;
    if !["error", "warning", "info", "debug"].contains(&level) {
        return Err(format!("level {level:?}"));
    }
    if message.is_empty()
        || message.contains(char::is_control)
        || message.contains("vif-bridge[")
        || message.contains("Z vif-bridge")
    {
        return Err(format!("message {message:?}"));
    }
    Ok(LogLine {
        pid: pid.parse().map_err(|e| format!("pid {pid:?}: {e}"))?,
        level: level.to_owned(),
        message: message.to_owned(),
    })
}

/// Every line of `log` parses; returns them.
fn parse_log(log: &str) -> Vec<LogLine> {
    assert!(
        log.is_empty() || log.ends_with('\n'),
        "a cut last line: {log:?}"
    );
    log.lines()
        .enumerate()
        .map(|(n, line)| {
            parse_line(line).unwrap_or_else(|e| panic!("line {}: {e}: {line:?}", n + 1))
        })
        .collect()
}

/// What a run wrote to stderr, as the file gets it: its records but traces, in order.
fn records_of(run: &Run) -> Vec<LogLine> {
    stderr(&run.out)
        .lines()
        .map(|line| {
            let rest = line
                .strip_prefix("vif-bridge: ")
                .unwrap_or_else(|| panic!("stderr line {line:?}"));
            let (level, message) = ["error", "warning", "debug", "trace"]
                .iter()
                .find_map(|level| {
                    rest.strip_prefix(&format!("{level}: "))
                        .map(|message| (*level, message))
                })
                .unwrap_or(("info", rest));
            LogLine {
                pid: run.pid,
                level: level.to_owned(),
                message: message.to_owned(),
            }
        })
        .filter(|record| record.level != "trace")
        .collect()
}

/// The file holds exactly the records of `runs` (each whole, each once, in each run's
/// order), and nothing else.
fn assert_log_holds(log: &str, runs: &[&Run]) {
    let lines = parse_log(log);
    for run in runs {
        let mine: Vec<&LogLine> = lines.iter().filter(|l| l.pid == run.pid).collect();
        let expected = records_of(run);
        assert!(!expected.is_empty(), "run {} logged nothing", run.pid);
        assert_eq!(mine, expected.iter().collect::<Vec<_>>(), "run {}", run.pid);
    }
    let total: usize = runs.iter().map(|run| records_of(run).len()).sum();
    assert_eq!(lines.len(), total, "{log}");
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o644)).unwrap();
}

#[test]
fn a_log_fifo_without_a_reader_is_skipped_untouched() {
    let rig = Rig::new("fifo", 1);
    let dir = rig.log_dir();
    let fifo = dir.join("xen-hotplug.log");
    mkfifo(&fifo);
    let before = std::fs::metadata(&fifo).unwrap();
    let vif = &rig.vifs[0];
    let debug = [("VIFKIT_LOG", "debug")];
    let online = rig.online(vif, Mounts::XenLogDir, &dir, &debug);
    let offline = rig.offline(vif, Mounts::XenLogDir, &dir, &debug);
    eprintln!(
        "with a FIFO and no reader: online {:?}, offline {:?}",
        online.took, offline.took
    );
    for run in [&online, &offline] {
        let err = stderr(&run.out);
        assert!(
            err.contains(
                "vif-bridge: debug: vif1.0: not logging to /var/log/xen/xen-hotplug.log: \
                 a FIFO without a reader\n"
            ),
            "{err}"
        );
    }
    let after = std::fs::metadata(&fifo).unwrap();
    assert!(after.file_type().is_fifo());
    assert_eq!(
        (after.ino(), after.mtime(), after.mtime_nsec(), after.mode()),
        (
            before.ino(),
            before.mtime(),
            before.mtime_nsec(),
            before.mode()
        )
    );
    let entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["xen-hotplug.log"]);
}

/// A FIFO with a reader is what some hosts use to collect the log (`mkfifo` + `tail -f`,
/// which upstream's `2>>` works with): its records arrive whole; when the reader stops
/// reading, they are dropped and counted instead of waited for.
#[test]
fn a_log_fifo_whose_reader_stopped_reading_holds_no_run_up() {
    let rig = Rig::new("fifr", 1);
    let dir = rig.log_dir();
    let fifo = dir.join("xen-hotplug.log");
    mkfifo(&fifo);
    let nonblocking = nix::libc::O_NONBLOCK;
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nonblocking)
        .open(&fifo)
        .unwrap();
    let writer = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nonblocking)
        .open(&fifo)
        .unwrap();
    let mut queued = 0;
    loop {
        match nix::unistd::write(&writer, b"queued\n") {
            Ok(_) => queued += 1,
            Err(nix::errno::Errno::EAGAIN) => break,
            Err(e) => panic!("fill the FIFO: {e}"),
        }
    }
    drop(writer);
    let vif = &rig.vifs[0];
    let online = rig.online(vif, Mounts::XenLogDir, &dir, &[]);
    assert_drops_reported(&online.out, "/var/log/xen/xen-hotplug.log");
    let mut held = String::new();
    reader.read_to_string(&mut held).unwrap();
    assert_eq!(held, "queued\n".repeat(queued));

    // The reader reads again: the next run's records arrive whole.
    let offline = rig.offline(vif, Mounts::XenLogDir, &dir, &[]);
    eprintln!(
        "with a full FIFO: online {:?}; read again: offline {:?}",
        online.took, offline.took
    );
    let mut log = String::new();
    reader.read_to_string(&mut log).unwrap();
    assert_log_holds(&log, &[&offline]);
}

#[test]
fn a_stderr_pipe_nobody_reads_holds_no_run_up() {
    let rig = Rig::new("serr", 1);
    let dir = rig.log_dir();
    let (_reader, writer) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    fcntl(&writer, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
    while nix::unistd::write(&writer, &[b'x'; 512]).is_ok() {}
    // Blocking again, as the pipe to a stuck log daemon is.
    fcntl(&writer, FcntlArg::F_SETFL(OFlag::empty())).unwrap();
    let vif = &rig.vifs[0];
    rig.xs.write_vif(vif);
    let mut cmd = rig.command(vif, &["online", "type_if=vif"], Mounts::XenLogDir, &dir);
    cmd.stderr(Stdio::from(writer));
    let run = run_bounded(cmd);
    eprintln!("with a full stderr pipe: online {:?}", run.took);
    assert_ok(&run.out);
    assert!(run.took < BOUND, "online took {:?}", run.took);
    rig.assert_plugged(vif);
    let log = std::fs::read_to_string(dir.join("xen-hotplug.log")).unwrap();
    let lines = parse_log(&log);
    let last = lines.last().unwrap();
    assert_eq!(last.level, "warning");
    assert!(
        last.message
            .ends_with(" dropped by stderr: Resource temporarily unavailable (os error 11)"),
        "{log}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.message == "vif1.0: attach vif1.0 to bridge xenbr0"),
        "{log}"
    );
}

/// Upstream's `2>>` follows a symlink, and so do we (to a regular file or a FIFO); a symlink
/// to a device is skipped.
#[test]
fn a_symlinked_log_file_is_followed_to_a_regular_file_only() {
    let rig = Rig::new("syml", 1);
    let dir = rig.log_dir();
    let link = dir.join("xen-hotplug.log");
    std::os::unix::fs::symlink("elsewhere.log", &link).unwrap();
    let vif = &rig.vifs[0];
    let online = rig.online(vif, Mounts::XenLogDir, &dir, &[]);
    let log = std::fs::read_to_string(dir.join("elsewhere.log")).unwrap();
    assert_log_holds(&log, &[&online]);

    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    let offline = rig.offline(vif, Mounts::XenLogDir, &dir, &[("VIFKIT_LOG", "debug")]);
    let err = stderr(&offline.out);
    assert!(
        err.contains(
            "vif-bridge: debug: vif1.0: not logging to /var/log/xen/xen-hotplug.log: \
             neither a regular file nor a FIFO\n"
        ),
        "{err}"
    );
}

#[test]
fn a_hundred_runs_at_once_keep_every_line_of_the_shared_log_whole() {
    let rig = Rig::new("many", 50);
    let dir = rig.log_dir();
    let started = Instant::now();
    let online = at_once(&rig.vifs, |vif| {
        rig.xs.write_vif(vif);
        run_bounded(rig.command(vif, &["online", "type_if=vif"], Mounts::XenLogDir, &dir))
    });
    let online_took = started.elapsed();
    for (vif, run) in rig.vifs.iter().zip(&online) {
        assert_ok(&run.out);
        rig.assert_plugged(vif);
    }
    let started = Instant::now();
    let offline = at_once(&rig.vifs, |vif| {
        vif.begin_detach(&mut rig.xs.client()).unwrap();
        run_bounded(rig.command(vif, &["offline", "type_if=vif"], Mounts::XenLogDir, &dir))
    });
    let offline_took = started.elapsed();
    for (vif, run) in rig.vifs.iter().zip(&offline) {
        assert_ok(&run.out);
        rig.assert_unplugged(vif);
    }
    let log = std::fs::read_to_string(dir.join("xen-hotplug.log")).unwrap();
    let runs: Vec<&Run> = online.iter().chain(&offline).collect();
    assert_log_holds(&log, &runs);
    eprintln!(
        "50 online at once: {online_took:?}; 50 offline at once: {offline_took:?}; {} lines",
        log.lines().count()
    );
}
