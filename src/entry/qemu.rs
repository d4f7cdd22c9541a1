//! The qemu entry: `qemu-ifup IFNAME [BRIDGE]` / `qemu-ifdown IFNAME [BRIDGE]`, as qemu's
//! `script=`/`downscript=` or libvirt's `<script>` run them. No xenstore; only
//! CAP_NET_ADMIN is needed; inherited file descriptors are left alone.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::{block_on_with_deadline, execute, failure, require_net_admin, start_run, usage};
use crate::apply::gather::gather;
use crate::apply::purge;
use crate::apply::runner::SystemRunner;
use crate::entry::logging;
use crate::entry::registration::Registration;
use crate::input::config::{Config, PortRule};
use crate::planning::ensure::link_ref;
use crate::planning::modes::antispoof::{self, Guest};
use crate::planning::modes::bridge::BridgeRequest;
use crate::planning::modes::qemu::{self, BridgeSources, TapDown, TapUp};
use crate::planning::modes::routed::{self, RoutedPort};
use crate::planning::modes::{openvswitch, port_options};
use crate::planning::needs::Needs;
use crate::planning::plan::Plan;
use crate::planning::snapshot::Snapshot;
use crate::sys::rtnl::{Link, Netlink};
use crate::types::names::IfName;
use crate::types::prefix::Prefix;
use crate::types::vlan::Vlans;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TapDirection {
    Up,
    Down,
}

pub fn qemu_main(direction: TapDirection, tag: &str) -> ExitCode {
    if let Some(purged) = super::held_purge(tag, false) {
        return purged;
    }
    let args = super::args();
    let help = || usage::qemu_help(direction, tag);
    if let Some(answered) = usage::answer(&args, tag, help) {
        return answered;
    }
    // qemu waits for us with the guest's start (or its monitor) blocked.
    let deadline = start_run();
    // Nothing is touched for an argument that is no tap's name: it is refused first.
    let parsed = parse_args(tag, &args);
    let subject = parsed.as_ref().ok().map(|(tap, _)| tap.to_string());
    logging::init_for_port(tag, false, subject.as_deref());
    log::debug!("{tag} {}", args.join(" "));
    let dry_run = std::env::var("VIFKIT_DRY_RUN").is_ok_and(|v| v == "1");
    let result = parsed.and_then(|(tap, bridge)| {
        require_net_admin()?;
        let registration = (!dry_run).then(|| Registration::begin(deadline)).flatten();
        let attach = direction == TapDirection::Up;
        if let (Some(registration), false) = (&registration, attach) {
            registration.forget(&[&tap]);
        }
        block_on_with_deadline(deadline, async {
            let netlink = Netlink::connect()?;
            let plan = match direction {
                TapDirection::Up => plan_up(&netlink, &tap, bridge.as_deref()).await?,
                TapDirection::Down => plan_down(&netlink, &tap, bridge.as_deref()).await?,
            };
            let runner = SystemRunner {
                netlink: &netlink,
                xenstore: None,
                deadline,
                attach,
            };
            execute(&plan, runner, dry_run).await?;
            if let (Some(registration), true) = (&registration, attach) {
                registration
                    .record(&netlink, &tap, bridge.as_deref(), None)
                    .await;
            }
            Ok(())
        })
    });
    match result {
        Ok(()) => {
            purge::start_held();
            ExitCode::SUCCESS
        }
        Err(err) => failure(&err, None),
    }
}

fn parse_args(tag: &str, args: &[String]) -> Result<(IfName, Option<String>)> {
    match args {
        [tap] => Ok((tap_name(tag, tap)?, None)),
        [tap, bridge] => Ok((tap_name(tag, tap)?, Some(bridge.clone()))),
        _ => bail!("usage: {tag} IFNAME [BRIDGE]"),
    }
}

/// The tap qemu names: a name the kernel takes, and no option (`qemu-ifdown --help` must not
/// take a tap called `--help` down).
fn tap_name(tag: &str, text: &str) -> Result<IfName> {
    if text.starts_with('-') {
        bail!(
            "invalid interface name {text:?}: it starts with '-' ({tag} takes no option but --help or --version, alone)"
        );
    }
    IfName::new(text)
}

pub async fn plan_up(netlink: &Netlink, tap: &IfName, argument: Option<&str>) -> Result<Plan> {
    let config = &Config::load_from_env()?;
    let rule = config.rule_for(tap);
    let env = std::env::var("VIFKIT_BRIDGE").ok();
    let sources = BridgeSources {
        argument,
        env: env.as_deref(),
        rule,
        config_path: &config.path,
    };
    let mtu = rule.and_then(|r| r.mtu);
    let tap_only = || vec![tap.clone()];
    // Antispoofing allows a routed tap its `route` addresses, any other its `ip` ones.
    let ip: fn(&PortRule) -> &Vec<Prefix> = |r| &r.ip;
    let route: fn(&PortRule) -> &Vec<Prefix> = |r| &r.route;
    let choice = qemu::choose_up(tap, &sources)?;
    let request = match &choice {
        TapUp::Bridge { word, source } => Some(BridgeRequest::new(word.clone(), source.clone())?),
        _ => None,
    };
    let mut needs = match (&choice, rule) {
        (TapUp::OpenVswitch { .. }, _) => Needs {
            ovs_port: Some(tap.clone()),
            ..Needs::links_and_masters(tap_only())
        },
        (TapUp::Routed, Some(rule)) => Needs::routed(tap_only(), rule.uplink.as_deref()),
        _ => {
            let mut names = tap_only();
            names.extend(request.iter().flat_map(BridgeRequest::names));
            Needs {
                default_links: request.is_none(),
                bridged_traffic: true,
                ..Needs::links_and_masters(names)
            }
        }
    };
    // The tap's own, and a bridge's: a guest given the host's address there is warned of.
    needs.addresses_of = tap_only();
    needs
        .addresses_of
        .extend(request.iter().flat_map(BridgeRequest::names));
    // Filtered or not: a chain left by an earlier tap of this name hooks on this one.
    needs.port_filter = Some(tap.clone());
    let kernel = gather(netlink, &needs).await?;
    let (mut plan, allowed) = match (choice, rule) {
        (TapUp::OpenVswitch { word, source }, Some(rule)) => {
            let mut plan =
                openvswitch::plan_tap_attach(tap, &word, &rule.port, rule.mac, mtu, &kernel)?;
            plan.notes
                .push(format!("Open vSwitch bridge {word} from {source}"));
            (plan, ip)
        }
        (TapUp::Bridge { source, .. }, _) => {
            let request = request.context("a bridge was chosen")?;
            let (bridge, legacy_note) = request.find(&kernel)?;
            let mut plan = qemu::plan_ifup(tap, bridge, mtu, &kernel)?;
            plan.notes
                .push(format!("bridge {} from {source}", request.name));
            plan.notes.extend(legacy_note);
            let vlans = request.vlans_for(bridge);
            bridge_port_options(&mut plan, &kernel, tap, bridge, rule, vlans)?;
            (plan, ip)
        }
        (TapUp::Routed, Some(rule)) => {
            let Some(found) = kernel.link(tap.as_str()) else {
                bail!("{tap} does not exist");
            };
            let port = RoutedPort {
                found,
                rename_to: None,
                addresses: &rule.route,
                guest_mac: rule.mac,
                metric: None,
                netdev: rule.uplink.as_deref(),
                mtu,
            };
            let mut plan = routed::plan_port_attach(&port, &kernel)?;
            plan.notes
                .push(format!("routed by {}:{}", config.path.display(), rule.line));
            (plan, route)
        }
        _ => {
            let Some(bridge) = qemu::default_route_bridge(&kernel) else {
                return Err(qemu::no_bridge_error(tap, &config.path));
            };
            let mut plan = qemu::plan_ifup(tap, bridge, mtu, &kernel)?;
            plan.notes
                .push(format!("bridge {} carries the default route", bridge.name));
            bridge_port_options(&mut plan, &kernel, tap, bridge, rule, Vlans::default())?;
            (plan, ip)
        }
    };
    guard(&mut plan, config, tap, rule, allowed, &kernel)?;
    // A rate limit applies however the tap is connected.
    if let Some(rate) = rule.and_then(|r| r.rate) {
        let Some(found) = kernel.link(tap.as_str()) else {
            bail!("{tap} does not exist");
        };
        port_options::add_rate_limit(&mut plan, &link_ref(found)?, rate);
    }
    Ok(plan)
}

/// The tap's bridge port options, from its config section; VLANs in a bridge word (the
/// qemu-ifup argument, `VIFKIT_BRIDGE` or `bridge =`) win over the section's `vlan`.
fn bridge_port_options(
    plan: &mut Plan,
    kernel: &Snapshot,
    tap: &IfName,
    bridge: &Link,
    rule: Option<&PortRule>,
    from_word: Vlans,
) -> Result<()> {
    let mut wanted = rule.map(|r| r.port.clone()).unwrap_or_default();
    if !from_word.is_empty() {
        wanted.vlans = from_word;
    }
    let source = "mac = in its [port] section of vifkit.conf";
    let options = wanted.resolve(tap.as_str(), rule.and_then(|r| r.mac), source)?;
    let Some(found) = kernel.link(tap.as_str()) else {
        bail!("{tap} does not exist");
    };
    let link = link_ref(found)?;
    port_options::add_to_attach(plan, &link, bridge, options)
}

/// Antispoofing for a tap, from its config section: `route` (routed) or `ip` (bridged)
/// name the guest's addresses and `mac` its MAC (qemu passes neither to the script).
fn guard(
    plan: &mut Plan,
    config: &Config,
    tap: &IfName,
    rule: Option<&PortRule>,
    addresses: fn(&PortRule) -> &Vec<Prefix>,
    kernel: &Snapshot,
) -> Result<()> {
    let addresses = rule.map(addresses).map_or(&[][..], |a| a.as_slice());
    let source = format!(
        "ip = ... in a [port {tap}] section of {}",
        config.path.display()
    );
    let guest = Guest {
        port: tap,
        mac: rule.and_then(|r| r.mac),
        addresses,
        enabled: config.antispoof_for(tap),
        traffic: config.traffic_for(tap),
        address_source: &source,
        background_purge: true,
    };
    antispoof::add_to_attach(plan, &guest, kernel)
}

/// Out of the bridge and down; a routed tap also loses its proxy entries on the uplink,
/// which outlive it. A bridge argument means the tap was bridged whatever the config says.
/// Every tap loses its antispoofing rules and the limit on what its guest sends.
async fn plan_down(netlink: &Netlink, tap: &IfName, argument: Option<&str>) -> Result<Plan> {
    // Taking the tap down must not depend on a config that broke since it came up.
    let config = Config::load_from_env().unwrap_or_else(|err| {
        log::warn!("{err:#}");
        Config::default()
    });
    let rule = config.rule_for(tap);
    let env = std::env::var("VIFKIT_BRIDGE").ok();
    let sources = BridgeSources {
        argument,
        env: env.as_deref(),
        rule,
        config_path: &config.path,
    };
    let choice = qemu::choose_down(&sources);
    let needs = match (choice, rule) {
        (TapDown::Routed, Some(rule)) => Needs::routed(vec![tap.clone()], rule.uplink.as_deref()),
        _ => Needs::links_and_masters(vec![tap.clone()]),
    };
    let kernel = gather(netlink, &needs).await?;
    let found = kernel.link(tap.as_str());
    let mut plan = match (choice, rule) {
        (TapDown::OpenVswitch, _) => openvswitch::plan_tap_detach(tap, &kernel),
        (TapDown::Routed, Some(rule)) => {
            let uplink = rule.uplink.as_deref();
            routed::plan_port_detach(found, &rule.route, None, uplink, &kernel)?
        }
        _ => qemu::plan_ifdown(tap, &kernel),
    };
    if let Some(found) = found {
        port_options::add_rate_limit_removal(&mut plan, &link_ref(found)?);
    }
    antispoof::add_to_detach(&mut plan, tap);
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn qemu_passes_the_tap_and_maybe_a_bridge() {
        let (tap, bridge) = parse_args("qemu-ifup", &args(&["tap0"])).unwrap();
        assert_eq!((tap.as_str(), bridge), ("tap0", None));
        let (_, bridge) = parse_args("qemu-ifup", &args(&["tap0", "br0"])).unwrap();
        assert_eq!(bridge.as_deref(), Some("br0"));
        for wrong in [&[][..], &["tap0", "br0", "x"]] {
            let err = parse_args("qemu-ifdown", &args(wrong)).unwrap_err();
            assert_eq!(err.to_string(), "usage: qemu-ifdown IFNAME [BRIDGE]");
        }
        let refused = [
            ("tap/0", "invalid interface name \"tap/0\": it contains '/'"),
            ("", "invalid interface name \"\": it is empty"),
            (
                "tap0123456789abc",
                "invalid interface name \"tap0123456789abc\": it is longer than 15 bytes",
            ),
            (
                "tap 0",
                "invalid interface name \"tap 0\": it contains whitespace or a control character",
            ),
            (
                "--help",
                "invalid interface name \"--help\": it starts with '-' (qemu-ifup takes no option but --help or --version, alone)",
            ),
            (
                "-x",
                "invalid interface name \"-x\": it starts with '-' (qemu-ifup takes no option but --help or --version, alone)",
            ),
        ];
        for (tap, message) in refused {
            let err = parse_args("qemu-ifup", &args(&[tap, "br0"])).unwrap_err();
            assert_eq!(err.to_string(), message);
        }
    }
}
