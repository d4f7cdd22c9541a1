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
use crate::types::prefix::{Family, Prefix};
use crate::types::route::Route;

pub fn link_ref(link: &Link) -> Result<LinkRef> {
    Ok(LinkRef {
        index: link.index,
        name: link.name.clone(),
    })
}

/// The uplink: `netdev` when given, else the first default-route link (IPv4's first), else
/// `eth0` as upstream falls back to (`uplink_fallback` says so).
pub fn uplink<'k>(netdev: Option<&str>, kernel: &'k Snapshot) -> Result<&'k Link> {
    match netdev.filter(|n| !n.is_empty()) {
        Some(name) => match kernel.link(name) {
            Some(link) => Ok(link),
            None => bail!("uplink {name} (netdev) does not exist"),
        },
        None => kernel
            .default_links()
            .into_iter()
            .find_map(|index| kernel.link_by_index(index))
            .or_else(|| kernel.link(FALLBACK_UPLINK))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no uplink: netdev is not set, there is no default route and no {FALLBACK_UPLINK}"
                )
            }),
    }
}

/// The uplink of one family's guest addresses: `netdev` for both, else that family's
/// default-route link, else the general rule. IPv4 and IPv6 may leave by different links.
pub fn uplink_for<'k>(
    netdev: Option<&str>,
    family: Family,
    kernel: &'k Snapshot,
) -> Result<&'k Link> {
    match netdev.filter(|n| !n.is_empty()) {
        Some(_) => uplink(netdev, kernel),
        None => match kernel.default_link(family) {
            Some(link) => Ok(link),
            None => uplink(netdev, kernel),
        },
    }
}

/// The uplinks of a routed port's guest addresses: IPv4's, and IPv6's when it has any
/// (else the same link).
pub struct Uplinks<'k> {
    pub v4: &'k Link,
    pub v6: &'k Link,
}

impl<'k> Uplinks<'k> {
    pub fn of(netdev: Option<&str>, has_v6: bool, kernel: &'k Snapshot) -> Result<Uplinks<'k>> {
        let v4 = uplink_for(netdev, Family::V4, kernel)?;
        let v6 = match has_v6 {
            true => uplink_for(netdev, Family::V6, kernel)?,
            false => v4,
        };
        Ok(Uplinks { v4, v6 })
    }

    pub fn of_family(&self, ipv4: bool) -> &'k Link {
        if ipv4 { self.v4 } else { self.v6 }
    }

    /// The plan note naming them.
    pub fn note(&self) -> String {
        match self.v4.index == self.v6.index {
            true => format!("uplink {}", self.v4.name),
            false => format!(
                "uplinks {} (IPv4) and {} (IPv6)",
                self.v4.name, self.v6.name
            ),
        }
    }
}

/// Upstream's last resort, when neither `netdev` nor a default route names the uplink.
pub const FALLBACK_UPLINK: &str = "eth0";

/// The warning a plan carries when the uplink is the `eth0` fallback.
pub fn uplink_fallback(netdev: Option<&str>, kernel: &Snapshot) -> Option<String> {
    let unnamed = netdev.is_none_or(str::is_empty) && kernel.default_routes.is_empty();
    (unnamed && kernel.link(FALLBACK_UPLINK).is_some()).then(|| {
        format!(
            "netdev is not set and there is no default route: the uplink is {FALLBACK_UPLINK}, as upstream falls back to (set netdev= to choose)"
        )
    })
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

/// The port's MTU, planned only when `found` has another.
pub fn ensure_mtu(found: &Link, link: &LinkRef, mtu: u32, steps: &mut Vec<Step>) {
    if found.mtu != mtu {
        steps.push(Step::SetMtu {
            link: link.clone(),
            mtu,
            previous: found.mtu,
        });
    }
}

/// `proxy_arp` on a routed port, read under the name the snapshot saw (`current_name`)
/// and written under its final one.
pub fn ensure_proxy_arp(
    kernel: &Snapshot,
    current_name: &IfName,
    port: &LinkRef,
    steps: &mut Vec<Step>,
) {
    let key = Key::proxy_arp(&port.name);
    ensure_sysctl(kernel, &Key::proxy_arp(current_name), key, "1", steps);
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

/// Why IPv6 guest addresses cannot work on `name` now, if they cannot.
pub fn ipv6_disabled(kernel: &Snapshot, name: &IfName) -> Option<String> {
    let all = Key::disable_ipv6_all();
    if kernel.sysctl_absent(&all) {
        return Some("IPv6 is disabled on this host (no net/ipv6 sysctls: ipv6.disable=1 on the kernel command line?): remove the IPv6 addresses from ip= or boot with IPv6".to_owned());
    }
    let key = Key::disable_ipv6(name);
    (kernel.sysctl(&key) == Some("1")).then(|| {
        format!(
            "IPv6 is disabled on {name} ({key} = 1): remove the IPv6 addresses from ip= or enable IPv6 for new links (sysctl -w net.ipv6.conf.default.disable_ipv6=0)"
        )
    })
}
