//! Route types and route metrics: the enumerations behind the option words of a route line.

use std::fmt;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RouteKind {
    #[default]
    Unicast,
    Local,
    Broadcast,
    Multicast,
    Anycast,
    /// Obsolete; the kernel refuses it.
    Nat,
    Throw,
    Unreachable,
    Prohibit,
    Blackhole,
}

impl RouteKind {
    const ALL: [RouteKind; 10] = [
        RouteKind::Unicast,
        RouteKind::Local,
        RouteKind::Broadcast,
        RouteKind::Multicast,
        RouteKind::Anycast,
        RouteKind::Nat,
        RouteKind::Throw,
        RouteKind::Unreachable,
        RouteKind::Prohibit,
        RouteKind::Blackhole,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RouteKind::Unicast => "unicast",
            RouteKind::Local => "local",
            RouteKind::Broadcast => "broadcast",
            RouteKind::Multicast => "multicast",
            RouteKind::Anycast => "anycast",
            RouteKind::Nat => "nat",
            RouteKind::Throw => "throw",
            RouteKind::Unreachable => "unreachable",
            RouteKind::Prohibit => "prohibit",
            RouteKind::Blackhole => "blackhole",
        }
    }

    pub fn from_name(name: &str) -> Option<RouteKind> {
        RouteKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The kernel refuses a gateway or a device on these (wicked binds them to `lo`).
    pub fn is_reject(self) -> bool {
        matches!(
            self,
            RouteKind::Throw | RouteKind::Unreachable | RouteKind::Prohibit | RouteKind::Blackhole
        )
    }
}

impl fmt::Display for RouteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `RTAX_*` route metrics other than the MTU, which has its own field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteMetricKind {
    Window,
    /// Kernel units of 1/8 ms: `rtt 100ms` is 800, a bare `rtt 100` is 100 (as iproute2).
    Rtt,
    /// Kernel units of 1/4 ms: `rttvar 10ms` is 40, a bare number is taken as is.
    RttVar,
    Ssthresh,
    Cwnd,
    AdvMss,
    Reordering,
    Hoplimit,
    InitCwnd,
    InitRwnd,
    /// Milliseconds, with or without a unit.
    RtoMin,
}

impl RouteMetricKind {
    pub const ALL: [RouteMetricKind; 11] = [
        RouteMetricKind::Window,
        RouteMetricKind::Rtt,
        RouteMetricKind::RttVar,
        RouteMetricKind::Ssthresh,
        RouteMetricKind::Cwnd,
        RouteMetricKind::AdvMss,
        RouteMetricKind::Reordering,
        RouteMetricKind::Hoplimit,
        RouteMetricKind::InitCwnd,
        RouteMetricKind::InitRwnd,
        RouteMetricKind::RtoMin,
    ];

    /// The option word, as `ip route` spells it.
    pub fn name(self) -> &'static str {
        match self {
            RouteMetricKind::Window => "window",
            RouteMetricKind::Rtt => "rtt",
            RouteMetricKind::RttVar => "rttvar",
            RouteMetricKind::Ssthresh => "ssthresh",
            RouteMetricKind::Cwnd => "cwnd",
            RouteMetricKind::AdvMss => "advmss",
            RouteMetricKind::Reordering => "reordering",
            RouteMetricKind::Hoplimit => "hoplimit",
            RouteMetricKind::InitCwnd => "initcwnd",
            RouteMetricKind::InitRwnd => "initrwnd",
            RouteMetricKind::RtoMin => "rto_min",
        }
    }

    /// `RTAX_*` from linux/rtnetlink.h; `RTAX_MTU` is 2 and the lock bitmask is `RTAX_LOCK` (1).
    pub fn kernel_id(self) -> u16 {
        match self {
            RouteMetricKind::Window => 3,
            RouteMetricKind::Rtt => 4,
            RouteMetricKind::RttVar => 5,
            RouteMetricKind::Ssthresh => 6,
            RouteMetricKind::Cwnd => 7,
            RouteMetricKind::AdvMss => 8,
            RouteMetricKind::Reordering => 9,
            RouteMetricKind::Hoplimit => 10,
            RouteMetricKind::InitCwnd => 11,
            RouteMetricKind::RtoMin => 13,
            RouteMetricKind::InitRwnd => 14,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteMetric {
    pub kind: RouteMetricKind,
    /// As the kernel stores it (see the kind).
    pub value: u32,
    pub lock: bool,
}
