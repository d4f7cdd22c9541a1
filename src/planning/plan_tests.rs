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
        Some(Step::RenameBack {
            link: link(7, "xen1.0"),
            to: IfName::new("vif3.0").unwrap()
        })
    );
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
fn phases_run_in_order_whatever_order_they_were_planned_in() {
    let up = Step::SetUp {
        link: link(7, "vif3.0"),
        was_up: false,
    };
    let hooks = Step::RunHooks(HookRun {
        dir: PathBuf::from("/etc/xen/scripts/vif-post.d"),
        vars: vec![],
    });
    let route = Step::AddRoute(Route::to("192.0.2.10".parse().unwrap(), 32));
    let filter = Step::RemovePortFilter {
        port: IfName::new("vif3.0").unwrap(),
    };
    let down = Step::SetDown {
        link: link(7, "vif3.0"),
        was_up: true,
    };
    let mut plan = Plan::default();
    assert!(plan.is_empty());
    plan.push(Phase::Hooks, hooks.clone());
    plan.push(Phase::After, route.clone());
    plan.push(Phase::LinkUp, up.clone());
    plan.push(Phase::BeforeLinkUp, filter.clone());
    plan.push(Phase::Prepare, down.clone());
    assert_eq!(plan.steps(), [down, filter, up, route, hooks.clone()]);
    assert_eq!(plan.phase(Phase::Hooks), [hooks]);
    plan.retain(|s| !matches!(s, Step::RunHooks(_)));
    assert_eq!(plan.steps().len(), 4);
}

#[test]
fn only_missing_objects_count_as_done_on_detach_not_missing_programs() {
    let exec = Step::Exec {
        program: PathBuf::from("/sbin/ifdown"),
        args: vec!["xen1.0".into()],
    };
    assert!(!exec.absent_means_done());
    let down = Step::SetDown {
        link: link(7, "vif3.0"),
        was_up: true,
    };
    assert!(down.absent_means_done());
}
