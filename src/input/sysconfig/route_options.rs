//! The option words after the Interface column of a route line (CONTRACT 5.2).

use std::net::IpAddr;

use crate::input::backend::parse_mtu;
use crate::input::sysconfig::route_kinds::{RouteKind, RouteMetric, RouteMetricKind};
use crate::input::sysconfig::route_line::NexthopLine;
use crate::types::names::IfName;

type Parsed<T> = std::result::Result<T, String>;

#[derive(Debug, Default)]
pub(crate) struct Options {
    pub kind: Option<RouteKind>,
    pub src: Option<IpAddr>,
    pub metric: Option<u32>,
    pub table: Option<u32>,
    pub scope: Option<u8>,
    pub protocol: Option<u8>,
    pub mtu: Option<(u32, bool)>,
    pub metrics: Vec<RouteMetric>,
    pub nexthops: Vec<NexthopLine>,
    pub realm: Option<u32>,
    pub mark: Option<u32>,
    pub tos: Option<u32>,
}

/// Every option may appear once. As in iproute2 and wicked, the nexthops come last:
/// every word after the first `nexthop` belongs to a nexthop.
pub(crate) fn parse_options(words: &[&str]) -> Parsed<Options> {
    let mut opts = Options::default();
    let mut words = words.iter().copied();
    while let Some(word) = words.next() {
        match word {
            "nexthop" => {
                opts.nexthops = parse_nexthops(&mut words)?;
                break;
            }
            "via" => {
                return Err(
                    "\"via\" is not a route option: the gateway goes in the second column".into(),
                );
            }
            "dev" => {
                return Err(
                    "\"dev\" is not a route option: the interface goes in the fourth column".into(),
                );
            }
            "type" => {
                let name = value(&mut words, word)?;
                let kind = RouteKind::from_name(name)
                    .ok_or_else(|| format!("unknown route type {name:?}"))?;
                set_kind(&mut opts.kind, kind)?;
            }
            "src" => {
                let text = value(&mut words, word)?;
                let src = text
                    .parse()
                    .map_err(|_| format!("invalid src {text:?}: expected an IP address"))?;
                set(&mut opts.src, src, word)?;
            }
            "metric" | "priority" | "preference" => {
                let text = value(&mut words, word)?;
                let metric = number(text, word)?;
                set(&mut opts.metric, metric, word)?;
            }
            "mtu" => {
                let (text, lock) = locked_value(&mut words, word)?;
                let mtu = parse_mtu(text).map_err(|e| e.to_string())?;
                set(&mut opts.mtu, (mtu, lock), word)?;
            }
            "table" => {
                let text = value(&mut words, word)?;
                set(&mut opts.table, table(text)?, word)?;
            }
            "scope" => {
                let text = value(&mut words, word)?;
                set(&mut opts.scope, scope(text)?, word)?;
            }
            "proto" | "protocol" => {
                let text = value(&mut words, word)?;
                set(&mut opts.protocol, protocol(text)?, word)?;
            }
            "realm" => {
                let text = value(&mut words, word)?;
                let realm = decimal(text).filter(|r| *r <= 255).ok_or_else(|| {
                    format!("invalid realm {text:?}: expected a number up to 255")
                })?;
                set(&mut opts.realm, realm, word)?;
            }
            "mark" => {
                let text = value(&mut words, word)?;
                let mark = match text.strip_prefix("0x") {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => decimal(text),
                }
                .ok_or_else(|| format!("invalid mark {text:?}: expected a number"))?;
                set(&mut opts.mark, mark, word)?;
            }
            "tos" | "dsfield" => {
                let text = value(&mut words, word)?;
                let hex = text.strip_prefix("0x").unwrap_or(text);
                let tos = u32::from_str_radix(hex, 16)
                    .ok()
                    .filter(|t| *t <= 0xff && !hex.starts_with('+'))
                    .ok_or_else(|| {
                        format!("invalid {word} {text:?}: expected a hex number up to ff")
                    })?;
                set(&mut opts.tos, tos, word)?;
            }
            _ => {
                if let Some(kind) = metric_kind(word) {
                    let (text, lock) = locked_value(&mut words, word)?;
                    let value = metric_value(kind, text)?;
                    if opts.metrics.iter().any(|m| m.kind == kind) {
                        return Err(format!("{word:?} given twice"));
                    }
                    opts.metrics.push(RouteMetric { kind, value, lock });
                } else if let Some(kind) = RouteKind::from_name(word) {
                    set_kind(&mut opts.kind, kind)?;
                } else {
                    return Err(format!("unknown route option {word:?}"));
                }
            }
        }
    }
    Ok(opts)
}

fn parse_nexthops<'a>(words: &mut impl Iterator<Item = &'a str>) -> Parsed<Vec<NexthopLine>> {
    let mut hops = Vec::new();
    let mut hop = HopBuilder::default();
    while let Some(word) = words.next() {
        match word {
            "nexthop" => hops.push(std::mem::take(&mut hop).finish()?),
            "via" => {
                let text = value(words, word)?;
                let gateway = text
                    .parse()
                    .map_err(|_| format!("invalid nexthop gateway {text:?}"))?;
                set(&mut hop.gateway, gateway, word)?;
            }
            "dev" => {
                let name = value(words, word)?;
                let dev = IfName::new(name).map_err(|e| e.to_string())?;
                set(&mut hop.dev, dev, word)?;
            }
            "weight" => {
                let text = value(words, word)?;
                let weight = decimal(text)
                    .filter(|w| (1..=256).contains(w))
                    .ok_or_else(|| format!("invalid weight {text:?}: expected 1 to 256"))?;
                set(&mut hop.weight, weight as u16, word)?;
            }
            "onlink" => {
                if hop.onlink {
                    return Err("\"onlink\" given twice".into());
                }
                hop.onlink = true;
            }
            _ => {
                return Err(format!(
                    "unknown nexthop option {word:?}: route options go before the first \"nexthop\""
                ));
            }
        }
    }
    hops.push(hop.finish()?);
    Ok(hops)
}

#[derive(Default)]
struct HopBuilder {
    gateway: Option<IpAddr>,
    dev: Option<IfName>,
    weight: Option<u16>,
    onlink: bool,
}

impl HopBuilder {
    fn finish(self) -> Parsed<NexthopLine> {
        let gateway = self.gateway.ok_or("a nexthop needs \"via <gateway>\"")?;
        if gateway.is_unspecified() {
            return Err(format!("invalid nexthop gateway \"{gateway}\""));
        }
        Ok(NexthopLine {
            gateway,
            dev: self.dev,
            weight: self.weight,
            onlink: self.onlink,
        })
    }
}

fn value<'a>(words: &mut impl Iterator<Item = &'a str>, option: &str) -> Parsed<&'a str> {
    words
        .next()
        .ok_or_else(|| format!("{option:?} needs a value"))
}

/// `<option> [lock] <value>`.
fn locked_value<'a>(
    words: &mut impl Iterator<Item = &'a str>,
    option: &str,
) -> Parsed<(&'a str, bool)> {
    match value(words, option)? {
        "lock" => Ok((value(words, option)?, true)),
        text => Ok((text, false)),
    }
}

fn set<T>(slot: &mut Option<T>, value: T, option: &str) -> Parsed<()> {
    if slot.is_some() {
        return Err(format!("{option:?} given twice"));
    }
    *slot = Some(value);
    Ok(())
}

fn set_kind(slot: &mut Option<RouteKind>, kind: RouteKind) -> Parsed<()> {
    match slot {
        Some(first) => Err(format!("two route types: {first} and {kind}")),
        None => {
            *slot = Some(kind);
            Ok(())
        }
    }
}

fn decimal(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn number(text: &str, option: &str) -> Parsed<u32> {
    decimal(text).ok_or_else(|| format!("invalid {option} {text:?}: expected a number"))
}

fn metric_kind(word: &str) -> Option<RouteMetricKind> {
    RouteMetricKind::ALL
        .into_iter()
        .find(|kind| kind.name() == word)
}

fn metric_value(kind: RouteMetricKind, text: &str) -> Parsed<u32> {
    let per_ms = match kind {
        RouteMetricKind::Rtt => 8,
        RouteMetricKind::RttVar => 4,
        RouteMetricKind::RtoMin => 1,
        _ => return number(text, kind.name()),
    };
    let invalid = || {
        format!(
            "invalid {} {text:?}: expected a time like 300ms or 2s",
            kind.name()
        )
    };
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let amount = decimal(&text[..digits]).ok_or_else(invalid)?;
    let unit = text[digits..].to_ascii_lowercase();
    let ms = match unit.as_str() {
        // A bare number is already in kernel units, as iproute2 passes it.
        "" => return Ok(amount),
        "ms" | "msec" | "msecs" => Some(amount),
        "s" | "sec" | "secs" => amount.checked_mul(1000),
        _ => None,
    };
    ms.and_then(|ms| ms.checked_mul(per_ms)).ok_or_else(invalid)
}

fn table(text: &str) -> Parsed<u32> {
    match text {
        "main" => Ok(254),
        "local" => Ok(255),
        "default" => Ok(253),
        _ => decimal(text).filter(|t| *t != 0).ok_or_else(|| {
            format!("invalid table {text:?}: expected main, local, default or a number from 1 to 4294967295")
        }),
    }
}

fn scope(text: &str) -> Parsed<u8> {
    let named = match text {
        "global" | "universe" => Some(0),
        "site" => Some(200),
        "link" => Some(253),
        "host" => Some(254),
        "nowhere" => Some(255),
        _ => decimal(text).and_then(|n| u8::try_from(n).ok()),
    };
    named.ok_or_else(|| {
        format!("invalid scope {text:?}: expected global, site, link, host, nowhere or a number up to 255")
    })
}

fn protocol(text: &str) -> Parsed<u8> {
    let named = match text {
        "redirect" => Some(1),
        "kernel" => Some(2),
        "boot" => Some(3),
        "static" => Some(4),
        "ra" => Some(9),
        "dhcp" => Some(16),
        _ => decimal(text).and_then(|n| u8::try_from(n).ok()),
    };
    named.ok_or_else(|| {
        format!(
            "invalid protocol {text:?}: expected boot, kernel, static, ra, dhcp or a number up to 255"
        )
    })
}

#[cfg(test)]
#[path = "route_options_tests.rs"]
mod tests;
