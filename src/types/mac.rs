//! Ethernet MAC addresses and the EUI-64 link-local address derived from them.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use anyhow::{Result, bail};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The highest non-broadcast unicast address: a Linux bridge takes the lowest port MAC
    /// as its own, so a backend port carrying this one is never adopted.
    pub const BACKEND_PORT: MacAddr = MacAddr([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]);

    pub fn parse(s: &str) -> Result<Self> {
        let mut bytes = [0u8; 6];
        let mut parts = s.split(':');
        for byte in bytes.iter_mut() {
            let part = parts.next().unwrap_or("");
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("invalid MAC address {s:?}: expected six hex pairs like 00:16:3e:01:02:03");
            }
            *byte = u8::from_str_radix(part, 16).expect("two hex digits");
        }
        if parts.next().is_some() {
            bail!("invalid MAC address {s:?}: expected six hex pairs like 00:16:3e:01:02:03");
        }
        Ok(MacAddr(bytes))
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        Some(MacAddr(bytes.try_into().ok()?))
    }

    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// The modified EUI-64 link-local address (RFC 4291 appendix A) a guest or host derives
    /// from this MAC, e.g. fe:ff:ff:ff:ff:ff -> fe80::fcff:ffff:feff:ffff.
    pub fn eui64_link_local(&self) -> Ipv6Addr {
        let m = self.0;
        Ipv6Addr::from([
            0xfe,
            0x80,
            0,
            0,
            0,
            0,
            0,
            0,
            m[0] ^ 0x02,
            m[1],
            m[2],
            0xff,
            0xfe,
            m[3],
            m[4],
            m[5],
        ])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl FromStr for MacAddr {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        MacAddr::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_lower_case() {
        let mac = MacAddr::parse("00:16:3E:10:10:0a").unwrap();
        assert_eq!(mac.to_string(), "00:16:3e:10:10:0a");
        assert_eq!(MacAddr::BACKEND_PORT.to_string(), "fe:ff:ff:ff:ff:ff");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "00:16:3e:10:10",
            "00:16:3e:10:10:10:10",
            "00:16:3e:10:10:1",
            "00:16:3e:10:10:100",
            "00-16-3e-10-10-10",
            "00:16:3e:10:10:1g",
            "00:16:3e:10:10:10:",
            "+0:16:3e:10:10:10",
        ] {
            assert_eq!(
                MacAddr::parse(bad).unwrap_err().to_string(),
                format!(
                    "invalid MAC address {bad:?}: expected six hex pairs like 00:16:3e:01:02:03"
                ),
            );
        }
    }

    #[test]
    fn eui64_matches_the_seed() {
        // Seed section 2.1: guests route IPv6 via the vif's link-local fe80::fcff:ffff:feff:ffff.
        assert_eq!(
            MacAddr::BACKEND_PORT.eui64_link_local().to_string(),
            "fe80::fcff:ffff:feff:ffff"
        );
        assert_eq!(
            MacAddr::parse("00:16:3e:10:10:10")
                .unwrap()
                .eui64_link_local()
                .to_string(),
            "fe80::216:3eff:fe10:1010"
        );
    }

    #[test]
    fn multicast_bit() {
        assert!(MacAddr::parse("01:00:5e:00:00:01").unwrap().is_multicast());
        assert!(!MacAddr::BACKEND_PORT.is_multicast());
    }
}
