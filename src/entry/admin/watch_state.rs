//! What `vifkit watch` leaves for `vifkit status`: whether it runs (it holds `watch.lock` in
//! the run directory for its lifetime) and its state file (`watch`: its pid, start, number of
//! repairs and the last one).

use std::fs::File;

use nix::fcntl::{Flock, FlockArg};
use serde_json::{Value, json};

use crate::sys::rundir::RunDir;
use crate::types::names::IfName;

/// Whether a watcher runs in this namespace (it holds `watch.lock`).
fn running(run: &RunDir) -> bool {
    let Ok(file) = File::open(run.watch_lock()) else {
        return false;
    };
    Flock::lock(file, FlockArg::LockSharedNonblock).is_err()
}

/// What `vifkit status` says of this namespace's watcher: whether it runs, and its state
/// file (the last one's, if it stopped).
pub struct Watcher {
    pub running: bool,
    pub state: Option<Value>,
}

impl Watcher {
    pub fn here() -> Watcher {
        let Ok(run) = RunDir::here() else {
            return Watcher {
                running: false,
                state: None,
            };
        };
        let state = std::fs::read(run.watch_state())
            .ok()
            .and_then(|text| serde_json::from_slice(&text).ok());
        Watcher {
            running: running(&run),
            state,
        }
    }

    /// One line: `watcher: running since T (pid N); ...` or `watcher: not running...`.
    pub fn line(&self) -> String {
        let state = self.state.as_ref();
        let text = |key: &str| {
            state
                .and_then(|s| s[key].as_str())
                .unwrap_or("?")
                .to_owned()
        };
        let last = state.map(|s| &s["last_repair"]).filter(|l| l.is_object());
        let last = last.map(|l| {
            let changes: Vec<&str> = l["changes"]
                .as_array()
                .map(|c| c.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            format!(
                "last repair at {}: {}: {} (after {})",
                l["at"].as_str().unwrap_or("?"),
                l["port"].as_str().unwrap_or("?"),
                changes.join("; "),
                l["why"].as_str().unwrap_or("?"),
            )
        });
        match (self.running, last) {
            (true, Some(last)) => format!(
                "watcher: running since {} (pid {}); {} repair(s), {last}",
                text("started"),
                state.map_or(Value::Null, |s| s["pid"].clone()),
                state.map_or(Value::Null, |s| s["repairs"].clone()),
            ),
            (true, None) => format!(
                "watcher: running since {} (pid {}); no repair yet",
                text("started"),
                state.map_or(Value::Null, |s| s["pid"].clone()),
            ),
            (false, Some(last)) => format!("watcher: not running; its {last}"),
            (false, None) => "watcher: not running (vifkit-watch.service)".to_owned(),
        }
    }

    pub fn json(&self) -> Value {
        let mut value = json!({"running": self.running});
        if let Some(Value::Object(state)) = &self.state {
            for (key, field) in state {
                value[key] = field.clone();
            }
        }
        value
    }
}

/// What `vifkit status` shows of the watcher, kept in the run directory's `watch` file.
pub(super) struct State {
    pid: u32,
    started: String,
    repairs: u64,
    last: Option<Value>,
}

impl State {
    pub(super) fn new() -> State {
        State {
            pid: std::process::id(),
            started: now(),
            repairs: 0,
            last: None,
        }
    }

    pub(super) fn repaired(&mut self, port: &IfName, changes: &[String], why: &str) {
        self.repairs += 1;
        let line = format!("{port}: {}", changes.join("; "));
        self.last =
            Some(json!({"at": now(), "port": port.as_str(), "changes": changes, "why": why}));
        let status = format!("last repair: {line} (after {why})");
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Status(&status)]);
    }

    /// Written whole and renamed into place; a failure is logged, not fatal: repairs matter
    /// more than their report.
    pub(super) fn save(&self, run: &RunDir) {
        let text = json!({
            "pid": self.pid,
            "started": self.started,
            "repairs": self.repairs,
            "last_repair": self.last,
        })
        .to_string();
        let path = run.watch_state();
        let temporary = path.with_extension("new");
        let saved =
            std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, &path));
        if let Err(err) = saved {
            log::warn!("cannot write {}: {err}", path.display());
        }
    }
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map_or_else(|_| String::new(), |t| t.to_string())
}
