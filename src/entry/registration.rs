//! A hotplug run's side of the run directory `vifkit watch` reads (see `sys::rundir`): the
//! lock held shared for the run, the port's record written once it is plugged and removed
//! before it is unplugged. The plug matters more than the watcher: where the run directory
//! cannot be used, the run goes on without it and says so.

use std::time::{Duration, Instant};

use crate::sys::rtnl::Netlink;
use crate::sys::rundir::{Record, RunDir, RunLock};
use crate::types::names::IfName;

/// The longest a run waits for a repair in progress (which takes milliseconds, unless a
/// stalled xenstore holds it up too) before it goes on without the lock.
const LOCK_WAIT: Duration = Duration::from_secs(10);

pub struct Registration {
    run: RunDir,
    _lock: Option<RunLock>,
}

impl Registration {
    /// Takes the lock for this run; None when there is no usable run directory.
    pub fn begin(deadline: Instant) -> Option<Registration> {
        let run = RunDir::here()
            .inspect_err(|err| log::warn!("vifkit watch will not see this port: {err:#}"))
            .ok()?;
        let until = deadline.min(Instant::now() + LOCK_WAIT);
        let lock = run
            .lock_shared(until)
            .inspect_err(|err| log::warn!("going on without the watcher's lock: {err:#}"))
            .ok();
        Some(Registration { run, _lock: lock })
    }

    /// Before an unplug: no repair may put these names back.
    pub fn forget(&self, names: &[&IfName]) {
        for name in names {
            if let Err(err) = self.run.unmark(name) {
                log::warn!("{err:#}");
            }
        }
    }

    /// After a plug: the port, by its link's index now, with the bridge argument qemu-ifup
    /// was given or the Xen port's backend directory.
    pub async fn record(
        &self,
        netlink: &Netlink,
        name: &IfName,
        argument: Option<&str>,
        backend: Option<&str>,
    ) {
        let recorded = async {
            let link = netlink.link(name).await?;
            let link = link.ok_or_else(|| anyhow::anyhow!("{name} vanished after its plug"))?;
            let record = Record {
                index: link.index,
                argument: argument.map(str::to_owned),
                backend: backend.map(str::to_owned),
            };
            self.run.mark(name, &record)
        };
        if let Err(err) = recorded.await {
            log::warn!("vifkit watch will not repair {name}: {err:#}");
        }
    }
}
