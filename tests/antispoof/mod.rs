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
/// A frame counts as arrived when its signature does (`arrives`).
pub fn wrong(
    cases: &[Case],
    from: (&Netns, &str),
    to: (&Netns, &str),
    filtered: bool,
) -> Vec<String> {
    fates(cases, filtered, |c, wait| arrives(from, to, &c.frame, wait))
}

/// `wrong`, but a frame counts as arrived only when it arrives byte for byte (a bridge
/// rewrites nothing): no frame the peer's or the guest's kernel sends can pass for it.
pub fn wrong_exact(
    cases: &[Case],
    from: (&Netns, &str),
    to: (&Netns, &str),
    filtered: bool,
) -> Vec<String> {
    fates(cases, filtered, |c, wait| {
        arrival(from, to, &c.frame, wait, |f| f == c.frame).is_some()
    })
}

/// The cases whose arrival (as `arrived` tells, given how long to wait) is not what the
/// filter should make of them.
fn fates(cases: &[Case], filtered: bool, arrived: impl Fn(&Case, Duration) -> bool) -> Vec<String> {
    cases
        .iter()
        .filter_map(|c| {
            let arrived = arrived(c, if c.legit { WAIT * 5 } else { WAIT });
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

/// `online` with antispoofing on and `config` as the run's vifkit.conf (VIFKIT_CONFIG),
/// e.g. a `[port vif3.0]` section with `allow =` and `ethertypes =`.
pub fn online_with(host: &Netns, xs: &Xenstore, vif: &Vif, config: &str) -> Output {
    let dir = scratch("ascfg");
    let path = dir.join("vifkit.conf");
    std::fs::write(&path, config).unwrap();
    hotplug(
        host,
        xs,
        vif,
        &["online", "type_if=vif"],
        &[("VIFKIT_CONFIG", path.to_str().unwrap())],
    )
}

pub const PEER_MAC: &str = "00:16:3e:20:20:20";
pub const GUEST_V4: &str = "192.0.2.241";
pub const PEER_V4: &str = "192.0.2.242";
pub const GUEST_V6: &str = "2001:db8:abba::1001";
pub const PEER_V6: &str = "2001:db8:abba::1002";
pub const GUEST_LL: &str = "fe80::216:3eff:fe10:1010";
pub const PEER_LL: &str = "fe80::216:3eff:fe20:2020";

/// The bridged rig of `antispoof_bridged.rs`: bridge `xenbr0` in `host`, the guest
/// (GUEST_V4, GUEST_V6) behind vif3.0, a peer (PEER_V4, PEER_V6) behind vif4.0, and a
/// xenstore holding the vif's keys and addresses.
pub struct FrameRig {
    pub host: Netns,
    pub guest: Netns,
    pub peer: Netns,
    pub xs: Xenstore,
    pub vif: Vif,
}

/// Every 802.1D reserved group a port may be told to forward: all of 01:80:c2:00:00:0X but
/// 01 (pause frames, which the kernel refuses, so no case sends them).
const RESERVED_GROUPS_FORWARDED: &str = "0xfffd";

impl FrameRig {
    pub fn new(tag: &str) -> FrameRig {
        let host = Netns::new(&format!("{tag}h"));
        let guest = Netns::new(&format!("{tag}g"));
        let peer = Netns::new(&format!("{tag}p"));
        for ns in [&host, &guest, &peer] {
            for key in ["all", "default"] {
                let setting = format!("net.ipv6.conf.{key}.accept_dad=0");
                must(ns.exec().args(["sysctl", "-qw", &setting]));
            }
        }
        host.bridge("xenbr0", 1500);
        let vif = Vif::new(3, 0);
        host.netback_vif(&vif, &guest);
        guest.ip(&["addr", "add", &format!("{GUEST_V4}/24"), "dev", "eth0"]);
        guest.ip(&[
            "addr",
            "add",
            &format!("{GUEST_V6}/64"),
            "dev",
            "eth0",
            "nodad",
        ]);
        host.veth("vif4.0", "eth0", &peer);
        peer.ip(&["link", "set", "eth0", "address", PEER_MAC]);
        peer.ip(&["addr", "add", &format!("{PEER_V4}/24"), "dev", "eth0"]);
        peer.ip(&[
            "addr",
            "add",
            &format!("{PEER_V6}/64"),
            "dev",
            "eth0",
            "nodad",
        ]);
        host.ip(&["link", "set", "vif4.0", "master", "xenbr0", "up"]);
        let xs = Xenstore::start();
        xs.write_vif(&vif);
        xs.write(
            &format!("{}/ip", vif.backend()),
            &format!("{GUEST_V4} {GUEST_V6}"),
        );
        FrameRig {
            host,
            guest,
            peer,
            xs,
            vif,
        }
    }

    /// Plugs vif3.0 with antispoofing off (`None`), on by default (`Some("")`), or on with
    /// `Some(config)` as vifkit.conf; returns the run's stderr.
    ///
    /// Then tells the bridge to forward the 802.1D reserved groups arriving on vif3.0
    /// (the port's group_fwd_mask; the bridge's own mask may not include STP, pause or
    /// LACP). Without it a bridge keeps LACP, 802.1X and LLDP frames for itself, and an
    /// unfiltered run could not show them arriving. It changes nothing for the filter:
    /// the netdev ingress hook runs on vif3.0 before the bridge's receive handler, which
    /// is where the mask is read, so a frame the filter drops never gets that far.
    pub fn plug(&self, antispoof: Option<&str>) -> String {
        let out = match antispoof {
            None => online(&self.host, &self.xs, &self.vif, false),
            Some("") => online(&self.host, &self.xs, &self.vif, true),
            Some(config) => online_with(&self.host, &self.xs, &self.vif, config),
        };
        assert_ok(&out);
        let port = self.vif.kernel_name();
        self.host.ip(&[
            "link",
            "set",
            "dev",
            &port,
            "type",
            "bridge_slave",
            "group_fwd_mask",
            RESERVED_GROUPS_FORWARDED,
        ]);
        let link = self.host.link(&port).expect("vif3.0");
        let mask = &link["linkinfo"]["info_slave_data"]["group_fwd_mask"];
        assert_eq!(mask, RESERVED_GROUPS_FORWARDED, "{port}: group_fwd_mask");
        stderr(&out)
    }

    /// Sends every case from the guest and returns those whose fate is wrong.
    pub fn wrong(&self, cases: &[Case], filtered: bool) -> Vec<String> {
        wrong_exact(cases, (&self.guest, "eth0"), (&self.peer, "eth0"), filtered)
    }

    /// The control: every case arrives with antispoofing off.
    pub fn assert_all_arrive_unfiltered(&self, cases: &[Case]) {
        let lost = self.wrong(cases, false);
        assert!(lost.is_empty(), "without antispoofing: {lost:#?}");
    }

    /// The filtered run: legitimate cases arrive, the others do not.
    pub fn assert_filtered(&self, cases: &[Case]) {
        let wrong = self.wrong(cases, true);
        assert!(
            wrong.is_empty(),
            "with antispoofing: {wrong:#?}\n{}",
            self.ruleset()
        );
    }

    /// The host's nftables ruleset, for failure messages.
    pub fn ruleset(&self) -> String {
        must(self.host.exec().args(["nft", "list", "ruleset"]))
    }

    pub fn send(&self, frame: &[u8]) {
        send(&self.guest, "eth0", frame);
    }

    /// The MAC the peer's neighbour table has for `ip`.
    pub fn peer_neighbour(&self, ip: &str) -> Option<String> {
        let v = self.peer.ip_json(&["neigh", "show", "dev", "eth0"]);
        v.as_array()?
            .iter()
            .find(|n| n["dst"] == ip)?
            .get("lladdr")?
            .as_str()
            .map(str::to_owned)
    }

    /// Sets the peer's neighbour entry for `ip` to `mac`, stale, as if learnt a while ago.
    pub fn set_peer_neighbour(&self, ip: &str, mac: &str) {
        self.peer.ip(&[
            "neigh", "replace", ip, "lladdr", mac, "dev", "eth0", "nud", "stale",
        ]);
    }
}

/// Whether `happened` becomes true: polled for 2 s when it is `expected` to (an unfiltered
/// run, where the peer's kernel should act on the frame), for [`WAIT`] when it is not.
pub fn effect(expected: bool, happened: impl Fn() -> bool) -> bool {
    poll_for(if expected { WAIT * 5 } else { WAIT }, happened)
}

/// A case that must arrive with antispoofing on, as without.
pub fn legit(what: &'static str, frame: Vec<u8>) -> Case {
    case(what, true, frame)
}

/// A case antispoofing must drop (and which must arrive without it).
pub fn forbidden(what: &'static str, frame: Vec<u8>) -> Case {
    case(what, false, frame)
}
