//! The admin verbs over live ports: `plan DEV` (what online would do, from the inputs a
//! hotplug run reads), `check DEV` (the live kernel and xenstore against that plan, CNI's
//! CHECK, plus what the host does to the port's traffic), `status` (every port vifkit
//! manages, one line each, with check's verdict) and `reattach` (ports re-plugged after the
//! host changed under them: a bridge recreated, an uplink's proxy entries or vifkit's nft
//! tables gone), and `watch`, the daemon that does what `reattach` does as soon as the host
//! changes.
//!
//! A Xen port is found through dom0's backend directory (by `vifname` or kernel name,
//! `-emu` taps included) and planned by the mode its `script` key names; any other name
//! must be a tap, planned as `qemu-ifup` would.

mod check;
mod nm;
mod ports;
mod reattach;
mod status;
mod watch;
mod watch_state;
mod watch_triggers;

use anyhow::{Result, bail};

pub use check::check;
pub use reattach::{Scope, reattach};
pub use status::status;
pub use watch::{QUEUE_BYTES, watch};
pub use watch_state::Watcher;

use crate::entry::{block_on_with_deadline, plan_tap_up, plan_xen_call, start_run};
use crate::planning::plan::Plan;
use crate::sys::rtnl::{Link, Netlink};
use crate::sys::rundir::RunDir;
use crate::sys::xenstore::Client;
use crate::types::names::{IfName, VifId};
use ports::{BACKENDS, xen_ports};

/// The plan online would carry out for a port now.
struct Planned {
    plan: Plan,
    /// The port's name once online ran.
    name: IfName,
    /// Its backend directory, for a Xen port.
    backend: Option<String>,
}

async fn plan_for(dev: &IfName, xs: Option<&mut Client>, netlink: &Netlink) -> Result<Planned> {
    if let Some(xs) = xs {
        let port = xen_ports(xs)?
            .into_iter()
            .find(|p| &p.name == dev || p.call.dev == *dev);
        if let Some(port) = port {
            let plan = plan_xen_call(port.mode, &port.call, xs, netlink).await?;
            return Ok(Planned {
                plan,
                name: port.name,
                backend: Some(port.call.backend),
            });
        }
    }
    match netlink.link(dev).await? {
        None => bail!("{dev} is neither a Xen vif in {BACKENDS} nor an existing tap"),
        Some(link) if !is_tap(&link) => bail!(
            "{dev} is neither a Xen vif in {BACKENDS} nor a tap, so vifkit does not manage it"
        ),
        Some(_) => {}
    }
    Ok(Planned {
        plan: plan_tap_up(netlink, dev, tap_argument(dev).as_deref()).await?,
        name: dev.clone(),
        backend: None,
    })
}

/// The bridge argument qemu-ifup was given for `tap` when it plugged it (`qemu-ifup tap0
/// br0`), as its record in the run directory keeps it; None without one.
fn tap_argument(tap: &IfName) -> Option<String> {
    RunDir::here()
        .and_then(|run| run.record(tap))
        .ok()??
        .argument
}

/// A tap, as qemu creates one (`-netdev tap`): a tun/tap link with a MAC address (a layer-3
/// tun has none, nor has a veth, bridge or `lo` the kind).
fn is_tap(link: &Link) -> bool {
    link.kind.as_deref() == Some("tun") && link.mac.is_some()
}

/// The xenstore connection for `dev`, None on a host without one. A name that looks like
/// a Xen vif is not planned as a qemu tap because xenstore is down: that is the error.
fn xenstore_for(dev: &IfName) -> Result<Option<Client>> {
    match Client::connect() {
        Ok(xs) => Ok(Some(xs)),
        Err(err) if VifId::from_kernel_name(dev).is_some() => {
            Err(err.context(format!("{dev} looks like a Xen vif")))
        }
        Err(_) => Ok(None),
    }
}

/// `vifkit plan DEV`: prints the plan, changes nothing.
pub fn plan(dev: &str) -> Result<()> {
    let deadline = start_run();
    let dev = IfName::new(dev)?;
    let mut xs = xenstore_for(&dev)?;
    block_on_with_deadline(deadline, async {
        let netlink = Netlink::connect()?;
        let planned = plan_for(&dev, xs.as_mut(), &netlink).await?;
        print!("{}", planned.plan);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::mac::MacAddr;

    #[test]
    fn only_a_tun_link_with_a_mac_is_a_tap() {
        let tap = Link {
            kind: Some("tun".into()),
            mac: Some(MacAddr([0x52, 0x54, 0, 1, 2, 3])),
            ..Link::veth(7, "tap0")
        };
        assert!(is_tap(&tap));
        let tun = Link {
            mac: None,
            ..tap.clone()
        };
        assert!(!is_tap(&tun), "a layer-3 tun carries no Ethernet guest");
        let lo = Link {
            kind: None,
            ..tap.clone()
        };
        assert!(!is_tap(&lo));
        assert!(!is_tap(&Link::veth(3, "vif3.0")));
        assert!(!is_tap(&Link::bridge(2, "xenbr0")));
    }
}
