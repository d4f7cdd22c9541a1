use super::*;
use crate::input::backend::Backend;
use crate::input::invocation::Command;
use crate::input::invocation::XenCall;
use crate::input::xen_port::XenPort;
use crate::sys::rtnl::Link;
use crate::types::mac::MacAddr;
use crate::types::port::Requested;
use crate::types::vlan::{Vid, Vlans};

fn vif(up: bool) -> Link {
    Link {
        up,
        ..Link::veth(7, "vif3.0")
    }
}

fn call(command: Command) -> XenCall {
    XenCall::for_test(command, 3, 0)
}

fn backend(bridge: &str) -> Backend {
    Backend {
        path: "backend/vif/3/0".into(),
        bridge: Some(bridge.into()),
        mtu: Some(9000),
        vifname: None,
        frontend_mtu_key: None,
        ip: None,
        addresses: vec![],
        mac: Some(MacAddr([0, 0x16, 0x3e, 0, 0, 3])),
        vlan: None,
    }
}

fn kernel(links: Vec<Link>) -> Snapshot {
    let mut k = Snapshot::default();
    for link in links {
        k.add(link);
    }
    k
}

fn word(text: &str) -> BridgeWord {
    BridgeWord::parse(text).unwrap()
}

fn parse_bridge(text: &str) -> Result<Tagged> {
    switch_port(BridgeWord::parse(text).as_ref())
}

#[test]
fn the_bridge_word_is_bridge_tag_and_trunks() {
    let Tagged { bridge, vlans } = parse_bridge("ovsbr0.10:30:20").unwrap();
    assert_eq!(
        (bridge.as_str(), vlans.to_string()),
        ("ovsbr0", "vlan 10 untagged, trunks 20,30".into())
    );
    assert!(parse_bridge("ovsbr0").unwrap().vlans.is_empty());
    for bad in ["ovsbr0.0", "ovsbr0.x", "br0:5000", ""] {
        assert!(
            parse_bridge(bad)
                .unwrap_err()
                .to_string()
                .starts_with("No valid bridge was specified"),
            "{bad}"
        );
    }
    assert_eq!(
        parse_bridge("br0.5000").unwrap_err().to_string(),
        "No valid bridge was specified: \"br0.5000\" is not bridge[.tag][:trunk...] (VLAN \"5000\" is not a number from 1 to 4094)"
    );
    assert_eq!(
        parse_bridge("").unwrap_err().to_string(),
        "No valid bridge was specified: \"\" is not bridge[.tag][:trunk...] (the bridge name is empty)"
    );
}

#[test]
fn attach_prepares_adds_with_external_ids_then_brings_up() {
    let vm = VmInfo {
        name: Some("guest3".into()),
        uuid: Some("2a5b2e2c-0000-4000-8000-000000000003".into()),
    };
    let plan = plan_attach(
        &XenPort::for_test(&call(Command::Online), &backend("ovsbr0.10")),
        &kernel(vec![vif(false)]),
        &vm,
    )
    .unwrap();
    let words: Vec<String> = plan.steps().iter().map(|s| s.to_string()).collect();
    assert_eq!(
        words,
        [
            "add vif3.0 to Open vSwitch bridge ovsbr0 tag 10",
            "set vif3.0 up",
        ]
    );
    let Step::OvsAddPort { port, .. } = &plan.steps()[0] else {
        panic!()
    };
    assert_eq!(port.mtu, Some(9000));
    assert_eq!(
        port.external_ids,
        [
            ("attached-mac".to_owned(), "00:16:3e:00:00:03".to_owned()),
            ("xen-vm-name".to_owned(), "guest3".to_owned()),
            (
                "xen-vm-uuid".to_owned(),
                "2a5b2e2c-0000-4000-8000-000000000003".to_owned()
            ),
        ]
    );
    assert_eq!(
        plan.steps()[0].undo(),
        Some(Step::OvsDelPort {
            name: IfName::new("vif3.0").unwrap()
        })
    );
}

#[test]
fn detach_removes_the_port_even_when_the_device_is_gone() {
    let plan = plan_detach(
        &XenPort::for_test(&call(Command::Offline), &backend("ovsbr0")),
        &kernel(vec![vif(true)]),
    )
    .unwrap();
    let words: Vec<String> = plan.steps().iter().map(|s| s.to_string()).collect();
    assert_eq!(
        words,
        ["remove Open vSwitch port vif3.0", "set vif3.0 down"]
    );
    let plan = plan_detach(
        &XenPort::for_test(&call(Command::Offline), &backend("ovsbr0")),
        &kernel(vec![]),
    )
    .unwrap();
    assert_eq!(
        plan.steps(),
        [Step::OvsDelPort {
            name: IfName::new("vif3.0").unwrap()
        }]
    );
}

/// A `[port]` section's `vlan`/`trunks` as vifkit.conf gives them.
fn section(vlan: Option<&str>, trunks: &str) -> Requested {
    let trunks = trunks.split(',').filter(|t| !t.is_empty());
    Requested {
        vlans: Vlans {
            access: vlan.map(|v| Vid::parse(v).unwrap()),
            trunks: crate::types::vlan::parse_vids(trunks).unwrap(),
            untagged: vec![],
        },
        ..Requested::default()
    }
}

fn tap_attach(bridge: &str, requested: &Requested) -> Result<String> {
    let tap = IfName::new("tap0").unwrap();
    let k = kernel(vec![Link {
        name: tap.clone(),
        ..vif(false)
    }]);
    let mac = Some(MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]));
    let plan = plan_tap_attach(&tap, &word(bridge), requested, mac, None, &k)?;
    Ok(plan.steps()[0].to_string())
}

#[test]
fn a_tap_merges_the_word_vlans_with_its_sections_and_takes_no_linux_bridge_flags() {
    let add = |rest: &str| format!("add tap0 to Open vSwitch bridge ovsbr0{rest}");
    let cases = [
        ("ovsbr0", section(Some("30"), ""), add(" tag 30")),
        ("ovsbr0.10", section(None, ""), add(" tag 10")),
        // The word's tag with the section's trunks, and the other way round.
        ("ovsbr0.10", section(None, "20"), add(" tag 10 trunks 20")),
        (
            "ovsbr0:20:30",
            section(Some("10"), ""),
            add(" tag 10 trunks 20,30"),
        ),
        // Both saying the same thing is no conflict.
        (
            "ovsbr0.10:20:30",
            section(Some("10"), "30,20"),
            add(" tag 10 trunks 20,30"),
        ),
        (
            "ovsbr0.10:20:30",
            section(None, ""),
            add(" tag 10 trunks 20,30"),
        ),
    ];
    for (bridge, requested, want) in cases {
        assert_eq!(tap_attach(bridge, &requested).unwrap(), want, "{bridge}");
    }
    let clash = |bridge, requested| tap_attach(bridge, &requested).unwrap_err().to_string();
    assert_eq!(
        clash("ovsbr0.10", section(Some("30"), "")),
        "the bridge word \"ovsbr0.10\" gives tap0 VLAN 10 and its [port] section's vlan = 30: set the VLAN in one place"
    );
    assert_eq!(
        clash("ovsbr0.10:20", section(None, "30,40")),
        "the bridge word \"ovsbr0.10:20\" gives tap0 trunks 20 and its [port] section's trunks = 30,40: set the trunks in one place"
    );
    let isolated = Requested {
        isolated: Some(true),
        ..Requested::default()
    };
    assert_eq!(
        tap_attach("ovsbr0", &isolated).unwrap_err().to_string(),
        "isolated, learning and hairpin are Linux bridge options: tap0 is on Open vSwitch bridge ovsbr0, which takes vlan and trunks"
    );
    let tap = IfName::new("tap0").unwrap();
    let k = kernel(vec![Link {
        name: tap.clone(),
        ..vif(false)
    }]);
    let words: Vec<String> = plan_tap_detach(&tap, &k)
        .steps()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(words, ["remove Open vSwitch port tap0", "set tap0 down"]);
}

#[test]
fn a_port_the_database_already_holds_as_wanted_is_left_alone() {
    let port = XenPort::for_test(&call(Command::Online), &backend("ovsbr0.10"));
    let vm = VmInfo::default();
    let mut k = kernel(vec![vif(true)]);
    let first = plan_attach(&port, &k, &vm).unwrap();
    let Step::OvsAddPort {
        bridge,
        port: added,
        ..
    } = &first.steps()[0]
    else {
        panic!("{:?}", first.steps())
    };
    k.ovs_ports = vec![(port.name.clone(), bridge.clone(), added.clone())];
    assert!(plan_attach(&port, &k, &vm).unwrap().is_empty());
    let mut other_tag = added.clone();
    other_tag.tag = Some(20);
    k.ovs_ports = vec![(port.name.clone(), bridge.clone(), other_tag)];
    assert_eq!(plan_attach(&port, &k, &vm).unwrap().steps(), first.steps());
}

/// What the Xen vif's OVS port step says with this bridge word and `B/vlan`.
fn xen_vlan_attach(bridge: &str, vlan: &str) -> Result<String> {
    let b = Backend {
        vlan: Some(vlan.into()),
        ..backend(bridge)
    };
    let port = XenPort::for_test(&call(Command::Online), &b);
    let plan = plan_attach(&port, &kernel(vec![vif(false)]), &VmInfo::default())?;
    Ok(plan.steps()[0].to_string())
}

#[test]
fn xen_vlan_gives_the_tag_and_trunks() {
    let add = |rest: &str| format!("add vif3.0 to Open vSwitch bridge ovsbr0{rest}");
    for (vlan, want) in [
        ("10", add(" tag 10")),
        ("10p/20/30", add(" tag 10 trunks 20,30")),
        ("100+10x2/5p/7-8", add(" tag 5 trunks 7,8,100,110")),
    ] {
        assert_eq!(xen_vlan_attach("ovsbr0", vlan).unwrap(), want, "{vlan}");
    }
    let b = Backend {
        vlan: Some("10p/20".into()),
        ..backend("ovsbr0")
    };
    let port = XenPort::for_test(&call(Command::Online), &b);
    let plan = plan_attach(&port, &kernel(vec![vif(false)]), &VmInfo::default()).unwrap();
    assert_eq!(plan.notes, ["VLANs from backend/vif/3/0/vlan: 10p/20"]);
}

#[test]
fn xen_vlan_with_a_vlan_word_or_another_untagged_vlan_fails() {
    for word in ["ovsbr0.10", "ovsbr0:20", "ovsbr0.10:20"] {
        assert_eq!(
            xen_vlan_attach(word, "10p/20").unwrap_err().to_string(),
            format!(
                "bridge {word:?} and backend/vif/3/0/vlan \"10p/20\" both give vif3.0 its VLANs: give them once, with vlan= and a bridge without VLANs or with the bridge word alone"
            )
        );
    }
    assert_eq!(
        xen_vlan_attach("ovsbr0", "10p/20/30-31u")
            .unwrap_err()
            .to_string(),
        "backend/vif/3/0/vlan \"10p/20/30-31u\" sends VLAN 30 untagged besides the PVID 10, which an Open vSwitch port cannot: mark only the PVID untagged, or use a VLAN-aware Linux bridge"
    );
}
