//! Routes and proxy neighbours as planners describe them: plain data, shown in `ip` syntax.

use std::fmt;
use std::net::IpAddr;

use crate::types::link::LinkRef;

/// rtm_type values the planners use (rtnetlink.h).
pub mod kind {
    pub const UNICAST: u8 = 1;
    pub const LOCAL: u8 = 2;
    pub const BROADCAST: u8 = 3;
    pub const ANYCAST: u8 = 4;
    pub const MULTICAST: u8 = 5;
    pub const BLACKHOLE: u8 = 6;
    pub const UNREACHABLE: u8 = 7;
    pub const PROHIBIT: u8 = 8;
    pub const THROW: u8 = 9;
    pub const NAT: u8 = 10;

    pub fn name(kind: u8) -> &'static str {
        match kind {
            UNICAST => "unicast",
            LOCAL => "local",
            BROADCAST => "broadcast",
            ANYCAST => "anycast",
            MULTICAST => "multicast",
            BLACKHOLE => "blackhole",
            UNREACHABLE => "unreachable",
            PROHIBIT => "prohibit",
            THROW => "throw",
            NAT => "nat",
            _ => "unknown",
        }
    }
}

/// rtm_protocol `boot`: what sysconfig and `ip route add` use by default.
pub const PROTOCOL_BOOT: u8 = 3;
pub const TABLE_MAIN: u32 = 254;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nexthop {
    pub gateway: IpAddr,
    pub dev: Option<LinkRef>,
    /// As `ip route` writes it: 1..=256.
    pub weight: u32,
    pub onlink: bool,
}

/// One route, with every attribute vifkit may set. `metrics` holds RTAX_* values by number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub destination: IpAddr,
    pub prefix_len: u8,
    pub kind: u8,
    pub gateway: Option<IpAddr>,
    pub dev: Option<LinkRef>,
    pub src: Option<IpAddr>,
    pub metric: Option<u32>,
    pub table: u32,
    pub scope: Option<u8>,
    pub protocol: u8,
    pub onlink: bool,
    /// (RTAX_* number, value, locked)
    pub metrics: Vec<(u16, u32, bool)>,
    pub nexthops: Vec<Nexthop>,
    pub tos: u8,
    pub realm: Option<u32>,
}

impl Route {
    /// A plain unicast route in the main table, as `ip route add DEST dev DEV` makes it.
    pub fn to(destination: IpAddr, prefix_len: u8) -> Route {
        Route {
            destination,
            prefix_len,
            kind: kind::UNICAST,
            gateway: None,
            dev: None,
            src: None,
            metric: None,
            table: TABLE_MAIN,
            scope: None,
            protocol: PROTOCOL_BOOT,
            onlink: false,
            metrics: vec![],
            nexthops: vec![],
            tos: 0,
            realm: None,
        }
    }

    pub fn is_ipv6(&self) -> bool {
        self.destination.is_ipv6()
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind != kind::UNICAST {
            write!(f, "{} ", kind::name(self.kind))?;
        }
        if self.prefix_len == 0 {
            write!(f, "default")?;
        } else {
            write!(f, "{}/{}", self.destination, self.prefix_len)?;
        }
        if let Some(gateway) = self.gateway {
            write!(f, " via {gateway}")?;
        }
        if let Some(dev) = &self.dev {
            write!(f, " dev {dev}")?;
        }
        if let Some(src) = self.src {
            write!(f, " src {src}")?;
        }
        if let Some(metric) = self.metric {
            write!(f, " metric {metric}")?;
        }
        if self.table != TABLE_MAIN {
            write!(f, " table {}", self.table)?;
        }
        if self.onlink {
            write!(f, " onlink")?;
        }
        for hop in &self.nexthops {
            write!(f, " nexthop via {}", hop.gateway)?;
            if let Some(dev) = &hop.dev {
                write!(f, " dev {dev}")?;
            }
            write!(f, " weight {}", hop.weight)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::names::IfName;

    #[test]
    fn displays_like_ip_route() {
        let xen = LinkRef {
            index: 9,
            name: IfName::new("xen1.0").unwrap(),
        };
        let mut r = Route::to("192.0.2.241".parse().unwrap(), 32);
        r.dev = Some(xen.clone());
        r.src = Some("192.0.2.253".parse().unwrap());
        r.metric = Some(2);
        assert_eq!(
            r.to_string(),
            "192.0.2.241/32 dev xen1.0 src 192.0.2.253 metric 2"
        );
        let mut v6 = Route::to("2001:db8:abba::1001".parse().unwrap(), 128);
        v6.gateway = Some("fe80::216:3eff:fe10:1010".parse().unwrap());
        v6.dev = Some(xen);
        assert_eq!(
            v6.to_string(),
            "2001:db8:abba::1001/128 via fe80::216:3eff:fe10:1010 dev xen1.0"
        );
        let mut reject = Route::to("2001:db8:abba::".parse().unwrap(), 60);
        reject.kind = kind::UNREACHABLE;
        reject.table = 100;
        assert_eq!(
            reject.to_string(),
            "unreachable 2001:db8:abba::/60 table 100"
        );
    }
}
