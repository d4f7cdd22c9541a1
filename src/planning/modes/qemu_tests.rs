use super::*;
use crate::types::mac::MacAddr;
use crate::types::prefix::Family;

fn link(index: u32, name: &str, kind: Option<&str>) -> Link {
    Link {
        mac: Some(MacAddr([2, 0, 0, 0, 0, index as u8])),
        up: kind == Some("bridge"),
        kind: kind.map(str::to_owned),
        ..Link::veth(index, name)
    }
}

fn rule(bridge: Option<&str>) -> PortRule {
    PortRule {
        patterns: vec!["tap*".into()],
        line: 7,
        bridge: bridge.map(|b| BridgeWord::parse(b).unwrap()),
        mtu: None,
        route: vec![],
        uplink: None,
        mac: None,
        router: vec![],
        masquerade6: None,
        ip: vec![],
        antispoof: None,
        traffic: Default::default(),
        port: Default::default(),
        openvswitch: None,
        rate: None,
    }
}

fn sources<'a>(
    argument: Option<&'a str>,
    env: Option<&'a str>,
    rule: Option<&'a PortRule>,
) -> BridgeSources<'a> {
    BridgeSources {
        argument,
        env,
        rule,
        config_path: Path::new("/etc/vifkit/vifkit.conf"),
    }
}

fn chosen(s: &BridgeSources<'_>) -> Option<(String, String)> {
    named_bridge(s)
        .unwrap()
        .map(|(word, source)| (word.to_string(), source.to_string()))
}

#[test]
fn argument_then_env_then_config() {
    let r = rule(Some("br2"));
    assert_eq!(
        chosen(&sources(Some("br0"), Some("br1"), Some(&r))),
        Some(("br0".into(), "the bridge argument".into()))
    );
    assert_eq!(
        chosen(&sources(None, Some("br1"), Some(&r))),
        Some(("br1".into(), "VIFKIT_BRIDGE".into()))
    );
    assert_eq!(
        chosen(&sources(Some(""), None, Some(&r))),
        Some(("br2".into(), "/etc/vifkit/vifkit.conf:7".into()))
    );
    let no_bridge = rule(None);
    assert_eq!(chosen(&sources(None, None, Some(&no_bridge))), None);
    assert_eq!(chosen(&sources(None, None, None)), None);
}

#[test]
fn a_word_with_vlans_from_any_source_is_one_bridge_word() {
    let r = rule(Some("ovsbr0.10:20:30"));
    assert_eq!(
        chosen(&sources(None, None, Some(&r))),
        Some(("ovsbr0.10:20:30".into(), "/etc/vifkit/vifkit.conf:7".into()))
    );
    for s in [
        sources(Some("br0:20:30"), None, None),
        sources(None, Some("br0:20:30"), None),
    ] {
        let (word, _) = named_bridge(&s).unwrap().unwrap();
        assert_eq!(word.link_name().as_str(), "br0");
        assert_eq!(word.with_vlans().unwrap().vlans.to_string(), "trunks 20,30");
    }
    assert_eq!(
        named_bridge(&sources(None, Some("br0:x"), None))
            .unwrap_err()
            .to_string(),
        "invalid bridge \"br0:x\": VLAN \"x\" is not a number from 1 to 4094"
    );
}

#[test]
fn bad_bridge_names_are_rejected() {
    assert_eq!(
        named_bridge(&sources(Some("br 0"), None, None))
            .unwrap_err()
            .to_string(),
        "invalid interface name \"br 0\": it contains whitespace or a control character"
    );
}

#[test]
fn default_route_prefers_ipv4_and_skips_non_bridges() {
    let mut kernel = Snapshot {
        links: vec![
            link(2, "eth0", Some("veth")),
            link(3, "br0", Some("bridge")),
            link(4, "br6", Some("bridge")),
        ],
        default_routes: vec![(Family::V4, 2), (Family::V4, 3), (Family::V6, 4)],
        ..Default::default()
    };
    assert_eq!(default_route_bridge(&kernel).unwrap().name, "br0");
    kernel.default_routes = vec![(Family::V4, 2), (Family::V6, 4)];
    assert_eq!(default_route_bridge(&kernel).unwrap().name, "br6");
    kernel.default_routes = vec![(Family::V4, 2)];
    assert!(default_route_bridge(&kernel).is_none());
}

#[test]
fn no_bridge_message_names_every_source() {
    assert_eq!(
        no_bridge_error(
            &IfName::new("tap0").unwrap(),
            Path::new("/etc/vifkit/vifkit.conf")
        )
        .to_string(),
        "no bridge for tap0: no bridge argument, VIFKIT_BRIDGE is unset, no [port] rule in /etc/vifkit/vifkit.conf matches tap0, and no IPv4 or IPv6 default route goes through a bridge"
    );
}

#[test]
fn ifup_steps_and_mtu_override() {
    let tap = IfName::new("tap0").unwrap();
    let mut br = link(3, "br0", Some("bridge"));
    br.mtu = 9000;
    let kernel = Snapshot {
        links: vec![link(5, "tap0", Some("tun")), br.clone()],
        devices: vec![],
        ..Default::default()
    };
    let words = |plan: Plan| {
        plan.steps()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        words(plan_ifup(&tap, &br, None, &kernel).unwrap()),
        [
            "set tap0 address fe:ff:ff:ff:ff:ff",
            "set tap0 mtu 9000",
            "attach tap0 to bridge br0",
            "set tap0 up"
        ]
    );
    assert!(
        words(plan_ifup(&tap, &br, Some(1400), &kernel).unwrap())
            .contains(&"set tap0 mtu 1400".to_string())
    );
    let empty = Snapshot {
        links: vec![br.clone()],
        devices: vec![],
        ..Default::default()
    };
    assert_eq!(
        plan_ifup(&tap, &br, None, &empty).unwrap_err().to_string(),
        "tap0 does not exist"
    );
}

#[test]
fn ifdown_detaches_then_downs_and_tolerates_absence() {
    let tap = IfName::new("tap0").unwrap();
    let mut t = link(5, "tap0", Some("tun"));
    t.master = Some(3);
    t.up = true;
    let kernel = Snapshot {
        links: vec![t],
        devices: vec![],
        ..Default::default()
    };
    let plan = plan_ifdown(&tap, &kernel);
    let words: Vec<_> = plan.steps().iter().map(|s| s.to_string()).collect();
    assert_eq!(words, ["detach tap0 from its bridge", "set tap0 down"]);
    let gone = plan_ifdown(&tap, &Snapshot::default());
    assert!(gone.is_empty());
    assert_eq!(gone.notes, ["tap0 is already gone"]);
}

#[test]
fn ifup_chooses_open_vswitch_then_a_named_bridge_then_routing_then_the_default_route() {
    let tap = IfName::new("tap0").unwrap();
    let ovs = PortRule {
        openvswitch: Some(true),
        ..rule(Some("ovsbr0"))
    };
    assert_eq!(
        choose_up(&tap, &sources(None, None, Some(&ovs))).unwrap(),
        TapUp::OpenVswitch {
            word: BridgeWord::parse("ovsbr0").unwrap(),
            source: BridgeOrigin::Config {
                path: "/etc/vifkit/vifkit.conf".into(),
                line: 7
            }
        }
    );
    let ovs_unnamed = PortRule {
        openvswitch: Some(true),
        ..rule(None)
    };
    assert_eq!(
        choose_up(&tap, &sources(None, None, Some(&ovs_unnamed)))
            .unwrap_err()
            .to_string(),
        "openvswitch = yes for tap0 needs the Open vSwitch bridge: set bridge = in its [port] section of /etc/vifkit/vifkit.conf"
    );
    let routed = PortRule {
        route: vec![crate::types::prefix::Prefix::host(
            "192.0.2.5".parse().unwrap(),
        )],
        ..rule(None)
    };
    assert_eq!(
        choose_up(&tap, &sources(Some("br0"), None, Some(&routed))).unwrap(),
        TapUp::Bridge {
            word: BridgeWord::parse("br0").unwrap(),
            source: BridgeOrigin::TapArgument
        }
    );
    assert_eq!(
        choose_up(&tap, &sources(None, None, Some(&routed))).unwrap(),
        TapUp::Routed
    );
    assert_eq!(
        choose_up(&tap, &sources(None, Some(""), None)).unwrap(),
        TapUp::DefaultRoute
    );
    assert!(choose_up(&tap, &sources(Some("br0:"), None, None)).is_err());
}

#[test]
fn ifdown_trusts_a_named_bridge_over_the_routed_section() {
    let routed = PortRule {
        route: vec![crate::types::prefix::Prefix::host(
            "192.0.2.5".parse().unwrap(),
        )],
        ..rule(None)
    };
    assert_eq!(
        choose_down(&sources(None, None, Some(&routed))),
        TapDown::Routed
    );
    assert_eq!(
        choose_down(&sources(Some("br0"), None, Some(&routed))),
        TapDown::Bridged
    );
    assert_eq!(
        choose_down(&sources(None, Some("br0"), Some(&routed))),
        TapDown::Bridged
    );
    assert_eq!(
        choose_down(&sources(None, Some(""), Some(&routed))),
        TapDown::Routed
    );
    let ovs = PortRule {
        openvswitch: Some(true),
        ..routed
    };
    assert_eq!(
        choose_down(&sources(Some("br0"), None, Some(&ovs))),
        TapDown::OpenVswitch
    );
    assert_eq!(choose_down(&sources(None, None, None)), TapDown::Bridged);
}
