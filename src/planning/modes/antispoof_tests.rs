use super::*;
use crate::planning::plan::Phase;
use crate::planning::snapshot::Snapshot;
use crate::types::guest_traffic::GuestTraffic;
use crate::types::hook::HookRun;
use crate::types::link::LinkRef;
use crate::types::prefix::Prefix;

fn name(s: &str) -> IfName {
    IfName::new(s).unwrap()
}

fn link(s: &str) -> LinkRef {
    LinkRef {
        index: 7,
        name: name(s),
    }
}

fn hooks() -> Step {
    Step::RunHooks(HookRun {
        dir: "/etc/xen/scripts/vif-post.d".into(),
        vars: vec![],
    })
}

fn guest<'a>(port: &'a IfName, addresses: &'a [Prefix], on: bool) -> Guest<'a> {
    Guest {
        port,
        mac: Some(MacAddr::parse("00:16:3e:10:10:10").unwrap()),
        addresses,
        enabled: (on, "/etc/vifkit/vifkit.conf:3".to_owned()),
        traffic: GuestTraffic::default(),
        address_source: "ip= in the vif configuration",
        background_purge: true,
    }
}

fn words(plan: &Plan) -> Vec<String> {
    plan.steps().iter().map(|s| s.to_string()).collect()
}

#[test]
fn filter_and_purge_go_right_before_the_link_comes_up() {
    let port = name("xen1.0");
    let addresses = [Prefix::new("192.0.2.10".parse().unwrap(), 32)];
    let mut plan = Plan::default();
    let rename = Step::Rename {
        link: link("vif1.0"),
        to: port.clone(),
    };
    plan.push(Phase::Prepare, rename);
    let up = Step::SetUp {
        link: link("xen1.0"),
        was_up: false,
    };
    plan.push(Phase::LinkUp, up);
    plan.push(Phase::Hooks, hooks());
    add_to_attach(
        &mut plan,
        &guest(&port, &addresses, true),
        &Snapshot::default(),
    )
    .unwrap();
    assert_eq!(
        words(&plan),
        [
            "rename vif1.0 to xen1.0",
            "filter xen1.0 (netdev vifkit-antispoof-253): mac 00:16:3e:10:10:10, ipv4 192.0.2.10, ipv6 fe80::216:3eff:fe10:1010",
            "purge conntrack entries of 192.0.2.10 (in the background, xen1.0 held meanwhile)",
            "set xen1.0 up",
            "run hooks in /etc/xen/scripts/vif-post.d",
        ]
    );
    assert_eq!(
        plan.steps()[1].undo(),
        Some(Step::RemovePortFilter { port: port.clone() })
    );
}

#[test]
fn a_run_that_must_leave_nothing_behind_purges_inline() {
    let port = name("vif1.0");
    let addresses = [Prefix::new("192.0.2.10".parse().unwrap(), 32)];
    let mut plan = Plan::default();
    let under_udev = Guest {
        background_purge: false,
        ..guest(&port, &addresses, true)
    };
    add_to_attach(&mut plan, &under_udev, &Snapshot::default()).unwrap();
    assert_eq!(
        plan.steps()[1],
        Step::PurgeConntrack {
            addresses: addresses.to_vec(),
            hold: None
        }
    );
    assert_eq!(
        plan.steps()[1].to_string(),
        "purge conntrack entries of 192.0.2.10"
    );
}

#[test]
fn a_port_already_up_is_filtered_before_the_hooks() {
    let port = name("vif1.0");
    let addresses = [Prefix::new("2001:db8::10".parse().unwrap(), 128)];
    let mut plan = Plan::default();
    plan.push(Phase::Hooks, hooks());
    add_to_attach(
        &mut plan,
        &guest(&port, &addresses, true),
        &Snapshot::default(),
    )
    .unwrap();
    assert!(matches!(plan.steps()[0], Step::SetPortFilter(_)));
    assert!(matches!(plan.steps()[2], Step::RunHooks(_)));
}

#[test]
fn off_or_without_addresses_nothing_is_installed_and_an_info_line_says_why() {
    let port = name("vif1.0");
    let addresses = [Prefix::new("192.0.2.10".parse().unwrap(), 32)];
    let mut plan = Plan::default();
    add_to_attach(
        &mut plan,
        &guest(&port, &addresses, false),
        &Snapshot::default(),
    )
    .unwrap();
    add_to_attach(&mut plan, &guest(&port, &[], true), &Snapshot::default()).unwrap();
    assert!(plan.steps().is_empty());
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    assert_eq!(
        plan.infos,
        [
            "antispoofing is off for vif1.0 (/etc/vifkit/vifkit.conf:3)",
            "no antispoofing for vif1.0: its addresses are unknown (set ip= in the vif configuration)",
        ]
    );
}

#[test]
fn detach_always_removes_before_the_hooks() {
    let port = name("vif1.0");
    let mut plan = Plan::default();
    let down = Step::SetDown {
        link: link("vif1.0"),
        was_up: true,
    };
    plan.push(Phase::Prepare, down);
    plan.push(Phase::Hooks, hooks());
    add_to_detach(&mut plan, &port);
    assert_eq!(
        words(&plan),
        [
            "set vif1.0 down",
            "delete the antispoofing rules of vif1.0",
            "run hooks in /etc/xen/scripts/vif-post.d",
        ]
    );
}

#[test]
fn more_blocks_than_one_rule_can_check_is_one_sentence_and_no_step() {
    let port = name("vif1.0");
    let addresses: Vec<_> = (1..=33u8)
        .map(|i| Prefix::new(format!("10.0.{i}.0").parse().unwrap(), 24))
        .collect();
    let mut plan = Plan::default();
    let err = add_to_attach(
        &mut plan,
        &guest(&port, &addresses, true),
        &Snapshot::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "vif1.0 has 33 IPv4 address blocks to allow, more than the 32 antispoofing can check per family; list fewer or set antispoof = no for it"
    );
    assert!(plan.steps().is_empty());
    let fits = &addresses[..32];
    add_to_attach(&mut plan, &guest(&port, fits, true), &Snapshot::default()).unwrap();
    assert!(matches!(plan.steps()[0], Step::SetPortFilter(_)));
}

/// The guest sends tagged frames to reach a trunk, or an untagged member besides its PVID.
fn filter_with_vlans(vlans: crate::types::vlan::Vlans) -> PortFilter {
    let port = name("vif1.0");
    let addresses = [Prefix::new("192.0.2.10".parse().unwrap(), 32)];
    let options = crate::types::port::PortOptions {
        vlans,
        ..Default::default()
    };
    let mut plan = Plan::default();
    let options = Step::SetPortOptions {
        link: link("vif1.0"),
        options,
    };
    plan.push(Phase::BeforeLinkUp, options);
    add_to_attach(
        &mut plan,
        &guest(&port, &addresses, true),
        &Snapshot::default(),
    )
    .unwrap();
    let Step::SetPortFilter(filter) = &plan.steps()[1] else {
        panic!("{:?}", plan.steps());
    };
    filter.clone()
}

#[test]
fn a_trunk_port_lets_tagged_frames_of_its_vlans_through() {
    use crate::types::vlan::{Vid, Vlans};
    let filter = filter_with_vlans(Vlans {
        access: None,
        trunks: vec![Vid::parse("20").unwrap()],
        untagged: vec![],
    });
    assert_eq!(filter.tagged_vlans, [20]);
    assert!(filter.to_string().ends_with(", tagged frames on VLANs 20"));
    let text = filter.chain().to_string();
    assert!(
        text.contains("ether type 0x8100 vlan id != 20 drop") && !text.contains("0x88a8"),
        "{text}"
    );
    let untagged = filter_with_vlans(Vlans {
        access: Some(Vid::parse("10").unwrap()),
        trunks: vec![],
        untagged: vec![Vid::parse("20").unwrap()],
    });
    assert_eq!(untagged.tagged_vlans, [20], "VLAN 20 is reached by tagging");
    let access_only = filter_with_vlans(Vlans {
        access: Some(Vid::parse("10").unwrap()),
        trunks: vec![],
        untagged: vec![],
    });
    assert!(access_only.tagged_vlans.is_empty());
}

#[test]
fn a_filter_installed_for_these_very_addresses_stays_and_so_do_the_flows() {
    let port = name("vif1.0");
    let addresses = [Prefix::new("192.0.2.10".parse().unwrap(), 32)];
    let mut plan = Plan::default();
    add_to_attach(
        &mut plan,
        &guest(&port, &addresses, true),
        &Snapshot::default(),
    )
    .unwrap();
    let Step::SetPortFilter(filter) = &plan.steps()[0] else {
        panic!("{:?}", plan.steps())
    };
    let installed = Snapshot {
        port_filters: vec![(port.clone(), filter.as_installed())],
        ..Snapshot::default()
    };
    let mut again = Plan::default();
    add_to_attach(&mut again, &guest(&port, &addresses, true), &installed).unwrap();
    assert!(again.is_empty());
    assert_eq!(again.notes, ["antispoofing of vif1.0 is in place"]);
    let moved = [Prefix::new("192.0.2.11".parse().unwrap(), 32)];
    let mut changed = Plan::default();
    add_to_attach(&mut changed, &guest(&port, &moved, true), &installed).unwrap();
    assert_eq!(
        changed.steps().len(),
        2,
        "a new address replaces the filter and purges"
    );
}

/// A chain of `port` as an earlier guest's filter left it (192.0.2.99).
fn stale_chain(port: &IfName) -> Snapshot {
    let old = [Prefix::new("192.0.2.99".parse().unwrap(), 32)];
    let filter = PortFilter::new(port.clone(), None, &old);
    Snapshot {
        port_filters: vec![(port.clone(), filter.as_installed())],
        ..Snapshot::default()
    }
}

#[test]
fn an_unfiltered_port_loses_a_stale_chain_of_its_name_before_it_comes_up() {
    let port = name("web1");
    let addresses = [Prefix::new("192.0.2.10".parse().unwrap(), 32)];
    let stale = stale_chain(&port);
    for guest in [guest(&port, &addresses, false), guest(&port, &[], true)] {
        let mut plan = Plan::default();
        let up = Step::SetUp {
            link: link("web1"),
            was_up: false,
        };
        plan.push(Phase::LinkUp, up);
        add_to_attach(&mut plan, &guest, &stale).unwrap();
        assert_eq!(
            words(&plan),
            ["delete the antispoofing rules of web1", "set web1 up"]
        );
        assert_eq!(
            plan.phase(Phase::BeforeLinkUp),
            [Step::RemovePortFilter { port: port.clone() }]
        );
        assert_eq!(
            plan.notes[0],
            "web1 has a stale antispoofing chain (an earlier guest's of that name, or from before antispoofing was off for it): removed before web1 comes up"
        );
    }
}

#[test]
fn an_unfiltered_port_without_a_chain_plans_nothing() {
    let port = name("web1");
    let addresses = [Prefix::new("192.0.2.10".parse().unwrap(), 32)];
    let other = stale_chain(&name("web2"));
    for kernel in [Snapshot::default(), other] {
        let mut plan = Plan::default();
        add_to_attach(&mut plan, &guest(&port, &addresses, false), &kernel).unwrap();
        add_to_attach(&mut plan, &guest(&port, &[], true), &kernel).unwrap();
        assert!(plan.is_empty(), "{:?}", plan.steps());
        assert_eq!(plan.infos.len(), 2, "{:?}", plan.infos);
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    }
}

#[test]
fn a_filtered_port_replaces_a_stale_chain_in_one_install() {
    let port = name("web1");
    let addresses = [Prefix::new("192.0.2.10".parse().unwrap(), 32)];
    let mut plan = Plan::default();
    add_to_attach(
        &mut plan,
        &guest(&port, &addresses, true),
        &stale_chain(&port),
    )
    .unwrap();
    assert!(matches!(plan.steps()[0], Step::SetPortFilter(_)));
    assert!(
        !plan
            .steps()
            .iter()
            .any(|s| matches!(s, Step::RemovePortFilter { .. })),
        "{:?}",
        plan.steps()
    );
}

#[test]
fn a_chain_with_the_right_fingerprint_but_other_rules_is_installed_again() {
    let port = name("vif1.0");
    let addresses = [Prefix::new("192.0.2.10".parse().unwrap(), 32)];
    let mut first = Plan::default();
    add_to_attach(
        &mut first,
        &guest(&port, &addresses, true),
        &Snapshot::default(),
    )
    .unwrap();
    let Step::SetPortFilter(filter) = &first.steps()[0] else {
        panic!("{:?}", first.steps())
    };
    let installed = filter.as_installed();
    let mut flushed = installed.clone();
    flushed.rules.clear();
    let mut one_more = installed.clone();
    one_more
        .rules
        .insert(0, one_more.rules.last().cloned().unwrap());
    let mut one_gone = installed.clone();
    one_gone.rules.remove(1);
    for (what, chain) in [
        ("flushed", flushed),
        ("a rule added", one_more),
        ("a rule deleted", one_gone),
    ] {
        assert_eq!(chain.fingerprint, filter.fingerprint(), "{what}");
        let kernel = Snapshot {
            port_filters: vec![(port.clone(), chain)],
            ..Snapshot::default()
        };
        let mut again = Plan::default();
        add_to_attach(&mut again, &guest(&port, &addresses, true), &kernel).unwrap();
        assert!(
            matches!(again.steps()[0], Step::SetPortFilter(_)),
            "{what}: {:?}",
            again.steps()
        );
    }
}

/// The filter of vif1.0 after `plan` and `kernel`, as `add_to_attach` plans it.
fn planned_filter(mut plan: Plan, kernel: &Snapshot) -> PortFilter {
    let port = name("vif1.0");
    let addresses = [Prefix::new("192.0.2.10".parse().unwrap(), 32)];
    add_to_attach(&mut plan, &guest(&port, &addresses, true), kernel).unwrap();
    let found = plan.steps().into_iter().find_map(|s| match s {
        Step::SetPortFilter(filter) => Some(filter.clone()),
        _ => None,
    });
    found.unwrap_or_else(|| panic!("no filter in {:?}", plan.steps()))
}

#[test]
fn an_open_vswitch_trunk_lets_tagged_frames_of_its_vlans_through() {
    use crate::sys::ovsdb::OvsPort;
    let ovs = OvsPort {
        name: "vif1.0".to_owned(),
        tag: None,
        trunks: vec![20, 30],
        external_ids: vec![],
        mtu: None,
    };
    // Added by this plug.
    let mut plan = Plan::default();
    let add = Step::OvsAddPort {
        link: link("vif1.0"),
        bridge: "ovsbr0".to_owned(),
        port: ovs.clone(),
    };
    plan.push(Phase::Prepare, add);
    assert_eq!(
        planned_filter(plan, &Snapshot::default()).tagged_vlans,
        [20, 30]
    );
    // Already in the database as wanted: no step, the same filter.
    let kernel = Snapshot {
        ovs_ports: vec![(name("vif1.0"), "ovsbr0".to_owned(), ovs)],
        ..Snapshot::default()
    };
    assert_eq!(
        planned_filter(Plan::default(), &kernel).tagged_vlans,
        [20, 30]
    );
}
