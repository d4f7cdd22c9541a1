//! The admin verbs over live ports: `plan DEV` (what online would do, from the inputs a
//! hotplug run reads), `check DEV` (the live kernel and xenstore against that plan, CNI's
//! CHECK) and `reattach [BRIDGE]` (ports back onto a bridge that was recreated).
//!
//! A Xen port is found through dom0's backend directory (by `vifname` or kernel name,
//! `-emu` taps included) and planned by the mode its `script` key names; any other name is
//! taken for a qemu tap and planned as `qemu-ifup` would.

use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::apply::runner::SystemRunner;
use crate::entry::{DEADLINE, XenScript, block_on_with_deadline, plan_tap_up, plan_xen_call};
use crate::input::config::Config;
use crate::input::invocation::{Parsed, XenCall, parse_xen_call};
use crate::planning::plan::{Plan, Step};
use crate::sys::nft;
use crate::sys::rtnl::Netlink;
use crate::sys::xenstore::{Client, is_enoent};
use crate::types::bridge_word::BridgeWord;
use crate::types::names::{IfName, VifId};

const BACKENDS: &str = "/local/domain/0/backend/vif";

/// One Xen backend as libxl left it.
struct Backend {
    mode: XenScript,
    call: XenCall,
    /// The name the port has once online ran (`vifname`, else the kernel's).
    name: IfName,
    bridge: Option<String>,
    online: bool,
}

/// Every backend in dom0's directory whose script is one of ours, vif and `-emu` tap.
fn xen_ports(xs: &mut Client) -> Result<Vec<Backend>> {
    let mut ports = vec![];
    let domids = match xs.directory(BACKENDS) {
        Ok(domids) => domids,
        Err(err) if is_enoent(&err) => return Ok(ports),
        Err(err) => return Err(err.context(format!("list {BACKENDS}"))),
    };
    for domid in domids {
        for devid in xs.directory(&format!("{BACKENDS}/{domid}"))? {
            let backend = format!("{BACKENDS}/{domid}/{devid}");
            let keys = ["script", "vifname", "bridge", "online"].map(|k| format!("{backend}/{k}"));
            let [script, vifname, bridge, online] =
                <[Option<String>; 4]>::try_from(xs.read_many(&keys)?)
                    .map_err(|_| anyhow::anyhow!("xenstore answered the wrong number of reads"))?;
            let Some(mode) = script.as_deref().and_then(XenScript::from_script) else {
                continue;
            };
            let kernel = format!("vif{domid}.{devid}");
            for tap in [false, true] {
                let env = |key: &str| match key {
                    "XENBUS_PATH" => Some(backend.clone()),
                    "vif" => Some(kernel.clone()),
                    "INTERFACE" => Some(format!("{kernel}-emu")),
                    _ => None,
                };
                let args = match tap {
                    false => ["online", "type_if=vif"],
                    true => ["add", "type_if=tap"],
                }
                .map(str::to_owned);
                let Parsed::Run(call) = parse_xen_call(&args, &env)? else {
                    continue;
                };
                let base = vifname.clone().unwrap_or_else(|| kernel.clone());
                let name = IfName::new(&if tap { format!("{base}-emu") } else { base })?;
                ports.push(Backend {
                    mode,
                    call,
                    name,
                    bridge: bridge.clone(),
                    online: online.as_deref() == Some("1"),
                });
            }
        }
    }
    Ok(ports)
}

/// The plan online would carry out for `dev` now, and the backend it belongs to (if Xen).
async fn plan_for(
    dev: &IfName,
    xs: Option<&mut Client>,
    netlink: &Netlink,
) -> Result<(Plan, Option<String>)> {
    if let Some(xs) = xs {
        let port = xen_ports(xs)?
            .into_iter()
            .find(|p| &p.name == dev || p.call.dev == *dev);
        if let Some(port) = port {
            let plan = plan_xen_call(port.mode, &port.call, xs, netlink).await?;
            return Ok((plan, Some(port.call.backend)));
        }
    }
    if netlink.link(dev).await?.is_none() {
        bail!("{dev} is neither a Xen vif in {BACKENDS} nor an existing tap");
    }
    Ok((plan_tap_up(netlink, dev, None).await?, None))
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
    let dev = IfName::new(dev)?;
    let mut xs = xenstore_for(&dev)?;
    block_on_with_deadline(Instant::now() + DEADLINE, async {
        let netlink = Netlink::connect()?;
        let (plan, _) = plan_for(&dev, xs.as_mut(), &netlink).await?;
        print!("{plan}");
        Ok(())
    })
}

/// `vifkit check DEV`: every difference between the live state and a finished online, one
/// line each; Ok(false) when there is any.
pub fn check(dev: &str) -> Result<bool> {
    let dev = IfName::new(dev)?;
    let mut xs = xenstore_for(&dev)?;
    block_on_with_deadline(Instant::now() + DEADLINE, async {
        let netlink = Netlink::connect()?;
        let (plan, backend) = plan_for(&dev, xs.as_mut(), &netlink).await?;
        let mut drift = vec![];
        for step in plan.iter() {
            if let Some(what) = differs(step, xs.as_mut())? {
                drift.push(what);
            }
        }
        if let (Some(backend), Some(xs)) = (backend, xs.as_mut()) {
            let path = format!("{backend}/hotplug-status");
            let status = xs.read_optional(&path)?;
            if status.as_deref() != Some("connected") {
                drift.push(format!("{path} is {status:?}, not \"connected\""));
            }
        }
        for line in &drift {
            println!("drift: {line}");
        }
        if drift.is_empty() {
            println!("{dev}: in place, as online leaves it");
        }
        Ok(drift.is_empty())
    })
}

/// What a planned step would change. The planners are ensures, so a step appears only when
/// needed; the few planned every time are read back here instead.
fn differs(step: &Step, xs: Option<&mut Client>) -> Result<Option<String>> {
    Ok(match step {
        Step::RunHooks(_) | Step::PurgeConntrack { .. } => None,
        Step::WriteXenstore { path, value } => {
            let now = match xs {
                Some(xs) => xs.read_optional(path)?,
                None => None,
            };
            (now.as_deref() != Some(value)).then(|| format!("{path} is {now:?}, not {value:?}"))
        }
        // Planned only when what is installed is missing or not what online installs.
        Step::SetPortFilter(filter) => Some(match nft::port_filter_present(&filter.port)? {
            false => format!(
                "no antispoofing rules for {} ({})",
                filter.port,
                filter.table()
            ),
            true => format!(
                "the antispoofing rules of {} ({}) are not the ones online installs",
                filter.port,
                filter.table()
            ),
        }),
        Step::SetNat { key, .. } => Some(match nft::nat_present(key)? {
            false => format!("no nft table inet {}", nft::nat_table(key)),
            true => format!("nft table inet {} holds other rules", nft::nat_table(key)),
        }),
        // Not read back yet: every online applies them whole (the ingress limit as an ensure).
        Step::SetPortOptions { .. } | Step::SetRateLimit { .. } | Step::SetIngressLimit { .. } => {
            None
        }
        other => Some(format!("would {other}")),
    })
}

/// `vifkit reattach [BRIDGE]`: every port whose configuration names BRIDGE (any bridge
/// without it) is planned and brought back as online would, minus the hooks and the
/// conntrack purge: the guest is running and its flows are its own. Returns how many failed.
pub fn reattach(bridge: Option<&str>) -> Result<usize> {
    let mut failed = 0;
    // On a Xen host an unreachable xenstore leaves its vifs off their bridge: a failure,
    // though the taps are still put back.
    let mut xs = match Client::connect() {
        Ok(xs) => Some(xs),
        Err(err) if Client::expected() => {
            failed += 1;
            println!("Xen vifs: not reattached: {err:#}");
            None
        }
        Err(_) => None,
    };
    let config = Config::load_from_env()?;
    block_on_with_deadline(Instant::now() + DEADLINE, async {
        let netlink = Netlink::connect()?;
        let wanted = |b: Option<&str>| b.is_some() && (bridge.is_none() || b == bridge);
        let mut ports: Vec<(IfName, Option<Backend>)> = vec![];
        if let Some(xs) = xs.as_mut() {
            for port in xen_ports(xs)? {
                if port.mode == XenScript::Bridge && port.online && wanted(port.bridge.as_deref()) {
                    ports.push((port.name.clone(), Some(port)));
                }
            }
        }
        for tap in netlink.tap_names().await? {
            let rule = config.rule_for(&tap);
            if wanted(rule.and_then(|r| r.bridge.as_ref()).map(BridgeWord::as_str)) {
                ports.push((tap, None));
            }
        }
        if ports.is_empty() {
            println!("no port names {}", bridge.unwrap_or("a bridge"));
        }
        for (name, xen) in ports {
            if netlink.link(&name).await?.is_none() {
                continue; // its guest is gone or not yet up: hotplug will see to it
            }
            let result = async {
                let mut plan = match &xen {
                    Some(port) => {
                        let xs = xs.as_mut().context("no xenstore connection")?;
                        plan_xen_call(port.mode, &port.call, xs, &netlink).await?
                    }
                    None => plan_tap_up(&netlink, &name, None).await?,
                };
                plan.retain(|s| !matches!(s, Step::RunHooks(_) | Step::PurgeConntrack { .. }));
                let changes = plan.iter().filter(|s| !routine(s)).count();
                let runner = SystemRunner {
                    netlink: &netlink,
                    xenstore: xs.as_mut(),
                    deadline: Instant::now() + DEADLINE,
                    attach: true,
                };
                crate::apply::apply_attach(&plan, &mut { runner }).await?;
                anyhow::Ok(changes)
            }
            .await;
            match result {
                Ok(0) => println!("{name}: already in place"),
                Ok(_) => println!("{name}: reattached"),
                Err(err) => {
                    failed += 1;
                    println!("{name}: failed: {err:#}");
                }
            }
        }
        Ok(failed)
    })
}

/// Steps a plan carries every time, which say nothing about drift.
fn routine(step: &Step) -> bool {
    matches!(step, Step::SetPortOptions { .. })
}
