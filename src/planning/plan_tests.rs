use super::*;

fn link(index: u32, name: &str) -> LinkRef {
    LinkRef {
        index,
        name: IfName::new(name).unwrap(),
    }
}

#[test]
fn display_names_object_and_verb() {
    let vif = link(7, "vif3.0");
    let br = link(2, "xenbr0");
    assert_eq!(
        Step::Attach {
            link: vif.clone(),
            bridge: br,
            previous: None
        }
        .to_string(),
        "attach vif3.0 to bridge xenbr0"
    );
    assert_eq!(
        Step::SetMtu {
            link: vif.clone(),
            mtu: 9000,
            previous: 1500
        }
        .to_string(),
        "set vif3.0 mtu 9000"
    );
    assert_eq!(
        Step::SetMac {
            link: vif,
            mac: MacAddr::BACKEND_PORT,
            previous: None
        }
        .to_string(),
        "set vif3.0 address fe:ff:ff:ff:ff:ff"
    );
}

#[test]
fn undo_restores_what_was_found() {
    let vif = link(7, "vif3.0");
    let br = link(2, "xenbr0");
    assert_eq!(
        Step::Attach {
            link: vif.clone(),
            bridge: br.clone(),
            previous: None
        }
        .undo(),
        Some(Step::Detach { link: vif.clone() })
    );
    let other = link(3, "xenbr1");
    assert_eq!(
        Step::Attach {
            link: vif.clone(),
            bridge: br.clone(),
            previous: Some(other.clone())
        }
        .undo(),
        Some(Step::Attach {
            link: vif.clone(),
            bridge: other,
            previous: Some(br)
        })
    );
    assert_eq!(
        Step::SetMtu {
            link: vif.clone(),
            mtu: 9000,
            previous: 1500
        }
        .undo(),
        Some(Step::SetMtu {
            link: vif.clone(),
            mtu: 1500,
            previous: 9000
        })
    );
    assert_eq!(
        Step::SetMtu {
            link: vif.clone(),
            mtu: 1500,
            previous: 1500
        }
        .undo(),
        None
    );
    assert_eq!(
        Step::SetUp {
            link: vif.clone(),
            was_up: true
        }
        .undo(),
        None
    );
    assert_eq!(
        Step::SetUp {
            link: vif.clone(),
            was_up: false
        }
        .undo(),
        Some(Step::SetDown {
            link: vif.clone(),
            was_up: true
        })
    );
    assert_eq!(
        Step::SetDown {
            link: vif.clone(),
            was_up: false
        }
        .undo(),
        None
    );
    assert_eq!(
        Step::Rename {
            link: vif.clone(),
            to: IfName::new("xen1.0").unwrap()
        }
        .undo(),
        Some(Step::Rename {
            link: link(7, "xen1.0"),
            to: IfName::new("vif3.0").unwrap()
        })
    );
    assert_eq!(Step::FlushAddresses { link: vif.clone() }.undo(), None);
    // The bucket towards the guest is replaced by a rerun; the policer is removed.
    let rate = Rate(10_000_000);
    let tbf = Step::SetRateLimit {
        link: vif.clone(),
        rate,
    };
    assert_eq!(tbf.undo(), None);
    let police = Step::SetIngressLimit {
        link: vif.clone(),
        rate,
    };
    assert_eq!(police.undo(), Some(Step::RemoveIngressLimit { link: vif }));
}

#[test]
fn steps_for_a_port_go_before_its_link_up_else_before_the_hooks() {
    let up = |name: &str| Step::SetUp {
        link: link(7, name),
        was_up: false,
    };
    let hooks = Step::RunHooks(HookRun {
        dir: PathBuf::from("/etc/xen/scripts/vif-post.d"),
        vars: vec![],
    });
    let port = IfName::new("vif3.0").unwrap();
    let plan = Plan {
        steps: vec![up("other0"), up("vif3.0"), hooks.clone()],
        ..Plan::default()
    };
    assert_eq!(plan.before_link_up(&port), 1);
    let plan = Plan {
        steps: vec![up("other0"), hooks],
        ..Plan::default()
    };
    assert_eq!(plan.before_link_up(&port), 1);
    assert_eq!(Plan::default().before_link_up(&port), 0);
}
