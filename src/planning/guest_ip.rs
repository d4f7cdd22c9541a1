//! What a guest's addresses may not claim: the whole address space, the host's own
//! addresses, the host's default gateway (issue 17).
//!
//! The decision, by what the addresses do:
//!
//! - **Routed ports** (`vif-route`, `vif-nat`, qemu taps routed by `route =`): each guest
//!   address becomes a route to the port. `0.0.0.0/0` or `::/0`, or a block holding one of
//!   the host's own addresses or its default gateway, would send the host's own traffic to
//!   the guest (a /32 to the gateway beats the default route's next hop): **refused**, before
//!   anything changes. For `vif-nat` the routed address is the guest's own (its prefix is
//!   the guest's netmask), so only that address is checked.
//! - **Bridged ports** (`vif-bridge`, `vif-openvswitch`, bridged qemu taps): the addresses
//!   only tell antispoofing what the guest may send from. The whole space, a host address or
//!   the gateway widens that filter (the guest may impersonate them on the bridge) but
//!   routes none of the host's traffic: a **warning**, and the port is plugged.
//!
//! The host's addresses are those the snapshot holds, the port's own excepted (a bridge
//! port's are removed; a routed port's are the uplink's). IPv6 link-local addresses are
//! skipped: every link has one, and only `::/0` of the blocks a guest is given holds them.

use std::net::IpAddr;

use anyhow::{Result, bail};

use crate::planning::snapshot::Snapshot;
use crate::types::names::IfName;
use crate::types::prefix::{Family, Prefix};

/// Something beyond the guest that one of its blocks holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overreach {
    /// `0.0.0.0/0` or `::/0`.
    Everything(Family),
    /// One of the host's own addresses, on that link.
    HostAddress { address: IpAddr, link: String },
    /// The next hop of one of the host's default routes, on that link.
    Gateway { address: IpAddr, link: String },
}

/// What `block` holds that is not the guest's, if anything: the whole space first, then a
/// host address, then a gateway. `port` is the port's own link, when it exists.
pub fn overreach(block: Prefix, port: Option<u32>, kernel: &Snapshot) -> Option<Overreach> {
    if block.len == 0 {
        return Some(Overreach::Everything(Family::of(block.address)));
    }
    let link_name = |index: u32| match kernel.link_by_index(index) {
        Some(link) => link.name.to_string(),
        None => format!("link {index}"),
    };
    let host = kernel
        .addresses
        .iter()
        .filter(|(index, address)| Some(*index) != port && !address.is_ipv6_link_local())
        .find(|(_, address)| block.contains(address.address));
    if let Some((index, address)) = host {
        return Some(Overreach::HostAddress {
            address: address.address,
            link: link_name(*index),
        });
    }
    kernel
        .default_gateways
        .iter()
        .find(|(_, gateway)| block.contains(*gateway))
        .map(|(index, gateway)| Overreach::Gateway {
            address: *gateway,
            link: link_name(*index),
        })
}

/// `192.0.2.0/24 holds 192.0.2.1, the host's own address on eth0`, or for a single
/// address `192.0.2.1 is the host's own address on eth0`.
fn describe(block: Prefix, what: &Overreach) -> String {
    let (address, name) = match what {
        Overreach::Everything(family) => {
            return format!("{block} is every {family} address");
        }
        Overreach::HostAddress { address, link } => {
            (address, format!("the host's own address on {link}"))
        }
        Overreach::Gateway { address, link } => {
            (address, format!("the host's default gateway on {link}"))
        }
    };
    match block.is_host() {
        true => format!("{address} is {name}"),
        false => format!("{block} holds {address}, {name}"),
    }
}

/// A routed port's guest addresses, each routed to `port_name`: the first that would take
/// the host's own traffic is refused, in one sentence.
pub fn refuse_routed(
    blocks: &[Prefix],
    port: Option<u32>,
    port_name: &IfName,
    kernel: &Snapshot,
) -> Result<()> {
    for block in blocks {
        if let Some(what) = overreach(*block, port, kernel) {
            bail!(
                "guest address {}: routed to {port_name} it would take the host's own traffic",
                describe(*block, &what)
            );
        }
    }
    Ok(())
}

/// A bridged port's filter: one warning for each guest address that lets the guest send as
/// the host, its gateway or anyone.
pub fn bridged_warnings(blocks: &[Prefix], port: &IfName, kernel: &Snapshot) -> Vec<String> {
    let index = kernel.link(port.as_str()).map(|link| link.index);
    blocks
        .iter()
        .filter_map(|block| {
            let what = overreach(*block, index, kernel)?;
            Some(format!(
                "guest address {}: the antispoofing of {port} lets the guest send from it",
                describe(*block, &what)
            ))
        })
        .collect()
}

#[cfg(test)]
#[path = "guest_ip_tests.rs"]
mod tests;
