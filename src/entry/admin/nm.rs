//! NetworkManager and vifkit's ports. NetworkManager acts on the links it manages (addresses,
//! up and down, connections of its own), behind the hotplug scripts' back, so `check` says
//! when it manages a port. It asks `nmcli` when there is one (`LC_ALL=C`, the run's deadline
//! and a budget of its own bounding the wait); no `nmcli`, or no NetworkManager running, is
//! nothing to report.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::apply::hooks::wait_or_kill_group;
use crate::sys::deadline;
use crate::types::names::IfName;

/// The drop-in vifkit ships that keeps NetworkManager off its ports.
pub const DROP_IN: &str = "/usr/lib/NetworkManager/conf.d/vifkit-unmanaged.conf";

/// `nmcli` answers in milliseconds; one that has not answered in this long is killed and
/// the port left unjudged (a warning), so a hung NetworkManager cannot hold up `check`.
const ASK_BUDGET: Duration = Duration::from_secs(3);

/// How long the output of an `nmcli` that has exited is still read (a process it left
/// behind may hold the pipe open).
const OUTPUT_GRACE: Duration = Duration::from_millis(100);

/// nmcli's exit codes for "NetworkManager is not running" and "no such device".
const NOT_RUNNING: i32 = 8;
const NO_SUCH_DEVICE: i32 = 10;

/// The drift line when NetworkManager manages `port`; None when it leaves the port alone,
/// does not know it, does not run, or there is no `nmcli` to ask.
pub fn manages(port: &IfName) -> Option<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let nmcli = find_program("nmcli", &path)?;
    let args = ["-t", "-f", "GENERAL.STATE", "device", "show", port.as_str()];
    let answer = ask(&nmcli, &args, deadline::bound(ASK_BUDGET));
    match answer {
        Ok((0, stdout)) => match managed_state(&stdout) {
            Ok(Some(state)) => Some(line(port, state)),
            Ok(None) => None,
            Err(err) => {
                log::warn!("cannot tell whether NetworkManager manages {port}: {err:#}");
                None
            }
        },
        Ok((NOT_RUNNING | NO_SUCH_DEVICE, _)) => None,
        Ok((code, _)) => {
            log::warn!(
                "cannot tell whether NetworkManager manages {port}: {} failed (exit {code})",
                nmcli.display()
            );
            None
        }
        Err(err) => {
            log::warn!("cannot tell whether NetworkManager manages {port}: {err:#}");
            None
        }
    }
}

fn line(port: &IfName, state: &str) -> String {
    format!(
        "NetworkManager manages {port} (state {state}) and may change it behind vifkit's back: \
         vifkit's drop-in {DROP_IN} (/etc/NetworkManager/conf.d with hotplug/install) keeps \
         NetworkManager off its ports; install it (a port it does not match needs an \
         unmanaged-devices entry of its own) and run `systemctl reload NetworkManager`"
    )
}

/// The device state in `nmcli -t -f GENERAL.STATE device show` output (`10 (unmanaged)`,
/// `100 (connected)`) when it is a managed one; None for NetworkManager's state 10,
/// unmanaged.
fn managed_state(stdout: &str) -> Result<Option<&str>> {
    let Some(state) = stdout
        .lines()
        .find_map(|line| line.strip_prefix("GENERAL.STATE:"))
        .map(str::trim)
    else {
        bail!("nmcli printed no GENERAL.STATE: {:?}", stdout.trim());
    };
    let code = state.split_whitespace().next().unwrap_or_default();
    let unmanaged = match code.parse::<u32>() {
        Ok(code) => code == 10,
        Err(_) => state.contains("unmanaged"),
    };
    Ok((!unmanaged).then_some(state))
}

/// The first executable `name` in the directories of `path`.
fn find_program(name: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `program` to its end by `until`, in a process group of its own that is killed
/// whole when `until` passes; its exit code and standard output.
fn ask(program: &Path, args: &[&str], until: Instant) -> Result<(i32, String)> {
    let what = program.display();
    let mut child = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .with_context(|| format!("start {what}"))?;
    let mut stdout = child.stdout.take().context("no stdout pipe")?;
    let (sender, output) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = vec![];
        // What it read so far is sent even when the read fails.
        let _ = stdout.read_to_end(&mut text);
        let _ = sender.send(text);
    });
    let Some(status) = wait_or_kill_group(&mut child, until)? else {
        bail!("{what} did not answer in time: killed it");
    };
    let text = output.recv_timeout(OUTPUT_GRACE).unwrap_or_default();
    let Some(code) = status.code() else {
        bail!("{what} was killed by a signal");
    };
    Ok((code, String::from_utf8_lossy(&text).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_state_10_is_unmanaged() {
        let managed = managed_state("GENERAL.STATE:100 (connected)\n").unwrap();
        assert_eq!(managed, Some("100 (connected)"));
        let external = "GENERAL.STATE:100 (connected (externally))\n";
        assert_eq!(
            managed_state(external).unwrap(),
            Some("100 (connected (externally))")
        );
        assert_eq!(
            managed_state("GENERAL.STATE:30 (disconnected)\n").unwrap(),
            Some("30 (disconnected)")
        );
        assert_eq!(
            managed_state("GENERAL.STATE:10 (unmanaged)\n").unwrap(),
            None
        );
        assert_eq!(managed_state("GENERAL.STATE:unmanaged\n").unwrap(), None);
        let err = managed_state("Error: something else\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "nmcli printed no GENERAL.STATE: \"Error: something else\""
        );
    }

    #[test]
    fn the_line_names_the_port_and_the_drop_in() {
        let port = IfName::new("vif3.0").unwrap();
        assert_eq!(
            line(&port, "100 (connected)"),
            "NetworkManager manages vif3.0 (state 100 (connected)) and may change it behind \
             vifkit's back: vifkit's drop-in /usr/lib/NetworkManager/conf.d/vifkit-unmanaged.conf \
             (/etc/NetworkManager/conf.d with hotplug/install) keeps NetworkManager off its \
             ports; install it (a port it does not match needs an unmanaged-devices entry of \
             its own) and run `systemctl reload NetworkManager`"
        );
    }

    #[test]
    fn a_program_that_does_not_answer_is_killed_by_the_bound() {
        let started = Instant::now();
        let until = started + Duration::from_millis(300);
        let err = ask(Path::new("/bin/sleep"), &["30"], until).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            err.to_string(),
            "/bin/sleep did not answer in time: killed it"
        );
        let (code, out) = ask(Path::new("/bin/sh"), &["-c", "echo $LC_ALL; exit 3"], {
            Instant::now() + Duration::from_secs(10)
        })
        .unwrap();
        assert_eq!((code, out.as_str()), (3, "C\n"));
    }

    #[test]
    fn programs_are_found_on_the_path_when_executable() {
        let path = std::ffi::OsString::from("/nonexistent:/bin");
        assert_eq!(find_program("sh", &path), Some(PathBuf::from("/bin/sh")));
        assert_eq!(find_program("no-such-program-here", &path), None);
    }
}
