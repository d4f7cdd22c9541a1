use super::*;
use crate::types::names::IfName;

fn bridge(vlan_filtering: bool) -> Link {
    Link {
        mac: None,
        vlan_filtering,
        ..Link::bridge(2, "br0")
    }
}

fn port() -> LinkRef {
    LinkRef {
        index: 7,
        name: IfName::new("vif3.0").unwrap(),
    }
}

/// A plan whose one step brings the port up, and that step.
fn port_coming_up() -> (Plan, Step) {
    let up = Step::SetUp {
        link: port(),
        was_up: false,
    };
    let mut plan = Plan::default();
    plan.push(Phase::LinkUp, up.clone());
    (plan, up)
}

#[test]
fn the_step_goes_before_link_up_and_nothing_is_added_for_defaults() {
    let (mut plan, up) = port_coming_up();
    add_to_attach(&mut plan, &port(), &bridge(false), PortOptions::default()).unwrap();
    assert_eq!(plan.steps(), std::slice::from_ref(&up));
    let options = PortOptions {
        hairpin: true,
        ..PortOptions::default()
    };
    add_to_attach(&mut plan, &port(), &bridge(false), options.clone()).unwrap();
    let step = Step::SetPortOptions {
        link: port(),
        options,
    };
    assert_eq!(plan.steps(), [step, up]);
    assert_eq!(
        plan.steps()[0].to_string(),
        "set vif3.0 bridge port: hairpin"
    );
    assert_eq!(plan.steps()[0].undo(), None);
}

#[test]
fn the_rate_limit_goes_both_ways_before_link_up() {
    let (mut plan, up) = port_coming_up();
    add_rate_limit(&mut plan, &port(), Rate(10_000_000));
    let words: Vec<String> = plan.steps().iter().map(Step::to_string).collect();
    assert_eq!(
        words,
        [
            "limit what vif3.0 sends its guest to 10mbit",
            "limit what vif3.0 takes from its guest to 10mbit",
            "set vif3.0 up",
        ]
    );
    assert_eq!(plan.steps()[2], up);
}

#[test]
fn a_tap_going_away_loses_its_ingress_limit() {
    let mut plan = Plan::default();
    add_rate_limit_removal(&mut plan, &port());
    assert_eq!(plan.steps(), [Step::RemoveIngressLimit { link: port() }]);
    assert_eq!(
        plan.steps()[0].to_string(),
        "delete the ingress qdisc of vif3.0 and its rate limit"
    );
}
