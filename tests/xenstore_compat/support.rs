//! Helpers for xenstore_compat: a private server per test, the Debian
//! tools run against it with a deadline, and raw wire access.

use std::io::Read;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use vifkit::lab::Scratch;
use vifkit::lab::xenstored::Server;
use vifkit::sys::xenstore::Client;
use vifkit::sys::xenstore::wire::{Message, MsgType, read_message, write_message};

/// Names the file a child copy of the test binary reports into.
pub const CHILD_MARKER: &str = "VIFKIT_XS_TEST_CHILD_OUT";

const TOOL_DEADLINE: Duration = Duration::from_secs(20);

/// A fresh directory of the test's own, removed on drop.
pub fn scratch() -> Scratch {
    Scratch::new("xs-compat").expect("create a scratch directory")
}

pub struct Harness {
    pub sock: PathBuf,
    _dir: Scratch,
}

impl Harness {
    /// A vifkit test server on a private socket.
    pub fn new() -> Harness {
        let dir = scratch();
        let sock = dir.path().join("sock");
        Server::bind(&sock).unwrap().spawn();
        Harness { sock, _dir: dir }
    }

    /// A fake server that hands every request to `handler`, to test the
    /// client against replies the real server never sends.
    pub fn fake(handler: impl Fn(Message, &mut UnixStream) + Send + Sync + 'static) -> Harness {
        let dir = scratch();
        let sock = dir.path().join("sock");
        let listener = UnixListener::bind(&sock).unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                while let Ok(req) = read_message(&mut stream) {
                    handler(req, &mut stream);
                }
            }
        });
        Harness { sock, _dir: dir }
    }

    pub fn client(&self) -> Client {
        Client::connect_path(&self.sock).unwrap()
    }

    /// Runs a xenstore-utils tool against this server.
    pub fn xs(&self, tool: &str, args: &[&str]) -> Output {
        let path = Path::new("/usr/bin").join(tool);
        assert!(
            path.exists(),
            "{} is missing: install the Debian package xenstore-utils",
            path.display()
        );
        let mut cmd = Command::new(path);
        cmd.args(args)
            .env("XENSTORED_PATH", &self.sock)
            .env_remove("XENSTORED_RUNDIR");
        run(cmd)
    }

    /// Runs `script` under the system python with the socket as argv[1];
    /// returns its stdout and fails the test on a non-zero exit.
    pub fn python(&self, script: &str) -> String {
        require_pyxs();
        let mut cmd = Command::new(PYTHON);
        cmd.arg("-c").arg(script).arg(&self.sock);
        run(cmd).ok()
    }
}

// The python3 on PATH may be another interpreter without Debian's
// dist-packages; pyxs is packaged for the system one.
const PYTHON: &str = "/usr/bin/python3";

fn require_pyxs() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = CHECKED.get_or_init(|| {
        if !Path::new(PYTHON).exists() {
            return Err(format!(
                "{PYTHON} is missing: install the Debian package python3-pyxs"
            ));
        }
        let mut cmd = Command::new(PYTHON);
        cmd.args(["-c", "import pyxs"]);
        let out = run(cmd);
        match out.code {
            Some(0) => Ok(()),
            _ => Err(format!(
                "pyxs cannot be imported by {PYTHON}: install the Debian package python3-pyxs ({})",
                out.stderr.trim()
            )),
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout, after checking the command succeeded.
    pub fn ok(&self) -> String {
        assert_eq!(self.code, Some(0), "command failed: {self:?}");
        self.stdout.clone()
    }
}

/// Runs `cmd` to completion, killing it if it outlives the deadline (a
/// server that never answers must fail the test, not hang it).
pub fn run(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            r.read_to_string(&mut s).unwrap();
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + TOOL_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{:?} still running after {TOOL_DEADLINE:?}",
                cmd.get_program()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// The value bytes exactly as the server returns them.
pub fn raw_read(sock: &Path, path: &str) -> Vec<u8> {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut payload = path.as_bytes().to_vec();
    payload.push(0);
    write_message(&mut s, &Message::new(MsgType::Read, 1, 0, payload)).unwrap();
    let reply = read_message(&mut s).unwrap();
    assert_eq!(reply.kind(), Some(MsgType::Read), "{reply:?}");
    reply.payload
}

/// Runs the `client::child_connect` test in a child process with
/// `XENSTORED_PATH=xenstored_path`; returns what `Client::connect` and a
/// read of `/env/k` gave there.
pub fn child_connect(xenstored_path: &Path) -> Result<String, String> {
    let dir = scratch();
    let report = dir.path().join("child-report");
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "client::child_connect", "--test-threads=1"])
        .env(CHILD_MARKER, &report)
        .env("XENSTORED_PATH", xenstored_path)
        .env_remove("XENSTORED_RUNDIR");
    let out = run(cmd);
    assert_eq!(out.code, Some(0), "child test binary failed: {out:?}");
    let text = std::fs::read_to_string(&report).expect("child wrote no report");
    match text.split_once(':') {
        Some(("ok", v)) => Ok(v.to_string()),
        Some(("error", e)) => Err(e.to_string()),
        _ => panic!("bad child report {text:?}"),
    }
}
