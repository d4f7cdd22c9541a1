//! `vifkit watch`: a daemon that puts vifkit's ports back together when the host changes
//! under them, as `vifkit reattach` would by hand: a bridge deleted and recreated (its
//! ports are re-attached, with their options), an uplink taken down and up (the routed and
//! NAT ports' proxy entries and routes), `nft flush ruleset` (the antispoofing chains and
//! NAT tables).
//!
//! It sleeps in poll(2) on the kernel's notifications (see `sys::events`), with no timer
//! while nothing is pending; a burst is answered once (see `watch_triggers`). What a port
//! should be comes from the planners, as at its plug: xenstore for a Xen port, vifkit.conf
//! and qemu-ifup's bridge argument for a tap. Only the ports the hotplug binaries recorded
//! in the run directory are repaired, each under the run directory's lock held exclusively,
//! so a repair never runs inside a plug or an unplug, and an unplugged port (its record
//! gone) is never put back.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::ports::{Backend, xen_ports};
use super::reattach::{Role, names_bridge, repair_port, tap_role, xen_role};
use super::watch_state::State;
use super::watch_triggers::{Links, Pending, Trigger};
use crate::entry::{UNDO_BUDGET, block_on_with_deadline, start_run};
use crate::input::config::Config;
use crate::sys::deadline::poll_timeout;
use crate::sys::events::{Overflow, Subscription};
use crate::sys::rtnl::Netlink;
use crate::sys::rundir::{Record, RunDir};
use crate::sys::xenstore::Client;
use crate::types::names::IfName;

/// How long a repair waits for plugs and unplugs in progress before it tries again later.
const LOCK_WAIT: Duration = Duration::from_secs(1);

/// The default receive queue of each notification socket: a burst of thousands of
/// notifications (a bridge with a thousand ports deleted) fits.
pub const QUEUE_BYTES: usize = 16 << 20;

/// Runs until killed (SIGTERM from systemd).
pub fn watch(queue_bytes: usize) -> Result<()> {
    let run = RunDir::here()?;
    let _only_watcher = claim(&run)?;
    // Subscribed before the first look at the kernel, so no change falls in between.
    let subscription = Subscription::open(queue_bytes)
        .context("subscribe to rtnetlink and nf_tables notifications")?;
    let mut state = State::new();
    state.save(&run);
    let mut listener = Listener {
        subscription,
        links: Links::default(),
        buffer: vec![0u8; 64 << 10],
        events: Vec::new(),
        lost: false,
    };
    let mut pending = Pending::default();
    listener.resync(&mut pending, "the watcher started")?;
    give_back_memory();
    // Ready once subscribed: what changes from now on is seen.
    if let Err(err) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        log::warn!("cannot tell systemd the watcher is ready: {err}");
    }
    log::info!(
        "watching the ports recorded in {} for changes of the host",
        run.path().display()
    );
    loop {
        // Also after a pass: its own changes may have overflowed a queue while it ran.
        if listener.lost {
            listener.resync(&mut pending, "notifications were lost")?;
        }
        let timeout = match pending.due() {
            None => PollTimeout::NONE,
            Some(due) => poll_timeout(due.saturating_duration_since(Instant::now())),
        };
        let mut fds = listener
            .subscription
            .fds()
            .map(|fd| PollFd::new(fd, PollFlags::POLLIN));
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(errno) => return Err(errno).context("wait for notifications"),
        }
        listener.take(&mut pending);
        if listener.lost {
            continue; // resynced first thing
        }
        if pending.due().is_some_and(|due| due <= Instant::now()) {
            let work = std::mem::take(&mut pending);
            if let Err(err) = repair(&work, &run, &mut state, &mut pending, &mut listener) {
                log::error!("repair after {} failed: {err:#}", work.why());
            }
            give_back_memory();
        }
    }
}

/// Returns the heap a pass freed to the kernel. A pass over a thousand ports allocates some
/// megabytes and frees them, but malloc keeps freed pages below the last live allocation
/// (19 MiB of a resting watcher's heap with 1,000 ports, 2.5 MiB after `malloc_trim`):
/// a daemon that sleeps most of its life should not sit on its busiest minute's peak.
fn give_back_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free heap pages; no pointer is invalidated.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// The subscription and what the watcher knows of the links, turning notifications into
/// pending repairs.
struct Listener {
    subscription: Subscription,
    links: Links,
    buffer: Vec<u8>,
    events: Vec<crate::sys::events::Event>,
    /// A queue overflowed since the last resync.
    lost: bool,
}

impl Listener {
    /// Reads what is queued (without waiting) into `pending`. Also called between the ports
    /// of a long repair, whose own changes would otherwise fill the queues.
    fn take(&mut self, pending: &mut Pending) {
        let now = Instant::now();
        if let Err(Overflow) = self.subscription.drain(&mut self.buffer, &mut self.events) {
            if !self.lost {
                log::warn!("notifications were lost (the receive queue overflowed): resyncing");
            }
            self.lost = true;
        }
        for event in self.events.drain(..) {
            if let Some(trigger) = self.links.classify(event) {
                pending.add(trigger, now);
            }
        }
    }

    /// Reads every link afresh and queues a repair of every port.
    fn resync(&mut self, pending: &mut Pending, why: &str) -> Result<()> {
        let all = block_on_with_deadline(start_run(), async { Netlink::connect()?.links().await })
            .context("list the links")?;
        self.links.reset(&all);
        self.lost = false;
        pending.add(Trigger::All(why.to_owned()), Instant::now());
        Ok(())
    }
}

/// One watcher per network namespace: the lock on `watch.lock` is held for its lifetime,
/// and `vifkit status` reads it to say whether a watcher runs.
fn claim(run: &RunDir) -> Result<Flock<File>> {
    let path = run.watch_lock();
    std::fs::create_dir_all(run.path())
        .with_context(|| format!("create {}", run.path().display()))?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        anyhow::anyhow!(
            "another vifkit watch runs in this network namespace ({} is locked: {errno})",
            path.display()
        )
    })
}

/// Repairs the ports `work` names (every recorded port it selects); what could not be
/// repaired for the lock goes back into `pending`. Each port is a run of its own, with the
/// deadline a hotplug run has: a thousand ports may take longer than one run may.
fn repair(
    work: &Pending,
    run: &RunDir,
    state: &mut State,
    pending: &mut Pending,
    listener: &mut Listener,
) -> Result<()> {
    let records = run.records()?;
    if records.is_empty() {
        return Ok(());
    }
    // A broken vifkit.conf fails each tap's plan, which the log then says.
    let config = Config::load_from_env().unwrap_or_else(|err| {
        log::warn!("{err:#}");
        Config::default()
    });
    // The listing's deadline, from now: xenstore's connect draws from it.
    let deadline = start_run();
    let mut xs = match Client::connect() {
        Ok(xs) => Some(xs),
        Err(err) if Client::expected() => {
            log::error!("Xen vifs not repaired: {err:#}");
            None
        }
        Err(_) => None,
    };
    let why = work.why();
    let mut repaired = 0;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let done = runtime.block_on(async {
        let netlink = Netlink::connect()?;
        let backends = match xs.as_mut() {
            Some(xs) => bounded(deadline, async { xen_ports(xs) }).await?,
            None => vec![],
        };
        for (name, record) in records {
            let backend = record.backend.as_ref().and_then(|path| {
                backends
                    .iter()
                    .find(|b| same_backend(&b.call.backend, path) && b.name == name)
            });
            let role = match (&record.backend, backend) {
                (None, _) => tap_role(config.rule_for(&name), record.argument.as_deref()),
                (Some(_), Some(backend)) if backend.online => xen_role(backend),
                // Taken offline by libxl (its unplug comes next), gone from xenstore, or
                // xenstore out of reach: left as it is.
                (Some(_), _) => continue,
            };
            if !selected(work, &name, role.as_ref()) {
                continue;
            }
            let Some(_lock) = run.lock_exclusive(Instant::now() + LOCK_WAIT)? else {
                log::debug!("plugs or unplugs hold the lock: repairing later");
                pending.add(Trigger::All(why.clone()), Instant::now());
                return Ok(());
            };
            let repair = repair_one(run, &name, &record, backend, xs.as_mut(), &netlink);
            match bounded(start_run(), repair).await {
                Ok(changes) if changes.is_empty() => {}
                Ok(changes) => {
                    log::info!("{name}: repaired after {why}: {}", changes.join("; "));
                    state.repaired(&name, &changes, &why);
                    repaired += 1;
                }
                Err(err) => log::error!("{name}: not repaired after {why}: {err:#}"),
            }
            listener.take(pending);
        }
        Ok(())
    });
    if repaired > 0 {
        state.save(run);
    }
    done
}

/// `work` cut at `deadline` (and the undo budget an attach keeps past it, as in a hotplug
/// run), for a call that does not bound itself.
async fn bounded<T>(deadline: Instant, work: impl Future<Output = Result<T>>) -> Result<T> {
    let remaining = (deadline + UNDO_BUDGET).saturating_duration_since(Instant::now());
    match tokio::time::timeout(remaining, work).await {
        Ok(result) => result,
        Err(_) => anyhow::bail!("out of time (the run's deadline passed)"),
    }
}

/// One port, under the lock: still the port its record names (an unplug that ran first
/// removed the record; a new link of that name is not the one plugged), then repaired.
async fn repair_one(
    run: &RunDir,
    name: &IfName,
    record: &Record,
    backend: Option<&Backend>,
    xs: Option<&mut Client>,
    netlink: &Netlink,
) -> Result<Vec<String>> {
    if run.record(name)?.as_ref() != Some(record) {
        return Ok(vec![]);
    }
    if netlink.link(name).await?.map(|l| l.index) != Some(record.index) {
        log::debug!("{name}: gone since it was plugged; forgetting it");
        run.unmark(name)?;
        return Ok(vec![]);
    }
    repair_port(name, backend, record.argument.as_deref(), xs, netlink).await
}

/// Whether two backend paths name one directory: libxl passes a path relative to dom0's
/// home (`backend/vif/3/0`), the backend directory lists absolute ones.
fn same_backend(a: &str, b: &str) -> bool {
    let relative = |p: &str| p.strip_prefix("/local/domain/0/").unwrap_or(p).to_owned();
    relative(a) == relative(b)
}

/// Whether `work` concerns a port of this name and role.
fn selected(work: &Pending, name: &IfName, role: Option<&Role>) -> bool {
    if work.all || work.ports.contains(name.as_str()) {
        return true;
    }
    match role {
        Some(Role::Bridged(word)) => work
            .bridges
            .iter()
            .filter_map(|b| IfName::new(b).ok())
            .any(|b| names_bridge(word, &b)),
        Some(Role::Routed(_) | Role::RouteIfup) => work.routed,
        // A tap qemu-ifup put on the default route's bridge: any bridge may be it.
        None => !work.bridges.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_paths_match_relative_or_absolute() {
        let absolute = "/local/domain/0/backend/vif/3/0";
        assert!(same_backend(absolute, "backend/vif/3/0"));
        assert!(same_backend("backend/vif/3/0", absolute));
        assert!(same_backend(absolute, absolute));
        assert!(!same_backend(absolute, "backend/vif/3/1"));
        assert!(!same_backend(absolute, "/local/domain/7/backend/vif/3/0"));
    }

    #[test]
    fn a_bridge_that_appears_selects_its_ports_only() {
        let mut work = Pending::default();
        work.add(Trigger::Bridge("xenbr0".into()), Instant::now());
        let port = IfName::new("vif3.0").unwrap();
        let bridged = |word: &str| Role::Bridged(word.into());
        assert!(selected(&work, &port, Some(&bridged("xenbr0"))));
        assert!(selected(&work, &port, Some(&bridged("xenbr0.10"))));
        assert!(!selected(&work, &port, Some(&bridged("xenbr1"))));
        assert!(!selected(&work, &port, Some(&Role::Routed(None))));
        assert!(selected(&work, &port, None), "a default-route tap");
        work.add(Trigger::Routed("eth0 came up".into()), Instant::now());
        assert!(selected(&work, &port, Some(&Role::RouteIfup)));
        let mut one = Pending::default();
        one.add(Trigger::Port("vif3.0".into(), "x".into()), Instant::now());
        assert!(selected(&one, &port, Some(&bridged("xenbr1"))));
        assert!(!selected(&one, &IfName::new("vif4.0").unwrap(), None));
    }
}
