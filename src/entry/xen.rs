//! The Xen entry: libxl's call, xenstore, and `hotplug-status`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;

use super::{
    DEADLINE, block_on_with_deadline, execute, failure, links_snapshot, read_sysctls,
    routed_snapshot, snapshot,
};

use crate::apply::system::SystemRunner;
use crate::input::backend::{Backend, BackendKeys};
use crate::input::config::Config;
use crate::input::invocation::{Parsed, TypeIf, XenCall, parse_xen_call};
use crate::input::sysconfig;
use crate::planning::modes::antispoof::{self, Guest};
use crate::planning::modes::openvswitch::{self, VmInfo};
use crate::planning::modes::{bridge, nat, route_ifup, routed, xen_device};
use crate::planning::plan::{HookRun, Plan};
use crate::planning::snapshot::Snapshot;
use crate::sys::rtnl::Netlink;
use crate::sys::sysctl::Key;
use crate::sys::xenstore::Client;
use crate::types::names::IfName;
use crate::types::prefix::Prefix;
use crate::{apply::hooks, entry::logging};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XenMode {
    Bridge,
    Route,
    RouteIfup,
    Nat,
    OpenVswitch,
}

pub fn xen_main(mode: XenMode, tag: &str) -> ExitCode {
    logging::init(tag, true);
    let args: Vec<String> = std::env::args().skip(1).collect();
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
        // Without a valid call there is no backend to report to (as upstream).
        Err(err) => return failure(&err, None),
    };
    let deadline = Instant::now() + DEADLINE;
    let mut xs = match Client::connect() {
        Ok(xs) => xs,
        Err(err) => return failure(&err, None),
    };
    let dry_run = std::env::var("VIFKIT_DRY_RUN").is_ok_and(|v| v == "1");
    let result = run_xen(mode, &call, &mut xs, deadline, dry_run);
    let result = result.and_then(|outcome| match outcome {
        Outcome::Done if call.command == crate::input::invocation::Command::Online && !dry_run => {
            log::info!("write {}/hotplug-status = connected", call.backend);
            xs.write(&format!("{}/hotplug-status", call.backend), "connected")
        }
        _ => Ok(()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let attach = call.command.is_attach() && !dry_run;
            failure(&err, attach.then_some((&mut xs, call.backend.as_str())))
        }
    }
}

enum Outcome {
    Done,
    Skipped,
}

fn run_xen(
    mode: XenMode,
    call: &XenCall,
    xs: &mut Client,
    deadline: Instant,
    dry_run: bool,
) -> Result<Outcome> {
    if call.udev && xs.exists("/local/domain/0/libxl/disable_udev")? {
        log::info!(
            "libxl/disable_udev is set: libxl runs the hotplug scripts, skipping this udev call"
        );
        return Ok(Outcome::Skipped);
    }
    block_on_with_deadline(deadline, run_mode(mode, call, xs, deadline, dry_run))
        .map(|()| Outcome::Done)
}

async fn run_mode(
    mode: XenMode,
    call: &XenCall,
    xs: &mut Client,
    deadline: Instant,
    dry_run: bool,
) -> Result<()> {
    let netlink = Netlink::connect()?;
    let plan = plan_call(mode, call, xs, &netlink).await?;
    let runner = SystemRunner {
        netlink: &netlink,
        xenstore: Some(xs),
        deadline,
        attach: call.command.is_attach(),
    };
    execute(&plan, runner, dry_run).await
}

/// What the run would do, from the same inputs: backend keys, config files, the kernel.
pub async fn plan_call(
    mode: XenMode,
    call: &XenCall,
    xs: &mut Client,
    netlink: &Netlink,
) -> Result<Plan> {
    let keys = BackendKeys::read(xs, &call.backend)?;
    let backend = Backend::parse(call, keys)?;
    // Only an attach reads vifkit.conf: a detach must not fail on a config broken since.
    let config = match call.command.is_attach() {
        true => Some(Config::load_from_env()?),
        false => None,
    };
    let (mut plan, guest_addresses) = match mode {
        XenMode::Bridge => plan_bridge(call, &backend, netlink, config.as_ref()).await?,
        XenMode::Route => plan_route(call, &backend, netlink, config.is_some()).await?,
        XenMode::RouteIfup => plan_route_ifup(call, &backend, netlink, config.is_some()).await?,
        XenMode::Nat => plan_nat(call, &backend, netlink, config.as_ref()).await?,
        XenMode::OpenVswitch => plan_openvswitch(call, &backend, netlink, xs).await?,
    };
    // Every mode filters its port the same way: set before link-up, removed on detach.
    let port = xen_device::wanted_name(call, &backend)?;
    match &config {
        Some(config) => {
            let guest = Guest {
                port: &port,
                mac: backend.mac,
                addresses: &guest_addresses,
                enabled: config.antispoof_for(&port),
                address_source: "ip= in the vif configuration",
            };
            antispoof::add_to_attach(&mut plan, &guest)?;
        }
        None => antispoof::add_to_detach(&mut plan, &port),
    }
    Ok(plan)
}

/// A mode's plan, and on attach the guest's own addresses (what antispoofing allows).
type Planned = (Plan, Vec<Prefix>);

impl XenMode {
    /// The mode a backend's `script` key names (its file name), if it is one of ours.
    pub fn from_script(script: &str) -> Option<XenMode> {
        match script.rsplit('/').next()? {
            "vif-bridge" => Some(XenMode::Bridge),
            "vif-route" => Some(XenMode::Route),
            "vif-route-ifup" => Some(XenMode::RouteIfup),
            "vif-nat" => Some(XenMode::Nat),
            "vif-openvswitch" => Some(XenMode::OpenVswitch),
            _ => None,
        }
    }
}

async fn plan_openvswitch(
    call: &XenCall,
    backend: &Backend,
    netlink: &Netlink,
    xs: &mut Client,
) -> Result<Planned> {
    let final_name = xen_device::wanted_name(call, backend)?;
    let kernel = links_snapshot(netlink, &[call.dev.clone(), final_name]).await?;
    if !call.command.is_attach() {
        return Ok((openvswitch::plan_detach(call, backend, &kernel)?, vec![]));
    }
    // The guest's VM record names it in the interface's external-ids, as upstream.
    let domain = format!("/local/domain/{}/vm", call.vif.domid);
    let mut vm = VmInfo::default();
    if let Some(path) = xs.read_optional(&domain)? {
        let keys = [format!("{path}/name"), format!("{path}/uuid")];
        let mut values = xs.read_many(&keys)?.into_iter();
        vm.name = values.next().flatten();
        vm.uuid = values.next().flatten();
    }
    let plan = openvswitch::plan_attach(call, backend, &kernel, &vm)?;
    Ok((plan, backend.addresses.clone()))
}

async fn plan_bridge(
    call: &XenCall,
    backend: &Backend,
    netlink: &Netlink,
    config: Option<&Config>,
) -> Result<Planned> {
    let bridge_word = backend.bridge_text(call).unwrap_or_default();
    let final_name = xen_device::wanted_name(call, backend)?;
    let hooks = hook_run(call, backend, &final_name, bridge_word, "");
    let Some(config) = config else {
        let kernel = links_snapshot(netlink, &[call.dev.clone(), final_name]).await?;
        let plan = bridge::plan_xen_detach(call, backend, &kernel, hooks)?;
        return Ok((plan, vec![]));
    };
    let request = bridge::BridgeRequest::for_xen(call, backend)?;
    let mut names = vec![call.dev.clone(), final_name.clone()];
    names.extend(request.names());
    let kernel = snapshot(netlink, &names).await?;
    let requested = config
        .rule_for(&final_name)
        .map(|rule| rule.port.clone())
        .unwrap_or_default();
    let plan = bridge::plan_xen_attach(call, backend, &request, &requested, &kernel, hooks)?;
    Ok((plan, backend.addresses.clone()))
}

/// vif-route and vif-nat look at the same things: the vif under both names and the uplink.
async fn uplink_snapshot(
    call: &XenCall,
    backend: &Backend,
    netlink: &Netlink,
) -> Result<(IfName, Snapshot)> {
    let final_name = xen_device::wanted_name(call, backend)?;
    let port = [call.dev.clone(), final_name.clone()];
    let kernel = routed_snapshot(netlink, &port, &[], call.overrides.netdev.as_deref()).await?;
    Ok((final_name, kernel))
}

async fn plan_route(
    call: &XenCall,
    backend: &Backend,
    netlink: &Netlink,
    attach: bool,
) -> Result<Planned> {
    let (final_name, kernel) = uplink_snapshot(call, backend, netlink).await?;
    let netdev = call.overrides.netdev.as_deref();
    let main_ip = routed::uplink(netdev, &kernel)
        .ok()
        .and_then(|u| routed::main_ip(u, &kernel))
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    let hooks = hook_run(call, backend, &final_name, "", &main_ip);
    if attach {
        let plan = routed::plan_attach(call, backend, &kernel, hooks)?;
        Ok((plan, backend.addresses.clone()))
    } else {
        Ok((routed::plan_detach(call, backend, &kernel, hooks)?, vec![]))
    }
}

async fn plan_route_ifup(
    call: &XenCall,
    backend: &Backend,
    netlink: &Netlink,
    attach: bool,
) -> Result<Planned> {
    let final_name = xen_device::wanted_name(call, backend)?;
    if let Some((ifup, ifdown)) = system_ifup()? {
        let kernel = snapshot(netlink, &[call.dev.clone(), final_name.clone()]).await?;
        let hooks = hook_run(call, backend, &final_name, "", "");
        // The system's ifup knows nothing of the guest: only B/ip can name its addresses.
        return Ok(match attach {
            true => (
                route_ifup::plan_attach_with_ifup(call, backend, &ifup, &kernel, hooks)?,
                backend.addresses.clone(),
            ),
            false => (
                route_ifup::plan_detach_with_ifdown(call, backend, &ifdown, &kernel, hooks)?,
                vec![],
            ),
        });
    }
    let dir = sysconfig::dir_from_env();
    let config = sysconfig::load(&dir, &final_name)?;
    let port = [call.dev.clone(), final_name.clone()];
    let mut kernel =
        routed_snapshot(netlink, &port, &route_ifup::names_used(&config), None).await?;
    let mut keys = vec![
        Key::new("net/ipv6/conf/all/proxy_ndp")?,
        Key::new("net/ipv4/conf/all/proxy_arp")?,
    ];
    for index in kernel.default_links.clone() {
        if let Some(link) = kernel.link_by_index(index) {
            keys.push(Key::proxy_arp(&link.name.clone()));
        }
    }
    for line in &config.proxies {
        keys.extend(line.proxy_interfaces.iter().map(Key::proxy_ndp));
    }
    read_sysctls(&mut kernel, keys)?;
    let hooks = hook_run(call, backend, &final_name, "", "");
    if attach {
        let plan = route_ifup::plan_attach(call, backend, &config, &dir, &kernel, hooks)?;
        let mut addresses = route_ifup::guest_addresses(&config, &final_name);
        for address in &backend.addresses {
            if !addresses.contains(address) {
                addresses.push(*address);
            }
        }
        Ok((plan, addresses))
    } else {
        let plan = route_ifup::plan_detach(call, backend, &config, &kernel, hooks)?;
        Ok((plan, vec![]))
    }
}

/// `config` is there on attach only.
async fn plan_nat(
    call: &XenCall,
    backend: &Backend,
    netlink: &Netlink,
    config: Option<&Config>,
) -> Result<Planned> {
    let (final_name, kernel) = uplink_snapshot(call, backend, netlink).await?;
    if call.overrides.dhcp.as_deref().is_some_and(|d| d != "no") {
        log::info!(
            "dhcp={}: vif-nat does not edit dhcpd.conf; configure the guest address statically",
            call.overrides.dhcp.as_deref().unwrap_or("")
        );
    }
    let hooks = hook_run(call, backend, &final_name, "", "");
    match config {
        Some(config) => {
            let rule = config.rule_for(&final_name);
            let plan = nat::plan_attach(call, backend, rule, &kernel, hooks)?;
            Ok((plan, nat::guest_addresses(call, backend)?))
        }
        None => Ok((nat::plan_detach(call, backend, &kernel, hooks)?, vec![])),
    }
}

/// `VIFKIT_IFUP=system` hands the device to the system's `ifup`/`ifdown` (found in PATH);
/// unset or `native`, vifkit applies the sysconfig files itself.
fn system_ifup() -> Result<Option<(PathBuf, PathBuf)>> {
    match std::env::var("VIFKIT_IFUP").unwrap_or_default().as_str() {
        "" | "native" => Ok(None),
        "system" => {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let find = |name: &str| {
                std::env::split_paths(&path)
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

/// The variables upstream's hooks read (CONTRACT 4.7), when a hook directory exists.
fn hook_run(
    call: &XenCall,
    backend: &Backend,
    dev: &IfName,
    bridge: &str,
    main_ip: &str,
) -> Option<HookRun> {
    let dir = std::env::var_os("VIFKIT_HOOK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(hooks::DEFAULT_DIR));
    if !dir.is_dir() {
        return None;
    }
    let vif = match call.type_if {
        TypeIf::Vif => call.dev.to_string(),
        TypeIf::Tap => call.vif.kernel_name().to_string(),
    };
    let ip = backend
        .ip
        .clone()
        .or(call.overrides.ip.clone())
        .unwrap_or_default();
    Some(HookRun {
        dir,
        vars: vec![
            ("command", call.command.to_string()),
            ("dev", dev.to_string()),
            ("vif", vif),
            ("type_if", call.type_if.to_string()),
            ("ip", ip),
            ("main_ip", main_ip.to_owned()),
            ("XENBUS_PATH", call.backend.clone()),
            ("bridge", bridge.to_owned()),
            ("script", call.script.clone().unwrap_or_default()),
        ],
    })
}
