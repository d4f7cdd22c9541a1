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

use crate::types::guest_traffic::{DEFAULT_ETHERTYPES, GuestTraffic};
use crate::types::mac::MacAddr;
use crate::types::names::IfName;
use crate::types::prefix::Prefix;

pub use super::fields::{ChainSpec, Field, Load, Match, Rule, Value, Verdict};

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;
const MLD_LISTENER_REPORT: u8 = 131;
const ND_ROUTER_SOLICIT: u8 = 133;
const ND_ROUTER_ADVERT: u8 = 134;
const ND_NEIGHBOR_SOLICIT: u8 = 135;
const ND_NEIGHBOR_ADVERT: u8 = 136;
const ND_REDIRECT: u8 = 137;
const MLD2_LISTENER_REPORT: u8 = 143;
const DHCP_SERVER_PORT: u16 = 67;
const DHCP_CLIENT_PORT: u16 = 68;
const DHCPV6_CLIENT_PORT: u16 = 546;
const DHCPV6_SERVER_PORT: u16 = 547;
/// 01:80:c2:00:00:00 to 0f: IEEE 802.1D link-local groups (STP, LACP, 802.1X, LLDP) a
/// bridge must not forward and a guest has no business sending to its host's uplink.
const RESERVED_GROUPS: [u8; 6] = [0x01, 0x80, 0xc2, 0, 0, 0];
const RESERVED_GROUPS_MASK: [u8; 6] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xf0];

/// The most address blocks per family a port's rules allow (link-local included).
pub const MAX_BLOCKS: usize = 32;
/// The most trunk VLANs whose ids the rules check one by one; a longer list lets tagged
/// frames of any VLAN through (the bridge's VLAN filter, where it has one, still applies).
pub const MAX_CHECKED_VLANS: usize = 32;

/// What the guest behind `port` may send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortFilter {
    pub port: IfName,
    /// The guest MAC (`B/mac`, or `mac` in vifkit.conf); without it only addresses are checked.
    pub mac: Option<MacAddr>,
    pub ipv4: Vec<Prefix>,
    /// Includes the link-local addresses the guest may use.
    pub ipv6: Vec<Prefix>,
    /// The VLANs the guest may send tagged frames on (a trunk's); empty: none. Only a tagged
    /// frame's source MAC and VLAN id are checked: its IP header sits behind the tag, out
    /// of these rules' reach.
    pub tagged_vlans: Vec<u16>,
    /// The admin's exceptions (`allow`, `ethertypes` in vifkit.conf).
    pub traffic: GuestTraffic,
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
            tagged_vlans: vec![],
            traffic: GuestTraffic::default(),
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

    /// The port's chain, hooked on its ingress and named after it: an allow-list. Frames
    /// from another MAC, to an IEEE 802.1D reserved group, or of another ether type are
    /// dropped first; then IPv4, IPv6 and ARP must come from the guest's addresses, and
    /// what only a DHCP server or router sends is dropped. The kernel tests the rules one
    /// by one for every frame, so the busiest family comes first and an IPv4 or IPv6 frame
    /// that passed its family's rules is accepted there (no later rule is for its ether
    /// type): a guest's IPv4 frame walked 8 rules, not the 28 it walked when every frame
    /// fell through to the policy. Ahead of all of them, a fast rule per family
    /// (`fast_path`) accepts in one rule what the guest sends most, a subset of what the
    /// rest accepts: an IPv4 frame from the guest's first block is tested against 1 rule,
    /// an IPv6 one that is no ICMPv6 from its first global block against 2 (BENCHMARKS.md,
    /// "Scale").
    pub fn chain(&self) -> ChainSpec {
        let mut rules = self.fast_path_rules();
        rules.extend(self.link_layer_rules());
        rules.extend(self.ipv4_rules());
        rules.extend(self.ipv6_rules());
        rules.extend(self.arp_rules());
        ChainSpec {
            name: self.port.to_string(),
            rules,
        }
    }

    fn link_layer_rules(&self) -> Vec<Rule> {
        let mut rules = vec![];
        if let Some(mac) = self.mac {
            rules.push(Rule::drop(vec![Match::ne(
                Field::EtherSource,
                Value::Mac(mac),
            )]));
        }
        rules.push(Rule::drop(vec![Match::eq(
            Field::EtherDestination,
            reserved_groups(),
        )]));
        // 802.3 frames (LLC, SNAP, STP) carry a length where the type would be: dropped too.
        let mut allowed = DEFAULT_ETHERTYPES.to_vec();
        if !self.tagged_vlans.is_empty() {
            allowed.push(ETH_P_8021Q);
        }
        allowed.extend(&self.traffic.ethertypes);
        rules.push(Rule::drop(
            allowed
                .into_iter()
                .map(|t| Match::ne(Field::EtherType, Value::Number(t)))
                .collect(),
        ));
        if !self.tagged_vlans.is_empty() && self.tagged_vlans.len() <= MAX_CHECKED_VLANS {
            let mut other_vlan = vec![ether_type(ETH_P_8021Q)];
            other_vlan.extend(
                self.tagged_vlans
                    .iter()
                    .map(|&vid| Match::ne(Field::VlanId, Value::Number(vid))),
            );
            rules.push(Rule::drop(other_vlan));
        }
        rules
    }

    fn arp_rules(&self) -> Vec<Rule> {
        let arp = || ether_type(ETH_P_ARP);
        let mut rules = vec![Rule::drop(vec![
            arp(),
            Match::ne(Field::ArpShape, Value::Bytes(vec![0, 1, 8, 0, 6, 4])),
        ])];
        if let Some(mac) = self.mac {
            rules.push(Rule::drop(vec![
                arp(),
                Match::ne(Field::ArpSenderMac, Value::Mac(mac)),
            ]));
        }
        // RFC 5227 probes come from 0.0.0.0 and teach no neighbour anything.
        let arp_sources = [&[unspecified4()][..], &self.ipv4].concat();
        rules.push(none_of(arp(), Field::ArpSenderIp, &arp_sources));
        rules
    }

    fn ipv4_rules(&self) -> Vec<Rule> {
        let ipv4 = || ether_type(ETH_P_IP);
        let udp = || l4proto(IPPROTO_UDP);
        let mut rules = vec![];
        if !self.traffic.dhcp_server {
            // A client never sends to udp/68, whatever port it sends from.
            for (field, port) in [
                (Field::UdpSource, DHCP_SERVER_PORT),
                (Field::UdpDestination, DHCP_CLIENT_PORT),
            ] {
                rules.push(Rule::drop(vec![
                    ipv4(),
                    udp(),
                    Match::eq(field, Value::Number(port)),
                ]));
            }
        }
        // DHCP discovery: the one thing a guest sends before it has an address.
        rules.push(Rule::accept(vec![
            ipv4(),
            Match::eq(Field::Ipv4Source, Value::Net(unspecified4())),
            udp(),
            Match::eq(Field::UdpDestination, Value::Number(DHCP_SERVER_PORT)),
        ]));
        rules.push(none_of(ipv4(), Field::Ipv4Source, &self.ipv4));
        if !self.ipv4.is_empty() {
            rules.push(Rule::accept(vec![ipv4()]));
        }
        rules
    }

    fn ipv6_rules(&self) -> Vec<Rule> {
        let ipv6 = || ether_type(ETH_P_IPV6);
        let icmpv6 = || l4proto(IPPROTO_ICMPV6);
        let icmpv6_type = |t: u8| {
            vec![
                ipv6(),
                icmpv6(),
                Match::eq(Field::Icmpv6Type, Value::Number(t.into())),
            ]
        };
        let unspecified = || Match::eq(Field::Ipv6Source, Value::Net(unspecified6()));
        let with = |mut matches: Vec<Match>, more: Vec<Match>| {
            matches.extend(more);
            matches
        };
        // A later fragment has no ICMPv6 header to check; receivers drop fragmented
        // neighbour discovery anyway (RFC 6980), so no fragment of ICMPv6 passes.
        let mut rules = vec![Rule::drop(vec![
            ipv6(),
            Match::eq(Field::Ipv6Fragment, Value::Number(1)),
            icmpv6(),
        ])];
        if !self.traffic.router_advertisements {
            rules.push(Rule::drop(icmpv6_type(ND_ROUTER_ADVERT)));
        }
        rules.push(Rule::drop(icmpv6_type(ND_REDIRECT)));
        if !self.traffic.dhcp_server {
            for (field, port) in [
                (Field::UdpSource, DHCPV6_SERVER_PORT),
                (Field::UdpDestination, DHCPV6_CLIENT_PORT),
            ] {
                rules.push(Rule::drop(vec![
                    ipv6(),
                    l4proto(IPPROTO_UDP),
                    Match::eq(field, Value::Number(port)),
                ]));
            }
        }
        rules.push(none_of_targets(icmpv6_type(ND_NEIGHBOR_ADVERT), &self.ipv6));
        if let Some(mac) = self.mac {
            rules.extend(link_layer_option_rules(&icmpv6_type, mac));
        }
        // From `::` only duplicate address detection for the guest's own addresses and
        // MLD reports; the source check below drops the rest.
        let solicit = icmpv6_type(ND_NEIGHBOR_SOLICIT);
        rules.push(none_of_targets(
            with(solicit.clone(), vec![unspecified()]),
            &self.ipv6,
        ));
        for t in [
            ND_NEIGHBOR_SOLICIT,
            MLD_LISTENER_REPORT,
            MLD2_LISTENER_REPORT,
        ] {
            rules.push(Rule::accept(with(icmpv6_type(t), vec![unspecified()])));
        }
        rules.push(none_of(ipv6(), Field::Ipv6Source, &self.ipv6));
        rules.push(Rule::accept(vec![ipv6()]));
        rules
    }
}

/// The IEEE 802.1D link-local groups, as a masked destination.
fn reserved_groups() -> Value {
    Value::Masked {
        data: RESERVED_GROUPS.to_vec(),
        mask: RESERVED_GROUPS_MASK.to_vec(),
    }
}

fn ether_type(t: u16) -> Match {
    Match::eq(Field::EtherType, Value::Number(t))
}

fn l4proto(protocol: u8) -> Match {
    Match::eq(Field::L4Proto, Value::Number(u16::from(protocol)))
}

fn unspecified4() -> Prefix {
    Prefix::host(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

fn unspecified6() -> Prefix {
    Prefix::host(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
}

/// Drops what matches `first` and none of `nets`.
fn none_of(first: Match, field: Field, nets: &[Prefix]) -> Rule {
    let others = nets.iter().map(|net| Match::ne(field, Value::Net(*net)));
    Rule::drop(std::iter::once(first).chain(others).collect())
}

/// Drops the neighbour solicitations or advertisements matching `matches` whose target is
/// none of `nets`.
fn none_of_targets(mut matches: Vec<Match>, nets: &[Prefix]) -> Rule {
    matches.extend(
        nets.iter()
            .map(|net| Match::ne(Field::NdTarget, Value::Net(*net))),
    );
    Rule::drop(matches)
}

/// How many tables the ports are spread over. The kernel finds a table by walking a list
/// of all tables, once per batch message, and re-validates a whole table at each commit
/// that adds rules to it: a table per port makes the walks grow with the ports, one table
/// for all the validation. Measured with 10,000 filtered ports, 256 tables (about 40 ports
/// each) kept a plug within 1.1× of the plug alone; 32 gave 1.8× and 1,024 no better than
/// 256 (BENCHMARKS.md, "Scale").
pub const TABLES: u32 = 256;

/// The table holding the port's chains, chosen by a hash of the name alone, so online and
/// offline find the same one whatever the addresses. Three digits: the names never meet
/// the two-digit ones of [`legacy_netdev_table`].
pub fn netdev_table(port: &IfName) -> String {
    format!(
        "vifkit-antispoof-{:03}",
        fnv1a(port.as_str().as_bytes()) % TABLES
    )
}

/// Where releases before the 256 tables put the port's chain (one of 32). A chain left
/// there by a host's previous release stays hooked to the port's name, and Linux hooks it
/// again to the next device of that name, so online and offline delete it too.
pub fn legacy_netdev_table(port: &IfName) -> String {
    format!(
        "vifkit-antispoof-{:02}",
        fnv1a(port.as_str().as_bytes()) % LEGACY_TABLES
    )
}

const LEGACY_TABLES: u32 = 32;

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
        if !self.tagged_vlans.is_empty() {
            let vlans: Vec<String> = self.tagged_vlans.iter().map(u16::to_string).collect();
            write!(f, ", tagged frames on VLANs {}", vlans.join(","))?;
        }
        if !self.traffic.is_default() {
            write!(f, ", also {}", self.traffic)?;
        }
        Ok(())
    }
}

#[path = "fast_path.rs"]
mod fast_path;
#[path = "ndp_options.rs"]
mod ndp_options;
use ndp_options::link_layer_option_rules;

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
