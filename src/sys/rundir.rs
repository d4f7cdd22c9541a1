//! The run directory the hotplug binaries share with `vifkit watch`: a record per port
//! vifkit plugged (so the watcher repairs those and no other) and the lock that orders the
//! watcher's repairs against plugs and unplugs.
//!
//! Each network namespace has a directory of its own, `$VIFKIT_RUN_DIR/netns/<inode>`
//! (default `/run/vifkit`): ports are per namespace, and so is a watcher. A plug or unplug
//! holds the lock shared for its whole run (plugs run side by side, as libxl starts them); a
//! repair holds it exclusively for one port, so it never sees a plug or unplug half done.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};

use crate::types::names::IfName;

/// How often a wait for the lock tries again: repairs hold it for a few milliseconds.
const LOCK_RETRY: Duration = Duration::from_millis(5);

/// This namespace's run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    path: PathBuf,
}

/// What a plug recorded of a port: enough to know it is still the port vifkit plugged, and
/// what the plug was told that the planners cannot read again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The link's index when it was plugged: a later link of the same name is another port.
    pub index: u32,
    /// The bridge argument qemu-ifup was given (`qemu-ifup tap0 br0`).
    pub argument: Option<String>,
    /// A Xen port's backend directory; None for a qemu tap.
    pub backend: Option<String>,
}

/// The lock, held until dropped.
pub struct RunLock {
    _lock: Flock<File>,
}

impl RunDir {
    /// The run directory of the calling process's network namespace.
    pub fn here() -> Result<RunDir> {
        RunDir::of_namespace(Path::new("/proc/self/ns/net"))
    }

    /// The run directory of the network namespace `netns` names (`/proc/PID/ns/net`, or
    /// `/run/netns/NAME` where `ip netns` binds one).
    pub fn of_namespace(netns: &Path) -> Result<RunDir> {
        let base = std::env::var_os("VIFKIT_RUN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/run/vifkit"));
        let inode = fs::metadata(netns)
            .with_context(|| format!("read network namespace {}", netns.display()))?
            .ino();
        Ok(RunDir::at(base.join("netns").join(inode.to_string())))
    }

    /// Removes the directory, for a namespace about to be deleted (the demo's, the tests'):
    /// inode numbers are reused.
    pub fn remove(self) {
        let _ = fs::remove_dir_all(&self.path);
    }

    pub fn at(path: PathBuf) -> RunDir {
        RunDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn ports(&self) -> PathBuf {
        self.path.join("ports")
    }

    /// The watcher's state file (see `vifkit status`).
    pub fn watch_state(&self) -> PathBuf {
        self.path.join("watch")
    }

    /// The file a watcher holds locked for its lifetime: one watcher per namespace.
    pub fn watch_lock(&self) -> PathBuf {
        self.path.join("watch.lock")
    }

    /// Takes the lock shared (a plug or unplug), waiting for a repair in progress until
    /// `until` at most.
    pub fn lock_shared(&self, until: Instant) -> Result<RunLock> {
        self.lock(FlockArg::LockSharedNonblock, until)
    }

    /// Takes the lock exclusively (a repair), waiting for plugs and unplugs in progress until
    /// `until` at most; None if they still run then.
    pub fn lock_exclusive(&self, until: Instant) -> Result<Option<RunLock>> {
        match self.lock(FlockArg::LockExclusiveNonblock, until) {
            Ok(lock) => Ok(Some(lock)),
            Err(err) if err.downcast_ref::<Busy>().is_some() => Ok(None),
            Err(err) => Err(err),
        }
    }

    fn lock(&self, how: FlockArg, until: Instant) -> Result<RunLock> {
        let path = self.path.join("lock");
        let file = self.create(&path, |p| {
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(p)
        })?;
        let mut file = file;
        loop {
            match Flock::lock(file, how) {
                Ok(lock) => return Ok(RunLock { _lock: lock }),
                Err((back, nix::errno::Errno::EWOULDBLOCK | nix::errno::Errno::EINTR)) => {
                    if Instant::now() >= until {
                        return Err(anyhow::Error::new(Busy)
                            .context(format!("{} is held by another run", path.display())));
                    }
                    file = back;
                    std::thread::sleep(LOCK_RETRY);
                }
                Err((_, errno)) => {
                    return Err(io::Error::from(errno))
                        .with_context(|| format!("lock {}", path.display()));
                }
            }
        }
    }

    /// Records that vifkit plugged `port` (written whole, then renamed into place).
    pub fn mark(&self, port: &IfName, record: &Record) -> Result<()> {
        let path = self.ports().join(port.as_str());
        let temporary = self.ports().join(format!(".{port}.new"));
        let mut text = format!("index={}\n", record.index);
        if let Some(argument) = &record.argument {
            text.push_str(&format!("argument={argument}\n"));
        }
        if let Some(backend) = &record.backend {
            text.push_str(&format!("backend={backend}\n"));
        }
        self.create(&temporary, |p| fs::write(p, &text))?;
        fs::rename(&temporary, &path).with_context(|| format!("record {}", path.display()))
    }

    /// Forgets `port`: an unplug does this first, so no repair puts it back.
    pub fn unmark(&self, port: &IfName) -> Result<()> {
        let path = self.ports().join(port.as_str());
        match fs::remove_file(&path) {
            Err(err) if err.kind() != ErrorKind::NotFound => {
                Err(err).with_context(|| format!("remove {}", path.display()))
            }
            _ => Ok(()),
        }
    }

    /// The record of `port`, if there is one.
    pub fn record(&self, port: &IfName) -> Result<Option<Record>> {
        let path = self.ports().join(port.as_str());
        match fs::read_to_string(&path) {
            Ok(text) => parse_record(&text)
                .map(Some)
                .with_context(|| format!("read {}", path.display())),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("read {}", path.display())),
        }
    }

    /// Every port recorded, by name; a record that cannot be read is skipped with a warning.
    pub fn records(&self) -> Result<Vec<(IfName, Record)>> {
        let dir = self.ports();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(vec![]),
            Err(err) => return Err(err).with_context(|| format!("list {}", dir.display())),
        };
        let mut records = vec![];
        for entry in entries {
            let entry = entry.with_context(|| format!("list {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let parsed = IfName::new(&name).and_then(|port| {
                let text = fs::read_to_string(entry.path())?;
                Ok((port, parse_record(&text)?))
            });
            match parsed {
                Ok(record) => records.push(record),
                Err(err) => log::warn!("skipping {}: {err:#}", entry.path().display()),
            }
        }
        records.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        Ok(records)
    }

    /// Runs `create` on `path`, making the directories on the way first if they are missing.
    fn create<T>(&self, path: &Path, create: impl Fn(&Path) -> io::Result<T>) -> Result<T> {
        match create(path) {
            Err(err) if err.kind() == ErrorKind::NotFound => {
                let parent = path.parent().unwrap_or(&self.path);
                fs::create_dir_all(parent)
                    .with_context(|| format!("create {}", parent.display()))?;
                create(path).with_context(|| format!("create {}", path.display()))
            }
            other => other.with_context(|| format!("create {}", path.display())),
        }
    }
}

/// The lock is held by runs that did not end in time.
#[derive(Debug)]
struct Busy;

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("busy")
    }
}

impl std::error::Error for Busy {}

/// A record's text: `key=value` lines, `index` required.
pub fn parse_record(text: &str) -> Result<Record> {
    let mut index = None;
    let mut argument = None;
    let mut backend = None;
    for line in text.lines().filter(|l| !l.is_empty()) {
        match line.split_once('=') {
            Some(("index", value)) => {
                index = Some(
                    value
                        .parse()
                        .with_context(|| format!("index {value:?} is not a link index"))?,
                )
            }
            Some(("argument", value)) => argument = Some(value.to_owned()),
            Some(("backend", value)) => backend = Some(value.to_owned()),
            _ => bail!("unknown line {line:?}"),
        }
    }
    Ok(Record {
        index: index.context("no index= line")?,
        argument,
        backend,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written() {
        assert_eq!(
            parse_record("index=7\nargument=br0\n").unwrap(),
            Record {
                index: 7,
                argument: Some("br0".into()),
                backend: None,
            }
        );
        let vif = "index=9\nbackend=/local/domain/0/backend/vif/3/0\n";
        assert_eq!(
            parse_record(vif).unwrap().backend.as_deref(),
            Some("/local/domain/0/backend/vif/3/0")
        );
        assert_eq!(parse_record("index=12\n").unwrap().argument, None);
    }

    #[test]
    fn a_bad_record_says_what_is_wrong() {
        let error = |text| format!("{:#}", parse_record(text).unwrap_err());
        assert_eq!(error(""), "no index= line");
        assert_eq!(
            error("index=x\n"),
            "index \"x\" is not a link index: invalid digit found in string"
        );
        assert_eq!(error("bridge=br0\n"), "unknown line \"bridge=br0\"");
    }

    #[test]
    fn records_marks_and_locks_in_a_directory() {
        let dir = std::env::temp_dir().join(format!("vifkit-rundir-{}", std::process::id()));
        let run = RunDir::at(dir.clone());
        assert!(run.records().unwrap().is_empty());
        let tap = IfName::new("tap0").unwrap();
        let record = Record {
            index: 4,
            argument: Some("br0".into()),
            backend: None,
        };
        run.mark(&tap, &record).unwrap();
        run.mark(
            &IfName::new("vif3.0").unwrap(),
            &Record {
                index: 5,
                argument: None,
                backend: Some("/local/domain/0/backend/vif/3/0".into()),
            },
        )
        .unwrap();
        let names: Vec<_> = run.records().unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["tap0", "vif3.0"].map(|n| IfName::new(n).unwrap()));
        assert_eq!(run.record(&tap).unwrap(), Some(record.clone()));
        run.unmark(&tap).unwrap();
        run.unmark(&tap).unwrap();
        assert_eq!(run.record(&tap).unwrap(), None);
        assert_eq!(run.records().unwrap().len(), 1);

        let soon = Instant::now() + Duration::from_millis(20);
        let shared = run.lock_shared(soon).unwrap();
        let _other_plug = run.lock_shared(soon).unwrap();
        assert!(run.lock_exclusive(soon).unwrap().is_none(), "plugs hold it");
        drop((shared, _other_plug));
        let repair = run.lock_exclusive(soon).unwrap().unwrap();
        let err = run.lock_shared(Instant::now()).err().unwrap();
        assert!(format!("{err:#}").ends_with("lock is held by another run: busy"));
        drop(repair);
        fs::remove_dir_all(dir).unwrap();
    }
}
