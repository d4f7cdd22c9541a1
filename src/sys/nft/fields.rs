//! The vocabulary of a port's rules: the packet fields they look at, where each sits in the
//! packet, the values they are compared with, and rules and chains made of them, all
//! named as nft prints them.

use std::fmt;

use crate::types::mac::MacAddr;
use crate::types::prefix::Prefix;

const IPPROTO_FRAGMENT: u8 = 44;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A packet field, named as nft prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    EtherSource,
    EtherDestination,
    EtherType,
    /// The VLAN id of an 802.1Q-tagged frame (its tag's low 12 bits).
    VlanId,
    /// ARP hardware type, protocol type and their lengths: only Ethernet/IPv4 ARP is parsed.
    ArpShape,
    ArpSenderMac,
    ArpSenderIp,
    Ipv4Source,
    Ipv6Source,
    L4Proto,
    UdpSource,
    UdpDestination,
    /// The first two bytes of any transport header: the source port of UDP, TCP, SCTP
    /// (`udp sport` is this load behind a `meta l4proto udp`).
    TransportSource,
    /// Bytes 2 and 3 of any transport header: the destination port of those.
    TransportDestination,
    Icmpv6Type,
    /// The target address of a neighbour solicitation or advertisement.
    NdTarget,
    /// Whether an IPv6 packet has a fragment header (1 or 0).
    Ipv6Fragment,
    /// Bytes of the transport header that nft has no name for (NDP options).
    TransportBytes {
        offset: u32,
        len: u32,
    },
}

/// Where a field sits: a header base, offset and length in bytes, or the parsed L4 protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    LinkLayer {
        offset: u32,
        len: u32,
    },
    Network {
        offset: u32,
        len: u32,
    },
    Transport {
        offset: u32,
        len: u32,
    },
    L4Proto,
    /// 1 when the IPv6 packet carries the extension header `kind`, else 0.
    Ipv6ExtHeader {
        kind: u8,
    },
}

impl Field {
    pub fn load(self) -> Load {
        use Load::*;
        match self {
            Field::EtherSource => LinkLayer { offset: 6, len: 6 },
            Field::EtherDestination => LinkLayer { offset: 0, len: 6 },
            Field::EtherType => LinkLayer { offset: 12, len: 2 },
            Field::VlanId => LinkLayer { offset: 14, len: 2 },
            Field::ArpShape => Network { offset: 0, len: 6 },
            Field::ArpSenderMac => Network { offset: 8, len: 6 },
            Field::ArpSenderIp => Network { offset: 14, len: 4 },
            Field::Ipv4Source => Network { offset: 12, len: 4 },
            Field::Ipv6Source => Network { offset: 8, len: 16 },
            Field::L4Proto => L4Proto,
            Field::UdpSource | Field::TransportSource => Transport { offset: 0, len: 2 },
            Field::UdpDestination | Field::TransportDestination => Transport { offset: 2, len: 2 },
            Field::Icmpv6Type => Transport { offset: 0, len: 1 },
            Field::NdTarget => Transport { offset: 8, len: 16 },
            Field::Ipv6Fragment => Ipv6ExtHeader {
                kind: IPPROTO_FRAGMENT,
            },
            Field::TransportBytes { offset, len } => Transport { offset, len },
        }
    }

    /// Applied before the compare whatever the value: a VLAN tag's priority bits are no
    /// part of its id.
    fn implicit_mask(self) -> Option<Vec<u8>> {
        (self == Field::VlanId).then(|| vec![0x0f, 0xff])
    }

    fn name(self) -> String {
        let name = match self {
            Field::TransportBytes { offset, len } => {
                return format!("@th,{},{}", offset * 8, len * 8);
            }
            Field::EtherSource => "ether saddr",
            Field::EtherDestination => "ether daddr",
            Field::EtherType => "ether type",
            Field::VlanId => "vlan id",
            Field::ArpShape => "arp htype . ptype . hlen . plen",
            Field::ArpSenderMac => "arp saddr ether",
            Field::ArpSenderIp => "arp saddr ip",
            Field::Ipv4Source => "ip saddr",
            Field::Ipv6Source => "ip6 saddr",
            Field::L4Proto => "meta l4proto",
            Field::UdpSource => "udp sport",
            Field::UdpDestination => "udp dport",
            Field::TransportSource => "th sport",
            Field::TransportDestination => "th dport",
            Field::Icmpv6Type => "icmpv6 type",
            Field::NdTarget => "icmpv6 taddr",
            Field::Ipv6Fragment => "exthdr frag",
        };
        name.to_owned()
    }

    fn len(self) -> usize {
        match self.load() {
            Load::LinkLayer { len, .. }
            | Load::Network { len, .. }
            | Load::Transport { len, .. } => len as usize,
            Load::L4Proto | Load::Ipv6ExtHeader { .. } => 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Mac(MacAddr),
    Net(Prefix),
    Number(u16),
    Bytes(Vec<u8>),
    /// The field, masked, equals `data`.
    Masked {
        data: Vec<u8>,
        mask: Vec<u8>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    pub field: Field,
    pub negate: bool,
    pub value: Value,
}

impl Match {
    pub(super) fn eq(field: Field, value: Value) -> Match {
        Match {
            field,
            negate: false,
            value,
        }
    }
    pub(super) fn ne(field: Field, value: Value) -> Match {
        Match {
            field,
            negate: true,
            value,
        }
    }

    /// The bytes the field is compared with (network order, the field's width), and the
    /// mask applied first when the value is a prefix.
    pub fn data(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        match &self.value {
            Value::Mac(mac) => (mac.0.to_vec(), None),
            Value::Net(net) => (
                net.address_bytes(),
                (!net.is_host()).then(|| net.mask_bytes()),
            ),
            Value::Number(n) => {
                let bytes = n.to_be_bytes();
                (
                    bytes[2 - self.field.len()..].to_vec(),
                    self.field.implicit_mask(),
                )
            }
            Value::Bytes(bytes) => (bytes.clone(), None),
            Value::Masked { data, mask } => (data.clone(), Some(mask.clone())),
        }
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field == Field::Ipv6Fragment {
            let present = (self.value == Value::Number(1)) != self.negate;
            return write!(
                f,
                "exthdr frag {}",
                if present { "exists" } else { "missing" }
            );
        }
        // A masked field reads `field & mask == data`, or `!=`.
        let op = match (&self.value, self.negate) {
            (_, true) => "!= ",
            (Value::Masked { .. }, false) => "== ",
            (_, false) => "",
        };
        write!(f, "{} ", self.field.name())?;
        if let Value::Masked { mask, .. } = &self.value {
            write!(f, "& {} ", self.masked_bytes(mask))?;
        }
        write!(f, "{op}")?;
        match &self.value {
            Value::Mac(mac) => write!(f, "{mac}"),
            Value::Net(net) => write!(f, "{}", net.compact()),
            Value::Number(n) if self.field == Field::EtherType => write!(f, "{n:#06x}"),
            Value::Number(n) if matches!(self.field, Field::TransportBytes { .. }) => {
                write!(f, "{n:#0width$x}", width = 2 + 2 * self.field.len())
            }
            Value::Number(n) => write!(f, "{n}"),
            Value::Bytes(bytes) => write!(f, "0x{}", hex(bytes)),
            Value::Masked { data, .. } => write!(f, "{}", self.masked_bytes(data)),
        }
    }
}

impl Match {
    /// A masked value's bytes, or its mask's: as a MAC for a MAC field, else in hex.
    fn masked_bytes(&self, bytes: &[u8]) -> String {
        match <[u8; 6]>::try_from(bytes) {
            Ok(mac) if self.field == Field::EtherDestination => MacAddr(mac).to_string(),
            _ => format!("0x{}", hex(bytes)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSpec {
    pub name: String,
    pub rules: Vec<Rule>,
}

impl fmt::Display for ChainSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "chain {} {{", self.name)?;
        for rule in &self.rules {
            writeln!(f, "\t{rule}")?;
        }
        write!(f, "}}")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub matches: Vec<Match>,
    pub verdict: Verdict,
}

impl Rule {
    fn new(matches: Vec<Match>, verdict: Verdict) -> Rule {
        Rule { matches, verdict }
    }
    pub(super) fn drop(matches: Vec<Match>) -> Rule {
        Rule::new(matches, Verdict::Drop)
    }
    pub(super) fn accept(matches: Vec<Match>) -> Rule {
        Rule::new(matches, Verdict::Accept)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.matches {
            write!(f, "{m} ")?;
        }
        self.verdict.fmt(f)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Accept => write!(f, "accept"),
            Verdict::Drop => write!(f, "drop"),
        }
    }
}
