//! What a filtered guest may send beyond the default allow-list, per port in vifkit.conf:
//! `allow = dhcp-server router-advertisements` for a router VM, `ethertypes = pppoe` for a
//! guest that speaks more than IPv4, ARP and IPv6.

use std::fmt;

use anyhow::{Result, bail};

/// The ether types every filtered port passes; the rest need `ethertypes =`.
pub const DEFAULT_ETHERTYPES: [u16; 3] = [0x0800, 0x0806, 0x86dd];
/// 802.1Q and 802.1ad tags: a port carries them through its trunk VLANs, not this list.
const TAGS: [u16; 2] = [0x8100, 0x88a8];
/// Below this the field is an 802.3 length, not a type.
const FIRST_ETHERTYPE: u32 = 0x0600;

/// A port's exceptions to the antispoofing allow-list; the default is none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestTraffic {
    /// DHCP and DHCPv6 server traffic: replies to udp/68 and udp/546, anything from
    /// udp/67 and udp/547.
    pub dhcp_server: bool,
    /// ICMPv6 router advertisements.
    pub router_advertisements: bool,
    /// Ether types passed besides IPv4, ARP and IPv6, sorted, without repeats.
    pub ethertypes: Vec<u16>,
}

impl GuestTraffic {
    /// `allow = WORD...`: `dhcp-server`, `router-advertisements`.
    pub fn parse_allow(&mut self, value: &str) -> Result<()> {
        for word in value.split_whitespace() {
            match word {
                "dhcp-server" => self.dhcp_server = true,
                "router-advertisements" => self.router_advertisements = true,
                other => bail!(
                    "allow = {other:?} is not something a guest can be allowed to send \
                     (expected dhcp-server or router-advertisements)"
                ),
            }
        }
        if value.trim().is_empty() {
            bail!("allow is empty (expected dhcp-server or router-advertisements)");
        }
        Ok(())
    }

    /// `ethertypes = TYPE...`: hexadecimal `0x8863`, or `pppoe` for its two types.
    pub fn parse_ethertypes(&mut self, value: &str) -> Result<()> {
        let mut types = vec![];
        for word in value.split_whitespace() {
            match word {
                "pppoe" => types.extend([0x8863, 0x8864]),
                other => types.push(parse_ethertype(other)?),
            }
        }
        if types.is_empty() {
            bail!(
                "ethertypes is empty (expected hexadecimal ether types such as 0x8863, or pppoe)"
            );
        }
        types.retain(|t| !DEFAULT_ETHERTYPES.contains(t));
        types.sort_unstable();
        types.dedup();
        self.ethertypes = types;
        Ok(())
    }

    pub fn is_default(&self) -> bool {
        *self == GuestTraffic::default()
    }
}

fn parse_ethertype(word: &str) -> Result<u16> {
    let number = word
        .strip_prefix("0x")
        .or_else(|| word.strip_prefix("0X"))
        .and_then(|hex| u32::from_str_radix(hex, 16).ok());
    match number {
        Some(n) if TAGS.contains(&(n as u16)) && n <= 0xffff => bail!(
            "ether type {word} is a VLAN tag: a port passes tagged frames on its trunk VLANs (trunks =), not through ethertypes"
        ),
        Some(n @ FIRST_ETHERTYPE..=0xffff) => Ok(n as u16),
        _ => bail!("ether type {word:?} is not a hexadecimal number from 0x0600 to 0xffff"),
    }
}

impl fmt::Display for GuestTraffic {
    /// As the filter's summary line ends: ", also dhcp-server, ether types 0x8863".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words = vec![];
        if self.dhcp_server {
            words.push("dhcp-server".to_owned());
        }
        if self.router_advertisements {
            words.push("router-advertisements".to_owned());
        }
        if !self.ethertypes.is_empty() {
            let types: Vec<String> = self
                .ethertypes
                .iter()
                .map(|t| format!("{t:#06x}"))
                .collect();
            words.push(format!("ether types {}", types.join(" ")));
        }
        write!(f, "{}", words.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_words() {
        let mut allowed = GuestTraffic::default();
        allowed
            .parse_allow("router-advertisements  dhcp-server")
            .unwrap();
        assert!(allowed.dhcp_server && allowed.router_advertisements);
        assert_eq!(allowed.to_string(), "dhcp-server, router-advertisements");
        let err = GuestTraffic::default()
            .parse_allow("dhcp-server ra")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "allow = \"ra\" is not something a guest can be allowed to send (expected dhcp-server or router-advertisements)"
        );
        let err = GuestTraffic::default().parse_allow(" ").unwrap_err();
        assert_eq!(
            err.to_string(),
            "allow is empty (expected dhcp-server or router-advertisements)"
        );
    }

    #[test]
    fn ethertype_words() {
        let mut allowed = GuestTraffic::default();
        allowed
            .parse_ethertypes("0x88B5 pppoe 0x0800 0x8863")
            .unwrap();
        assert_eq!(allowed.ethertypes, [0x8863, 0x8864, 0x88b5]);
        assert_eq!(allowed.to_string(), "ether types 0x8863 0x8864 0x88b5");
        let err = |v: &str| {
            GuestTraffic::default()
                .parse_ethertypes(v)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("0x05dc"),
            "ether type \"0x05dc\" is not a hexadecimal number from 0x0600 to 0xffff"
        );
        assert_eq!(
            err("34915"),
            "ether type \"34915\" is not a hexadecimal number from 0x0600 to 0xffff"
        );
        assert_eq!(
            err("0x10000"),
            "ether type \"0x10000\" is not a hexadecimal number from 0x0600 to 0xffff"
        );
        assert_eq!(
            err("0x8100"),
            "ether type 0x8100 is a VLAN tag: a port passes tagged frames on its trunk VLANs (trunks =), not through ethertypes"
        );
        assert_eq!(
            err(""),
            "ethertypes is empty (expected hexadecimal ether types such as 0x8863, or pppoe)"
        );
    }
}
