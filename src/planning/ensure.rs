//! The ensures every planner builds from: a step is planned only when the snapshot shows
//! the kernel is not already as wanted, so a second online changes nothing and a failed
//! one cannot undo what the first one did. Plus the uplink rule the routed modes share.

use std::net::IpAddr;

use anyhow::{Result, bail};

use crate::planning::plan::Step;
use crate::planning::snapshot::Snapshot;
use crate::sys::rtnl::Link;
use crate::sys::sysctl::Key;
use crate::types::link::LinkRef;
use crate::types::names::IfName;
use crate::types::prefix::Prefix;
use crate::types::route::Route;

pub fn link_ref(link: &Link) -> Result<LinkRef> {
    Ok(LinkRef {
        index: link.index,
        name: link.name.clone(),
    })
}

/// The uplink: `netdev` when given, else the first default-route link.
pub fn uplink<'k>(netdev: Option<&str>, kernel: &'k Snapshot) -> Result<&'k Link> {
    match netdev.filter(|n| !n.is_empty()) {
        Some(name) => match kernel.link(name) {
            Some(link) => Ok(link),
            None => bail!("uplink {name} (netdev) does not exist"),
        },
        None => kernel
            .default_links
            .iter()
            .find_map(|index| kernel.link_by_index(*index))
            .ok_or_else(|| {
                anyhow::anyhow!("no uplink: netdev is not set and there is no default route")
            }),
    }
}

/// The host address routed IPv4 guests use as their router: the uplink's first IPv4.
pub fn main_ip(uplink: &Link, kernel: &Snapshot) -> Option<IpAddr> {
    kernel
        .addresses_of(uplink.index)
        .map(|prefix| prefix.address)
        .find(IpAddr::is_ipv4)
}

/// A sysctl write, planned only when the value differs (read before write).
pub fn ensure_sysctl(
    kernel: &Snapshot,
    read_as: &Key,
    write_as: Key,
    value: &str,
    steps: &mut Vec<Step>,
) {
    let current = kernel.sysctl(read_as).unwrap_or("0");
    if current != value {
        steps.push(Step::SetSysctl {
            key: write_as,
            value: value.to_owned(),
            previous: current.to_owned(),
        });
    }
}

/// The rename a routed port starts with (the kernel renames only a down link). Returns the
/// port as later steps address it, and the name its sysctls were read under.
pub fn rename_port(
    found: &Link,
    rename_to: Option<&IfName>,
    steps: &mut Vec<Step>,
) -> Result<(LinkRef, IfName)> {
    let mut port = link_ref(found)?;
    let current_name = port.name.clone();
    if let Some(to) = rename_to {
        if found.up {
            steps.push(Step::SetDown {
                link: port.clone(),
                was_up: true,
            });
        }
        steps.push(Step::Rename {
            link: port.clone(),
            to: to.clone(),
        });
        port.name = to.clone();
    }
    Ok((port, current_name))
}

/// Ensures: a route, address or proxy entry already present is not planned again, so a
/// second online changes nothing and a failed one cannot undo what the first one did.
pub fn ensure_route(kernel: &Snapshot, route: Route, steps: &mut Vec<Step>) {
    let present = route.dev.as_ref().is_some_and(|dev| {
        kernel.has_route(dev.index, route.destination, route.prefix_len, route.metric)
    });
    if !present {
        steps.push(Step::AddRoute(route));
    }
}

pub fn ensure_proxy(kernel: &Snapshot, link: &LinkRef, address: IpAddr, steps: &mut Vec<Step>) {
    if !kernel.has_proxy(link.index, address) {
        steps.push(Step::AddProxy {
            link: link.clone(),
            address,
        });
    }
}

pub fn ensure_address(kernel: &Snapshot, link: &LinkRef, address: Prefix, steps: &mut Vec<Step>) {
    if !kernel.has_address(link.index, address) {
        steps.push(Step::AddAddress {
            link: link.clone(),
            address,
        });
    }
}

/// Host-wide knobs are the admin's: vifkit only says which ones will stop traffic.
pub fn check_host_knobs(kernel: &Snapshot, v4: bool, v6: bool, warnings: &mut Vec<String>) {
    let checks = [
        (
            v4,
            "net/ipv4/conf/all/forwarding",
            "IPv4 forwarding is off: routed guests get no IPv4 traffic",
        ),
        (
            v6,
            "net/ipv6/conf/all/forwarding",
            "IPv6 forwarding is off: routed guests get no IPv6 traffic",
        ),
    ];
    for (wanted, key, warning) in checks {
        let key = Key::new(key).expect("static key");
        if wanted && kernel.sysctl(&key) != Some("1") {
            warnings.push(format!("{warning} (set {key} = 1)"));
        }
    }
}
