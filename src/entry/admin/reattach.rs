//! `vifkit reattach`: ports re-plugged after the host changed under them. A bridge deleted
//! and recreated (`ifdown br0; ifup br0`) loses its ports; an uplink taken down and up
//! (`ifdown eth0; ifup eth0`, a network service restart) loses every routed guest's proxy
//! entries; `nft -f /etc/nftables.conf` deletes vifkit's NAT and antispoofing tables. Each
//! port is planned as online would and the plan applied minus the hooks and the conntrack
//! purge: the guest is running and its flows are its own. The planners are ensures, so only
//! what is missing is redone.

use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::ports::{Backend, xen_ports};
use super::tap_argument;
use crate::apply::gather::gather;
use crate::apply::runner::SystemRunner;
use crate::entry::{
    DEADLINE, XenScript, attach, block_on_with_deadline, plan_tap_up, plan_xen_call, start_run,
};
use crate::input::config::{Config, PortRule};
use crate::input::sysconfig;
use crate::planning::ensure;
use crate::planning::modes::route_ifup;
use crate::planning::needs::Needs;
use crate::planning::plan::Step;
use crate::sys::deadline;
use crate::sys::rtnl::Netlink;
use crate::sys::xenstore::Client;
use crate::types::bridge_word::BridgeWord;
use crate::types::names::IfName;
use crate::types::prefix::Family;

/// Which ports to re-plug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Every bridged port (Linux bridge or Open vSwitch).
    Bridges,
    /// The ports of this bridge, and the routed and NAT ports whose uplink it is.
    Named(&'a str),
    /// Every port of every mode.
    All,
}

/// How a port depends on the host's other links.
pub(super) enum Role {
    /// On the bridge its word names.
    Bridged(String),
    /// Routed or NAT, by the uplink rule: `netdev` (`gatewaydev`, a tap's `uplink =`), else
    /// the default-route link.
    Routed(Option<String>),
    /// vif-route-ifup: its proxy entries sit on the links its sysconfig files name.
    RouteIfup,
}

struct Candidate {
    name: IfName,
    xen: Option<Backend>,
    role: Role,
}

/// Re-plugs the ports `scope` selects; returns how many failed.
pub fn reattach(scope: Scope<'_>) -> Result<usize> {
    // One deadline for every port: the verb as a whole may not hang.
    let deadline = start_run();
    let named = match scope {
        Scope::Named(name) => Some(IfName::new(name)?),
        _ => None,
    };
    let mut failed = 0;
    // On a Xen host an unreachable xenstore leaves its vifs as they are: a failure, though
    // the taps are still re-plugged.
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
    block_on_with_deadline(deadline, async {
        let netlink = Netlink::connect()?;
        let mut ports = vec![];
        for candidate in candidates(xs.as_mut(), &config, &netlink).await? {
            let wanted = match (&named, &candidate.role) {
                (None, Role::Bridged(_)) => true,
                (None, _) => scope == Scope::All,
                (Some(name), Role::Bridged(word)) => names_bridge(word, name),
                (Some(name), Role::Routed(netdev)) => {
                    uses_uplink(netdev.as_deref(), name, &netlink).await?
                }
                (Some(name), Role::RouteIfup) => route_ifup_uses(&candidate.name, name),
            };
            if wanted {
                ports.push(candidate);
            }
        }
        if ports.is_empty() {
            match &named {
                Some(name) if netlink.link(name).await?.is_none() => {
                    bail!("{name} is no link here, and no port names it as its bridge or uplink")
                }
                Some(name) => println!("no port uses {name} as its bridge or uplink"),
                None if scope == Scope::All => println!("no port to reattach"),
                None => println!("no port names a bridge"),
            }
        }
        for Candidate { name, xen, .. } in ports {
            if netlink.link(&name).await?.is_none() {
                continue; // its guest is gone or not yet up: hotplug will see to it
            }
            let argument = tap_argument(&name);
            let result = repair_port(
                &name,
                xen.as_ref(),
                argument.as_deref(),
                xs.as_mut(),
                &netlink,
            )
            .await;
            match result {
                Ok(changes) if changes.is_empty() => println!("{name}: already in place"),
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

/// Re-plugs one port: plans it as online would now (a Xen port from its backend, a tap from
/// vifkit.conf and the bridge `argument` qemu-ifup was given), minus the hooks and the
/// conntrack purge (the guest runs, its flows are its own), and applies the plan if it
/// changes anything. Returns the changes made, one line each (none: it was in place).
pub(super) async fn repair_port(
    name: &IfName,
    xen: Option<&Backend>,
    argument: Option<&str>,
    mut xs: Option<&mut Client>,
    netlink: &Netlink,
) -> Result<Vec<String>> {
    let mut plan = match xen {
        Some(port) => {
            let xs = xs.as_deref_mut().context("no xenstore connection")?;
            plan_xen_call(port.mode, &port.call, xs, netlink).await?
        }
        None => plan_tap_up(netlink, name, argument).await?,
    };
    plan.retain(|s| !matches!(s, Step::RunHooks(_) | Step::PurgeConntrack { .. }));
    let changes: Vec<String> = plan
        .iter()
        .filter(|s| !routine(s))
        .map(Step::to_string)
        .collect();
    // A plan of routine steps only would change nothing, but its writes would wake the
    // watcher again: it is not applied.
    if changes.is_empty() {
        return Ok(changes);
    }
    let runner = SystemRunner {
        netlink,
        xenstore: xs,
        deadline: deadline::get().unwrap_or_else(|| Instant::now() + DEADLINE),
        attach: true,
    };
    attach(&plan, runner).await?;
    Ok(changes)
}

/// Every port vifkit plugged that may need re-plugging: Xen ports that are online (vifs,
/// then their `-emu` taps), then the taps whose `vifkit.conf` rule names a bridge or routes.
async fn candidates(
    xs: Option<&mut Client>,
    config: &Config,
    netlink: &Netlink,
) -> Result<Vec<Candidate>> {
    let mut found = vec![];
    for port in xs.map(xen_ports).transpose()?.unwrap_or_default() {
        let Some(role) = xen_role(&port) else {
            continue;
        };
        if port.online {
            found.push(Candidate {
                name: port.name.clone(),
                xen: Some(port),
                role,
            });
        }
    }
    for tap in netlink.tap_names().await? {
        if found.iter().any(|c| c.name == tap) {
            continue;
        }
        let Some(role) = tap_role(config.rule_for(&tap), tap_argument(&tap).as_deref()) else {
            continue;
        };
        found.push(Candidate {
            name: tap,
            xen: None,
            role,
        });
    }
    Ok(found)
}

/// How a Xen port depends on other links; None for a bridged port without a bridge key.
pub(super) fn xen_role(port: &Backend) -> Option<Role> {
    Some(match port.mode {
        XenScript::Bridge | XenScript::OpenVswitch => Role::Bridged(port.bridge.clone()?),
        XenScript::Route | XenScript::Nat => Role::Routed(port.call.overrides.netdev.clone()),
        XenScript::RouteIfup => Role::RouteIfup,
    })
}

/// How a tap depends on other links, from its vifkit.conf rule and the bridge `argument`
/// qemu-ifup was given; None when neither names a bridge or routes (qemu-ifup then picks
/// the bridge of the default route, which only a bridge's name can select).
pub(super) fn tap_role(rule: Option<&PortRule>, argument: Option<&str>) -> Option<Role> {
    match (argument, rule) {
        (Some(word), _) => Some(Role::Bridged(word.to_owned())),
        (
            None,
            Some(PortRule {
                bridge: Some(word), ..
            }),
        ) => Some(Role::Bridged(word.as_str().to_owned())),
        (None, Some(rule)) if !rule.route.is_empty() => Some(Role::Routed(rule.uplink.clone())),
        _ => None,
    }
}

/// Whether a bridge word (`br0`, `br0.10`, `br0.10:20`) puts its port on `name`.
pub(super) fn names_bridge(word: &str, name: &IfName) -> bool {
    word == name.as_str()
        || BridgeWord::parse(word)
            .is_ok_and(|w| w.link_name() == name || w.tagged().is_ok_and(|t| &t.bridge == name))
}

/// Whether a routed or NAT port with this `netdev` leaves by `uplink`: it names it, or it
/// names none and `uplink` carries a default route (of either family) or is what the
/// planners' uplink rule picks.
async fn uses_uplink(netdev: Option<&str>, uplink: &IfName, netlink: &Netlink) -> Result<bool> {
    if let Some(netdev) = netdev.filter(|n| !n.is_empty()) {
        return Ok(netdev == uplink.as_str());
    }
    let Some(link) = netlink.link(uplink).await? else {
        return Ok(false);
    };
    for family in [Family::V4, Family::V6] {
        if netlink
            .default_route_links(family)
            .await?
            .contains(&link.index)
        {
            return Ok(true);
        }
    }
    let needs = Needs {
        links: vec![uplink.clone()],
        default_links: true,
        ..Needs::default()
    };
    let kernel = gather(netlink, &needs).await?;
    Ok(ensure::uplink(None, &kernel).is_ok_and(|l| l.index == link.index))
}

/// Whether a vif-route-ifup port's sysconfig files name `link`; true when they cannot be
/// read (its plan will say why) or `ifup` does the work (`VIFKIT_IFUP=system`).
fn route_ifup_uses(port: &IfName, link: &IfName) -> bool {
    if std::env::var("VIFKIT_IFUP").is_ok_and(|v| v == "system") {
        return true;
    }
    match sysconfig::load(&sysconfig::dir_from_env(), port) {
        Ok(files) => route_ifup::names_used(&files).contains(link),
        Err(_) => true,
    }
}

/// Steps a plan carries every time, which say nothing about drift.
fn routine(step: &Step) -> bool {
    matches!(step, Step::SetPortOptions { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bridge_word_names_its_bridge_with_or_without_vlans() {
        let br0 = IfName::new("br0").unwrap();
        for word in ["br0", "br0.10", "br0.10:20:30", "br0:20"] {
            assert!(names_bridge(word, &br0), "{word}");
        }
        let legacy = IfName::new("br0.10").unwrap();
        assert!(names_bridge("br0.10", &legacy));
        for word in ["br1", "br01", "xenbr0"] {
            assert!(!names_bridge(word, &br0), "{word}");
        }
    }
}
