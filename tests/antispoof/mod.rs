//! Shared by the antispoofing packet tests: frames that differ from a legitimate one in a
//! single field, and a runner that reports which ones had the wrong fate.

#![allow(dead_code)] // each test file uses its own subset

use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Output;
use std::time::Duration;

use crate::common::frames::*;
use crate::common::*;

pub const GUEST_MAC: &str = "00:16:3e:10:10:10";
pub const FORGED_MAC: &str = "02:00:00:00:00:99";
pub const NETBACK_MAC: &str = "fe:ff:ff:ff:ff:ff";
/// Positive frames return as soon as they arrive; this bounds the wait for the others.
pub const WAIT: Duration = Duration::from_millis(400);

pub struct Case {
    pub what: &'static str,
    pub frame: Vec<u8>,
    pub legit: bool,
}

pub fn case(what: &'static str, legit: bool, frame: Vec<u8>) -> Case {
    Case { what, frame, legit }
}

pub fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// The cases that differ from a legitimate frame in exactly one field. A router forwards
/// neither link-local sources nor tagged frames, so those two are for bridges only.
pub fn udp_cases(
    bridged: bool,
    dst_mac: Mac,
    v4_src: &str,
    v4_dst: &str,
    v6_src: &str,
    v6_dst: &str,
) -> Vec<Case> {
    let me = mac(GUEST_MAC);
    let udp4 =
        |src_mac, src: &str| ipv4_udp(src_mac, dst_mac, v4(src), v4(v4_dst), 4000, 5000, &marker());
    let udp6 = |src: &str| ipv6_udp(me, dst_mac, v6(src), v6(v6_dst), 4000, 5000, &marker());
    let link_local = "fe80::216:3eff:fe10:1010";
    let mut cases = vec![
        case("IPv4 from the guest's address", true, udp4(me, v4_src)),
        case("IPv4 with a forged source", false, udp4(me, "192.0.2.242")),
        case(
            "IPv4 from a forged MAC",
            false,
            udp4(mac(FORGED_MAC), v4_src),
        ),
        case("IPv6 from the guest's address", true, udp6(v6_src)),
        case(
            "IPv6 with a forged source",
            false,
            udp6("2001:db8:abba::1002"),
        ),
    ];
    if bridged {
        cases.push(case(
            "IPv6 from the EUI-64 link-local",
            true,
            udp6(link_local),
        ));
        cases.push(case(
            "VLAN-tagged IPv4",
            false,
            vlan_tagged(&udp4(me, v4_src), 10),
        ));
    }
    cases
}

/// Runs every case; returns the ones whose outcome is wrong (empty when all are right).
pub fn wrong(
    cases: &[Case],
    from: (&Netns, &str),
    to: (&Netns, &str),
    filtered: bool,
) -> Vec<String> {
    cases
        .iter()
        .filter_map(|c| {
            let arrived = arrives(from, to, &c.frame, if c.legit { WAIT * 5 } else { WAIT });
            let expected = c.legit || !filtered;
            (arrived != expected).then(|| format!("{}: arrived = {arrived}", c.what))
        })
        .collect()
}

/// `online` as libxl runs it, with antispoofing on (the default) or turned off host-wide
/// by a vifkit.conf that is deleted again once the run is over.
pub fn online(host: &Netns, xs: &Xenstore, vif: &Vif, antispoof: bool) -> Output {
    let dir = (!antispoof).then(|| scratch("asoff"));
    let config = dir.as_ref().map(|d| d.join("vifkit.conf"));
    let mut env = vec![];
    if let Some(config) = &config {
        std::fs::write(config, "[host]\nantispoof = no\n").unwrap();
        env.push(("VIFKIT_CONFIG", config.to_str().unwrap()));
    }
    hotplug(host, xs, vif, &["online", "type_if=vif"], &env)
}
