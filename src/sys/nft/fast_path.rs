//! The chain's fast path: a rule per family at its head that accepts the bulk of what a
//! guest sends in one rule, where the rules after it take 8 (IPv4) or 27 (IPv6, with a MAC),
//! each loading the ether type again through the kernel's generic payload path
//! (BENCHMARKS.md, "Scale").
//!
//! A fast rule only ever accepts, and only what the rules after it accept too: it repeats
//! their link-layer checks (the guest's MAC, no IEEE 802.1D reserved group, an untagged
//! frame of its ether type), takes the family's first block as the source, and leaves out
//! everything the later rules drop. Whatever it does not match walks the whole chain as
//! before, which stays the authority: the same frames pass and are dropped.
//!
//! - A tagged frame reads 0x8100 at the ether type's place (the kernel puts the stripped
//!   tag back for link-layer loads), so it never matches here, whatever its VLAN.
//! - The DHCP server ports are refused for every transport, not only UDP: a TCP segment
//!   from port 67 walks the chain and is accepted there. A later fragment has no transport
//!   header to load, so the rule breaks and the chain decides.
//! - IPv6 leaves ICMPv6 to the chain (neighbour discovery, router advertisements,
//!   redirects, its fragments) and takes the first block that is not link-local: the
//!   guest's bulk traffic comes from its global addresses.

use super::*;

impl PortFilter {
    /// The fast rules, IPv4's first: none for a family without a block to take.
    pub(super) fn fast_path_rules(&self) -> Vec<Rule> {
        let mut rules = vec![];
        if let Some(&block) = self.ipv4.first() {
            let source = Match::eq(Field::Ipv4Source, Value::Net(block));
            let ports = (DHCP_SERVER_PORT, DHCP_CLIENT_PORT);
            rules.push(self.fast_accept(ETH_P_IP, source, vec![], ports));
        }
        if let Some(&block) = self.ipv6.iter().find(|b| !b.is_ipv6_link_local()) {
            let source = Match::eq(Field::Ipv6Source, Value::Net(block));
            let not_icmpv6 = Match::ne(Field::L4Proto, Value::Number(IPPROTO_ICMPV6.into()));
            let ports = (DHCPV6_SERVER_PORT, DHCPV6_CLIENT_PORT);
            rules.push(self.fast_accept(ETH_P_IPV6, source, vec![not_icmpv6], ports));
        }
        rules
    }

    /// Accepts an untagged frame of `ether_type` from the guest's MAC, to no reserved group,
    /// matching `source` and `transport`, from no DHCP server port `(server, client)` (unless
    /// the admin allows a DHCP server): the ether type first, so other frames leave the rule
    /// at its first load.
    fn fast_accept(
        &self,
        ether_type: u16,
        source: Match,
        transport: Vec<Match>,
        (server, client): (u16, u16),
    ) -> Rule {
        let mut matches = vec![super::ether_type(ether_type)];
        if let Some(mac) = self.mac {
            matches.push(Match::eq(Field::EtherSource, Value::Mac(mac)));
        }
        matches.push(Match::ne(Field::EtherDestination, reserved_groups()));
        matches.push(source);
        matches.extend(transport);
        if !self.traffic.dhcp_server {
            matches.push(Match::ne(Field::TransportSource, Value::Number(server)));
            matches.push(Match::ne(
                Field::TransportDestination,
                Value::Number(client),
            ));
        }
        Rule::accept(matches)
    }
}

#[cfg(test)]
#[path = "fast_path_tests.rs"]
mod tests;
