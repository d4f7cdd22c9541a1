//! The entries of the hotplug binaries: logging, invocation, runtime, and the only place
//! that turns a result into an exit code (and, for Xen, `hotplug-status`).

pub mod admin;
pub mod logging;
mod qemu;
mod xen;

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::apply::system::SystemRunner;
use crate::apply::{apply_attach, apply_detach};
use crate::planning::modes::routed;
use crate::planning::plan::Plan;
use crate::planning::snapshot::Snapshot;
use crate::sys::rtnl::Netlink;
use crate::sys::sysctl::{self, Key};
use crate::sys::xenstore::Client;
use crate::types::names::IfName;
use crate::types::prefix::Family;

pub use qemu::{TapDirection, plan_up as plan_tap_up, qemu_main};
pub use xen::{XenMode, plan_call as plan_xen_call, xen_main};

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

/// The links a planner may look at, plus the bridge each of them is a port of.
pub async fn snapshot(netlink: &Netlink, names: &[IfName]) -> Result<Snapshot> {
    let mut kernel = links_snapshot(netlink, names).await?;
    let mut masters: Vec<u32> = kernel.links.iter().filter_map(|l| l.master).collect();
    masters.retain(|index| kernel.links.iter().all(|l| l.index != *index));
    masters.sort_unstable();
    masters.dedup();
    for index in masters {
        if let Some(master) = netlink.link_by_index(index).await? {
            kernel.add(master);
        }
    }
    Ok(kernel)
}

/// The named links alone, without their masters: all a detach looks at.
pub async fn links_snapshot(netlink: &Netlink, names: &[IfName]) -> Result<Snapshot> {
    let mut kernel = Snapshot::default();
    // A vif often is its own wanted name, and a bridge the master of a port: one request each.
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            continue;
        }
        if let Some(link) = netlink.link(name).await? {
            if let Some(device) = sysfs_device(name) {
                kernel.devices.push((name.to_string(), device));
            }
            kernel.add(link);
        }
    }
    Ok(kernel)
}

fn sysfs_device(name: &IfName) -> Option<String> {
    let target = std::fs::read_link(
        Path::new("/sys/class/net")
            .join(name.as_str())
            .join("device"),
    )
    .ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// The links of the IPv4, then IPv6, default routes, recorded in the snapshot.
async fn add_default_links(netlink: &Netlink, kernel: &mut Snapshot) -> Result<()> {
    for family in [Family::V4, Family::V6] {
        for index in netlink.default_route_links(family).await? {
            if kernel.default_links.contains(&index) {
                continue;
            }
            if let Some(link) = netlink.link_by_index(index).await? {
                kernel.add(link);
            }
            kernel.default_links.push(index);
        }
    }
    Ok(())
}

fn read_sysctls(kernel: &mut Snapshot, keys: Vec<Key>) -> Result<()> {
    for key in keys {
        let value = sysctl::read(&key)?;
        kernel.sysctls.push((key, value));
    }
    Ok(())
}

/// What the routed planners look at: the port's links (the kernel name, then the final one)
/// with their routes, addresses and proxy_arp/proxy_ndp, the uplink (`netdev`, else the
/// default-route link) with its addresses, every proxy entry, and the forwarding knobs.
async fn routed_snapshot(
    netlink: &Netlink,
    port: &[IfName],
    others: &[IfName],
    netdev: Option<&str>,
) -> Result<Snapshot> {
    let mut names = port.to_vec();
    names.extend_from_slice(others);
    if let Some(netdev) = netdev.filter(|n| !n.is_empty()) {
        names.push(IfName::new(netdev).context("netdev")?);
    }
    let mut kernel = snapshot(netlink, &names).await?;
    add_default_links(netlink, &mut kernel).await?;
    kernel.proxies = netlink.proxies().await?;
    let mut keys = vec![
        Key::new("net/ipv4/conf/all/forwarding")?,
        Key::new("net/ipv6/conf/all/forwarding")?,
    ];
    let mut inspected = Vec::new();
    for name in port {
        keys.push(Key::proxy_arp(name));
        keys.push(Key::proxy_ndp(name));
        if let Some(link) = kernel.link(name.as_str()) {
            inspected.push(link.index);
        }
    }
    if let Ok(uplink) = routed::uplink(netdev, &kernel) {
        keys.push(Key::proxy_ndp(&uplink.name.clone()));
        inspected.push(uplink.index);
    }
    inspected.dedup();
    for index in inspected {
        for address in netlink.addresses(index).await? {
            kernel.addresses.push((index, address));
        }
        for (destination, prefix_len, metric) in netlink.routes_via(index).await? {
            kernel.routes.push((index, destination, prefix_len, metric));
        }
    }
    read_sysctls(&mut kernel, keys)?;
    Ok(kernel)
}
