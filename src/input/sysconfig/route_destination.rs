//! The Destination and Netmask columns of a route line, and the prefix arithmetic they need.

use std::net::{IpAddr, Ipv4Addr};

use crate::input::sysconfig::ifcfg::{max_prefix, netmask_bits};
use crate::types::prefix::{Family, Prefix};

/// `address` is `None` for `default`; `prefix_len` 0 means a default route.
pub(crate) struct ParsedDestination {
    pub address: Option<IpAddr>,
    pub prefix_len: u8,
}

pub(crate) fn parse_destination(
    text: &str,
    mask: Option<&str>,
) -> std::result::Result<ParsedDestination, String> {
    if text == "default" || text == "*/0" {
        return match mask {
            None | Some("0" | "0.0.0.0") => Ok(ParsedDestination {
                address: None,
                prefix_len: 0,
            }),
            Some(mask) => Err(format!("a default route takes no netmask, found {mask:?}")),
        };
    }
    let invalid = |why: &str| format!("invalid destination {text:?}{why}");
    let (address_text, len_text) = match text.split_once('/') {
        Some((address, len)) => (address, Some(len)),
        None => (text, None),
    };
    let from_len = match len_text {
        Some(len) => Some(decimal_u8(len).ok_or_else(|| invalid(": bad prefix length"))?),
        None => None,
    };
    let from_mask = match mask {
        None => None,
        Some(mask) => Some(mask_prefix(mask, address_text)?),
    };
    if let (Some(len), Some(mask_len)) = (from_len, from_mask)
        && len != mask_len
    {
        return Err(format!(
            "netmask {:?} contradicts the prefix length of destination {text:?}",
            mask.unwrap_or_default()
        ));
    }
    let prefix = from_len.or(from_mask);
    let address = match (address_text.parse::<IpAddr>(), prefix) {
        (Ok(address), _) => address,
        (Err(_), Some(_)) => expand_short_ipv4(address_text).ok_or_else(|| invalid(""))?,
        (Err(_), None) if expand_short_ipv4(address_text).is_some() => {
            return Err(invalid(
                ": a shortened IPv4 network needs a prefix length, like 10.10/16",
            ));
        }
        (Err(_), None) => return Err(invalid("")),
    };
    let max = max_prefix(address);
    let prefix_len = prefix.unwrap_or(max);
    if prefix_len > max {
        return Err(match from_len {
            Some(_) => invalid(&format!(": the prefix length must be 0 to {max}")),
            None => format!(
                "invalid netmask {:?}: the prefix length must be 0 to {max} for {}",
                mask.unwrap_or_default(),
                Family::of(address)
            ),
        });
    }
    if Prefix::new(address, prefix_len).network().address != address {
        return Err(format!(
            "destination {text} has host bits set: the network is {}/{prefix_len}",
            Prefix::new(address, prefix_len).network().address
        ));
    }
    Ok(ParsedDestination {
        address: Some(address),
        prefix_len,
    })
}

/// The Netmask column: a dotted IPv4 mask or a bare prefix length. IPv6 masks are not a thing.
fn mask_prefix(mask: &str, destination: &str) -> std::result::Result<u8, String> {
    if mask.contains(':') || (mask.contains('.') && destination.contains(':')) {
        return Err(format!(
            "invalid netmask {mask:?}: an IPv6 destination takes its prefix length as /len"
        ));
    }
    let bits = if mask.contains('.') {
        netmask_bits(mask)
    } else {
        decimal_u8(mask).filter(|len| *len <= 128)
    };
    bits.ok_or_else(|| {
        format!("invalid netmask {mask:?}: expected a mask like 255.255.255.0 or a prefix length")
    })
}

/// iproute2 reads `10.10` as `10.10.0.0`; only ever used with a prefix length.
fn expand_short_ipv4(text: &str) -> Option<IpAddr> {
    let parts: Vec<&str> = text.split('.').collect();
    if !(1..=3).contains(&parts.len()) {
        return None;
    }
    let mut octets = [0u8; 4];
    for (octet, part) in octets.iter_mut().zip(&parts) {
        *octet = decimal_u8(part)?;
    }
    Some(IpAddr::V4(Ipv4Addr::from(octets)))
}

fn decimal_u8(text: &str) -> Option<u8> {
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
#[path = "route_destination_tests.rs"]
mod tests;
