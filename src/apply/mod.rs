//! Runs a plan. An attach stops at the first failure and undoes what it did, in reverse; a
//! detach keeps going, counts missing objects as removed (not missing programs) and reports
//! every other failure.
//!
//! An attach the run's deadline stops (a hook that hangs, a daemon that does not answer)
//! still undoes itself: the entry gives the undo a budget of its own past the deadline.

pub mod gather;
pub mod hooks;
pub mod purge;
pub mod runner;

use anyhow::{Result, anyhow};

use crate::planning::plan::{Plan, Step};
use crate::sys::rtnl::is_missing;

/// Carries out one step against the kernel, xenstore or hook scripts.
#[allow(async_fn_in_trait)] // only used with concrete types inside the crate
pub trait Runner {
    async fn run(&mut self, step: &Step) -> Result<()>;
}

pub async fn apply_attach(plan: &Plan, runner: &mut impl Runner) -> Result<()> {
    let mut done: Vec<&Step> = Vec::new();
    for step in plan.iter() {
        log::info!("{step}");
        if let Err(err) = runner.run(step).await {
            let err = err.context(step.to_string());
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
