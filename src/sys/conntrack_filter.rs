//! Which listings a purge asks ctnetlink for. A dump walks the kernel's whole conntrack hash
//! table whatever it returns, but since Linux 5.8 (CTA_FILTER) the kernel can return only the
//! entries whose original-direction source, or destination, is one exact address; the copying
//! and parsing of every other entry, the cost that grows with a busy table beyond the walk
//! itself, then stays out of the plug. The filter matches exact addresses only, and its fields
//! are ANDed, so each single IPv4 host takes two filtered listings (source, then destination);
//! a wider prefix, or more addresses than [`PINNED_MAX`], takes one whole listing as before.
//!
//! IPv6 is always listed whole: the kernel's IPv6 address match is inverted
//! (`ctnetlink_filter_match_tuple` rejects an entry when `!ipv6_addr_cmp`, that is when the
//! addresses are equal; from 5.8 through 6.18 at least), so a pinned IPv6 listing returns every
//! entry but the wanted ones. The family is still chosen by the kernel, so the IPv4 entries of
//! a busy table never reach this process.

use std::fmt;
use std::net::IpAddr;

use nix::libc;

use super::{
    CTA_IP_V4_DST, CTA_IP_V4_SRC, CTA_IP_V6_DST, CTA_IP_V6_SRC, CTA_TUPLE_IP, CTA_TUPLE_ORIG,
    IPCTNL_MSG_CT_GET, NLA_HDRLEN, NLM_F_DUMP, dump_request, request,
};
use crate::types::prefix::Prefix;

// include/uapi/linux/netfilter/nfnetlink_conntrack.h (Linux 5.8).
const CTA_FILTER: u16 = 25;
const CTA_FILTER_ORIG_FLAGS: u16 = 1;
const CTA_FILTER_F_CTA_IP_SRC: u32 = 1 << 0;
const CTA_FILTER_F_CTA_IP_DST: u32 = 1 << 1;
const NLA_F_NESTED: u16 = libc::NLA_F_NESTED as u16;

/// Above this many addresses in a family, two walks each would cost more than one whole
/// listing on a small table, so the whole table is listed.
pub(crate) const PINNED_MAX: usize = 4;

/// The end of the original tuple a filtered listing pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Source,
    Destination,
}

/// One dump of a family's purge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Listing {
    /// The entries whose original `end` is `address`, chosen by the kernel.
    Pinned { address: IpAddr, end: End },
    /// Every entry of the family, chosen here.
    #[default]
    Whole,
}

impl Listing {
    /// Whether an entry with this original source and destination is one this listing asks
    /// for; a kernel that ignores CTA_FILTER (older than 5.8) sends others too, and one that
    /// misreads it (IPv6) sends others instead.
    pub fn selects(&self, src: IpAddr, dst: IpAddr) -> bool {
        match *self {
            Listing::Pinned {
                address,
                end: End::Source,
            } => src == address,
            Listing::Pinned {
                address,
                end: End::Destination,
            } => dst == address,
            Listing::Whole => true,
        }
    }
}

impl fmt::Display for Listing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listing::Pinned {
                address,
                end: End::Source,
            } => write!(f, "source {address}"),
            Listing::Pinned {
                address,
                end: End::Destination,
            } => {
                write!(f, "destination {address}")
            }
            Listing::Whole => f.write_str("whole table"),
        }
    }
}

/// The listings that find every entry of one family (`v4`) matching `prefixes`.
pub(crate) fn listings(prefixes: &[Prefix], v4: bool) -> Vec<Listing> {
    let family: Vec<_> = prefixes.iter().filter(|p| p.is_ipv4() == v4).collect();
    if family.is_empty() {
        return Vec::new();
    }
    if !v4 {
        return vec![Listing::Whole];
    }
    let mut addresses: Vec<IpAddr> = Vec::new();
    for prefix in family {
        if !prefix.is_host() {
            return vec![Listing::Whole];
        }
        if !addresses.contains(&prefix.address) {
            addresses.push(prefix.address);
        }
    }
    if addresses.len() > PINNED_MAX {
        return vec![Listing::Whole];
    }
    addresses
        .into_iter()
        .flat_map(|address| {
            [End::Source, End::Destination].map(|end| Listing::Pinned { address, end })
        })
        .collect()
}

/// The dump request of `listing`: for a pinned one, CTA_TUPLE_ORIG with the one address and
/// CTA_FILTER naming its field (every nest flagged, as the kernel's strict parser wants).
pub(crate) fn listing_request(family: u8, seq: u32, listing: &Listing) -> Vec<u8> {
    let Listing::Pinned { address, end } = *listing else {
        return dump_request(family, seq);
    };
    let (kind, flag, octets) = match (address, end) {
        (IpAddr::V4(a), End::Source) => {
            (CTA_IP_V4_SRC, CTA_FILTER_F_CTA_IP_SRC, a.octets().to_vec())
        }
        (IpAddr::V4(a), End::Destination) => {
            (CTA_IP_V4_DST, CTA_FILTER_F_CTA_IP_DST, a.octets().to_vec())
        }
        (IpAddr::V6(a), End::Source) => {
            (CTA_IP_V6_SRC, CTA_FILTER_F_CTA_IP_SRC, a.octets().to_vec())
        }
        (IpAddr::V6(a), End::Destination) => {
            (CTA_IP_V6_DST, CTA_FILTER_F_CTA_IP_DST, a.octets().to_vec())
        }
    };
    let ip = attribute(CTA_TUPLE_IP | NLA_F_NESTED, &attribute(kind, &octets));
    let mut attributes = attribute(CTA_TUPLE_ORIG | NLA_F_NESTED, &ip);
    let flags = attribute(CTA_FILTER_ORIG_FLAGS, &flag.to_ne_bytes());
    attributes.extend(attribute(CTA_FILTER | NLA_F_NESTED, &flags));
    request(IPCTNL_MSG_CT_GET, NLM_F_DUMP, family, seq, &attributes)
}

/// One netlink attribute, padded to 4 bytes.
fn attribute(kind: u16, value: &[u8]) -> Vec<u8> {
    let len = NLA_HDRLEN + value.len();
    let mut out = Vec::with_capacity(len.next_multiple_of(4));
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(len.next_multiple_of(4), 0);
    out
}
