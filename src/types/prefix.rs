//! An IP address with a prefix length, the one form every layer uses: guest addresses
//! (`192.0.2.10/24`), routes' destinations, antispoofing blocks and conntrack filters.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 or IPv6: of an address, a route, a default route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(address: IpAddr) -> Family {
        match address {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    pub address: IpAddr,
    pub len: u8,
}

impl Prefix {
    /// `address/len`, the length capped to the family's width; host bits are kept (an
    /// interface address is `192.0.2.10/24`, not its network).
    pub fn new(address: IpAddr, len: u8) -> Prefix {
        let len = len.min(width(address));
        Prefix { address, len }
    }

    /// The single address: /32 or /128.
    pub fn host(address: IpAddr) -> Prefix {
        Prefix::new(address, width(address))
    }

    pub fn is_host(&self) -> bool {
        self.len == width(self.address)
    }

    pub fn is_ipv4(&self) -> bool {
        self.address.is_ipv4()
    }

    /// `fe80::/10`: the address the kernel gives every up IPv6 link itself.
    pub fn is_ipv6_link_local(&self) -> bool {
        matches!(self.address, IpAddr::V6(a) if a.is_unicast_link_local())
    }

    /// The block holding the address, host bits cleared: the one masking function.
    pub fn network(self) -> Prefix {
        let mask = mask128(self.len);
        let address = match self.address {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(((widen(a) << 96 & mask) >> 96) as u32)),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask)),
        };
        Prefix {
            address,
            len: self.len,
        }
    }

    /// Whether `ip` lies in the block; the families never mix, so an IPv4-mapped IPv6
    /// address stays outside every IPv4 prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.is_ipv4() && Prefix::new(ip, self.len).network() == self.network()
    }

    /// The address in network order: 4 or 16 bytes.
    pub fn address_bytes(&self) -> Vec<u8> {
        match self.address {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        }
    }

    /// The netmask as bytes of the family's width.
    pub fn mask_bytes(&self) -> Vec<u8> {
        let mask = mask128(self.len).to_be_bytes();
        match self.address {
            IpAddr::V4(_) => mask[..4].to_vec(),
            IpAddr::V6(_) => mask.to_vec(),
        }
    }

    /// The address alone for a host prefix, `address/len` otherwise (as nft and conntrack
    /// tools print blocks).
    pub fn compact(&self) -> impl fmt::Display + '_ {
        Compact(self)
    }
}

fn width(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn widen(a: Ipv4Addr) -> u128 {
    u128::from(u32::from(a))
}

/// The mask of a prefix `len` bits long, in the top bits of a 128-bit word.
fn mask128(len: u8) -> u128 {
    match len {
        0 => 0,
        n => u128::MAX << (128 - u32::from(n.min(128))),
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.len)
    }
}

struct Compact<'a>(&'a Prefix);

impl fmt::Display for Compact<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.is_host() {
            true => self.0.address.fmt(f),
            false => self.0.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Prefix {
        let (a, l) = text.split_once('/').unwrap();
        Prefix::new(a.parse().unwrap(), l.parse().unwrap())
    }

    #[test]
    fn the_network_clears_host_bits_in_both_families() {
        assert_eq!(p("192.0.2.77/28").network(), p("192.0.2.64/28"));
        assert_eq!(p("192.0.2.77/0").network(), p("0.0.0.0/0"));
        assert_eq!(p("192.0.2.77/32").network(), p("192.0.2.77/32"));
        assert_eq!(p("2001:db8::1:2/112").network(), p("2001:db8::1:0/112"));
        assert_eq!(p("2001:db8::1/0").network(), p("::/0"));
        assert_eq!(p("2001:db8::1/128").network(), p("2001:db8::1/128"));
    }

    #[test]
    fn lengths_are_capped_to_the_family() {
        assert_eq!(p("192.0.2.1/40").len, 32);
        assert!(p("192.0.2.1/40").is_host());
        assert_eq!(Prefix::host("2001:db8::1".parse().unwrap()).len, 128);
    }

    #[test]
    fn contains_never_mixes_families() {
        assert!(p("10.0.0.0/8").contains("10.1.2.3".parse().unwrap()));
        assert!(!p("10.0.0.0/8").contains("11.0.0.1".parse().unwrap()));
        assert!(!p("0.0.0.0/0").contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(p("::/0").contains("2001:db8::1".parse().unwrap()));
        assert!(p("192.0.2.240/28").contains("192.0.2.254".parse().unwrap()));
        assert!(!p("192.0.2.240/28").contains("192.0.2.239".parse().unwrap()));
        assert!(!p("::/0").contains("0.0.0.0".parse().unwrap()));
    }

    #[test]
    fn masks_and_text() {
        assert_eq!(p("10.0.0.0/8").mask_bytes(), [255, 0, 0, 0]);
        assert_eq!(p("10.0.0.1/32").compact().to_string(), "10.0.0.1");
        assert_eq!(p("10.0.0.0/8").compact().to_string(), "10.0.0.0/8");
        assert_eq!(p("10.0.0.1/32").to_string(), "10.0.0.1/32");
    }
}
