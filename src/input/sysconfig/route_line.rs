//! A route line of `routes` or `ifroute-<if>` as data: what the parser produces and the
//! planners read.

use std::fmt;
use std::net::IpAddr;

use crate::input::sysconfig::route_kinds::{RouteKind, RouteMetric};
use crate::types::names::IfName;
use crate::types::prefix::{Family, Prefix};

/// `0.0.0.0/0` and `::/0` are the kernel's default routes too, so they parse as `Default`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Destination {
    Default(Family),
    /// Host bits are always clear; `prefix_len` is at least 1.
    Net {
        address: IpAddr,
        prefix_len: u8,
    },
}

impl Destination {
    pub fn family(&self) -> Family {
        match *self {
            Destination::Default(family) => family,
            Destination::Net { address, .. } => Family::of(address),
        }
    }

    pub fn prefix_len(&self) -> u8 {
        match *self {
            Destination::Default(_) => 0,
            Destination::Net { prefix_len, .. } => prefix_len,
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match *self {
            Destination::Default(family) => Family::of(ip) == family,
            Destination::Net {
                address,
                prefix_len,
            } => Prefix::new(address, prefix_len).contains(ip),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Default(_) => f.write_str("default"),
            Destination::Net {
                address,
                prefix_len,
            } => write!(f, "{address}/{prefix_len}"),
        }
    }
}

/// A `nexthop` of a route line, as written (the kernel's form is `types::route::Nexthop`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NexthopLine {
    pub gateway: IpAddr,
    /// `None`: the route's interface.
    pub dev: Option<IfName>,
    /// 1 to 256.
    pub weight: Option<u16>,
    pub onlink: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoutesFile {
    /// The `routes` file: `-` in the Interface column means none.
    Global,
    /// `ifroute-<if>`: `-` means `<if>`, another name is skipped with a warning.
    Interface(IfName),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteLine {
    /// Where the logical line starts (continuations add lines after it).
    pub line: usize,
    pub destination: Destination,
    /// `None` also for `-`, `*`, `0.0.0.0`, `::`, a gateway equal to a host destination,
    /// and for reject routes.
    pub gateway: Option<IpAddr>,
    /// Always `None` for reject routes.
    pub interface: Option<IfName>,
    pub kind: RouteKind,
    pub src: Option<IpAddr>,
    pub metric: Option<u32>,
    /// `None`: main (254).
    pub table: Option<u32>,
    /// `RT_SCOPE_*`; `None`: the kernel's choice.
    pub scope: Option<u8>,
    /// `RTPROT_*`; `None`: boot (3).
    pub protocol: Option<u8>,
    /// The MTU and whether it is locked.
    pub mtu: Option<(u32, bool)>,
    pub metrics: Vec<RouteMetric>,
    /// Multipath; never together with `gateway`.
    pub nexthops: Vec<NexthopLine>,
    pub realm: Option<u32>,
    pub mark: Option<u32>,
    pub tos: Option<u32>,
}

impl RouteLine {
    pub fn family(&self) -> Family {
        self.destination.family()
    }
}
