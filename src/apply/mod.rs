//! Runs a plan. An attach stops at the first failure and undoes what it did, in reverse; a
//! detach keeps going, counts missing objects as removed (not missing programs) and reports
//! every other failure.
//!
//! An attach's steps end [`UNDO_RESERVE`] before the run's deadline, so that an attach the
//! deadline stops (a hook that hangs, a daemon that does not answer) still has time to undo
//! itself before the run reports.

pub mod gather;
pub mod hooks;
pub mod runner;

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

use crate::planning::plan::{Plan, Step};
use crate::sys::deadline;
use crate::sys::rtnl::is_missing;

/// What an attach keeps of the run's time for its undo: a few netlink requests and an nft
/// batch, which take milliseconds.
pub const UNDO_RESERVE: Duration = Duration::from_secs(2);

/// Carries out one step against the kernel, xenstore or hook scripts.
#[allow(async_fn_in_trait)] // only used with concrete types inside the crate
pub trait Runner {
    async fn run(&mut self, step: &Step) -> Result<()>;

    /// The run's deadline as the runner was given it, if it was given one.
    fn deadline(&self) -> Option<Instant> {
        None
    }
}

/// While an attach's steps run, the run's deadline is [`UNDO_RESERVE`] earlier; the undo,
/// and whatever follows the attach, get it back.
struct StepsShare {
    run: Option<Instant>,
}

impl StepsShare {
    fn start(runner: Option<Instant>) -> StepsShare {
        let run = match (deadline::get(), runner) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(run) = run {
            deadline::set(steps_end(run));
        }
        StepsShare { run }
    }

    /// The undo starts: the whole of the run's deadline again.
    fn end(&self) {
        if let Some(run) = self.run {
            deadline::set(run);
        }
    }
}

impl Drop for StepsShare {
    fn drop(&mut self) {
        self.end();
    }
}

/// When an attach's steps must end for the undo to fit before `run`.
fn steps_end(run: Instant) -> Instant {
    run.checked_sub(UNDO_RESERVE).unwrap_or(run)
}

pub async fn apply_attach(plan: &Plan, runner: &mut impl Runner) -> Result<()> {
    let share = StepsShare::start(runner.deadline());
    let mut done: Vec<&Step> = Vec::new();
    for step in plan.iter() {
        log::info!("{step}");
        if let Err(err) = runner.run(step).await {
            let err = err.context(step.to_string());
            share.end();
            for undo in done.iter().rev().filter_map(|s| s.undo()) {
                log::info!("undo: {undo}");
                if let Err(undo_err) = runner.run(&undo).await {
                    log::warn!("undo: {undo}: {undo_err:#}");
                }
            }
            return Err(err);
        }
        done.push(step);
    }
    Ok(())
}

pub async fn apply_detach(plan: &Plan, runner: &mut impl Runner) -> Result<()> {
    let mut failures = Vec::new();
    for step in plan.iter() {
        log::info!("{step}");
        match runner.run(step).await {
            Ok(()) => {}
            Err(err) if step.absent_means_done() && is_missing(&err) => {
                log::debug!("{step}: already gone")
            }
            Err(err) => {
                log::warn!("{step}: {err:#}");
                failures.push(format!("{step}: {err:#}"));
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(failures.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::link::LinkRef;
    use crate::types::names::IfName;
    use std::io;
    use std::time::{Duration, Instant};

    /// Records what ran; fails the steps whose words it is told to.
    struct Recorder {
        ran: Vec<String>,
        fail: Vec<(&'static str, i32)>,
    }

    impl Runner for Recorder {
        async fn run(&mut self, step: &Step) -> Result<()> {
            let words = step.to_string();
            self.ran.push(words.clone());
            match self.fail.iter().find(|(w, _)| *w == words) {
                Some((_, errno)) => Err(io::Error::from_raw_os_error(*errno).into()),
                None => Ok(()),
            }
        }
    }

    /// Records the run's deadline as each step saw it; fails the step with words `fail`.
    struct Clocked {
        deadline: Instant,
        seen: Vec<(String, Option<Instant>)>,
        fail: &'static str,
    }

    impl Runner for Clocked {
        async fn run(&mut self, step: &Step) -> Result<()> {
            let words = step.to_string();
            self.seen.push((words.clone(), deadline::get()));
            match words == self.fail {
                true => Err(io::Error::from(io::ErrorKind::TimedOut).into()),
                false => Ok(()),
            }
        }

        fn deadline(&self) -> Option<Instant> {
            Some(self.deadline)
        }
    }

    #[test]
    fn an_attach_leaves_its_undo_part_of_the_run() {
        // Far off: every test in this binary draws from the process-wide deadline.
        let run = Instant::now() + Duration::from_secs(3600);
        let mut r = Clocked {
            deadline: run,
            seen: vec![],
            fail: "set vif3.0 up",
        };
        block_on(apply_attach(&online_plan(), &mut r)).unwrap_err();
        let steps = Some(run - UNDO_RESERVE);
        assert_eq!(
            r.seen,
            [
                ("set vif3.0 down".to_owned(), steps),
                ("set vif3.0 mtu 9000".to_owned(), steps),
                ("attach vif3.0 to bridge xenbr0".to_owned(), steps),
                ("set vif3.0 up".to_owned(), steps),
                ("detach vif3.0 from its bridge".to_owned(), Some(run)),
                ("set vif3.0 mtu 1500".to_owned(), Some(run)),
                ("set vif3.0 up".to_owned(), Some(run)),
            ]
        );
        assert_eq!(
            deadline::get(),
            Some(run),
            "what follows the attach has it all"
        );
    }

    fn link(name: &str) -> LinkRef {
        LinkRef {
            index: 7,
            name: IfName::new(name).unwrap(),
        }
    }

    fn online_plan() -> Plan {
        let vif = link("vif3.0");
        Plan::of(vec![
            Step::SetDown {
                link: vif.clone(),
                was_up: true,
            },
            Step::SetMtu {
                link: vif.clone(),
                mtu: 9000,
                previous: 1500,
            },
            Step::Attach {
                link: vif.clone(),
                bridge: link("xenbr0"),
                previous: None,
            },
            Step::SetUp {
                link: vif,
                was_up: false,
            },
        ])
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn attach_failure_undoes_in_reverse_and_keeps_the_first_error() {
        let mut r = Recorder {
            ran: vec![],
            fail: vec![("set vif3.0 up", nix::libc::ENOBUFS)],
        };
        let err = block_on(apply_attach(&online_plan(), &mut r)).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "set vif3.0 up: No buffer space available (os error 105)"
        );
        assert_eq!(
            r.ran,
            [
                "set vif3.0 down",
                "set vif3.0 mtu 9000",
                "attach vif3.0 to bridge xenbr0",
                "set vif3.0 up",
                "detach vif3.0 from its bridge",
                "set vif3.0 mtu 1500",
                "set vif3.0 up",
            ]
        );
    }

    #[test]
    fn a_failed_online_removes_the_limit_on_what_the_guest_sends() {
        let tap = link("vkt0");
        let rate = crate::types::port::Rate(10_000_000);
        let plan = Plan::of(vec![
            Step::SetRateLimit {
                link: tap.clone(),
                rate,
            },
            Step::SetIngressLimit {
                link: tap.clone(),
                rate,
            },
            Step::SetUp {
                link: tap,
                was_up: false,
            },
        ]);
        let mut r = Recorder {
            ran: vec![],
            fail: vec![("set vkt0 up", nix::libc::ENOBUFS)],
        };
        block_on(apply_attach(&plan, &mut r)).unwrap_err();
        assert_eq!(
            r.ran,
            [
                "limit what vkt0 sends its guest to 10mbit",
                "limit what vkt0 takes from its guest to 10mbit",
                "set vkt0 up",
                "delete the ingress qdisc of vkt0 and its rate limit",
            ]
        );
    }

    #[test]
    fn detach_continues_and_tolerates_missing_objects() {
        let vif = link("vif3.0");
        let plan = Plan::of(vec![
            Step::SetDown {
                link: vif.clone(),
                was_up: true,
            },
            Step::Detach { link: vif.clone() },
            Step::SetMtu {
                link: vif,
                mtu: 1500,
                previous: 1500,
            },
        ]);
        let mut r = Recorder {
            ran: vec![],
            fail: vec![
                ("set vif3.0 down", nix::libc::ENODEV),
                ("detach vif3.0 from its bridge", nix::libc::EPERM),
            ],
        };
        let err = block_on(apply_detach(&plan, &mut r)).unwrap_err();
        assert_eq!(r.ran.len(), 3);
        assert_eq!(
            err.to_string(),
            "detach vif3.0 from its bridge: Operation not permitted (os error 1)"
        );
    }

    #[test]
    fn a_missing_program_on_detach_is_a_failure_not_already_gone() {
        let plan = Plan::of(vec![
            Step::Exec {
                program: "/sbin/ifdown".into(),
                args: vec!["xen1.0".into()],
            },
            Step::SetDown {
                link: link("xen1.0"),
                was_up: true,
            },
        ]);
        let mut r = Recorder {
            ran: vec![],
            fail: vec![
                ("run /sbin/ifdown xen1.0", nix::libc::ENOENT),
                ("set xen1.0 down", nix::libc::ENODEV),
            ],
        };
        let err = block_on(apply_detach(&plan, &mut r)).unwrap_err();
        assert_eq!(r.ran.len(), 2);
        assert_eq!(
            err.to_string(),
            "run /sbin/ifdown xen1.0: No such file or directory (os error 2)"
        );
    }
}
