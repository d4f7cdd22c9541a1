use super::*;
use crate::input::backend::Backend;
use crate::input::invocation::XenCall;
use crate::input::xen_port::XenPort;
use crate::types::bridge_word::GivenBridge;
use crate::types::prefix::Prefix;
use crate::types::vlan::Vid;

fn link(index: u32, name: &str, kind: Option<&str>) -> Link {
    Link {
        kind: kind.map(str::to_owned),
        ..Link::veth(index, name)
    }
}

fn bridge(index: u32, name: &str, mtu: u32) -> Link {
    Link {
        mtu,
        ..Link::bridge(index, name)
    }
}

fn call(command: Command, type_if: TypeIf, dev: &str) -> XenCall {
    XenCall {
        type_if,
        dev: IfName::new(dev).unwrap(),
        ..XenCall::for_test(command, 3, 0)
    }
}

fn backend() -> Backend {
    Backend {
        path: "backend/vif/3/0".into(),
        bridge: Some("xenbr0".into()),
        mtu: None,
        vifname: None,
        frontend_mtu_key: Some("/local/domain/3/device/vif/0/mtu".into()),
        ip: None,
        addresses: vec![],
        mac: None,
        vlan: None,
    }
}

fn kernel(links: Vec<Link>) -> Snapshot {
    Snapshot {
        links,
        devices: vec![],
        ..Default::default()
    }
}

fn words(plan: &Plan) -> Vec<String> {
    plan.steps().iter().map(|s| s.to_string()).collect()
}

/// The error attaching with this bridge word gives.
fn attach_error(c: &XenCall, bridge: &str, k: &Snapshot) -> String {
    let b = Backend {
        bridge: Some(bridge.into()),
        ..backend()
    };
    attach(c, &b, k).unwrap_err().to_string()
}

fn attach(call: &XenCall, backend: &Backend, kernel: &Snapshot) -> Result<Plan> {
    let request = BridgeRequest::for_xen(&XenPort::for_test(call, backend))?;
    plan_xen_attach(
        &XenPort::for_test(call, backend),
        &request,
        &Requested::default(),
        kernel,
        None,
    )
}

#[test]
fn fresh_vif_in_contract_order() {
    let mut vif = link(7, "vif3.0", Some("veth"));
    vif.mac = Some(MacAddr([0x02, 0, 0, 0, 0, 7]));
    let k = kernel(vec![bridge(2, "xenbr0", 9000), vif]);
    let plan = attach(
        &call(Command::Online, TypeIf::Vif, "vif3.0"),
        &backend(),
        &k,
    )
    .unwrap();
    assert_eq!(
        words(&plan),
        [
            "set vif3.0 address fe:ff:ff:ff:ff:ff",
            "set vif3.0 mtu 9000",
            "write /local/domain/3/device/vif/0/mtu = 9000",
            "attach vif3.0 to bridge xenbr0",
            "set vif3.0 up",
        ]
    );
    assert_eq!(plan.notes, ["MTU 9000 from bridge xenbr0"]);
}

#[test]
fn backend_mtu_wins_over_the_bridge() {
    let k = kernel(vec![bridge(2, "xenbr0", 9000), link(7, "vif3.0", None)]);
    let b = Backend {
        mtu: Some(1400),
        ..backend()
    };
    let plan = attach(&call(Command::Online, TypeIf::Vif, "vif3.0"), &b, &k).unwrap();
    assert!(words(&plan).contains(&"set vif3.0 mtu 1400".to_string()));
    assert_eq!(plan.notes, ["MTU 1400 from backend/vif/3/0/mtu"]);
}

#[test]
fn second_online_changes_nothing_once_the_frontend_knows_the_mtu() {
    let mut vif = link(7, "vif3.0", None);
    vif.master = Some(2);
    vif.up = true;
    vif.mtu = 9000;
    let k = kernel(vec![bridge(2, "xenbr0", 9000), vif]);
    let c = call(Command::Online, TypeIf::Vif, "vif3.0");
    let mut port = XenPort::for_test(&c, &backend());
    let request = BridgeRequest::for_xen(&port).unwrap();
    let plan =
        |port: &XenPort| plan_xen_attach(port, &request, &Requested::default(), &k, None).unwrap();
    assert_eq!(
        words(&plan(&port)),
        ["write /local/domain/3/device/vif/0/mtu = 9000"]
    );
    port.frontend_mtu = Some("1500".into());
    assert_eq!(
        words(&plan(&port)),
        ["write /local/domain/3/device/vif/0/mtu = 9000"]
    );
    port.frontend_mtu = Some("9000".into());
    assert!(plan(&port).is_empty());
}

#[test]
fn port_of_another_bridge_is_moved_and_undo_moves_it_back() {
    let mut vif = link(7, "vif3.0", None);
    vif.master = Some(5);
    let k = kernel(vec![
        bridge(2, "xenbr0", 1500),
        bridge(5, "xenbr1", 1500),
        vif,
    ]);
    let plan = attach(
        &call(Command::Online, TypeIf::Vif, "vif3.0"),
        &backend(),
        &k,
    )
    .unwrap();
    let attach_step = plan
        .iter()
        .find(|s| matches!(s, Step::Attach { .. }))
        .unwrap();
    assert_eq!(
        attach_step.undo().unwrap().to_string(),
        "attach vif3.0 to bridge xenbr1"
    );
}

#[test]
fn tap_gets_no_frontend_write() {
    let k = kernel(vec![
        bridge(2, "xenbr0", 1500),
        link(9, "vif3.0-emu", Some("tun")),
    ]);
    let plan = attach(
        &call(Command::Add, TypeIf::Tap, "vif3.0-emu"),
        &backend(),
        &k,
    )
    .unwrap();
    assert_eq!(
        words(&plan),
        ["attach vif3.0-emu to bridge xenbr0", "set vif3.0-emu up"]
    );
}

#[test]
fn vifname_renames_first_on_a_down_link() {
    let mut vif = link(7, "vif3.0", None);
    vif.up = true;
    let k = kernel(vec![bridge(2, "xenbr0", 1500), vif]);
    let b = Backend {
        vifname: Some(IfName::new("xen1.0").unwrap()),
        ..backend()
    };
    let plan = attach(&call(Command::Online, TypeIf::Vif, "vif3.0"), &b, &k).unwrap();
    assert_eq!(
        &words(&plan)[..2],
        ["set vif3.0 down", "rename vif3.0 to xen1.0",]
    );
    assert_eq!(words(&plan).last().unwrap(), "set xen1.0 up");
}

#[test]
fn vifname_collision() {
    let k = kernel(vec![
        bridge(2, "xenbr0", 1500),
        link(7, "vif3.0", None),
        link(8, "xen1.0", None),
    ]);
    let b = Backend {
        vifname: Some(IfName::new("xen1.0").unwrap()),
        ..backend()
    };
    assert_eq!(
        attach(&call(Command::Online, TypeIf::Vif, "vif3.0"), &b, &k)
            .unwrap_err()
            .to_string(),
        "Cannot rename interface vif3.0. An interface with name xen1.0 already exists."
    );
}

#[test]
fn renamed_device_is_recognised_on_rerun() {
    let mut renamed = link(7, "xen1.0", None);
    renamed.alias = Some("vif3.0".into());
    let b = Backend {
        vifname: Some(IfName::new("xen1.0").unwrap()),
        ..backend()
    };
    let k = kernel(vec![bridge(2, "xenbr0", 1500), renamed.clone()]);
    assert!(attach(&call(Command::Online, TypeIf::Vif, "vif3.0"), &b, &k).is_ok());
    // Without proof that it is ours, it is somebody else's device.
    renamed.alias = None;
    let k = kernel(vec![bridge(2, "xenbr0", 1500), renamed]);
    assert_eq!(
        attach(&call(Command::Online, TypeIf::Vif, "vif3.0"), &b, &k)
            .unwrap_err()
            .to_string(),
        "vif3.0 does not exist and xen1.0 is not its renamed device"
    );
    let k = Snapshot {
        devices: vec![("xen1.0".into(), "vif-3-0".into())],
        ..k
    };
    assert!(attach(&call(Command::Online, TypeIf::Vif, "vif3.0"), &b, &k).is_ok());
}

#[test]
fn tap_with_vifname_uses_an_existing_emu_name() {
    let b = Backend {
        vifname: Some(IfName::new("xen1.0").unwrap()),
        ..backend()
    };
    let k = kernel(vec![
        bridge(2, "xenbr0", 1500),
        link(9, "xen1.0-emu", Some("tun")),
    ]);
    let plan = attach(&call(Command::Add, TypeIf::Tap, "vif3.0-emu"), &b, &k).unwrap();
    assert_eq!(words(&plan)[0], "attach xen1.0-emu to bridge xenbr0");
}

#[test]
fn missing_device() {
    let k = kernel(vec![bridge(2, "xenbr0", 1500)]);
    assert_eq!(
        attach(
            &call(Command::Online, TypeIf::Vif, "vif3.0"),
            &backend(),
            &k
        )
        .unwrap_err()
        .to_string(),
        "vif3.0 does not exist"
    );
}

#[test]
fn bridge_errors() {
    let c = call(Command::Online, TypeIf::Vif, "vif3.0");
    let none = Backend {
        bridge: None,
        ..backend()
    };
    assert_eq!(
        BridgeRequest::for_xen(&XenPort::for_test(&c, &none))
            .unwrap_err()
            .to_string(),
        "no bridge specified: set bridge= in the vif configuration (looked in backend/vif/3/0/bridge, the bridge= argument and the bridge environment variable)"
    );
    let k = kernel(vec![link(7, "vif3.0", None), link(3, "eth1", Some("veth"))]);
    assert_eq!(
        attach(&c, &backend(), &k).unwrap_err().to_string(),
        "bridge xenbr0 does not exist (named by backend/vif/3/0/bridge, the vif configuration's bridge=)"
    );
    // Given by udev or by hand: the word or the variable.
    for (origin, named_by) in [
        (BridgeOrigin::XenArgument, "the script's bridge= argument"),
        (
            BridgeOrigin::XenEnvironment,
            "the bridge environment variable",
        ),
    ] {
        let mut given = c.clone();
        given.overrides.bridge = Some(GivenBridge::new("br7", origin));
        let none = Backend {
            bridge: None,
            ..backend()
        };
        assert_eq!(
            attach(&given, &none, &k).unwrap_err().to_string(),
            format!("bridge br7 does not exist (named by {named_by})")
        );
    }
    assert_eq!(
        attach_error(&c, "eth1", &k),
        "eth1 exists but is not a bridge (it is a veth link)"
    );
    assert_eq!(
        attach_error(&c, "ovsbr0.10:20", &k),
        "bridge \"ovsbr0.10:20\" uses the bridge.tag:trunk syntax but names no Linux bridge here: for Open vSwitch use the vif-openvswitch script"
    );
    assert_eq!(
        attach_error(&c, "ovsbr0.10", &k),
        "bridge \"ovsbr0.10\" uses the bridge.tag:trunk syntax but names no Linux bridge here: for Open vSwitch use the vif-openvswitch script"
    );
    assert_eq!(
        attach_error(&c, "a234567890123456", &k),
        "invalid interface name \"a234567890123456\": it is longer than 15 bytes"
    );
}

#[test]
fn a_bridge_named_like_a_vlan_is_used_when_it_exists() {
    let c = call(Command::Online, TypeIf::Vif, "vif3.0");
    let b = Backend {
        bridge: Some("br0.10".into()),
        ..backend()
    };
    let k = kernel(vec![link(7, "vif3.0", None), bridge(2, "br0.10", 1500)]);
    assert!(attach(&c, &b, &k).is_ok());
}

#[test]
fn argv_bridge_when_xenstore_has_none() {
    let mut c = call(Command::Online, TypeIf::Vif, "vif3.0");
    c.overrides.bridge = Some(GivenBridge::new("br1", BridgeOrigin::XenArgument));
    let k = kernel(vec![link(7, "vif3.0", None), bridge(2, "br1", 1500)]);
    let plan = attach(
        &c,
        &Backend {
            bridge: None,
            ..backend()
        },
        &k,
    )
    .unwrap();
    assert!(words(&plan).contains(&"attach vif3.0 to bridge br1".to_string()));
}

#[test]
fn legacy_xenbr_to_eth() {
    let c = call(Command::Online, TypeIf::Vif, "vif3.0");
    let k = kernel(vec![link(7, "vif3.0", None), bridge(4, "eth0", 1500)]);
    let plan = attach(&c, &backend(), &k).unwrap();
    assert_eq!(
        plan.notes[0],
        "bridge xenbr0 does not exist; using the legacy bridge eth0"
    );
    assert!(words(&plan).contains(&"attach vif3.0 to bridge eth0".to_string()));
}

#[test]
fn detach_and_vanished_device() {
    let c = call(Command::Offline, TypeIf::Vif, "vif3.0");
    let mut vif = link(7, "vif3.0", None);
    vif.up = true;
    vif.master = Some(2);
    let k = kernel(vec![bridge(2, "xenbr0", 1500), vif]);
    let plan = plan_xen_detach(&XenPort::for_test(&c, &backend()), &k, None).unwrap();
    assert_eq!(
        words(&plan),
        ["set vif3.0 down", "detach vif3.0 from its bridge"]
    );
    let gone = plan_xen_detach(&XenPort::for_test(&c, &backend()), &kernel(vec![]), None).unwrap();
    assert!(gone.is_empty());
    assert_eq!(gone.notes, ["vif3.0 is already gone"]);
}

#[test]
fn detach_uses_the_final_name_only_when_it_is_ours() {
    let c = call(Command::Offline, TypeIf::Vif, "vif3.0");
    let b = Backend {
        vifname: Some(IfName::new("xen1.0").unwrap()),
        ..backend()
    };
    let mut renamed = link(7, "xen1.0", None);
    renamed.alias = Some("vif3.0".into());
    let plan = plan_xen_detach(
        &XenPort::for_test(&c, &b),
        &kernel(vec![renamed.clone()]),
        None,
    )
    .unwrap();
    assert_eq!(words(&plan), ["set xen1.0 down"]);
    renamed.alias = None;
    let plan = plan_xen_detach(&XenPort::for_test(&c, &b), &kernel(vec![renamed]), None).unwrap();
    assert!(plan.steps().is_empty());
}

fn vlan_bridge(index: u32, name: &str) -> Link {
    Link {
        vlan_filtering: true,
        ..bridge(index, name, 1500)
    }
}

#[test]
fn openvswitch_syntax_gives_vlans_on_a_vlan_aware_linux_bridge() {
    let c = call(Command::Online, TypeIf::Vif, "vif3.0");
    let k = kernel(vec![link(7, "vif3.0", None), vlan_bridge(2, "br0")]);
    for (word, options) in [
        ("br0.10", "vlan 10 untagged"),
        ("br0.10:30:20", "vlan 10 untagged, trunks 20,30"),
        ("br0:20", "trunks 20"),
    ] {
        let b = Backend {
            bridge: Some(word.into()),
            ..backend()
        };
        let plan = attach(&c, &b, &k).unwrap();
        assert_eq!(
            words(&plan)[1..],
            [
                "attach vif3.0 to bridge br0".to_owned(),
                format!("set vif3.0 bridge port: {options}"),
                "set vif3.0 up".to_owned(),
            ],
            "{word}"
        );
        assert!(plan.notes.contains(&format!("bridge br0 with {options}")));
    }
}

#[test]
fn vlans_need_a_vlan_aware_bridge_and_a_valid_tag() {
    let c = call(Command::Online, TypeIf::Vif, "vif3.0");
    let k = kernel(vec![link(7, "vif3.0", None), bridge(2, "br0", 1500)]);
    assert_eq!(
        attach_error(&c, "br0.10", &k),
        "bridge br0 is not VLAN-aware: vlan 10 untagged for vif3.0 needs vlan_filtering (ip link set br0 type bridge vlan_filtering 1)"
    );
    assert_eq!(
        attach_error(&c, "br0:4095", &k),
        "invalid bridge \"br0:4095\": VLAN \"4095\" is not a number from 1 to 4094"
    );
}

#[test]
fn config_options_apply_and_learning_off_pins_the_backend_mac() {
    let c = call(Command::Online, TypeIf::Vif, "vif3.0");
    let k = kernel(vec![link(7, "vif3.0", None), vlan_bridge(2, "xenbr0")]);
    let requested = Requested {
        vlans: Vlans {
            access: Some(Vid::parse("10").unwrap()),
            trunks: vec![],
            untagged: vec![],
        },
        isolated: Some(true),
        learning: Some(false),
        hairpin: None,
    };
    let b = Backend {
        mac: Some(MacAddr([0, 0x16, 0x3e, 0, 0, 1])),
        ..backend()
    };
    let request = BridgeRequest::for_xen(&XenPort::for_test(&c, &b)).unwrap();
    let plan = plan_xen_attach(&XenPort::for_test(&c, &b), &request, &requested, &k, None).unwrap();
    assert!(
        words(&plan).contains(
            &"set vif3.0 bridge port: vlan 10 untagged, isolated, learning off, 00:16:3e:00:00:01 static".to_owned()
        ),
        "{:?}",
        words(&plan)
    );
    // The bridge word's VLANs win over the section's.
    let b = Backend {
        bridge: Some("xenbr0.20".into()),
        ..b
    };
    let request = BridgeRequest::for_xen(&XenPort::for_test(&c, &b)).unwrap();
    let plan = plan_xen_attach(&XenPort::for_test(&c, &b), &request, &requested, &k, None).unwrap();
    assert!(
        words(&plan)
            .iter()
            .any(|w| w.contains("vlan 20 untagged, isolated"))
    );
    // Learning off with no MAC to pin is refused before anything runs.
    let b = Backend { mac: None, ..b };
    let err =
        plan_xen_attach(&XenPort::for_test(&c, &b), &request, &requested, &k, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "learning = no for vif3.0 needs the guest MAC to pin: set mac= in the vif configuration (backend/vif/3/0/mac)"
    );
}

#[test]
fn a_port_loses_its_addresses_but_keeps_its_ipv6_link_local() {
    let c = call(Command::Online, TypeIf::Vif, "vif3.0");
    let b = Backend {
        bridge: Some("xenbr0".into()),
        ..backend()
    };
    let mut k = kernel(vec![link(7, "vif3.0", None), bridge(2, "xenbr0", 1500)]);
    let address = |text: &str, len| Prefix::new(text.parse().unwrap(), len);
    k.addresses = vec![
        (7, address("192.0.2.9", 24)),
        (7, address("fe80::fcff:ffff:feff:ffff", 64)),
        (2, address("192.0.2.1", 24)),
    ];
    let plan = attach(&c, &b, &k).unwrap();
    assert_eq!(
        words(&plan),
        [
            "delete address 192.0.2.9/24 from vif3.0",
            "write /local/domain/3/device/vif/0/mtu = 1500",
            "attach vif3.0 to bridge xenbr0",
            "set vif3.0 up",
        ]
    );
}

/// The backend with this bridge word and `B/vlan`.
fn with_vlan(bridge: &str, vlan: &str) -> Backend {
    Backend {
        bridge: Some(bridge.into()),
        vlan: Some(vlan.into()),
        ..backend()
    }
}

#[test]
fn xen_vlan_gives_the_port_its_pvid_tagged_and_untagged_vlans() {
    let c = call(Command::Online, TypeIf::Vif, "vif3.0");
    let k = kernel(vec![link(7, "vif3.0", None), vlan_bridge(2, "br0")]);
    for (vlan, options) in [
        ("10", "vlan 10 untagged"),
        ("10p/20/30u", "vlan 10 untagged, trunks 20, untagged 30"),
        (
            "30/10p/100+10x4",
            "vlan 10 untagged, trunks 30,100,110,120,130",
        ),
    ] {
        let plan = attach(&c, &with_vlan("br0", vlan), &k).unwrap();
        assert_eq!(
            words(&plan)[1..],
            [
                "attach vif3.0 to bridge br0".to_owned(),
                format!("set vif3.0 bridge port: {options}"),
                "set vif3.0 up".to_owned(),
            ],
            "{vlan}"
        );
        let note = format!("VLANs from backend/vif/3/0/vlan: {vlan}");
        assert!(plan.notes.contains(&note), "{:?}", plan.notes);
    }
    // B/vlan is the vif's own, as a bridge word's VLANs are: it wins over a [port] section's.
    let requested = Requested {
        vlans: Vlans {
            access: Some(Vid::parse("99").unwrap()),
            trunks: vec![],
            untagged: vec![],
        },
        hairpin: Some(true),
        ..Requested::default()
    };
    let b = with_vlan("br0", "10p/20");
    let request = BridgeRequest::for_xen(&XenPort::for_test(&c, &b)).unwrap();
    let plan = plan_xen_attach(&XenPort::for_test(&c, &b), &request, &requested, &k, None).unwrap();
    assert!(
        words(&plan)
            .contains(&"set vif3.0 bridge port: vlan 10 untagged, trunks 20, hairpin".into()),
        "{:?}",
        words(&plan)
    );
    // A Linux bridge that happens to be called br0.10 takes B/vlan like any other.
    let k = kernel(vec![link(7, "vif3.0", None), vlan_bridge(2, "br0.10")]);
    let plan = attach(&c, &with_vlan("br0.10", "20"), &k).unwrap();
    assert!(words(&plan).contains(&"set vif3.0 bridge port: vlan 20 untagged".into()));
}

#[test]
fn xen_vlan_with_a_vlan_bridge_word_or_on_a_plain_bridge_fails() {
    let c = call(Command::Online, TypeIf::Vif, "vif3.0");
    let k = kernel(vec![link(7, "vif3.0", None), vlan_bridge(2, "br0")]);
    for word in ["br0.10", "br0:20", "br0.10:20"] {
        assert_eq!(
            attach(&c, &with_vlan(word, "10p/20"), &k)
                .unwrap_err()
                .to_string(),
            format!(
                "bridge {word:?} and backend/vif/3/0/vlan \"10p/20\" both give vif3.0 its VLANs: give them once, with vlan= and a bridge without VLANs or with the bridge word alone"
            )
        );
    }
    let k = kernel(vec![link(7, "vif3.0", None), bridge(2, "br0", 1500)]);
    assert_eq!(
        attach(&c, &with_vlan("br0", "10p/20u"), &k)
            .unwrap_err()
            .to_string(),
        "bridge br0 is not VLAN-aware: vlan 10 untagged, untagged 20 for vif3.0 needs vlan_filtering (ip link set br0 type bridge vlan_filtering 1)"
    );
}

#[test]
fn a_host_that_drops_bridged_traffic_is_a_warning_not_an_error() {
    let c = call(Command::Online, TypeIf::Vif, "vif3.0");
    let b = Backend {
        bridge: Some("xenbr0".into()),
        ..backend()
    };
    let mut k = kernel(vec![link(7, "vif3.0", None), bridge(2, "xenbr0", 1500)]);
    k.bridged_traffic_dropped = Some("the forward chain drops".into());
    let plan = attach(&c, &b, &k).unwrap();
    assert_eq!(plan.warnings, ["the forward chain drops"]);
    assert!(words(&plan).contains(&"attach vif3.0 to bridge xenbr0".to_owned()));
}

#[test]
fn without_xenstore_the_port_leaves_its_bridge_and_its_chain() {
    let dev = IfName::new("vif3.0").unwrap();
    let mut web1 = link(7, "web1", None);
    web1.up = true;
    web1.master = Some(2);
    let plan = plan_detach_without_xenstore(Some(&web1), &dev).unwrap();
    assert_eq!(
        words(&plan),
        [
            "set web1 down",
            "detach web1 from its bridge",
            "delete the antispoofing rules of web1"
        ]
    );
    // Gone already: a chain of its name may still be there.
    let gone = plan_detach_without_xenstore(None, &dev).unwrap();
    assert_eq!(words(&gone), ["delete the antispoofing rules of vif3.0"]);
    assert_eq!(gone.notes, ["vif3.0 is already gone"]);
}
