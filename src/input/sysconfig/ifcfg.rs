//! `ifcfg-<if>` (CONTRACT 5.1): shell-style `NAME=value` lines, read without a shell.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use anyhow::Result;

use crate::input::backend::parse_mtu;
use crate::input::sysconfig::at;
use crate::types::mac::MacAddr;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartMode {
    #[default]
    Manual,
    /// Also written `onboot`, `on` or `boot`.
    Auto,
    Hotplug,
    Ifplugd,
    Nfsroot,
    Off,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ifcfg {
    pub startmode: StartMode,
    /// Lowercase; `static` when absent or empty.
    pub bootproto: String,
    /// `IPADDR` first, then the suffixed ones in the order they first appear in the file.
    pub addresses: Vec<IfcfgAddress>,
    pub mtu: Option<u32>,
    pub lladdr: Option<MacAddr>,
    /// The free-text description.
    pub name: Option<String>,
    /// `BRIDGE=yes`: the file describes a bridge, which is the host's business.
    pub bridge: bool,
}

impl Default for Ifcfg {
    fn default() -> Self {
        Ifcfg {
            startmode: StartMode::Manual,
            bootproto: "static".into(),
            addresses: vec![],
            mtu: None,
            lladdr: None,
            name: None,
            bridge: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfcfgAddress {
    /// What follows `IPADDR` in the variable name: `""`, `"_1"`, `"xxx"`.
    pub suffix: String,
    pub address: IpAddr,
    /// From `/len`, else `PREFIXLEN<sfx>`, else `NETMASK<sfx>` (IPv4), else /32 or /128.
    /// The full length is what wicked assumes and what vif-route gives a vif (`<ip>/32`).
    pub prefix_len: u8,
    /// IPv4 only; `BROADCAST<sfx>='+'` is computed here from the prefix.
    pub broadcast: Option<IpAddr>,
    /// `REMOTE_IPADDR<sfx>`; as with `ip addr add … peer`, the prefix then applies to the peer.
    pub peer: Option<IpAddr>,
    /// `LABEL<sfx>` as written (IPv4 only); the kernel label is `<if>:<label>`.
    pub label: Option<String>,
    /// `global`, `site`, `link` or `host`.
    pub scope: Option<String>,
}

struct Var {
    value: String,
    line: usize,
}

/// Variables in order of first appearance; a later assignment replaces the value, as in a shell.
struct Vars {
    order: Vec<String>,
    map: HashMap<String, Var>,
}

impl Vars {
    /// Non-empty values only: an empty assignment means "not set" everywhere in sysconfig.
    fn get(&self, name: &str) -> Option<&Var> {
        self.map.get(name).filter(|v| !v.value.is_empty())
    }
}

pub fn parse_ifcfg(path: &Path, text: &str) -> Result<Ifcfg> {
    let vars = read_vars(path, text)?;
    let mut ifcfg = Ifcfg::default();

    if let Some(var) = vars.get("STARTMODE") {
        ifcfg.startmode = match var.value.to_ascii_lowercase().as_str() {
            "manual" => StartMode::Manual,
            "auto" | "onboot" | "on" | "boot" => StartMode::Auto,
            "hotplug" => StartMode::Hotplug,
            "ifplugd" => StartMode::Ifplugd,
            "nfsroot" => StartMode::Nfsroot,
            "off" => StartMode::Off,
            _ => {
                return Err(at(
                    path,
                    var.line,
                    format_args!(
                        "invalid STARTMODE {:?}: expected manual, auto, hotplug, ifplugd, nfsroot or off",
                        var.value
                    ),
                ));
            }
        };
    }
    if let Some(var) = vars.get("BOOTPROTO") {
        ifcfg.bootproto = var.value.to_ascii_lowercase();
    }
    if let Some(var) = vars.get("MTU") {
        ifcfg.mtu = Some(parse_mtu(&var.value).map_err(|e| at(path, var.line, e))?);
    }
    if let Some(var) = vars.get("LLADDR") {
        ifcfg.lladdr = Some(MacAddr::parse(&var.value).map_err(|e| at(path, var.line, e))?);
    }
    ifcfg.name = vars.get("NAME").map(|v| v.value.clone());
    ifcfg.bridge = vars.get("BRIDGE").is_some_and(|v| v.value == "yes");

    let mut suffixes: Vec<&str> = vars
        .order
        .iter()
        .filter_map(|name| name.strip_prefix("IPADDR"))
        .collect();
    suffixes.sort_by_key(|s| !s.is_empty());
    for suffix in suffixes {
        if let Some(address) = address(path, &vars, suffix)? {
            ifcfg.addresses.push(address);
        }
    }
    Ok(ifcfg)
}

fn address(path: &Path, vars: &Vars, suffix: &str) -> Result<Option<IfcfgAddress>> {
    let name = format!("IPADDR{suffix}");
    let Some(var) = vars.get(&name) else {
        return Ok(None);
    };
    let invalid = |why: &str| {
        at(
            path,
            var.line,
            format_args!("invalid {name} {:?}: {why}", var.value),
        )
    };
    let (text, len) = match var.value.split_once('/') {
        Some((text, len)) => (text, Some(len)),
        None => (var.value.as_str(), None),
    };
    let address: IpAddr = text
        .parse()
        .map_err(|_| invalid("expected an IPv4 or IPv6 address with an optional /prefix length"))?;
    if address.is_unspecified() {
        // YaST used to write 0.0.0.0 for "no address"; wicked skips it too.
        log::debug!(
            "{}:{}: ignoring unspecified {name}",
            path.display(),
            var.line
        );
        return Ok(None);
    }
    let max = max_prefix(address);
    let range = format!("the prefix length must be 1 to {max}");
    let prefix_len = match len {
        Some(len) => prefix_in_range(len, max).ok_or_else(|| invalid(&range))?,
        None => prefix_from_vars(path, vars, suffix, address)?.unwrap_or(max),
    };

    let mut broadcast = None;
    let mut label = None;
    if let IpAddr::V4(v4) = address {
        if let Some(var) = vars.get(&format!("BROADCAST{suffix}")) {
            broadcast = match var.value.as_str() {
                "+" => computed_broadcast(v4, prefix_len),
                "-" => None,
                value => Some(IpAddr::V4(value.parse().map_err(|_| {
                    at(
                        path,
                        var.line,
                        format_args!(
                            "invalid BROADCAST{suffix} {value:?}: expected an IPv4 address"
                        ),
                    )
                })?)),
            };
        }
        label = vars.get(&format!("LABEL{suffix}")).map(|v| v.value.clone());
    }

    let peer = match vars.get(&format!("REMOTE_IPADDR{suffix}")) {
        None => None,
        Some(var) => {
            let peer: IpAddr = var.value.parse().map_err(|_| {
                at(
                    path,
                    var.line,
                    format_args!(
                        "invalid REMOTE_IPADDR{suffix} {:?}: expected an IP address",
                        var.value
                    ),
                )
            })?;
            if peer.is_ipv4() != address.is_ipv4() {
                return Err(at(
                    path,
                    var.line,
                    format_args!(
                        "REMOTE_IPADDR{suffix} {peer} and {name} {address} are of different families"
                    ),
                ));
            }
            Some(peer)
        }
    };

    let scope = match vars.get(&format!("SCOPE{suffix}")) {
        None => None,
        Some(var) => {
            let scope = var.value.to_ascii_lowercase();
            if !["global", "site", "link", "host"].contains(&scope.as_str()) {
                return Err(at(
                    path,
                    var.line,
                    format_args!(
                        "invalid SCOPE{suffix} {:?}: expected global, site, link or host",
                        var.value
                    ),
                ));
            }
            Some(scope)
        }
    };

    Ok(Some(IfcfgAddress {
        suffix: suffix.to_owned(),
        address,
        prefix_len,
        broadcast,
        peer,
        label,
        scope,
    }))
}

/// `PREFIXLEN<sfx>`, else `NETMASK<sfx>` for IPv4. Only read when `IPADDR<sfx>` has no `/len`,
/// so a stale value behind a `/len` stays harmless.
fn prefix_from_vars(path: &Path, vars: &Vars, suffix: &str, address: IpAddr) -> Result<Option<u8>> {
    let max = max_prefix(address);
    if let Some(var) = vars.get(&format!("PREFIXLEN{suffix}")) {
        return match prefix_in_range(&var.value, max) {
            Some(len) => Ok(Some(len)),
            None => Err(at(
                path,
                var.line,
                format_args!(
                    "invalid PREFIXLEN{suffix} {:?}: expected 1 to {max}",
                    var.value
                ),
            )),
        };
    }
    if address.is_ipv4()
        && let Some(var) = vars.get(&format!("NETMASK{suffix}"))
    {
        return match netmask_bits(&var.value) {
            Some(len) if len > 0 => Ok(Some(len)),
            _ => Err(at(
                path,
                var.line,
                format_args!(
                    "invalid NETMASK{suffix} {:?}: expected a contiguous mask like 255.255.255.0",
                    var.value
                ),
            )),
        };
    }
    Ok(None)
}

pub(crate) fn max_prefix(address: IpAddr) -> u8 {
    if address.is_ipv4() { 32 } else { 128 }
}

fn prefix_in_range(text: &str, max: u8) -> Option<u8> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u8>()
        .ok()
        .filter(|len| (1..=max).contains(len))
}

/// The prefix length of a dotted IPv4 mask, if its one bits are contiguous.
pub(crate) fn netmask_bits(text: &str) -> Option<u8> {
    let mask = u32::from(text.parse::<Ipv4Addr>().ok()?);
    let bits = mask.leading_ones();
    (mask.checked_shl(bits).unwrap_or(0) == 0).then_some(bits as u8)
}

fn computed_broadcast(address: Ipv4Addr, prefix_len: u8) -> Option<IpAddr> {
    // /31 and /32 have no broadcast address (RFC 3021).
    if prefix_len >= 31 {
        return None;
    }
    let host_mask = u32::MAX >> prefix_len;
    Some(IpAddr::V4(Ipv4Addr::from(u32::from(address) | host_mask)))
}

fn read_vars(path: &Path, text: &str) -> Result<Vars> {
    let mut vars = Vars {
        order: vec![],
        map: HashMap::new(),
    };
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let Some((name, raw)) = assignment(line) else {
            continue;
        };
        let value = unquote(raw).map_err(|quote| {
            at(
                path,
                line_no,
                format_args!("unterminated {quote} quote in the value of {name}"),
            )
        })?;
        if !vars.map.contains_key(name) {
            vars.order.push(name.to_owned());
        }
        vars.map.insert(
            name.to_owned(),
            Var {
                value,
                line: line_no,
            },
        );
    }
    Ok(vars)
}

/// `NAME=` and the raw text after `=`, or `None` for a line the format says to ignore.
fn assignment(line: &str) -> Option<(&str, &str)> {
    let line = line.trim_start();
    if !line.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(line.len());
    let raw = line[end..].strip_prefix('=')?;
    Some((&line[..end], raw))
}

/// Quoted runs and bare runs join as in a shell (`a'b c'` is `ab c`); there are no escapes.
/// A bare run ends at whitespace. Err carries the unterminated quote character.
fn unquote(raw: &str) -> std::result::Result<String, char> {
    let mut value = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => loop {
                match chars.next() {
                    Some(q) if q == c => break,
                    Some(other) => value.push(other),
                    None => return Err(c),
                }
            },
            c if c.is_whitespace() => break,
            c => value.push(c),
        }
    }
    Ok(value)
}

#[cfg(test)]
#[path = "ifcfg_tests.rs"]
mod tests;
