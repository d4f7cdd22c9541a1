//! The `Runner` that changes the real system: netlink, xenstore, hook scripts. Every step
//! draws from the run's deadline: the blocking calls below bound themselves by it, and a
//! netlink request still unanswered when it passes ends the step with an error (so an attach
//! undoes itself, rather than being dropped half-done).

use std::io;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::apply::Runner;
use crate::planning::plan::Step;
use crate::sys::deadline;
use crate::sys::ovsdb::Ovsdb;
use crate::sys::rtnl::{IngressLimit, Netlink};
use crate::sys::xenstore::Client;
use crate::{apply::hooks, apply::purge, sys::nft, sys::sysctl};

/// ovs-vsctl's own default wait, which upstream passes as `--timeout=30`.
const OVSDB_TIMEOUT: Duration = Duration::from_secs(30);

pub struct SystemRunner<'a> {
    pub netlink: &'a Netlink,
    pub xenstore: Option<&'a mut Client>,
    /// The run's deadline; the process-wide one (`sys::deadline`) bounds steps too.
    pub deadline: Instant,
    /// On detach a failing hook is only a warning (CONTRACT 4.7).
    pub attach: bool,
}

impl Runner for SystemRunner<'_> {
    async fn run(&mut self, step: &Step) -> Result<()> {
        let until = deadline::bound(self.deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout_at(until.into(), self.step(step, until)).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "out of time (the run's deadline passed)",
            )
            .into()),
        }
    }
}

impl SystemRunner<'_> {
    /// Carries out `step`; what it runs ends by `until`.
    async fn step(&mut self, step: &Step, until: Instant) -> Result<()> {
        let nl = self.netlink;
        match step {
            Step::SetDown { link, .. } => nl.set_up(link.index, false).await,
            Step::SetUp { link, .. } => nl.set_up(link.index, true).await,
            Step::Rename { link, to } => nl.rename(link.index, to, link.name.as_str()).await,
            Step::RenameBack { link, to } => nl.rename(link.index, to, "").await,
            Step::SetMac { link, mac, .. } => nl.set_mac(link.index, *mac).await,
            Step::SetMtu { link, mtu, .. } => nl.set_mtu(link.index, *mtu).await,
            Step::Attach { link, bridge, .. } => {
                nl.set_master(link.index, Some(bridge.index)).await
            }
            Step::Detach { link } => nl.set_master(link.index, None).await,
            Step::AddAddress { link, address } => nl.add_address(link.index, *address).await,
            Step::DelAddress { link, address } => nl.del_address(link.index, *address).await,
            Step::AddRoute(route) => nl.add_route(route).await,
            Step::DelRoute(route) => nl.del_route(route).await,
            Step::AddProxy { link, address } => nl.add_proxy(link.index, *address).await,
            Step::DelProxy { link, address } => nl.del_proxy(link.index, *address).await,
            Step::SetSysctl { key, value, .. } => sysctl::write(key, value),
            Step::SetNat { key, rules } => nft::set_port_nat(key, rules),
            Step::RemoveNat { key } => nft::remove_port_nat(key),
            Step::SetPortOptions { link, options } => {
                nl.set_port_options(link.index, options).await
            }
            Step::OvsAddPort { bridge, port, .. } => {
                Ovsdb::connect(OVSDB_TIMEOUT).and_then(|mut db| db.add_port(bridge, port))
            }
            Step::OvsDelPort { name } => {
                Ovsdb::connect(OVSDB_TIMEOUT).and_then(|mut db| db.del_port(name.as_str()))
            }
            Step::SetRateLimit { link, rate } => nl.set_rate_limit(link.index, rate.0).await,
            Step::SetIngressLimit { link, rate } => {
                match nl.set_ingress_limit(link.index, rate.0).await? {
                    IngressLimit::Set => {}
                    IngressLimit::Unchanged => log::debug!("{link}: that limit is in place"),
                    // What the host sends the guest is limited still; the admin hears why
                    // the rest is not (README, "Bridge port options").
                    IngressLimit::Unsupported => log::warn!(
                        "what {link} takes from its guest is not limited: this kernel lacks cls_matchall or act_police"
                    ),
                }
                Ok(())
            }
            Step::RemoveIngressLimit { link } => nl.remove_ingress_limit(link.index).await,
            Step::SetPortFilter(filter) => nft::set_port_filter(filter),
            Step::RemovePortFilter { port } => nft::remove_port_filter(port),
            Step::PurgeConntrack { addresses, hold } => {
                purge::purge_for_plug(hold.as_ref(), addresses)
            }
            Step::Exec { program, args } => {
                let what = program
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                hooks::run_bounded(std::process::Command::new(program).args(args), &what, until)
            }
            Step::WriteXenstore { path, value } => match self.xenstore.as_deref_mut() {
                Some(xs) => xs.write(path, value),
                None => anyhow::bail!("no xenstore connection"),
            },
            Step::RunHooks(run) => match hooks::run_all(run, until) {
                Err(err) if !self.attach => {
                    log::warn!("{err:#}");
                    Ok(())
                }
                other => other,
            },
        }
    }
}
