//! `/etc/vifkit/vifkit.conf`: per-port settings for qemu taps, in the INI shape admins know
//! from systemd units and Samba. Sections `[port PATTERN...]` match interface names with
//! shell globs; the first matching section wins.
//!
//! ```text
//! # every tap of the web VMs goes to br1 with jumbo frames
//! [port web-* vnet1?]
//! bridge = br1
//! mtu = 9000
//!
//! # a routed guest: its addresses are routed to the tap and proxied on the uplink
//! [port mail0]
//! route = 192.0.2.241 2001:db8:abba::1001
//! uplink = eth0
//! mac = 52:54:00:12:34:56
//!
//! # a bridged guest whose addresses are known: it may send from nothing else
//! [port db0]
//! bridge = br0
//! ip = 192.0.2.20 2001:db8::20
//! mac = 52:54:00:aa:bb:cc
//!
//! # host-wide settings (Xen vifs match [port] sections by their final name too)
//! [host]
//! antispoof = yes
//! ```

mod glob;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use std::net::IpAddr;

use crate::input::backend::{parse_ip_list, parse_mtu};
use crate::types::bridge_word::BridgeWord;
use crate::types::guest_traffic::GuestTraffic;
use crate::types::mac::MacAddr;
use crate::types::names::IfName;
use crate::types::port::{Rate, Requested};
use crate::types::prefix::Prefix;
use crate::types::vlan::{Vid, parse_vids};

pub const DEFAULT_PATH: &str = "/etc/vifkit/vifkit.conf";

/// The sections a file may hold: `[port PATTERN...]` and `[host]`. The parser refuses any
/// other, and `man/vifkit.conf.5` documents each (tests/manpages.rs checks both ways).
pub const SECTIONS: [&str; 2] = ["port", "host"];

/// Every key a `[port]` section takes, in the order the unknown-key error lists them; the
/// parser refuses any other.
pub const PORT_KEYS: [&str; 18] = [
    "bridge",
    "mtu",
    "route",
    "ip",
    "uplink",
    "mac",
    "router",
    "masquerade6",
    "antispoof",
    "allow",
    "ethertypes",
    "vlan",
    "trunks",
    "isolated",
    "learning",
    "hairpin",
    "openvswitch",
    "rate",
];

/// Every key `[host]` takes; the parser refuses any other.
pub const HOST_KEYS: [&str; 1] = ["antispoof"];

/// `a, b or c`, as the errors list what is expected.
fn one_of(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub path: PathBuf,
    pub ports: Vec<PortRule>,
    /// `[host] antispoof`: filter every port whose addresses are known (the default).
    pub antispoof: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortRule {
    pub patterns: Vec<String>,
    /// Where the section starts, for messages that point the admin at it.
    pub line: usize,
    /// `br0`, or with VLANs as Xen writes them: `br0.10:20:30`.
    pub bridge: Option<BridgeWord>,
    pub mtu: Option<u32>,
    /// Routed mode: the guest addresses to route to the tap.
    pub route: Vec<Prefix>,
    pub uplink: Option<String>,
    /// The guest's MAC, so IPv6 routes can go via its link-local as the seed writes them.
    pub mac: Option<MacAddr>,
    /// NAT mode (vif-nat): the host-side router addresses, overriding the derived ones.
    pub router: Vec<IpAddr>,
    /// NAT mode: masquerade IPv6 guests too (off by default: routed IPv6 is the norm).
    pub masquerade6: Option<bool>,
    /// A bridged guest's addresses: with them its port gets antispoofing rules.
    pub ip: Vec<Prefix>,
    /// Overrides `[host] antispoof` for the ports of this section.
    pub antispoof: Option<bool>,
    /// `allow` and `ethertypes`: what the guest may send beyond the antispoofing allow-list.
    pub traffic: GuestTraffic,
    /// Bridge port options: VLANs, isolated, learning, hairpin.
    pub port: Requested,
    /// `bridge` names an Open vSwitch bridge (qemu taps).
    pub openvswitch: Option<bool>,
    /// A tap's rate limit towards its guest.
    pub rate: Option<Rate>,
}

impl Config {
    /// `VIFKIT_CONFIG` if set (it must exist), else the default path (which may be absent).
    pub fn load_from_env() -> Result<Config> {
        match std::env::var_os("VIFKIT_CONFIG") {
            Some(path) => Config::load(Path::new(&path), true),
            None => Config::load(Path::new(DEFAULT_PATH), false),
        }
    }

    pub fn load(path: &Path, required: bool) -> Result<Config> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(path, &text),
            Err(err) if !required && err.kind() == std::io::ErrorKind::NotFound => Ok(Config {
                path: path.to_owned(),
                ..Config::default()
            }),
            Err(err) => Err(err).with_context(|| format!("read {}", path.display())),
        }
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config> {
        let mut config = Config {
            path: path.to_owned(),
            ..Config::default()
        };
        let mut in_host = false;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let at = || format!("{}:{line}", path.display());
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') || content.starts_with(';') {
                continue;
            }
            if let Some(header) = content.strip_prefix('[') {
                in_host = header.split_whitespace().next() == Some("host]");
                if !in_host {
                    let rule = parse_section(header).with_context(at)?;
                    config.ports.push(PortRule { line, ..rule });
                }
                continue;
            }
            if in_host {
                set_host_key(&mut config, content).with_context(at)?;
                continue;
            }
            let Some(rule) = config.ports.last_mut() else {
                bail!("{}: {content:?} is outside a [port ...] section", at());
            };
            set_key(rule, content).with_context(at)?;
        }
        for rule in &config.ports {
            let exclusive = [
                (
                    rule.bridge.is_some() && !rule.route.is_empty(),
                    "bridge and route exclude each other: a port is bridged or routed",
                ),
                (
                    !rule.ip.is_empty() && !rule.route.is_empty(),
                    "ip and route exclude each other: route already lists a routed guest's addresses",
                ),
                (
                    !rule.route.is_empty() && rule.port != Requested::default(),
                    "vlan, trunks, isolated, learning and hairpin are bridge port options: a routed port has no bridge",
                ),
            ];
            if let Some((_, why)) = exclusive.iter().find(|(clash, _)| *clash) {
                bail!("{}:{}: {why}", path.display(), rule.line);
            }
        }
        Ok(config)
    }

    /// Whether `port` gets antispoofing rules (when its addresses are known), and which
    /// setting decided it.
    pub fn antispoof_for(&self, port: &IfName) -> (bool, String) {
        let path = self.path.display();
        if let Some(rule) = self.rule_for(port)
            && let Some(on) = rule.antispoof
        {
            return (on, format!("{path}:{}", rule.line));
        }
        match self.antispoof {
            Some(on) => (on, format!("[host] in {path}")),
            None => (true, "the default".to_owned()),
        }
    }

    /// What the guest behind `port` may send beyond the antispoofing allow-list.
    pub fn traffic_for(&self, port: &IfName) -> GuestTraffic {
        self.rule_for(port)
            .map(|rule| rule.traffic.clone())
            .unwrap_or_default()
    }

    pub fn rule_for(&self, name: &IfName) -> Option<&PortRule> {
        self.ports.iter().find(|rule| {
            rule.patterns
                .iter()
                .any(|p| glob::matches(p.as_bytes(), name.as_str().as_bytes()))
        })
    }
}

fn parse_section(header: &str) -> Result<PortRule> {
    let Some(inner) = header.strip_suffix(']') else {
        bail!("section header [{header} has no closing ]");
    };
    let mut words = inner.split_whitespace();
    match words.next() {
        Some(other) if !SECTIONS.contains(&other) => {
            bail!("unknown section [{other}] (expected [port PATTERN...] or [host])")
        }
        Some("port") => {}
        Some("host") => bail!("[host] takes no interface patterns"),
        Some(other) => bail!("[{other}] is listed in SECTIONS but not parsed"),
        None => bail!("empty section header [] (expected [port PATTERN...])"),
    }
    let patterns: Vec<String> = words.map(str::to_owned).collect();
    if patterns.is_empty() {
        bail!("[port] needs at least one interface name pattern, such as [port tap*]");
    }
    for pattern in &patterns {
        glob::validate(pattern)?;
    }
    Ok(PortRule {
        patterns,
        line: 0,
        bridge: None,
        mtu: None,
        route: vec![],
        uplink: None,
        mac: None,
        router: vec![],
        masquerade6: None,
        ip: vec![],
        antispoof: None,
        traffic: GuestTraffic::default(),
        port: Requested::default(),
        openvswitch: None,
        rate: None,
    })
}

fn parse_switch(key: &str, value: &str) -> Result<bool> {
    match value {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        other => bail!("{key} = {other:?}: expected yes or no"),
    }
}

fn split_key(content: &str) -> Result<(&str, &str)> {
    let Some((key, value)) = content.split_once('=') else {
        bail!("expected key = value, found {content:?}");
    };
    let (key, value) = (key.trim(), value.trim());
    if value.is_empty() {
        bail!("{key} has no value");
    }
    Ok((key, value))
}

fn set_host_key(config: &mut Config, content: &str) -> Result<()> {
    let (key, value) = split_key(content)?;
    if !HOST_KEYS.contains(&key) {
        bail!(
            "unknown key {key:?} in [host] (expected {})",
            one_of(&HOST_KEYS)
        );
    }
    match (key, value) {
        ("antispoof", value) => {
            if config
                .antispoof
                .replace(parse_switch("antispoof", value)?)
                .is_some()
            {
                bail!("antispoof is set twice in [host]");
            }
            Ok(())
        }
        (other, _) => bail!("{other} is listed in HOST_KEYS but not parsed"),
    }
}

fn set_key(rule: &mut PortRule, content: &str) -> Result<()> {
    let (key, value) = split_key(content)?;
    if !PORT_KEYS.contains(&key) {
        bail!("unknown key {key:?} (expected {})", one_of(&PORT_KEYS));
    }
    let duplicate = match key {
        "bridge" => rule.bridge.replace(BridgeWord::parse(value)?).is_some(),
        "mtu" => rule.mtu.replace(parse_mtu(value)?).is_some(),
        "route" => {
            let had = !rule.route.is_empty();
            rule.route = parse_ip_list(value)?;
            had
        }
        "uplink" => {
            IfName::new(value)?;
            rule.uplink.replace(value.to_owned()).is_some()
        }
        "mac" => {
            let mac = MacAddr::parse_guest(value).context("mac")?;
            rule.mac.replace(mac).is_some()
        }
        "router" => {
            let had = !rule.router.is_empty();
            rule.router = parse_ip_list(value)?
                .into_iter()
                .map(|prefix| prefix.address)
                .collect();
            had
        }
        "masquerade6" => rule
            .masquerade6
            .replace(parse_switch(key, value)?)
            .is_some(),
        "ip" => {
            let had = !rule.ip.is_empty();
            rule.ip = parse_ip_list(value)?;
            had
        }
        "antispoof" => rule.antispoof.replace(parse_switch(key, value)?).is_some(),
        "allow" => {
            let had = rule.traffic.dhcp_server || rule.traffic.router_advertisements;
            rule.traffic.parse_allow(value)?;
            had
        }
        "ethertypes" => {
            let had = !rule.traffic.ethertypes.is_empty();
            rule.traffic.parse_ethertypes(value)?;
            had
        }
        "vlan" => {
            let vid = Vid::parse(value)?;
            rule.port.vlans.access.replace(vid).is_some()
        }
        "trunks" => {
            let had = !rule.port.vlans.trunks.is_empty();
            rule.port.vlans.trunks = parse_vids(value.split(',').map(str::trim))?;
            had
        }
        "isolated" => rule
            .port
            .isolated
            .replace(parse_switch(key, value)?)
            .is_some(),
        "learning" => rule
            .port
            .learning
            .replace(parse_switch(key, value)?)
            .is_some(),
        "hairpin" => rule
            .port
            .hairpin
            .replace(parse_switch(key, value)?)
            .is_some(),
        "openvswitch" => rule
            .openvswitch
            .replace(parse_switch(key, value)?)
            .is_some(),
        "rate" => rule.rate.replace(Rate::parse(value)?).is_some(),
        other => bail!("{other} is listed in PORT_KEYS but not parsed"),
    };
    if duplicate {
        bail!("{key} is set twice in this section");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
