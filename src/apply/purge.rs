//! A plug's conntrack purge (`Step::PurgeConntrack`). ctnetlink finds a guest's flows only by
//! walking the kernel's whole conntrack hash table, which costs about 10 ms per listing on
//! this 2-CPU host even with a few thousand flows (the buckets are walked, not the flows) and
//! grows with them: inline, the purge cost 36 ms with 4,000 flows and 210 ms with 250,000,
//! against a 4.4 ms plug (BENCHMARKS.md), and libxl or qemu wait for it. Whenever the
//! namespace tracks a flow, a filtered port's plug therefore holds the port's frames
//! (`nft::hold_port`) before its link comes up, and once the run is done starts the purge
//! in a process of its own; that process waits for the plug's exit and then
//! [`CALLER_GRACE`], purges at niceness 19, and releases the port when the guest's old
//! flows are gone. Meanwhile the guest can neither use an old flow nor open one the purge
//! would cut, and the hold lapses by itself [`HOLD_LIMIT`] after the run's deadline, so a
//! purge that dies cannot strand the guest. A run that must leave nothing behind (udev
//! kills what a RUN program leaves running) purges inline, before the link comes up; one
//! that cannot start the purge process purges before it returns and then releases the
//! port; a namespace that tracks no flow has nothing to purge.
//!
//! The background process is the same binary run again with [`CHILD_ENV`] describing the
//! work; the hotplug entries look for it before anything else (`entry::held_purge`).

use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;

use crate::sys::process::running;
use crate::sys::{conntrack, deadline, nft};
use crate::types::names::IfName;
use crate::types::prefix::Prefix;

/// How long a port stays held after the run's own deadline at most: the background purge,
/// which starts when the run ends, must be done by then, and the hold lapses then whether
/// or not it is (a run's deadline is 26 s from its start, so 36 s from it in all, inside
/// libxl's 40 s). A purge of 250,000 flows takes about 0.2 s.
pub const HOLD_LIMIT: Duration = Duration::from_secs(10);

/// Set in the environment of the background purge, to its [`HeldPurge`].
pub const CHILD_ENV: &str = "VIFKIT_HELD_PURGE";

/// A background purge: the port held, until when, by which plug, and the addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldPurge {
    pub port: IfName,
    /// Wall-clock nanoseconds since the epoch at which the hold lapses.
    pub until_ns: u64,
    /// The plug's process id, which names the hold with `until_ns`.
    pub holder: u32,
    pub addresses: Vec<Prefix>,
}

impl HeldPurge {
    /// The hold's comment in the port's chain.
    pub fn comment(&self) -> String {
        nft::hold_comment(self.until_ns, self.holder)
    }

    /// Reads what [`HeldPurge`]'s `Display` wrote into [`CHILD_ENV`].
    pub fn parse(text: &str) -> Result<HeldPurge, String> {
        let bad = |what: &str| format!("{CHILD_ENV}={text:?}: {what}");
        let mut words = text.split_ascii_whitespace();
        let port = words.next().ok_or_else(|| bad("no port"))?;
        let port = IfName::new(port).map_err(|err| bad(&err.to_string()))?;
        let mut number = |what: &str| {
            let word = words.next().ok_or_else(|| bad(&format!("no {what}")))?;
            word.parse::<u64>()
                .map_err(|_| bad(&format!("{word:?} is not a {what}")))
        };
        let until_ns = number("time")?;
        let holder = u32::try_from(number("process id")?).map_err(|_| bad("no such process id"))?;
        let addresses = words
            .map(|word| {
                prefix(word).ok_or_else(|| bad(&format!("{word:?} is not an address/length")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if addresses.is_empty() {
            return Err(bad("no address to purge"));
        }
        Ok(HeldPurge {
            port,
            until_ns,
            holder,
            addresses,
        })
    }
}

impl fmt::Display for HeldPurge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.port, self.until_ns, self.holder)?;
        self.addresses
            .iter()
            .try_for_each(|address| write!(f, " {address}"))
    }
}

/// Purges the flows of `addresses`: inline, or, with `hold` naming the filtered port and
/// flows tracked, holds the port and leaves the purge to [`start_held`], once the run's
/// work is done.
pub fn purge_for_plug(hold: Option<&IfName>, addresses: &[Prefix]) -> Result<()> {
    let tracked = conntrack::tracked_flows();
    // Nothing to purge; said here, so the count is not read a second time by purge().
    if tracked == Some(0) {
        return Ok(());
    }
    let (Some(port), Some(tracked)) = (hold, tracked) else {
        return inline(addresses);
    };
    let held = HeldPurge {
        port: port.clone(),
        until_ns: hold_end_ns(),
        holder: std::process::id(),
        addresses: addresses.to_vec(),
    };
    if let Err(err) = nft::hold_port(port, held.until_ns, &held.comment()) {
        log::warn!("{err:#}; purging the old flows now");
        return inline(addresses);
    }
    log::debug!("{tracked} flows are tracked: {port} held until its old flows are purged");
    pending().push((held, tracked));
    Ok(())
}

/// The ports this run holds, with the flow count that made it hold them.
fn pending() -> std::sync::MutexGuard<'static, Vec<(HeldPurge, u64)>> {
    static PENDING: Mutex<Vec<(HeldPurge, u64)>> = Mutex::new(Vec::new());
    PENDING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the background purge of each port this run held: called once the run has done
/// its work, so the walks of the conntrack table compete with no step of it (on two busy
/// CPUs they made the plug itself 17 times slower at 250,000 flows). A purge that cannot
/// start is done here and then.
pub fn start_held() {
    for (held, tracked) in std::mem::take(&mut *pending()) {
        match start(&held) {
            Ok(pid) => log::info!(
                "{tracked} flows are tracked: {} is held while process {pid} purges those of {} (at most {} s)",
                held.port,
                list(&held.addresses),
                held_for(&held).as_secs()
            ),
            Err(err) => {
                log::warn!(
                    "could not start the background purge ({err}); purging the old flows of {} now",
                    held.port
                );
                if let Err(err) = inline(&held.addresses) {
                    log::warn!("{err:#}");
                }
                release(&held);
            }
        }
    }
}

/// `ADDRESS/LENGTH`, as a prefix displays.
fn prefix(word: &str) -> Option<Prefix> {
    let (address, len) = word.split_once('/')?;
    let address: std::net::IpAddr = address.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    (len <= max).then(|| Prefix::new(address, len))
}

fn inline(addresses: &[Prefix]) -> Result<()> {
    // purge() logs how many flows it deleted.
    conntrack::purge(addresses).map(drop)
}

/// Starts this binary again as the background purge, in a process group of its own (a
/// kill of the plug's group leaves it), with nothing of the plug's output: it logs to
/// syslog and xen-hotplug.log, and libvirt reads the plug's output to its end. Its stdin
/// is a pipe this process holds open until it exits (see [`wait_for_the_plug`]).
fn start(held: &HeldPurge) -> io::Result<u32> {
    let exe = std::env::current_exe()?;
    let (plug_ended, plug_running) = io::pipe()?;
    let child = Command::new(exe)
        .env(CHILD_ENV, held.to_string())
        .stdin(plug_ended)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    // Closed by the exit alone; std opens it close-on-exec, so no other child holds it.
    static HELD_OPEN: Mutex<Vec<io::PipeWriter>> = Mutex::new(Vec::new());
    HELD_OPEN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(plug_running);
    Ok(child.id())
}

/// How long the background purge waits for the plug that started it to exit.
const PLUG_EXIT_WAIT: Duration = Duration::from_secs(2);

/// Waits until the plug that started this purge has exited, at most [`PLUG_EXIT_WAIT`]:
/// its end of the stdin pipe closes as it exits, and then it is a zombie or gone. A walk
/// of the conntrack table runs in the kernel without yielding (this kernel does not
/// preempt it), so one started beside the plug's exit held the plug up, on two busy CPUs
/// by most of a walk (76 ms at 250,000 flows), and libxl and qemu wait for that exit.
fn wait_for_the_plug(plug: u32) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let until = Instant::now() + PLUG_EXIT_WAIT;
    let stdin = io::stdin();
    let timeout = PollTimeout::try_from(PLUG_EXIT_WAIT).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    while let Err(nix::errno::Errno::EINTR) = poll(&mut fds, timeout) {}
    // The pipe closes part way through the exit: the rest of it is waited for too.
    while running(plug) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// How long the background purge lets the plug's caller go on before it walks the table.
/// A walk holds a CPU in the kernel from start to end (10 ms a listing, some 70 ms at
/// 250,000 flows), and one begun as the plug exited delayed what libxl or qemu do next:
/// the benchmark's caller saw the plug take 2.1 times as long as with no flow to purge, and
/// 1.0 times with this grace (BENCHMARKS.md). The guest stays held meanwhile.
const CALLER_GRACE: Duration = Duration::from_millis(50);

/// The background purge's niceness: the lowest priority of the normal scheduling class.
/// Not `SCHED_IDLE`, under which a saturated host (a mass boot) could starve the purge
/// past its hold.
const PURGE_NICENESS: i32 = 19;

/// Gives this process the lowest normal priority, so the purge takes CPU time that the
/// next plugs of a mass boot or the guests need last. A failure only costs speed.
fn lower_priority() {
    // SAFETY: setpriority takes plain integers. `who` 0 is the calling thread on Linux, and
    // the purge runs on this one thread.
    let set = unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, PURGE_NICENESS) };
    if set != 0 {
        log::debug!(
            "could not lower the purge's priority: {}",
            io::Error::last_os_error()
        );
    }
}

/// The background purge's work, under the hold's deadline: purges, then releases the port
/// (also after a failed purge: the hold would lapse at the deadline anyway). Says what it
/// did, or why the old flows may remain.
pub fn finish(held: &HeldPurge) -> Result<String> {
    lower_priority();
    wait_for_the_plug(held.holder);
    std::thread::sleep(CALLER_GRACE);
    deadline::set(Instant::now() + held_for(held));
    let started = Instant::now();
    let purged = conntrack::purge(&held.addresses);
    let released = nft::release_port(&held.port, &held.comment());
    let took = started.elapsed().as_millis();
    let deleted = purged.map_err(|err| {
        err.context(format!(
            "purge the old flows of {} for {} (some may remain)",
            list(&held.addresses),
            held.port
        ))
    })?;
    let purged = format!(
        "the old flows of {} purged ({deleted} deleted)",
        list(&held.addresses)
    );
    match released? {
        true => Ok(format!("released {} after {took} ms, {purged}", held.port)),
        false => Ok(format!(
            "{purged} in {took} ms; {} was no longer held (plugged again or unplugged meanwhile)",
            held.port
        )),
    }
}

fn release(held: &HeldPurge) {
    if let Err(err) = nft::release_port(&held.port, &held.comment()) {
        log::warn!(
            "{err:#}; the hold lapses by itself within {} s",
            held_for(held).as_secs() + 1
        );
    }
}

/// How long the hold has left.
fn held_for(held: &HeldPurge) -> Duration {
    Duration::from_nanos(held.until_ns.saturating_sub(wall_clock_ns()))
}

fn list(addresses: &[Prefix]) -> String {
    let words: Vec<String> = addresses
        .iter()
        .map(|prefix| prefix.network().compact().to_string())
        .collect();
    words.join(" ")
}

/// [`HOLD_LIMIT`] past the run's deadline (past now without one), in wall-clock
/// nanoseconds: the hold is set before the link comes up, and the purge starts only when
/// the run's work, hooks included, is done.
fn hold_end_ns() -> u64 {
    let run_left = deadline::get().map_or(Duration::ZERO, |run| {
        run.saturating_duration_since(Instant::now())
    });
    let hold = run_left.saturating_add(HOLD_LIMIT).as_nanos() as u64;
    wall_clock_ns().saturating_add(hold)
}

fn wall_clock_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

#[cfg(test)]
#[path = "purge_tests.rs"]
mod tests;
