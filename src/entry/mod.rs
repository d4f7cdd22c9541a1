//! The entries of the hotplug binaries: logging, invocation, runtime, and the only place
//! that turns a result into an exit code (and, for Xen, `hotplug-status`).

pub mod admin;
pub mod logging;
mod qemu;
mod xen;

use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::apply::runner::SystemRunner;
use crate::apply::{apply_attach, apply_detach};
use crate::planning::plan::Plan;
use crate::sys::xenstore::Client;

pub use qemu::{TapDirection, plan_up as plan_tap_up, qemu_main};
pub use xen::{XenScript, plan_call as plan_xen_call, xen_main};

/// Well inside libxl's 40 s SIGKILL, so our own error reaches xenstore first; qemu blocks on
/// us too, so nothing may hang.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Runs `work` on a current-thread runtime (a few netlink round trips need no more), giving
/// up at `deadline`.
pub fn block_on_with_deadline<T>(
    deadline: Instant,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let remaining = deadline.saturating_duration_since(Instant::now());
    runtime.block_on(async {
        match tokio::time::timeout(remaining, work).await {
            Ok(result) => result,
            Err(_) => anyhow::bail!("gave up after {} s", DEADLINE.as_secs()),
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
    for note in &plan.notes {
        log::debug!("{note}");
    }
    for warning in &plan.warnings {
        log::warn!("{warning}");
    }
    if runner.attach {
        apply_attach(plan, &mut runner).await
    } else {
        apply_detach(plan, &mut runner).await
    }
}

/// The one error reporter: logs the whole chain as one line and, for a Xen attach, hands
/// the same line to libxl through `hotplug-error` + `hotplug-status=error`.
fn failure(err: &anyhow::Error, report_to: Option<(&mut Client, &str)>) -> ExitCode {
    let message = format!("{err:#}");
    log::error!("{message}");
    if let Some((xs, backend)) = report_to {
        // The exit code stays 1 whether or not xenstore took the report.
        if let Err(report) = xs.write_hotplug_error(backend, &message) {
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
        let past = Instant::now();
        let err = block_on_with_deadline(past, async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "gave up after 30 s");
        let done = block_on_with_deadline(Instant::now() + DEADLINE, async { Ok(7) });
        assert_eq!(done.unwrap(), 7);
    }
}
