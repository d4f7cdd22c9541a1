//! `vif-post.d/*.hook` files, sourced by a fresh bash as upstream sources them (CONTRACT 4.7).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::types::hook::HookRun;

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

/// Runs a child to completion within `deadline` (killed past it), logging its stderr lines;
/// a failure carries its last stderr line, which is usually the reason.
pub fn run_bounded(command: &mut Command, what: &str, deadline: Instant) -> Result<()> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("start {what}"))?;
    let mut stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} did not finish in time and was killed");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let output = reader.join().unwrap_or_default();
    for line in output.lines() {
        log::info!("{what}: {line}");
    }
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
}
