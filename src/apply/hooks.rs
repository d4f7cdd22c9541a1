//! `vif-post.d/*.hook` files, sourced by a fresh bash as upstream sources them (CONTRACT 4.7).
//!
//! A hook (or the system's `ifup`) runs in a process group of its own and must end by the
//! run's deadline: past it, the whole group is killed and the run reports which hook it was.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::sys::deadline;
use crate::types::hook::HookRun;

/// How long the stderr of a child that has exited is still read: a background process it
/// left may hold the pipe open for as long as it lives.
const STDERR_GRACE: Duration = Duration::from_millis(100);

/// Upstream's helpers, so hooks written for the shell scripts keep working.
const PRELUDE: &str = r#"log() { local level="$1"; shift; echo "$level: $*" >&2; }
fatal() { echo "$*" >&2; exit 1; }
. "$0"
"#;

/// The executable `*.hook` files in byte order, as the shell glob lists them.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(err) => return Err(err).with_context(|| format!("read {}", dir.display())),
    };
    let mut hooks = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let is_hook = path.extension().is_some_and(|e| e == "hook");
        let executable = std::fs::metadata(&path)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        if is_hook && executable {
            hooks.push(path);
        }
    }
    hooks.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    Ok(hooks)
}

/// Runs every hook; the first failure (or overrun of `deadline`) is returned.
pub fn run_all(run: &HookRun, deadline: Instant) -> Result<()> {
    for hook in list(&run.dir)? {
        run_one(&hook, run, deadline)?;
    }
    Ok(())
}

fn run_one(hook: &Path, run: &HookRun, deadline: Instant) -> Result<()> {
    let name = hook
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(PRELUDE)
        .arg(hook)
        .envs(run.vars.iter().map(|(k, v)| (k, v)));
    run_bounded(&mut command, &format!("hook {name}"), deadline)
}

/// Runs a child to completion by `until` (or the run's deadline, if earlier), logging its
/// stderr lines; a failure carries its last stderr line, which is usually the reason. The
/// child leads a process group of its own: past the deadline the whole group is killed, so
/// nothing it started is left running (only what left the group itself escapes).
pub fn run_bounded(command: &mut Command, what: &str, until: Instant) -> Result<()> {
    let until = deadline::bound(until.saturating_duration_since(Instant::now()));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("start {what}"))?;
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (sender, text) = mpsc::channel();
    std::thread::spawn(move || {
        let mut chunk = [0; 4096];
        while let Ok(n @ 1..) = stderr.read(&mut chunk) {
            if sender.send(chunk[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let status = wait_or_kill_group(&mut child, until);
    let output = collect(&text, Instant::now() + STDERR_GRACE);
    log_lines(what, &output);
    let Some(status) = status? else {
        bail!("{what} did not finish in time: killed it and its process group");
    };
    if !status.success() {
        let last = output.lines().last().unwrap_or("").trim();
        match status.code() {
            Some(code) if !last.is_empty() => bail!("{what} failed (exit {code}): {last}"),
            Some(code) => bail!("{what} failed (exit {code})"),
            None => bail!("{what} was killed by a signal"),
        }
    }
    Ok(())
}

/// Waits for a child that leads its own process group (`process_group(0)`) until `until`;
/// then kills the whole group, reaps the child and gives None.
pub fn wait_or_kill_group(child: &mut Child, until: Instant) -> Result<Option<ExitStatus>> {
    let group = Pid::from_raw(child.id() as i32);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= until {
            let _ = killpg(group, Signal::SIGKILL);
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// What the child wrote to stderr until the pipe closed, or until `until`.
fn collect(chunks: &mpsc::Receiver<Vec<u8>>, until: Instant) -> String {
    let mut bytes = vec![];
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match chunks.recv_timeout(left) {
            Ok(chunk) => bytes.extend(chunk),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn log_lines(what: &str, output: &str) {
    for line in output.lines() {
        log::info!("{what}: {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vifkit-hooks-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(dir: &Path, name: &str, body: &str, mode: u32) {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn lists_executable_hooks_in_glob_order() {
        let dir = scratch("list");
        write(&dir, "20-b.hook", "", 0o755);
        write(&dir, "10-a.hook", "", 0o755);
        write(&dir, "15-off.hook", "", 0o644);
        write(&dir, "05-notes.txt", "", 0o755);
        write(&dir, "B.hook", "", 0o755);
        let names: Vec<_> = list(&dir)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["10-a.hook", "20-b.hook", "B.hook"]);
        assert!(list(&dir.join("missing")).unwrap().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn hooks_see_the_variables_and_fatal_fails() {
        let dir = scratch("run");
        let out = dir.join("seen");
        write(
            &dir,
            "10-record.hook",
            &format!(
                "echo \"$command $dev $bridge\" > {}\nlog debug recorded\n",
                out.display()
            ),
            0o755,
        );
        let run = HookRun {
            dir: dir.clone(),
            vars: vec![
                ("command", "online".into()),
                ("dev", "vif3.0".into()),
                ("bridge", "xenbr0".into()),
            ],
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        run_all(&run, deadline).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "online vif3.0 xenbr0\n"
        );
        write(&dir, "20-fail.hook", "fatal \"no quota for $dev\"\n", 0o755);
        assert_eq!(
            run_all(&run, deadline).unwrap_err().to_string(),
            "hook 20-fail.hook failed (exit 1): no quota for vif3.0"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn eventually_gone(pid: &str) -> bool {
        let pid: u32 = pid.parse().unwrap();
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            if !crate::sys::process::running(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn a_hook_that_hangs_is_killed_with_everything_it_started() {
        let dir = scratch("hang");
        let pids = dir.join("pids");
        write(
            &dir,
            "50-hang.hook",
            &format!(
                "sleep 120 & echo $! > {pids}\necho \"waiting for $dev\" >&2\nsleep 120\n",
                pids = pids.display()
            ),
            0o755,
        );
        let run = HookRun {
            dir: dir.clone(),
            vars: vec![("dev", "vif3.0".into())],
        };
        let started = Instant::now();
        let err = run_all(&run, started + Duration::from_millis(500)).unwrap_err();
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(500), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(
            err.to_string(),
            "hook 50-hang.hook did not finish in time: killed it and its process group"
        );
        let background = std::fs::read_to_string(&pids).unwrap();
        assert!(
            eventually_gone(background.trim()),
            "sleep {background} runs on"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_hook_may_leave_a_process_behind_without_holding_the_run() {
        let dir = scratch("bg");
        let pids = dir.join("pids");
        // The background sleep keeps the hook's stderr open.
        write(
            &dir,
            "50-daemon.hook",
            &format!("sleep 30 & echo $! > {}\n", pids.display()),
            0o755,
        );
        let run = HookRun {
            dir: dir.clone(),
            vars: vec![],
        };
        let started = Instant::now();
        run_all(&run, started + Duration::from_secs(10)).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let pid = std::fs::read_to_string(&pids).unwrap();
        let _ = nix::sys::signal::kill(Pid::from_raw(pid.trim().parse().unwrap()), Signal::SIGKILL);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
