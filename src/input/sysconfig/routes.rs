//! `routes` and `ifroute-<if>` (CONTRACT 5.2): one route per logical line,
//! `Destination Gateway Netmask Interface [Options…]`.

use std::net::IpAddr;
use std::path::Path;

use anyhow::Result;

use crate::input::sysconfig::at;
use crate::input::sysconfig::ifcfg::max_prefix;
use crate::input::sysconfig::route_destination::parse_destination;
use crate::input::sysconfig::route_options::{Options, parse_options};
use crate::types::names::IfName;
use crate::types::prefix::Family;

pub use crate::input::sysconfig::route_kinds::{RouteKind, RouteMetric, RouteMetricKind};
pub use crate::input::sysconfig::route_line::{Destination, NexthopLine, RouteLine, RoutesFile};
pub use crate::input::sysconfig::route_select::routes_for_device;

pub fn parse_routes(path: &Path, text: &str, file_kind: RoutesFile) -> Result<Vec<RouteLine>> {
    let mut routes = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    let mut lines = text.lines().enumerate().peekable();
    while let Some((index, raw)) = lines.next() {
        let line_no = index + 1;
        // Comments are cut per physical line, so a `\` inside a comment is just text.
        let content = raw.split('#').next().unwrap_or("");
        let (content, continued) = match content.find('\\') {
            Some(pos) if !content[pos + 1..].trim().is_empty() => {
                return Err(at(
                    path,
                    line_no,
                    "text after \"\\\": a backslash may only end a line",
                ));
            }
            Some(pos) => (&content[..pos], lines.peek().is_some()),
            None => (content, false),
        };
        let (start, joined) = pending.get_or_insert_with(|| (line_no, String::new()));
        joined.push(' ');
        joined.push_str(content);
        if continued {
            continue;
        }
        let start = *start;
        let words: Vec<&str> = joined.split_whitespace().collect();
        if !words.is_empty() {
            let parsed =
                parse_line(path, start, &words, &file_kind).map_err(|msg| at(path, start, msg))?;
            routes.extend(parsed);
        }
        pending = None;
    }
    Ok(routes)
}

fn parse_line(
    path: &Path,
    line: usize,
    words: &[&str],
    file_kind: &RoutesFile,
) -> std::result::Result<Option<RouteLine>, String> {
    let column = |i: usize| words.get(i).copied().filter(|w| *w != "-");
    let interface = match (file_kind, column(3)) {
        (RoutesFile::Global, None) => None,
        (RoutesFile::Global, Some(name)) => Some(IfName::new(name).map_err(|e| e.to_string())?),
        (RoutesFile::Interface(own), None) => Some(own.clone()),
        (RoutesFile::Interface(own), Some(name)) if name == own.as_str() => Some(own.clone()),
        (RoutesFile::Interface(own), Some(name)) => {
            log::warn!(
                "{}:{line}: skipping a route for {name}: ifroute-{own} may only name {own}",
                path.display()
            );
            return Ok(None);
        }
    };
    let options = parse_options(words.get(4..).unwrap_or_default())?;

    let mut family = FamilyHint::default();
    let destination = parse_destination(words[0], column(2))?;
    if let Some(address) = destination.address {
        family.add(address, "destination", words[0])?;
    }
    let mut gateway = match column(1) {
        None | Some("*") => None,
        Some(text) => {
            let address: IpAddr = text
                .parse()
                .map_err(|_| format!("invalid gateway {text:?}"))?;
            family.add(address, "gateway", text)?;
            Some(address).filter(|a| !a.is_unspecified())
        }
    };
    if let Some(src) = options.src {
        family.add(src, "src", &src.to_string())?;
    }
    for hop in &options.nexthops {
        family.add(hop.gateway, "nexthop", &hop.gateway.to_string())?;
    }
    let Some(family) = family.first.map(|(family, ..)| family) else {
        return Err(
            "cannot tell whether this default route is IPv4 or IPv6: give a gateway, or write 0.0.0.0/0 or ::/0"
                .into(),
        );
    };
    let destination = match destination.address {
        Some(address) if destination.prefix_len > 0 => Destination::Net {
            address,
            prefix_len: destination.prefix_len,
        },
        _ => Destination::Default(family),
    };
    // The legacy way to write a device route to a single host.
    if let Destination::Net {
        address,
        prefix_len,
    } = destination
        && gateway == Some(address)
        && prefix_len == max_prefix(address)
    {
        gateway = None;
    }
    if gateway.is_some() && !options.nexthops.is_empty() {
        return Err("a route takes either a gateway or nexthops, not both".into());
    }
    Ok(Some(finish(
        line,
        path,
        destination,
        gateway,
        interface,
        options,
    )?))
}

fn finish(
    line: usize,
    path: &Path,
    destination: Destination,
    mut gateway: Option<IpAddr>,
    mut interface: Option<IfName>,
    mut options: Options,
) -> std::result::Result<RouteLine, String> {
    let kind = options.kind.unwrap_or_default();
    if kind.is_reject() {
        if interface.is_some() || gateway.is_some() || !options.nexthops.is_empty() {
            log::debug!(
                "{}:{line}: {kind} route to {destination}: gateway and interface dropped",
                path.display()
            );
        }
        interface = None;
        gateway = None;
        options.nexthops.clear();
    } else if interface.is_none() && gateway.is_none() && options.nexthops.is_empty() {
        return Err(format!(
            "route to {destination} has neither a gateway nor an interface"
        ));
    }
    Ok(RouteLine {
        line,
        destination,
        gateway,
        interface,
        kind,
        src: options.src,
        metric: options.metric,
        table: options.table,
        scope: options.scope,
        protocol: options.protocol,
        mtu: options.mtu,
        metrics: options.metrics,
        nexthops: options.nexthops,
        realm: options.realm,
        mark: options.mark,
        tos: options.tos,
    })
}

/// The first address seen decides the family; any other must agree (wicked rejects mixes).
#[derive(Default)]
struct FamilyHint {
    first: Option<(Family, &'static str, String)>,
}

impl FamilyHint {
    fn add(
        &mut self,
        address: IpAddr,
        what: &'static str,
        text: &str,
    ) -> std::result::Result<(), String> {
        let family = Family::of(address);
        match &self.first {
            None => self.first = Some((family, what, text.to_owned())),
            Some((first, first_what, first_text)) if *first != family => {
                return Err(format!(
                    "{what} {text} is {family} but {first_what} {first_text} is {first}"
                ));
            }
            Some(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
