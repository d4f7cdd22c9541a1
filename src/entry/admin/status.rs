//! `vifkit status`: every port vifkit manages, one line each, with `check`'s verdict. The
//! Xen ports are the backends in dom0's directory whose `script` is one of vifkit's (a vif,
//! and its `-emu` tap while that exists); the qemu taps are the host's taps that vifkit
//! plugged or is configured to plug (see [`plugged_by_vifkit`]). Without xenstore (a KVM
//! host) only the taps are listed.

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::Planned;
use super::check::drift;
use super::ports::{BACKENDS, Backend, xen_ports};
use super::watch_state::Watcher;
use super::{is_tap, tap_argument};
use crate::entry::{XenScript, block_on_with_deadline, plan_tap_up, plan_xen_call, start_run};
use crate::input::backend::{Backend as BackendDir, BackendKeys};
use crate::input::config::{Config, PortRule};
use crate::input::invocation::TypeIf;
use crate::input::sysconfig;
use crate::input::xen_port::XenPort;
use crate::planning::modes::qemu::{BridgeSources, TapUp, choose_up};
use crate::planning::modes::{nat, route_ifup};
use crate::sys::nft;
use crate::sys::rtnl::{Link, Netlink};
use crate::sys::xenstore::Client;
use crate::types::mac::MacAddr;
use crate::types::names::{IfName, VifId};
use crate::types::prefix::{Family, Prefix};

/// One port as `status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Row {
    name: IfName,
    /// The guest's domain id and `name`, for a Xen port; None for a qemu tap.
    domain: Option<(u32, Option<String>)>,
    /// `bridge`, `route`, `route-ifup`, `nat`, `openvswitch` (the script of a Xen port, its
    /// `-emu` tap too) or `tap-bridged`, `tap-routed`, `tap-openvswitch`.
    mode: &'static str,
    /// The bridge word a bridged port joins.
    bridge: Option<String>,
    /// The links a routed or NAT port's traffic leaves by.
    uplinks: Vec<String>,
    /// The guest's addresses, as online routes or filters them.
    addresses: Vec<String>,
    /// vifkit's antispoofing chain is on the port.
    filter: bool,
    /// `B/hotplug-status` of a Xen port: None for a tap, Some(None) when the key is missing.
    hotplug_status: Option<Option<String>>,
    /// `check`'s lines; none when the port is as online leaves it.
    drift: Vec<String>,
}

/// Prints every port vifkit manages (`json`: as a JSON array) and returns how many drift
/// from what online leaves. Unreachable xenstore on a Xen host is an error, returned once
/// the taps are printed.
pub fn status(json: bool) -> Result<usize> {
    // One deadline for every port: the verb as a whole may not hang.
    let deadline = start_run();
    let (mut xs, unlisted) = match Client::connect() {
        Ok(xs) => (Some(xs), None),
        Err(err) if Client::expected() => (None, Some(err.context("Xen vifs not listed"))),
        Err(_) => (None, None),
    };
    // A broken vifkit.conf fails each port's plan, which says so in its health.
    let config = Config::load_from_env().unwrap_or_else(|err| {
        log::warn!("{err:#}");
        Config::default()
    });
    let watcher = Watcher::here();
    let rows = block_on_with_deadline(deadline, async {
        let netlink = Netlink::connect()?;
        let mut rows = vec![];
        if let Some(xs) = xs.as_mut() {
            rows.extend(xen_rows(xs, &netlink).await?);
        }
        let xen: Vec<IfName> = rows.iter().map(|r: &Row| r.name.clone()).collect();
        rows.extend(tap_rows(&config, &xen, &netlink).await?);
        Ok(rows)
    })?;
    match json {
        true => {
            let whole = json!({"watcher": watcher.json(), "ports": to_json(&rows)});
            let text = serde_json::to_string_pretty(&whole).expect("JSON values serialise");
            println!("{text}")
        }
        false if rows.is_empty() && unlisted.is_none() => println!(
            "no port vifkit manages: no Xen vif in {BACKENDS} runs one of its scripts, and no tap was plugged by it\n{}",
            watcher.line()
        ),
        false => println!("{}{}", table(&rows), watcher.line()),
    }
    if let Some(err) = unlisted {
        return Err(err);
    }
    Ok(rows.iter().filter(|r| !r.drift.is_empty()).count())
}

/// The Xen ports in dom0's backend directory: each vif, and its `-emu` tap while it exists.
async fn xen_rows(xs: &mut Client, netlink: &Netlink) -> Result<Vec<Row>> {
    let mut ports = xen_ports(xs)?;
    ports.sort_by_key(|p| {
        (
            p.call.vif.domid,
            p.call.vif.devid,
            p.call.type_if == TypeIf::Tap,
        )
    });
    let mut rows = vec![];
    for port in ports {
        let tap = port.call.type_if == TypeIf::Tap;
        if tap && !exists(&port.name, netlink).await? && !exists(&port.call.dev, netlink).await? {
            continue;
        }
        rows.push(xen_row(port, xs, netlink).await?);
    }
    Ok(rows)
}

async fn exists(name: &IfName, netlink: &Netlink) -> Result<bool> {
    Ok(netlink.link(name).await?.is_some())
}

async fn xen_row(port: Backend, xs: &mut Client, netlink: &Netlink) -> Result<Row> {
    let domid = port.call.vif.domid;
    let domain_name = xs.read_optional(&format!("/local/domain/{domid}/name"))?;
    let backend = port.call.backend.clone();
    let hotplug_status = xs.read_optional(&format!("{backend}/hotplug-status"))?;
    let mut row = Row {
        name: port.name.clone(),
        domain: Some((domid, domain_name)),
        mode: xen_mode(port.mode),
        bridge: None,
        uplinks: vec![],
        addresses: vec![],
        filter: nft::port_filter_present(&port.name)?,
        hotplug_status: Some(hotplug_status),
        drift: vec![],
    };
    // What the port is meant to be, from the keys its run reads; the plan (below) says
    // what is wrong with them, if anything.
    let keys = BackendKeys::read(xs, &backend)?;
    let resolved =
        BackendDir::parse(&port.call, keys).and_then(|dir| XenPort::new(port.call.clone(), dir));
    if let Ok(resolved) = resolved {
        describe_xen(&mut row, port.mode, &resolved, netlink).await?;
    }
    let planned = plan_xen_call(port.mode, &port.call, xs, netlink)
        .await
        .map(|plan| Planned {
            plan,
            name: port.name,
            backend: Some(backend),
        });
    row.drift = drift_of(planned, Some(xs), netlink).await?;
    Ok(row)
}

/// The bridge or uplinks and the guest addresses of a Xen port, by its mode.
async fn describe_xen(
    row: &mut Row,
    mode: XenScript,
    port: &XenPort,
    netlink: &Netlink,
) -> Result<()> {
    let compact = |prefixes: &[Prefix]| -> Vec<String> {
        prefixes.iter().map(|p| p.compact().to_string()).collect()
    };
    match mode {
        XenScript::Bridge | XenScript::OpenVswitch => {
            row.bridge = port.bridge.as_ref().map(|given| given.text.clone());
            row.addresses = compact(&port.addresses);
        }
        XenScript::Route | XenScript::Nat => {
            row.uplinks = match &port.netdev {
                Some(netdev) => vec![netdev.clone()],
                None => default_route_links(netlink).await?,
            };
            row.addresses = match mode {
                XenScript::Nat => {
                    nat::guest_addresses(port).map_or_else(|_| vec![], |a| compact(&a))
                }
                _ => compact(&port.addresses),
            };
        }
        XenScript::RouteIfup => {
            if let Ok(files) = sysconfig::load(&sysconfig::dir_from_env(), &port.name) {
                row.addresses = compact(&route_ifup::guest_addresses(&files, &port.name));
                row.uplinks = route_ifup::names_used(&files)
                    .into_iter()
                    .filter(|n| *n != port.name && *n != port.kernel_name)
                    .map(|n| n.to_string())
                    .collect();
            }
        }
    }
    Ok(())
}

/// The taps vifkit manages, by name, other than the Xen ports already listed.
async fn tap_rows(config: &Config, listed: &[IfName], netlink: &Netlink) -> Result<Vec<Row>> {
    let mut names = netlink.tap_names().await?;
    names.sort();
    let mut rows = vec![];
    for name in names {
        // A Xen guest's emulated NIC is xenstore's to describe, not vifkit.conf's.
        if listed.contains(&name) || VifId::from_tap_name(&name).is_ok() {
            continue;
        }
        let Some(link) = netlink.link(&name).await? else {
            continue; // gone since the dump
        };
        let rule = config.rule_for(&name);
        let filter = nft::port_filter_present(&name)?;
        if !plugged_by_vifkit(&link, rule, filter) {
            continue;
        }
        let mut row = Row {
            name: name.clone(),
            domain: None,
            mode: "tap-bridged",
            bridge: None,
            uplinks: vec![],
            addresses: rule
                .map(|r| r.ip.iter().map(|p| p.compact().to_string()).collect())
                .unwrap_or_default(),
            filter,
            hotplug_status: None,
            drift: vec![],
        };
        describe_tap(&mut row, &link, config, rule, netlink).await?;
        let argument = tap_argument(&name);
        let planned = plan_tap_up(netlink, &name, argument.as_deref())
            .await
            .map(|plan| Planned {
                plan,
                name,
                backend: None,
            });
        row.drift = drift_of(planned, None, netlink).await?;
        rows.push(row);
    }
    Ok(rows)
}

/// A tap is vifkit's when a `[port]` rule of vifkit.conf names it, or it bears what
/// `qemu-ifup` leaves on the taps it plugs: vifkit's antispoofing chain, or the port MAC
/// fe:ff:ff:ff:ff:ff a bridged one gets. A tap of libvirt's or another script's has
/// neither; a layer-3 tun (a VPN's) is no tap.
fn plugged_by_vifkit(link: &Link, rule: Option<&PortRule>, filter: bool) -> bool {
    is_tap(link) && (rule.is_some() || filter || link.mac == Some(MacAddr::BACKEND_PORT))
}

/// How `qemu-ifup` connects the tap (with the bridge argument its plug was given, when the
/// run directory recorded it): its mode, bridge or uplinks, and the routed guest's
/// addresses.
async fn describe_tap(
    row: &mut Row,
    link: &Link,
    config: &Config,
    rule: Option<&PortRule>,
    netlink: &Netlink,
) -> Result<()> {
    let env = std::env::var("VIFKIT_BRIDGE").ok();
    let argument = tap_argument(&link.name);
    let sources = BridgeSources {
        argument: argument.as_deref(),
        env: env.as_deref(),
        rule,
        config_path: &config.path,
    };
    match choose_up(&link.name, &sources) {
        Ok(TapUp::OpenVswitch { word, .. }) => {
            row.mode = "tap-openvswitch";
            row.bridge = Some(word.as_str().to_owned());
        }
        Ok(TapUp::Bridge { word, .. }) => row.bridge = Some(word.as_str().to_owned()),
        Ok(TapUp::Routed) => {
            row.mode = "tap-routed";
            let rule = rule.context("a routed tap has a rule")?;
            row.addresses = rule.route.iter().map(|p| p.compact().to_string()).collect();
            row.uplinks = match &rule.uplink {
                Some(uplink) => vec![uplink.clone()],
                None => default_route_links(netlink).await?,
            };
        }
        // On the bridge it is a port of: the default-route bridge it was given.
        Ok(TapUp::DefaultRoute) | Err(_) => {
            if let Some(master) = link.master {
                row.bridge = netlink
                    .link_by_index(master)
                    .await?
                    .map(|m| m.name.to_string());
            }
        }
    }
    Ok(())
}

/// The links that carry a default route, IPv4's first, each once.
async fn default_route_links(netlink: &Netlink) -> Result<Vec<String>> {
    let mut names = vec![];
    for family in [Family::V4, Family::V6] {
        for index in netlink.default_route_links(family).await? {
            if let Some(link) = netlink.link_by_index(index).await? {
                let name = link.name.to_string();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    Ok(names)
}

/// `check`'s lines for a planned port; a port that cannot be planned drifts by that reason.
async fn drift_of(
    planned: Result<Planned>,
    xs: Option<&mut Client>,
    netlink: &Netlink,
) -> Result<Vec<String>> {
    match planned {
        Ok(planned) => drift(&planned, xs, netlink).await,
        Err(err) => Ok(vec![format!("cannot plan it: {err:#}")]),
    }
}

fn xen_mode(mode: XenScript) -> &'static str {
    match mode {
        XenScript::Bridge => "bridge",
        XenScript::Route => "route",
        XenScript::RouteIfup => "route-ifup",
        XenScript::Nat => "nat",
        XenScript::OpenVswitch => "openvswitch",
    }
}

/// `ok`, or check's first line (and how many more there are).
fn health(row: &Row) -> String {
    match row.drift.as_slice() {
        [] => "ok".to_owned(),
        [only] => only.clone(),
        [first, rest @ ..] => format!(
            "{first} (and {} more: vifkit check {})",
            rest.len(),
            row.name
        ),
    }
}

const HEADER: [&str; 8] = [
    "PORT",
    "DOMAIN",
    "MODE",
    "BRIDGE/UPLINK",
    "ADDRESSES",
    "FILTER",
    "HOTPLUG",
    "HEALTH",
];

/// The rows as aligned columns under a header, health last (it is the long one).
fn table(rows: &[Row]) -> String {
    let or_dash = |s: String| if s.is_empty() { "-".to_owned() } else { s };
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|row| {
            [
                row.name.to_string(),
                match &row.domain {
                    Some((id, Some(name))) => format!("{name} ({id})"),
                    Some((id, None)) => id.to_string(),
                    None => "tap".to_owned(),
                },
                row.mode.to_owned(),
                or_dash(match &row.bridge {
                    Some(bridge) => bridge.clone(),
                    None => row.uplinks.join(","),
                }),
                or_dash(row.addresses.join(",")),
                if row.filter { "on" } else { "off" }.to_owned(),
                match &row.hotplug_status {
                    None => "-".to_owned(),
                    Some(None) => "missing".to_owned(),
                    Some(Some(s)) if s.is_empty() => "empty".to_owned(),
                    Some(Some(s)) => s.clone(),
                },
                health(row),
            ]
        })
        .collect();
    let mut widths = HEADER.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = HEADER.map(str::to_owned);
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&cells) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            match i + 1 == row.len() {
                true => line.push_str(cell),
                false => {
                    let pad = widths[i] - cell.chars().count();
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The rows as a JSON array of objects, one per port (see README: `vifkit status --json`).
fn to_json(rows: &[Row]) -> Value {
    let ports: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "name": row.name.as_str(),
                "kind": match (&row.domain, row.name.as_str().ends_with("-emu")) {
                    (None, _) => "tap",
                    (Some(_), true) => "emu",
                    (Some(_), false) => "vif",
                },
                "domain": row.domain.as_ref().map(|(id, name)| json!({"id": id, "name": name})),
                "mode": row.mode,
                "bridge": row.bridge,
                "uplinks": row.uplinks,
                "addresses": row.addresses,
                "filter": row.filter,
                "hotplug_status": row.hotplug_status.clone().flatten(),
                "health": health_word(row),
                "drift": row.drift,
            })
        })
        .collect();
    Value::Array(ports)
}

/// `ok`, or check's first line.
fn health_word(row: &Row) -> &str {
    row.drift.first().map_or("ok", String::as_str)
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
