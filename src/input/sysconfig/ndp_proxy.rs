//! `ifndp-proxy` and `ifndp-proxy-<if>` (CONTRACT 5.3):
//! `<address> <address interface> <proxy interface>…`.

use std::net::IpAddr;
use std::path::Path;

use anyhow::Result;

use crate::input::sysconfig::at;
use crate::types::names::IfName;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyLine {
    pub line: usize,
    /// IPv6 is published as an NDP proxy, IPv4 as an ARP proxy.
    pub address: IpAddr,
    /// Where the address lives (on or behind it).
    pub address_interface: IfName,
    /// Where the address is published; never empty.
    pub proxy_interfaces: Vec<IfName>,
}

/// `iface` is the `<if>` of `ifndp-proxy-<if>`, which `-` stands for; `None` for `ifndp-proxy`.
pub fn parse_ndp_proxy(path: &Path, text: &str, iface: Option<&IfName>) -> Result<Vec<ProxyLine>> {
    let mut proxies = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        // A word starting with `#` ends the line; a `#` inside a word is part of it.
        let words: Vec<&str> = raw
            .split_whitespace()
            .take_while(|w| !w.starts_with('#'))
            .collect();
        if words.is_empty() {
            continue;
        }
        proxies.push(parse_line(line, &words, iface).map_err(|msg| at(path, line, msg))?);
    }
    Ok(proxies)
}

fn parse_line(
    line: usize,
    words: &[&str],
    iface: Option<&IfName>,
) -> std::result::Result<ProxyLine, String> {
    let address: IpAddr = words[0].parse().map_err(|_| {
        format!(
            "invalid address {:?}: expected an IPv6 or IPv4 address",
            words[0]
        )
    })?;
    let address_interface = match (words.get(1).copied(), iface) {
        (None, _) => return Err(format!("no address interface after {address}")),
        (Some("-"), Some(iface)) => iface.clone(),
        (Some("-"), None) => {
            return Err(
                "\"-\" as the address interface is only allowed in ifndp-proxy-<interface>".into(),
            );
        }
        (Some(name), _) => IfName::new(name).map_err(|e| e.to_string())?,
    };
    let proxy_interfaces = words[2..]
        .iter()
        .map(|name| match *name {
            "-" => Err("\"-\" is not a proxy interface".to_owned()),
            name => IfName::new(name).map_err(|e| e.to_string()),
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if proxy_interfaces.is_empty() {
        return Err(format!(
            "no proxy interface for {address}: list at least one after {address_interface}"
        ));
    }
    Ok(ProxyLine {
        line,
        address,
        address_interface,
        proxy_interfaces,
    })
}

#[cfg(test)]
#[path = "ndp_proxy_tests.rs"]
mod tests;
