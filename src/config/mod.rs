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
//! ```

mod glob;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use std::net::IpAddr;

use crate::backend::{parse_ip_list, parse_mtu};
use crate::mac::MacAddr;
use crate::names::IfName;

pub const DEFAULT_PATH: &str = "/etc/vifkit/vifkit.conf";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub path: PathBuf,
    pub ports: Vec<PortRule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortRule {
    pub patterns: Vec<String>,
    /// Where the section starts, for messages that point the admin at it.
    pub line: usize,
    pub bridge: Option<String>,
    pub mtu: Option<u32>,
    /// Routed mode: the guest addresses to route to the tap.
    pub route: Vec<(IpAddr, u8)>,
    pub uplink: Option<String>,
    /// The guest's MAC, so IPv6 routes can go via its link-local as the seed writes them.
    pub mac: Option<MacAddr>,
    /// NAT mode (vif-nat): the host-side router addresses, overriding the derived ones.
    pub router: Vec<IpAddr>,
    /// NAT mode: masquerade IPv6 guests too (off by default: routed IPv6 is the norm).
    pub masquerade6: Option<bool>,
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
                ports: vec![],
            }),
            Err(err) => Err(err).with_context(|| format!("read {}", path.display())),
        }
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config> {
        let mut config = Config {
            path: path.to_owned(),
            ports: vec![],
        };
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let at = || format!("{}:{line}", path.display());
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') || content.starts_with(';') {
                continue;
            }
            if let Some(header) = content.strip_prefix('[') {
                let rule = parse_section(header).with_context(at)?;
                config.ports.push(PortRule { line, ..rule });
                continue;
            }
            let Some(rule) = config.ports.last_mut() else {
                bail!("{}: {content:?} is outside a [port ...] section", at());
            };
            set_key(rule, content).with_context(at)?;
        }
        for rule in &config.ports {
            if rule.bridge.is_some() && !rule.route.is_empty() {
                bail!(
                    "{}:{}: bridge and route exclude each other: a port is bridged or routed",
                    path.display(),
                    rule.line
                );
            }
        }
        Ok(config)
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
        Some("port") => {}
        Some(other) => bail!("unknown section [{other}] (expected [port PATTERN...])"),
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
    })
}

fn set_key(rule: &mut PortRule, content: &str) -> Result<()> {
    let Some((key, value)) = content.split_once('=') else {
        bail!("expected key = value, found {content:?}");
    };
    let (key, value) = (key.trim(), value.trim());
    if value.is_empty() {
        bail!("{key} has no value");
    }
    let duplicate = match key {
        "bridge" => {
            IfName::new(value)?;
            rule.bridge.replace(value.to_owned()).is_some()
        }
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
        "mac" => rule.mac.replace(MacAddr::parse(value)?).is_some(),
        "router" => {
            let had = !rule.router.is_empty();
            rule.router = parse_ip_list(value)?
                .into_iter()
                .map(|(ip, _)| ip)
                .collect();
            had
        }
        "masquerade6" => {
            let on = match value {
                "yes" | "true" | "on" | "1" => true,
                "no" | "false" | "off" | "0" => false,
                other => bail!("masquerade6 = {other:?}: expected yes or no"),
            };
            rule.masquerade6.replace(on).is_some()
        }
        other => bail!(
            "unknown key {other:?} (expected bridge, mtu, route, uplink, mac, router or masquerade6)"
        ),
    };
    if duplicate {
        bail!("{key} is set twice in this section");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
