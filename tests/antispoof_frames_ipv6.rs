//! The antispoofing allow-list of a bridged port for IPv6, frame kind by frame kind (the
//! rig and its control are described in `antispoof_frames.rs`): UDP and DHCPv6, sources
//! `::` and forged, fragments, and neighbour discovery with the link-layer options that
//! teach neighbours a MAC. The peer's neighbour cache and routes show, end to end, that
//! NDP attacks work unfiltered and not filtered. Needs root.

mod antispoof;
mod common;

use std::net::Ipv6Addr;

use antispoof::*;
use common::frames::*;

/// A MAC nobody has: what the NDP attacks try to teach the peer.
const MADE_UP: &str = "02:00:00:00:00:98";

fn path(src_mac: &str, dst_mac: &str, src: &str, dst: &str) -> Path6 {
    Path6 {
        src_mac: mac(src_mac),
        dst_mac: mac(dst_mac),
        src: v6(src),
        dst: v6(dst),
    }
}

/// The solicited-node group of `addr` (ff02::1:ffXX:XXXX) and its MAC.
fn solicited(addr: &str) -> (String, String) {
    let o = v6(addr).octets();
    let low = u16::from_be_bytes([o[14], o[15]]);
    let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | u16::from(o[13]), low);
    let mac = format!("33:33:ff:{:02x}:{:02x}:{:02x}", o[13], o[14], o[15]);
    (group.to_string(), mac)
}

fn udp_cases() -> Vec<Case> {
    let udp = |src_mac: &str, src: &str, dst: &str, ports: (u16, u16)| {
        let p = path(src_mac, PEER_MAC, src, dst);
        let payload = [marker(), marker()].concat();
        ipv6_udp(
            p.src_mac, p.dst_mac, p.src, p.dst, ports.0, ports.1, &payload,
        )
    };
    let to_peer = path(GUEST_MAC, PEER_MAC, GUEST_V6, PEER_V6);
    let from_ll = path(GUEST_MAC, PEER_MAC, GUEST_LL, PEER_LL);
    let dhcp_servers = path(GUEST_MAC, "33:33:00:01:00:02", GUEST_LL, "ff02::1:2");
    let echo = |p| echo_request6(p, &marker());
    let [udp_first, udp_later] = ipv6_fragments(
        to_peer,
        &udp(GUEST_MAC, GUEST_V6, PEER_V6, (4000, 5000)),
        16,
    );
    let [echo_first, echo_later] = ipv6_fragments(to_peer, &echo(to_peer), 16);
    let advertise = dhcpv6(from_ll, (547, 546), 2, &marker());
    let [advertise_first, advertise_later] = ipv6_fragments(from_ll, &advertise, 16);
    let unspecified = path(GUEST_MAC, PEER_MAC, "::", PEER_V6);
    vec![
        legit(
            "IPv6 UDP from the guest's global address",
            udp(GUEST_MAC, GUEST_V6, PEER_V6, (4000, 5000)),
        ),
        legit(
            "IPv6 UDP from the EUI-64 link-local",
            udp(GUEST_MAC, GUEST_LL, PEER_LL, (4000, 5000)),
        ),
        legit(
            "DHCPv6 solicit from the link-local (546 -> 547, ff02::1:2)",
            dhcpv6(dhcp_servers, (546, 547), 1, &marker()),
        ),
        legit(
            "ICMPv6 echo request from the guest's address",
            echo(to_peer),
        ),
        legit("ICMPv6 echo request from the link-local", echo(from_ll)),
        legit("fragmented IPv6 UDP: first fragment", udp_first),
        legit("fragmented IPv6 UDP: later fragment", udp_later),
        forbidden(
            "IPv6 with a forged source",
            udp(GUEST_MAC, PEER_V6, PEER_V6, (4000, 5000)),
        ),
        forbidden(
            "IPv6 from a forged MAC",
            udp(FORGED_MAC, GUEST_V6, PEER_V6, (4000, 5000)),
        ),
        forbidden("rogue DHCPv6 advertise (547 -> 546)", advertise.clone()),
        forbidden(
            "rogue DHCPv6 reply from port 5547 (5547 -> 546)",
            dhcpv6(from_ll, (5547, 546), 7, &marker()),
        ),
        forbidden(
            "UDP from the DHCPv6 server port (547 -> 547, as a relay sends)",
            udp(GUEST_MAC, GUEST_LL, PEER_LL, (547, 547)),
        ),
        forbidden("ICMPv6 echo request from ::", echo(unspecified)),
        forbidden("UDP from ::", udp(GUEST_MAC, "::", PEER_V6, (4000, 5000))),
        forbidden("fragmented ICMPv6 echo: first fragment", echo_first),
        forbidden("fragmented ICMPv6 echo: later fragment", echo_later),
        forbidden(
            "fragmented DHCPv6 advertise: first fragment",
            advertise_first,
        ),
        legit(
            "fragmented DHCPv6 advertise: later fragment (passes by design: its UDP header is \
             in the first fragment, and without that one nothing is reassembled)",
            advertise_later,
        ),
    ]
}

#[test]
fn ipv6_udp_and_icmp_kinds() {
    let rig = FrameRig::new("af6");
    let cases = udp_cases();
    rig.plug(None);
    rig.assert_all_arrive_unfiltered(&cases);
    rig.plug(Some(""));
    rig.assert_filtered(&cases);
}

fn ndp_cases() -> Vec<Case> {
    let me = mac(GUEST_MAC);
    let made_up = mac(MADE_UP);
    let (peer_group, peer_group_mac) = solicited(PEER_V6);
    let (own_group, own_group_mac) = solicited(GUEST_V6);
    let (ll_group, ll_group_mac) = solicited(GUEST_LL);
    let to_peer_group = path(GUEST_MAC, &peer_group_mac, GUEST_V6, &peer_group);
    let to_peer = path(GUEST_MAC, PEER_MAC, GUEST_V6, PEER_V6);
    let dad = path(GUEST_MAC, &own_group_mac, "::", &own_group);
    let ll_dad = path(GUEST_MAC, &ll_group_mac, "::", &ll_group);
    let peer_dad = path(GUEST_MAC, &peer_group_mac, "::", &peer_group);
    let all_nodes = path(GUEST_MAC, "33:33:00:00:00:01", GUEST_LL, "ff02::1");
    let routers = path(GUEST_MAC, "33:33:00:00:00:02", GUEST_LL, "ff02::2");
    let mld = |src| path(GUEST_MAC, "33:33:00:00:00:16", src, "ff02::16");
    let (guest, peer, ll) = (v6(GUEST_V6), v6(PEER_V6), v6(GUEST_LL));
    let nonce = || nonce_option(&marker()[..6].try_into().unwrap());
    let unknown = [200, 1, 0, 0, 0, 0, 0, 0];
    let sllao = |mac| ll_option(1, mac);
    let tllao = |mac| ll_option(2, mac);
    let ns = |p, target, options: &[&[u8]]| neighbour_solicitation(p, target, &options.concat());
    let na =
        |p, flags, target, options: &[&[u8]]| neighbour_advert(p, flags, target, &options.concat());
    let ra = router_advertisement(me, ll, v6("2001:db8:bad::"));
    let [ra_first, ra_later] = ipv6_fragments(all_nodes, &ra, 16);
    let own_sn_group = v6(&own_group);
    vec![
        legit(
            "NS from the guest's address with its own SLLAO",
            ns(to_peer_group, peer, &[&sllao(me)]),
        ),
        legit(
            "NS without options (unicast reachability probe)",
            ns(to_peer, peer, &[]),
        ),
        legit(
            "DAD NS from :: for the guest's address, with a nonce (as Linux sends)",
            ns(dad, guest, &[&nonce()]),
        ),
        legit(
            "DAD NS from :: for the guest's link-local, with a nonce",
            ns(ll_dad, ll, &[&nonce()]),
        ),
        legit(
            "MLDv2 report from :: (hop-by-hop router alert)",
            mld_report(mld("::"), 2, own_sn_group),
        ),
        legit(
            "MLDv2 report from the link-local",
            mld_report(mld(GUEST_LL), 2, own_sn_group),
        ),
        legit(
            "MLDv1 report from the link-local",
            mld_report(
                path(GUEST_MAC, &own_group_mac, GUEST_LL, &own_group),
                1,
                own_sn_group,
            ),
        ),
        legit(
            "solicited NA for the guest's address with its own TLLAO",
            na(to_peer, 0x60, guest, &[&tllao(me)]),
        ),
        legit(
            "unsolicited NA for the link-local with its own TLLAO",
            na(all_nodes, 0x20, ll, &[&tllao(me)]),
        ),
        legit("NA without options", na(all_nodes, 0, guest, &[])),
        legit(
            "RS from the link-local with its own SLLAO",
            router_solicitation(routers, &sllao(me)),
        ),
        legit("RS without options", router_solicitation(routers, &[])),
        forbidden(
            "NA re-pointing the guest's address to a made-up MAC (TLLAO)",
            na(all_nodes, 0x20, guest, &[&tllao(made_up)]),
        ),
        forbidden(
            "NS with a made-up SLLAO",
            ns(to_peer_group, peer, &[&sllao(made_up)]),
        ),
        forbidden(
            "NS with a nonce first, then a made-up SLLAO",
            ns(to_peer_group, peer, &[&nonce(), &sllao(made_up)]),
        ),
        forbidden(
            "NS whose first option is an unknown type hiding a made-up SLLAO",
            ns(to_peer_group, peer, &[&unknown, &sllao(made_up)]),
        ),
        forbidden(
            "NA whose first option is an unknown type hiding a made-up TLLAO",
            na(all_nodes, 0x20, guest, &[&unknown, &tllao(made_up)]),
        ),
        forbidden(
            "NS with a 16-byte SLLAO",
            ns(to_peer_group, peer, &[&[1, 2], &made_up, &[0; 8]]),
        ),
        forbidden(
            "RS with a made-up SLLAO",
            router_solicitation(routers, &sllao(made_up)),
        ),
        forbidden(
            "RS whose first option is an unknown type hiding an SLLAO",
            router_solicitation(routers, &[unknown.to_vec(), sllao(made_up)].concat()),
        ),
        forbidden(
            "NS from :: for the peer's address (DAD denial of service)",
            ns(peer_dad, peer, &[&nonce()]),
        ),
        forbidden(
            "NA from ::",
            na(
                path(GUEST_MAC, "33:33:00:00:00:01", "::", "ff02::1"),
                0x20,
                guest,
                &[],
            ),
        ),
        forbidden(
            "NA for another address (the peer's)",
            na(all_nodes, 0x20, peer, &[&tllao(me)]),
        ),
        forbidden("router advertisement", ra),
        forbidden("fragmented RA: first fragment", ra_first),
        forbidden("fragmented RA: later fragment", ra_later),
        forbidden(
            "redirect",
            redirect(
                path(GUEST_MAC, PEER_MAC, GUEST_LL, PEER_LL),
                ll,
                v6("2001:db8:ffff::1"),
                me,
            ),
        ),
        forbidden(
            "MLDv2 report from a forged link-local",
            mld_report(mld("fe80::99"), 2, own_sn_group),
        ),
        // Linux's ndisc_parse_options skips a repeated nonce and an unknown option alike
        // and uses an SLLAO further on: a nonce from anywhere but `::` is refused, so no
        // option can hide behind it (`ndp_effects` shows the peer's cache taking it
        // unfiltered).
        forbidden(
            "NS with a nonce, a second nonce, then a made-up SLLAO",
            ns(to_peer_group, peer, &[&nonce(), &nonce(), &sllao(made_up)]),
        ),
        forbidden(
            "NS with a nonce, an unknown option, then a made-up SLLAO",
            ns(to_peer_group, peer, &[&nonce(), &unknown, &sllao(made_up)]),
        ),
    ]
}

/// What the peer's kernel makes of NDP attacks: each poisons its neighbour cache or adds
/// a route unfiltered (the control) and must not filtered. Returns what went wrong.
fn ndp_effects(rig: &FrameRig, filtered: bool) -> Vec<String> {
    let me = mac(GUEST_MAC);
    let (peer_group, peer_group_mac) = solicited(PEER_V6);
    let to_peer_group = path(GUEST_MAC, &peer_group_mac, GUEST_V6, &peer_group);
    let all_nodes = path(GUEST_MAC, "33:33:00:00:00:01", GUEST_LL, "ff02::1");
    let (guest, peer) = (v6(GUEST_V6), v6(PEER_V6));
    let poison = |what: &str, frame: Vec<u8>, made_up: &str| {
        rig.set_peer_neighbour(GUEST_V6, GUEST_MAC);
        rig.send(&frame);
        let took = effect(!filtered, || {
            rig.peer_neighbour(GUEST_V6).as_deref() == Some(made_up)
        });
        (took == filtered).then(|| format!("{what}: the peer took {made_up} = {took}"))
    };
    let nonce = nonce_option(&marker()[..6].try_into().unwrap());
    let prefix = if filtered {
        "2001:db8:e2f::"
    } else {
        "2001:db8:e2e::"
    };
    let mut wrong: Vec<String> = [
        poison(
            "NA with a made-up TLLAO",
            neighbour_advert(
                all_nodes,
                0x20,
                guest,
                &ll_option(2, mac("02:00:00:00:00:a1")),
            ),
            "02:00:00:00:00:a1",
        ),
        poison(
            "NS with a made-up SLLAO",
            neighbour_solicitation(to_peer_group, peer, &ll_option(1, mac("02:00:00:00:00:a2"))),
            "02:00:00:00:00:a2",
        ),
        poison(
            "NS with a nonce, a second nonce, then a made-up SLLAO",
            neighbour_solicitation(
                to_peer_group,
                peer,
                &[&nonce[..], &nonce, &ll_option(1, mac("02:00:00:00:00:a3"))].concat(),
            ),
            "02:00:00:00:00:a3",
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    rig.send(&router_advertisement(me, v6(GUEST_LL), v6(prefix)));
    let route = format!("{prefix}/64");
    let routed = effect(!filtered, || {
        rig.peer
            .ip_json(&["-6", "route", "show", &route])
            .as_array()
            .is_some_and(|r| !r.is_empty())
    });
    if routed == filtered {
        wrong.push(format!("RA: the peer has a route to {route} = {routed}"));
    }
    wrong
}

#[test]
fn neighbour_discovery_kinds() {
    let rig = FrameRig::new("afn");
    let cases = ndp_cases();
    wait_ipv6_ready(&rig.peer, "eth0");
    rig.plug(None);
    rig.assert_all_arrive_unfiltered(&cases);
    let control = ndp_effects(&rig, false);
    assert!(control.is_empty(), "without antispoofing: {control:#?}");
    rig.plug(Some(""));
    let filtered = rig.wrong(&cases, true);
    let effects = ndp_effects(&rig, true);
    assert!(
        filtered.is_empty() && effects.is_empty(),
        "with antispoofing: {filtered:#?}\n{effects:#?}\n{}",
        rig.ruleset()
    );
}
