//! A port's antispoofing rules as data (CONTRACT 4.8, 6): what the guest behind the port may
//! send. Pure, so the rules are unit tested and printed (in nft syntax) without root.
//!
//! A port has one chain, and its rules never jump: every rule names the ether type it is
//! for, and a list of allowed sources is one rule that drops a packet matching none of
//! them. The kernel walks every chain of the namespace at each commit and re-validates a
//! table through its jumps, so one jump-free chain per port is what keeps a plug cheap
//! with many ports present.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::types::mac::MacAddr;
use crate::types::names::IfName;
use crate::types::prefix::Prefix;

pub use super::fields::{Field, Load, Match, Value};

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;
const ND_ROUTER_ADVERT: u8 = 134;
const ND_NEIGHBOR_ADVERT: u8 = 136;
const ND_REDIRECT: u8 = 137;
const DHCP_SERVER_PORT: u16 = 67;
const DHCPV6_SERVER_PORT: u16 = 547;

/// The most address blocks per family a port's rules allow (link-local included).
pub const MAX_BLOCKS: usize = 32;

/// What the guest behind `port` may send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortFilter {
    pub port: IfName,
    /// The guest MAC (`B/mac`, or `mac` in vifkit.conf); without it only addresses are checked.
    pub mac: Option<MacAddr>,
    pub ipv4: Vec<Prefix>,
    /// Includes the link-local addresses the guest may use.
    pub ipv6: Vec<Prefix>,
    /// A VLAN trunk: its tagged frames are the point of it and pass (only their source MAC
    /// is checked; their IP headers sit behind the tag, out of these rules' reach).
    pub trunk: bool,
}

impl PortFilter {
    /// The guest's own addresses, plus the EUI-64 link-local of its MAC (Proxmox's default
    /// set); with no MAC known any link-local address is allowed.
    pub fn new(port: IfName, mac: Option<MacAddr>, addresses: &[Prefix]) -> PortFilter {
        let link_local = match mac {
            Some(mac) => Prefix::host(IpAddr::V6(mac.eui64_link_local())),
            None => Prefix::new(IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)), 64),
        };
        let mut ipv4 = vec![];
        let mut ipv6 = vec![link_local];
        for &Prefix {
            address,
            len: prefix_len,
        } in addresses
        {
            let net = Prefix::new(address, prefix_len).network();
            let list = if address.is_ipv4() {
                &mut ipv4
            } else {
                &mut ipv6
            };
            if !list.contains(&net) {
                list.push(net);
            }
        }
        PortFilter {
            port,
            mac,
            ipv4,
            ipv6,
            trunk: false,
        }
    }

    /// Refuses address lists too long for one rule: the kernel takes 128 expressions per
    /// rule, and each allowed block costs up to 3 (load, mask, compare).
    pub fn check_size(&self) -> Result<(), String> {
        for (family, nets) in [("IPv4", &self.ipv4), ("IPv6", &self.ipv6)] {
            if nets.len() > MAX_BLOCKS {
                return Err(format!(
                    "{} has {} {family} address blocks to allow, more than the {MAX_BLOCKS} \
                     antispoofing can check per family; list fewer or set antispoof = no for it",
                    self.port,
                    nets.len()
                ));
            }
        }
        Ok(())
    }

    /// Where the rules live, as `nft list` names it.
    pub fn table(&self) -> String {
        format!("netdev {}", netdev_table(&self.port))
    }

    /// The port's chain: hooked on its ingress, named after it.
    pub fn chain(&self) -> ChainSpec {
        let ether_type = |t: u16| Match::eq(Field::EtherType, Value::Number(t));
        let arp = || ether_type(ETH_P_ARP);
        let ipv4 = || ether_type(ETH_P_IP);
        let ipv6 = || ether_type(ETH_P_IPV6);
        // Drops what matches `first` and none of `nets`.
        let none_of = |first: Match, field: Field, nets: &[Prefix]| {
            let others = nets.iter().map(|net| Match::ne(field, Value::Net(*net)));
            Rule::drop(std::iter::once(first).chain(others).collect())
        };
        let mut rules = vec![];
        if let Some(mac) = self.mac {
            rules.push(Rule::drop(vec![Match::ne(
                Field::EtherSource,
                Value::Mac(mac),
            )]));
        }
        // A tagged frame carries its IP header further in, past every saddr check below.
        if !self.trunk {
            rules.push(Rule::drop(vec![ether_type(ETH_P_8021Q)]));
            rules.push(Rule::drop(vec![ether_type(ETH_P_8021AD)]));
        }

        rules.push(Rule::drop(vec![
            arp(),
            Match::ne(Field::ArpShape, Value::Bytes(vec![0, 1, 8, 0, 6, 4])),
        ]));
        if let Some(mac) = self.mac {
            rules.push(Rule::drop(vec![
                arp(),
                Match::ne(Field::ArpSenderMac, Value::Mac(mac)),
            ]));
        }
        // RFC 5227 probes come from 0.0.0.0 and teach no neighbour anything.
        let unspecified4 = Prefix::host(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let arp_sources = [&[unspecified4][..], &self.ipv4].concat();
        rules.push(none_of(arp(), Field::ArpSenderIp, &arp_sources));

        let udp = Match::eq(Field::L4Proto, Value::Number(u16::from(IPPROTO_UDP)));
        let icmpv6 = Match::eq(Field::L4Proto, Value::Number(u16::from(IPPROTO_ICMPV6)));
        let icmpv6_type = |t: u8| {
            vec![
                ipv6(),
                icmpv6.clone(),
                Match::eq(Field::Icmpv6Type, Value::Number(t.into())),
            ]
        };
        rules.push(Rule::drop(vec![
            ipv4(),
            udp.clone(),
            Match::eq(Field::UdpSource, Value::Number(DHCP_SERVER_PORT)),
        ]));
        // DHCP discovery: the one thing a guest sends before it has an address.
        rules.push(Rule::accept(vec![
            ipv4(),
            Match::eq(Field::Ipv4Source, Value::Net(unspecified4)),
            udp.clone(),
            Match::eq(Field::UdpDestination, Value::Number(DHCP_SERVER_PORT)),
        ]));
        rules.push(none_of(ipv4(), Field::Ipv4Source, &self.ipv4));

        rules.push(Rule::drop(icmpv6_type(ND_ROUTER_ADVERT)));
        rules.push(Rule::drop(icmpv6_type(ND_REDIRECT)));
        rules.push(Rule::drop(vec![
            ipv6(),
            udp,
            Match::eq(Field::UdpSource, Value::Number(DHCPV6_SERVER_PORT)),
        ]));
        let mut foreign_target = Rule::drop(icmpv6_type(ND_NEIGHBOR_ADVERT));
        for net in &self.ipv6 {
            foreign_target
                .matches
                .push(Match::ne(Field::NdTarget, Value::Net(*net)));
        }
        rules.push(foreign_target);
        // Duplicate address detection and MLD reports come from `::`.
        rules.push(Rule::accept(vec![
            ipv6(),
            Match::eq(
                Field::Ipv6Source,
                Value::Net(Prefix::host(IpAddr::V6(Ipv6Addr::UNSPECIFIED))),
            ),
            icmpv6,
        ]));
        rules.push(none_of(ipv6(), Field::Ipv6Source, &self.ipv6));
        ChainSpec {
            name: self.port.to_string(),
            rules,
        }
    }
}

/// How many tables the ports are spread over. The kernel finds a table by walking a list
/// of all tables, once per batch message, and re-validates a whole table at each commit
/// that adds rules to it: a table per port makes the walks grow with the ports, one table
/// for all the validation. A fixed number of tables keeps both small (BENCHMARKS.md).
pub const TABLES: u32 = 32;

/// The table holding the port's chains, chosen by a hash of the name alone, so online and
/// offline find the same one whatever the addresses.
pub fn netdev_table(port: &IfName) -> String {
    format!(
        "vifkit-antispoof-{:02}",
        fnv1a(port.as_str().as_bytes()) % TABLES
    )
}

/// 32-bit FNV-1a: stable across releases and platforms, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash: u32, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

impl fmt::Display for PortFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |nets: &[Prefix]| {
            nets.iter()
                .map(|n| n.compact().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        write!(f, "{} ({}): mac ", self.port, self.table())?;
        match self.mac {
            Some(mac) => write!(f, "{mac}")?,
            None => write!(f, "any")?,
        }
        let ipv4 = match self.ipv4.is_empty() {
            true => "none".to_owned(),
            false => list(&self.ipv4),
        };
        write!(f, ", ipv4 {ipv4}, ipv6 {}", list(&self.ipv6))?;
        if self.trunk {
            write!(f, ", tagged frames pass (trunk)")?;
        }
        Ok(())
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
    fn drop(matches: Vec<Match>) -> Rule {
        Rule::new(matches, Verdict::Drop)
    }
    fn accept(matches: Vec<Match>) -> Rule {
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

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
