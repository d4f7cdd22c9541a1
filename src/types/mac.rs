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
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

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

    /// A MAC a guest may be given (`B/mac`, `mac =` in vifkit.conf): unicast, not all
    /// zeros, and not the backend port's own `fe:ff:ff:ff:ff:ff`, which libxl never hands
    /// out. Any of those would make antispoofing drop every frame the guest sends.
    pub fn parse_guest(s: &str) -> Result<Self> {
        let mac = MacAddr::parse(s)?;
        mac.check_guest()?;
        Ok(mac)
    }

    /// Why this MAC cannot be a guest's, if it cannot.
    pub fn check_guest(&self) -> Result<()> {
        if *self == MacAddr::BROADCAST {
            bail!("{self} is the broadcast address, not a guest's MAC");
        }
        if self.is_multicast() {
            bail!("{self} is a multicast address, not a guest's MAC");
        }
        if *self == MacAddr::ZERO {
            bail!("{self} is the all-zero address, not a guest's MAC");
        }
        if *self == MacAddr::BACKEND_PORT {
            bail!("{self} is the backend port's own address, not a guest's MAC");
        }
        Ok(())
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
    fn a_guest_mac_is_unicast_non_zero_and_not_the_backend_ports() {
        for good in [
            "00:16:3e:10:10:0a",
            "52:54:00:12:34:56",
            "fe:ff:ff:ff:ff:fe",
            "02:00:00:00:00:00",
        ] {
            assert_eq!(MacAddr::parse_guest(good).unwrap().to_string(), good);
        }
        for (bad, message) in [
            (
                "FF:FF:FF:FF:FF:FF",
                "ff:ff:ff:ff:ff:ff is the broadcast address, not a guest's MAC",
            ),
            (
                "01:00:5e:00:00:01",
                "01:00:5e:00:00:01 is a multicast address, not a guest's MAC",
            ),
            (
                "33:33:00:00:00:01",
                "33:33:00:00:00:01 is a multicast address, not a guest's MAC",
            ),
            (
                "00:00:00:00:00:00",
                "00:00:00:00:00:00 is the all-zero address, not a guest's MAC",
            ),
            (
                "fe:ff:ff:ff:ff:ff",
                "fe:ff:ff:ff:ff:ff is the backend port's own address, not a guest's MAC",
            ),
        ] {
            assert_eq!(MacAddr::parse_guest(bad).unwrap_err().to_string(), message);
        }
        assert_eq!(
            MacAddr::parse_guest("00:16:3e").unwrap_err().to_string(),
            "invalid MAC address \"00:16:3e\": expected six hex pairs like 00:16:3e:01:02:03"
        );
    }

    #[test]
    fn multicast_bit() {
        assert!(MacAddr::parse("01:00:5e:00:00:01").unwrap().is_multicast());
        assert!(!MacAddr::BACKEND_PORT.is_multicast());
    }
}
