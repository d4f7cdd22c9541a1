//! What a port gets beyond membership, as asked (`Requested`, from vifkit.conf or Xen's
//! bridge word) and as applied (`PortOptions`), and a tap's rate limit.

use std::fmt;

use anyhow::{Result, bail};

use crate::types::mac::MacAddr;
use crate::types::vlan::Vlans;

/// A tap's rate limit in bits per second, written as tc does: `10mbit`, `512kbit`, `1gbit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate(pub u64);

impl Rate {
    pub fn parse(text: &str) -> Result<Rate> {
        let lower = text.to_ascii_lowercase();
        let (number, unit) = lower.split_at(
            lower
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(lower.len()),
        );
        let scale = match unit {
            "bit" => 1,
            "kbit" => 1_000,
            "mbit" => 1_000_000,
            "gbit" => 1_000_000_000,
            _ => 0,
        };
        match crate::types::names::parse_decimal(number).map(|n| u64::from(n) * scale) {
            Some(bits) if bits >= 8_000 => Ok(Rate(bits)),
            _ => bail!(
                "rate {text:?} is not a rate such as 512kbit, 10mbit or 1gbit (at least 8kbit)"
            ),
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            b if b % 1_000_000_000 == 0 => write!(f, "{}gbit", b / 1_000_000_000),
            b if b % 1_000_000 == 0 => write!(f, "{}mbit", b / 1_000_000),
            b if b % 1_000 == 0 => write!(f, "{}kbit", b / 1_000),
            b => write!(f, "{b}bit"),
        }
    }
}

/// The options asked for a port; all off by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortOptions {
    pub vlans: Vlans,
    pub isolated: bool,
    /// Learning off: the guest MAC gets a static FDB entry instead.
    pub pinned_mac: Option<MacAddr>,
    pub hairpin: bool,
}

impl PortOptions {
    pub fn is_default(&self) -> bool {
        *self == PortOptions::default()
    }
}

impl fmt::Display for PortOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = vec![];
        if !self.vlans.is_empty() {
            parts.push(self.vlans.to_string());
        }
        if self.isolated {
            parts.push("isolated".to_owned());
        }
        if let Some(mac) = self.pinned_mac {
            parts.push(format!("learning off, {mac} static"));
        }
        if self.hairpin {
            parts.push("hairpin".to_owned());
        }
        write!(f, "{}", parts.join(", "))
    }
}

/// What the config file (or Xen's bridge word) asks, before the guest MAC is known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requested {
    pub vlans: Vlans,
    pub isolated: Option<bool>,
    pub learning: Option<bool>,
    pub hairpin: Option<bool>,
}

impl Requested {
    /// The options for a port whose guest has `mac`; learning off needs it, and
    /// `mac_source` says where it would come from.
    pub fn resolve(
        &self,
        port: &str,
        mac: Option<MacAddr>,
        mac_source: &str,
    ) -> Result<PortOptions> {
        let pinned_mac = match (self.learning, mac) {
            (Some(false), Some(mac)) => Some(mac),
            (Some(false), None) => {
                bail!("learning = no for {port} needs the guest MAC to pin: set {mac_source}")
            }
            _ => None,
        };
        Ok(PortOptions {
            vlans: self.vlans.clone(),
            isolated: self.isolated.unwrap_or(false),
            pinned_mac,
            hairpin: self.hairpin.unwrap_or(false),
        })
    }
}

#[cfg(test)]
#[path = "port_tests.rs"]
mod tests;
