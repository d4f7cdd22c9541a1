//! The entries of the hotplug binaries: `--help`/`--version` (answered before anything
//! else), the CAP_NET_ADMIN check, logging, invocation, runtime, and the only place that
//! turns a result into an exit code (and, for Xen, `hotplug-status`).

pub mod admin;
pub mod logging;
mod qemu;
mod registration;
mod usage;
mod xen;

use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::apply::purge::{self, HeldPurge};
use crate::apply::runner::SystemRunner;
use crate::apply::{Runner, apply_attach, apply_detach};
use crate::planning::plan::{Plan, Step};
use crate::sys::deadline;
use crate::sys::xenstore::Client;

pub use qemu::{TapDirection, plan_up as plan_tap_up, qemu_main};
pub use xen::{XenScript, plan_call as plan_xen_call, xen_main};

/// Well inside libxl's 40 s SIGKILL, so our own error reaches xenstore first; qemu blocks on
/// us too, so nothing may hang.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// What a failed attach may take to undo itself once the run's deadline has passed.
pub const UNDO_BUDGET: Duration = Duration::from_secs(2);

/// What the error report may take: a fresh xenstore connection and one transaction.
pub const REPORT_BUDGET: Duration = Duration::from_secs(2);

/// Kept back from the run's work for the undo and the error report, so that a run whose
/// every call waits to the end still ends within [`DEADLINE`], reported.
pub const RESERVE: Duration = UNDO_BUDGET.saturating_add(REPORT_BUDGET);

/// Starts a run's clock: sets the deadline every blocking call of this run draws from
/// ([`DEADLINE`] from now, less the [`RESERVE`]) and returns it. Each entry calls it once,
/// first thing.
pub fn start_run() -> Instant {
    let deadline = Instant::now() + DEADLINE - RESERVE;
    deadline::set(deadline);
    deadline
}

/// The background purge a plug started (`apply::purge`): this binary run again with
/// `VIFKIT_HELD_PURGE` set, answered before anything else. None for every other run.
fn held_purge(tag: &str, xen_log: bool) -> Option<ExitCode> {
    let spec = std::env::var_os(purge::CHILD_ENV)?;
    let held = match HeldPurge::parse(&spec.to_string_lossy()) {
        Ok(held) => held,
        Err(why) => {
            logging::init(tag, xen_log);
            log::error!("{why}");
            return Some(ExitCode::FAILURE);
        }
    };
    logging::init_for_port(tag, xen_log, Some(held.port.as_str()));
    Some(match purge::finish(&held) {
        Ok(done) => {
            log::info!("{done}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            log::warn!("{err:#}");
            ExitCode::FAILURE
        }
    })
}

/// The arguments after argv[0]; one that is not UTF-8 is read lossily (a name it gives
/// then matches nothing) rather than ending the run in a panic.
fn args() -> Vec<String> {
    std::env::args_os()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect()
}

/// CAP_NET_ADMIN's bit in the capability sets (`linux/capability.h`).
const CAP_NET_ADMIN: u32 = 12;

/// Refuses a run whose effective capabilities lack CAP_NET_ADMIN, before it touches
/// anything: without it every netlink change fails with EPERM, an attach half-way through.
/// The one place that checks: the hotplug entries call it before their first request, and
/// so should every admin verb that reads or changes the kernel's network state or xenstore.
/// Where `/proc/self/status` cannot be read, the run goes on and the kernel says.
pub fn require_net_admin() -> Result<()> {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return Ok(());
    };
    match has_net_admin(&status) {
        Some(false) => bail!(
            "must run as root (CAP_NET_ADMIN), not as uid {} without it",
            nix::unistd::geteuid()
        ),
        _ => Ok(()),
    }
}

/// Whether the `CapEff` line of a `/proc/<pid>/status` text holds CAP_NET_ADMIN; None
/// without a readable line.
fn has_net_admin(status: &str) -> Option<bool> {
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))?
        .trim();
    let effective = u64::from_str_radix(hex, 16).ok()?;
    Some(effective & (1 << CAP_NET_ADMIN) != 0)
}

/// Runs `work` on a current-thread runtime (a few netlink round trips need no more). The
/// calls in it draw from `deadline` themselves and fail when it passes, after which a failed
/// attach still undoes itself within [`UNDO_BUDGET`]; a call that is not bounded (it would
/// be a bug) is cut when that is spent too.
pub fn block_on_with_deadline<T>(
    deadline: Instant,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let remaining = (deadline + UNDO_BUDGET).saturating_duration_since(Instant::now());
    runtime.block_on(async {
        match tokio::time::timeout(remaining, work).await {
            Ok(result) => result,
            Err(_) => anyhow::bail!("out of time (the run's deadline passed)"),
        }
    })
}

/// Prints the plan for a dry run; otherwise logs its decisions and runs it: an attach undoes
/// itself on failure, a detach goes on past failures.
async fn execute(plan: &Plan, mut runner: SystemRunner<'_>, dry_run: bool) -> Result<()> {
    if dry_run {
        print!("{plan}");
        return Ok(());
    }
    for info in &plan.infos {
        log::info!("{info}");
    }
    for note in &plan.notes {
        log::debug!("{note}");
    }
    for warning in &plan.warnings {
        log::warn!("{warning}");
    }
    if runner.attach {
        attach(plan, runner).await
    } else {
        apply_detach(plan, &mut runner).await
    }
}

/// Runs an attach, which undoes itself on failure: the undo gets [`UNDO_BUDGET`] of its
/// own (or what is left, if more), since the step that failed may have failed because the
/// run's deadline passed. The run's deadline is back in force afterwards (for the next port
/// of a `reattach`).
pub(crate) async fn attach(plan: &Plan, runner: SystemRunner<'_>) -> Result<()> {
    let run_deadline = deadline::get();
    let mut runner = UndoBudget {
        runner,
        failed: false,
        undoing: false,
    };
    let result = apply_attach(plan, &mut runner).await;
    if let Some(run_deadline) = run_deadline {
        deadline::set(run_deadline);
    }
    result
}

/// The runner of an attach. `apply_attach` stops at the first step that fails and then
/// runs the undo of each step done: every call after a failure is an undo.
struct UndoBudget<'a> {
    runner: SystemRunner<'a>,
    failed: bool,
    undoing: bool,
}

impl Runner for UndoBudget<'_> {
    async fn run(&mut self, step: &Step) -> Result<()> {
        if self.failed && !self.undoing {
            self.undoing = true;
            let until = undo_deadline(deadline::get(), Instant::now());
            deadline::set(until);
            self.runner.deadline = until;
        }
        let result = self.runner.run(step).await;
        self.failed |= result.is_err();
        result
    }
}

/// Until when the undo may run: [`UNDO_BUDGET`] from `now`, or the run's deadline if that
/// leaves more.
fn undo_deadline(run: Option<Instant>, now: Instant) -> Instant {
    let own = now + UNDO_BUDGET;
    run.map_or(own, |run| run.max(own))
}

/// The one error reporter: logs the whole chain as one line and, for a Xen attach, hands
/// the same line to libxl through `hotplug-error` + `hotplug-status=error`, on a fresh
/// xenstore connection with [`REPORT_BUDGET`] of its own: the run's connection may be the
/// one that failed (a late reply would be read as the report's), and its deadline spent.
fn failure(err: &anyhow::Error, report_to: Option<&str>) -> ExitCode {
    let message = format!("{err:#}");
    log::error!("{message}");
    if let Some(backend) = report_to {
        // The exit code stays 1 whether or not xenstore took the report.
        let report = Client::connect_within(REPORT_BUDGET)
            .and_then(|mut xs| xs.write_hotplug_error(backend, &message));
        if let Err(report) = report {
            log::error!("cannot report the error in xenstore: {report:#}");
        }
    }
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_ends_a_run_with_one_sentence() {
        // A call that ignores the deadline is cut once the undo's budget is spent too.
        let past = Instant::now() - UNDO_BUDGET;
        let started = Instant::now();
        let err = block_on_with_deadline(past, async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        })
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(err.to_string(), "out of time (the run's deadline passed)");
        let done = block_on_with_deadline(Instant::now() + DEADLINE, async { Ok(7) });
        assert_eq!(done.unwrap(), 7);
    }

    #[test]
    fn cap_net_admin_is_read_from_the_effective_set() {
        let status = |eff: &str| {
            format!(
                "Name:\tvif-bridge\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t{eff}\nCapBnd:\t000001ffffffffff\n"
            )
        };
        assert_eq!(has_net_admin(&status("000001ffffffffff")), Some(true));
        // CAP_NET_ADMIN alone, as libvirt may leave qemu's helper.
        assert_eq!(has_net_admin(&status("0000000000001000")), Some(true));
        assert_eq!(has_net_admin(&status("0000000000000000")), Some(false));
        // Everything but CAP_NET_ADMIN.
        assert_eq!(has_net_admin(&status("000001ffffffefff")), Some(false));
        assert_eq!(has_net_admin("Name:\tx\n"), None);
        assert_eq!(has_net_admin(&status("zz")), None);
    }

    #[test]
    fn the_budgets_fit_inside_libxls_kill() {
        assert!(DEADLINE < Duration::from_secs(40));
        assert_eq!(RESERVE, Duration::from_secs(4));
        // Work, undo and report, one after the other, each waiting to its end.
        assert_eq!(DEADLINE - RESERVE + UNDO_BUDGET + REPORT_BUDGET, DEADLINE);
    }

    #[test]
    fn an_undo_gets_its_own_budget_once_the_run_is_out_of_time() {
        let now = Instant::now();
        let spent = now - Duration::from_secs(1);
        assert_eq!(undo_deadline(Some(spent), now), now + UNDO_BUDGET);
        let later = now + Duration::from_secs(20);
        assert_eq!(undo_deadline(Some(later), now), later);
        assert_eq!(undo_deadline(None, now), now + UNDO_BUDGET);
    }
}
