//! `vifkit check DEV`: the live kernel and xenstore against what online leaves, and what
//! the host does to the port's traffic besides (a forward chain dropping bridged frames, a
//! tap's rate limit replaced by libvirt).

use anyhow::{Context, Result};

use super::{Planned, nm, plan_for, xenstore_for};
use crate::entry::{block_on_with_deadline, start_run};
use crate::planning::plan::{Plan, Step};
use crate::sys::rtnl::Netlink;
use crate::sys::xenstore::Client;
use crate::sys::{forward, nft};
use crate::types::names::IfName;

/// Every difference between the live state and a finished online, one line each;
/// Ok(false) when there is any.
pub fn check(dev: &str) -> Result<bool> {
    let deadline = start_run();
    let dev = IfName::new(dev)?;
    let mut xs = xenstore_for(&dev)?;
    block_on_with_deadline(deadline, async {
        let netlink = Netlink::connect()?;
        let planned = plan_for(&dev, xs.as_mut(), &netlink).await?;
        let drift = drift(&planned, xs.as_mut(), &netlink).await?;
        for line in &drift {
            println!("drift: {line}");
        }
        if drift.is_empty() {
            println!("{dev}: in place, as online leaves it");
        }
        Ok(drift.is_empty())
    })
}

/// What stands between a port and the state online leaves, one sentence each (`check`
/// prints them, `status` shows the first): the planned steps that would still change
/// something, `hotplug-status`, a forward chain that drops bridged traffic, and
/// NetworkManager managing the port.
pub(super) async fn drift(
    planned: &Planned,
    mut xs: Option<&mut Client>,
    netlink: &Netlink,
) -> Result<Vec<String>> {
    let mut drift = vec![];
    for step in planned.plan.iter() {
        if let Some(what) = differs(step, xs.as_deref_mut(), netlink).await? {
            drift.push(what);
        }
    }
    if let (Some(backend), Some(xs)) = (&planned.backend, xs) {
        let path = format!("{backend}/hotplug-status");
        let status = xs.read_optional(&path)?;
        let error = match status.as_deref() {
            Some("error") => xs.read_optional(&format!("{backend}/hotplug-error"))?,
            _ => None,
        };
        drift.extend(hotplug_status_drift(
            &path,
            status.as_deref(),
            error.as_deref(),
        ));
    }
    if bridged(&planned.plan, &planned.name, netlink).await? {
        let dropped = forward::bridged_traffic_dropped()
            .context("look for a forward chain that drops bridged traffic")?;
        drift.extend(dropped);
    }
    drift.extend(nm::manages(&planned.name));
    Ok(drift)
}

/// What `hotplug-status` says when it is not the `connected` netback waits for (with the
/// script's `hotplug-error` when it says `error`).
fn hotplug_status_drift(path: &str, status: Option<&str>, error: Option<&str>) -> Option<String> {
    match (status, error) {
        (Some("connected"), _) => None,
        (None, _) => Some(format!("{path} is missing (online writes \"connected\")")),
        (Some(status), Some(error)) => Some(format!(
            "{path} is {status:?}, not \"connected\" (hotplug-error: {error})"
        )),
        (Some(status), None) => Some(format!("{path} is {status:?}, not \"connected\"")),
    }
}

/// Whether the port's traffic crosses a Linux bridge: online attaches it to one, or it is
/// a port of one now.
async fn bridged(plan: &Plan, name: &IfName, netlink: &Netlink) -> Result<bool> {
    if plan.iter().any(|s| matches!(s, Step::Attach { .. })) {
        return Ok(true);
    }
    let Some(master) = netlink.link(name).await?.and_then(|l| l.master) else {
        return Ok(false);
    };
    Ok(netlink
        .link_by_index(master)
        .await?
        .is_some_and(|m| m.is_bridge()))
}

/// What a planned step would change. The planners are ensures, so a step appears only when
/// needed; the few planned every time are read back here instead.
async fn differs(
    step: &Step,
    xs: Option<&mut Client>,
    netlink: &Netlink,
) -> Result<Option<String>> {
    Ok(match step {
        Step::RunHooks(_) | Step::PurgeConntrack { .. } => None,
        Step::WriteXenstore { path, value } => {
            let now = match xs {
                Some(xs) => xs.read_optional(path)?,
                None => None,
            };
            match now {
                Some(now) if now == *value => None,
                Some(now) => Some(format!("{path} is {now:?}, not {value:?}")),
                None => Some(format!("{path} is missing (online writes {value:?})")),
            }
        }
        // Planned only when the chain is missing, or its fingerprint or rules are not what
        // online installs; read again here to say which.
        Step::SetPortFilter(filter) => {
            let (port, table) = (&filter.port, filter.table());
            Some(match nft::read_port_filter(port)? {
                None => format!("no antispoofing rules for {port} ({table})"),
                Some(installed) => {
                    let why = filter
                        .mismatch(&installed)
                        .unwrap_or_else(|| "they changed while check read them".to_owned());
                    format!(
                        "the antispoofing rules of {port} ({table}) are not the ones online installs: {why}"
                    )
                }
            })
        }
        Step::RemovePortFilter { port } => Some(format!(
            "{port} has an antispoofing chain online removes (an earlier guest's of that name, or from before antispoofing was off for it)"
        )),
        Step::SetNat { key, .. } => Some(match nft::nat_present(key)? {
            false => format!("no nft table inet {}", nft::nat_table(key)),
            true => format!("nft table inet {} holds other rules", nft::nat_table(key)),
        }),
        // Every online sets the tap's tbf whole: read back here, since libvirt replaces it.
        Step::SetRateLimit { link, rate } => {
            let root = netlink.root_qdisc(link.index).await?;
            forward::rate_gone(&link.name, *rate, root.as_ref())
        }
        // Not read back yet: every online applies them whole (the ingress limit as an ensure).
        Step::SetPortOptions { .. } | Step::SetIngressLimit { .. } => None,
        other => Some(format!("would {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hotplug_status_is_said_in_words() {
        let path = "/local/domain/0/backend/vif/3/0/hotplug-status";
        assert_eq!(hotplug_status_drift(path, Some("connected"), None), None);
        assert_eq!(
            hotplug_status_drift(path, None, None).unwrap(),
            "/local/domain/0/backend/vif/3/0/hotplug-status is missing (online writes \"connected\")"
        );
        assert_eq!(
            hotplug_status_drift(path, Some(""), None).unwrap(),
            "/local/domain/0/backend/vif/3/0/hotplug-status is \"\", not \"connected\""
        );
        assert_eq!(
            hotplug_status_drift(path, Some("error"), Some("bridge xenbr9 does not exist"))
                .unwrap(),
            "/local/domain/0/backend/vif/3/0/hotplug-status is \"error\", not \"connected\" (hotplug-error: bridge xenbr9 does not exist)"
        );
        for line in [
            hotplug_status_drift(path, None, None),
            hotplug_status_drift(path, Some("error"), None),
        ] {
            let line = line.unwrap();
            assert!(!line.contains("Some(") && !line.contains("None"), "{line}");
        }
    }
}
