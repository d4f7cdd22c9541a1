//! The Xen entry: libxl's call, xenstore, and `hotplug-status`.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;

use super::{block_on_with_deadline, execute, failure, require_net_admin, start_run, usage};
use crate::apply::gather::gather;
use crate::apply::purge;
use crate::apply::runner::SystemRunner;
use crate::entry::logging;
use crate::entry::registration::Registration;
use crate::input::backend::{Backend, BackendKeys};
use crate::input::config::Config;
use crate::input::invocation::{Command, Parsed, XenCall, log_subject, parse_xen_call};
use crate::input::sysconfig;
use crate::input::xen_port::{XenPort, hook_dir_from_env};
use crate::planning::modes::antispoof::{self, Guest};
use crate::planning::modes::bridge::{VifBridge, plan_detach_without_xenstore};
use crate::planning::modes::nat::VifNat;
use crate::planning::modes::openvswitch::{VifOpenvswitch, VmInfo};
use crate::planning::modes::route_ifup::VifRouteIfup;
use crate::planning::modes::routed::VifRoute;
use crate::planning::modes::{Attach, Mode};
use crate::planning::plan::{Phase, Plan, Step};
use crate::sys::rtnl::Netlink;
use crate::sys::xenstore::Client;
use crate::types::names::IfName;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XenScript {
    Bridge,
    Route,
    RouteIfup,
    Nat,
    OpenVswitch,
}

pub fn xen_main(mode: XenScript, tag: &str) -> ExitCode {
    if let Some(purged) = super::held_purge(tag, true) {
        return purged;
    }
    let args = super::args();
    if let Some(answered) = usage::answer(&args, tag, || usage::xen_help(mode, tag)) {
        return answered;
    }
    let deadline = start_run();
    let subject = log_subject(&args, &|key| std::env::var(key).ok());
    logging::init_for_port(tag, true, subject.as_deref());
    if let Err(err) = require_net_admin() {
        return failure(&err, None);
    }
    log::debug!(
        "{tag} {} (XENBUS_PATH={:?})",
        args.join(" "),
        std::env::var("XENBUS_PATH").ok()
    );
    let call = match parse_xen_call(&args, &|key| std::env::var(key).ok()) {
        Ok(Parsed::Run(call)) => call,
        Ok(Parsed::Ignore(why)) => {
            log::debug!("{why}");
            return ExitCode::SUCCESS;
        }
        // An attach whose backend path is valid hears why through xenstore (upstream
        // exits silently); without a valid path there is no backend to report to.
        Err(err) => {
            let env = |key: &str| std::env::var(key).ok();
            let backend = crate::input::invocation::report_path(&args, &env);
            return failure(&err, backend.as_deref());
        }
    };
    let dry_run = std::env::var("VIFKIT_DRY_RUN").is_ok_and(|v| v == "1");
    let mut xs = match Client::connect() {
        Ok(xs) => xs,
        Err(err) if !call.command.is_attach() => {
            let done =
                block_on_with_deadline(deadline, detach_without_xenstore(&call, deadline, dry_run));
            let err = match done {
                Ok(()) => err.context(format!(
                    "took {} down and out of its bridge and removed its antispoofing chain, \
                     but could not read the backend's keys",
                    call.dev
                )),
                Err(detach) => err.context(format!(
                    "could not take {} out of its bridge without the backend's keys ({detach:#}), \
                     nor read them",
                    call.dev
                )),
            };
            return failure(&err, None);
        }
        Err(err) => return failure(&err, None),
    };
    match run_xen(mode, &call, &mut xs, deadline, dry_run) {
        Ok(()) => {
            purge::start_held();
            ExitCode::SUCCESS
        }
        // The report goes over a connection of its own: `xs` may be the one that failed.
        Err(err) => {
            drop(xs);
            let attach = call.command.is_attach() && !dry_run;
            failure(&err, attach.then_some(call.backend.as_str()))
        }
    }
}

fn run_xen(
    mode: XenScript,
    call: &XenCall,
    xs: &mut Client,
    deadline: Instant,
    dry_run: bool,
) -> Result<()> {
    if call.udev && xs.exists("/local/domain/0/libxl/disable_udev")? {
        log::info!(
            "libxl/disable_udev is set: libxl runs the hotplug scripts, skipping this udev call"
        );
        return Ok(());
    }
    block_on_with_deadline(deadline, run_mode(mode, call, xs, deadline, dry_run))
}

async fn run_mode(
    mode: XenScript,
    call: &XenCall,
    xs: &mut Client,
    deadline: Instant,
    dry_run: bool,
) -> Result<()> {
    let registration = (!dry_run).then(|| Registration::begin(deadline)).flatten();
    let netlink = Netlink::connect()?;
    let (mut plan, name) = plan_port(mode, call, xs, &netlink).await?;
    if let (Some(registration), false) = (&registration, call.command.is_attach()) {
        registration.forget(&[&name, &call.dev]);
    }
    // netback waits for `connected` (CONTRACT 2.3), written last, after the hooks, as
    // upstream's `success`: as the attach's last step, a failure to write it (xenstore out
    // of time) undoes the attach like any other. A dry run prints the plan without it.
    if call.command == Command::Online && !dry_run {
        plan.push(
            Phase::Hooks,
            Step::WriteXenstore {
                path: format!("{}/hotplug-status", call.backend),
                value: "connected".to_owned(),
            },
        );
    }
    let runner = SystemRunner {
        netlink: &netlink,
        xenstore: Some(xs),
        deadline,
        attach: call.command.is_attach(),
    };
    execute(&plan, runner, dry_run).await?;
    if let (Some(registration), true) = (&registration, call.command.is_attach()) {
        registration
            .record(&netlink, &name, None, Some(&call.backend))
            .await;
    }
    Ok(())
}

/// Offline with xenstore out of reach: what the kernel name alone allows, the link found by
/// that name or by the alias our rename left on it.
async fn detach_without_xenstore(call: &XenCall, deadline: Instant, dry_run: bool) -> Result<()> {
    let registration = (!dry_run).then(|| Registration::begin(deadline)).flatten();
    let netlink = Netlink::connect()?;
    let found = match netlink.link(&call.dev).await? {
        Some(link) => Some(link),
        None => netlink.link_by_alias(call.dev.as_str()).await?,
    };
    if let Some(registration) = &registration {
        let renamed = found.as_ref().map(|link| &link.name);
        registration.forget(
            &[Some(&call.dev), renamed]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>(),
        );
    }
    let plan = plan_detach_without_xenstore(found.as_ref(), &call.dev)?;
    let runner = SystemRunner {
        netlink: &netlink,
        xenstore: None,
        deadline,
        attach: false,
    };
    execute(&plan, runner, dry_run).await
}

/// What the run would do, from the same inputs: backend keys, config files, the kernel.
pub async fn plan_call(
    script: XenScript,
    call: &XenCall,
    xs: &mut Client,
    netlink: &Netlink,
) -> Result<Plan> {
    Ok(plan_port(script, call, xs, netlink).await?.0)
}

/// [`plan_call`], and the name the port has once online ran (its `vifname`, else the
/// kernel's; an `-emu` tap's with the suffix).
async fn plan_port(
    script: XenScript,
    call: &XenCall,
    xs: &mut Client,
    netlink: &Netlink,
) -> Result<(Plan, IfName)> {
    let keys = BackendKeys::read(xs, &call.backend)?;
    let backend = Backend::parse(call, keys)?;
    let mut port = XenPort::new(call.clone(), backend)?.with_hook_dir(hook_dir_from_env());
    // Only an attach reads vifkit.conf: a detach must not fail on a config broken since.
    let config = match port.is_attach() {
        true => Some(Config::load_from_env()?),
        false => None,
    };
    if port.is_attach() {
        port.read_frontend_mtu(xs)?;
    }
    let mode = mode_for(script, &port, config.as_ref(), xs)?;
    let needs = mode.needs(&port)?;
    let kernel = gather(netlink, &needs).await?;
    // Every mode filters its port the same way: set before link-up, removed on detach.
    let Some(config) = config else {
        let mut plan = mode.detach(&port, &kernel)?;
        antispoof::add_to_detach(&mut plan, &port.name);
        return Ok((plan, port.name));
    };
    let Attach {
        mut plan,
        guest_addresses,
    } = mode.attach(&port, &kernel)?;
    let guest = Guest {
        port: &port.name,
        mac: port.mac,
        addresses: &guest_addresses,
        enabled: config.antispoof_for(&port.name),
        traffic: config.traffic_for(&port.name),
        address_source: "ip= in the vif configuration",
        background_purge: !port.udev,
    };
    antispoof::add_to_attach(&mut plan, &guest, &kernel)?;
    Ok((plan, port.name))
}

/// The script's mode with what it reads besides the port: the vif's `[port]` section, the
/// sysconfig files, the guest's VM record.
fn mode_for(
    script: XenScript,
    port: &XenPort,
    config: Option<&Config>,
    xs: &mut Client,
) -> Result<Box<dyn Mode>> {
    let rule = config.and_then(|c| c.rule_for(&port.name));
    Ok(match script {
        XenScript::Bridge => Box::new(VifBridge {
            requested: rule.map(|r| r.port.clone()).unwrap_or_default(),
        }),
        XenScript::Route => Box::new(VifRoute),
        XenScript::Nat => Box::new(VifNat {
            rule: rule.cloned(),
        }),
        XenScript::OpenVswitch => Box::new(VifOpenvswitch {
            vm: match port.is_attach() {
                true => vm_info(xs, port)?,
                false => VmInfo::default(),
            },
        }),
        XenScript::RouteIfup => Box::new(match system_ifup()? {
            Some((ifup, ifdown)) => VifRouteIfup::System { ifup, ifdown },
            None => {
                let dir = sysconfig::dir_from_env();
                let sysconfig = sysconfig::load(&dir, &port.name)?;
                VifRouteIfup::Native { sysconfig, dir }
            }
        }),
    })
}

/// The guest's VM record names it in the Open vSwitch port's external-ids, as upstream.
fn vm_info(xs: &mut Client, port: &XenPort) -> Result<VmInfo> {
    let mut vm = VmInfo::default();
    let domain = format!("/local/domain/{}/vm", port.vif.domid);
    if let Some(path) = xs.read_optional(&domain)? {
        let keys = [format!("{path}/name"), format!("{path}/uuid")];
        let mut values = xs.read_many(&keys)?.into_iter();
        vm.name = values.next().flatten();
        vm.uuid = values.next().flatten();
    }
    Ok(vm)
}

impl XenScript {
    /// The mode a backend's `script` key names (its file name), if it is one of ours.
    pub fn from_script(script: &str) -> Option<XenScript> {
        match script.rsplit('/').next()? {
            "vif-bridge" => Some(XenScript::Bridge),
            "vif-route" => Some(XenScript::Route),
            "vif-route-ifup" => Some(XenScript::RouteIfup),
            "vif-nat" => Some(XenScript::Nat),
            "vif-openvswitch" => Some(XenScript::OpenVswitch),
            _ => None,
        }
    }
}

/// `VIFKIT_IFUP=system` hands the device to the system's `ifup`/`ifdown` (found in PATH);
/// unset or `native`, vifkit applies the sysconfig files itself.
fn system_ifup() -> Result<Option<(PathBuf, PathBuf)>> {
    let setting = std::env::var("VIFKIT_IFUP").unwrap_or_default();
    ifup_programs(&setting, &std::env::var_os("PATH").unwrap_or_default())
}

/// The `ifup` and `ifdown` that `VIFKIT_IFUP` asks for, looked up in `path`.
fn ifup_programs(setting: &str, path: &OsStr) -> Result<Option<(PathBuf, PathBuf)>> {
    match setting {
        "" | "native" => Ok(None),
        "system" => {
            let find = |name: &str| {
                std::env::split_paths(path)
                    .map(|dir| dir.join(name))
                    .find(|p| p.is_file())
            };
            match (find("ifup"), find("ifdown")) {
                (Some(ifup), Some(ifdown)) => Ok(Some((ifup, ifdown))),
                _ => anyhow::bail!(
                    "VIFKIT_IFUP=system, but no ifup and ifdown were found in PATH ({})",
                    path.to_string_lossy()
                ),
            }
        }
        other => anyhow::bail!("VIFKIT_IFUP={other:?}: expected system or native"),
    }
}

#[cfg(test)]
#[path = "xen_tests.rs"]
mod tests;
