//! Unit tests of `vifkit status`: its table, its JSON and which taps are vifkit's.

use super::*;

fn row(name: &str) -> Row {
    Row {
        name: IfName::new(name).unwrap(),
        domain: Some((3, Some("web".to_owned()))),
        mode: "bridge",
        bridge: Some("xenbr0".to_owned()),
        uplinks: vec![],
        addresses: vec!["192.0.2.10".to_owned()],
        filter: true,
        hotplug_status: Some(Some("connected".to_owned())),
        drift: vec![],
    }
}

#[test]
fn the_table_aligns_its_columns_and_ends_with_the_health() {
    let tap = Row {
        domain: None,
        mode: "tap-routed",
        bridge: None,
        uplinks: vec!["eth0".to_owned()],
        addresses: vec![],
        filter: false,
        hotplug_status: None,
        drift: vec!["would attach tap0 to bridge br0".to_owned(), "b".to_owned()],
        ..row("tap0")
    };
    let missing = Row {
        domain: Some((12, None)),
        hotplug_status: Some(None),
        drift: vec!["only".to_owned()],
        ..row("vif12.0")
    };
    let empty = Row {
        hotplug_status: Some(Some(String::new())),
        ..row("vif3.0-emu")
    };
    let text = table(&[row("vif3.0"), empty, missing, tap]);
    assert_eq!(
        text,
        "\
PORT        DOMAIN   MODE        BRIDGE/UPLINK  ADDRESSES   FILTER  HOTPLUG    HEALTH
vif3.0      web (3)  bridge      xenbr0         192.0.2.10  on      connected  ok
vif3.0-emu  web (3)  bridge      xenbr0         192.0.2.10  on      empty      ok
vif12.0     12       bridge      xenbr0         192.0.2.10  on      missing    only
tap0        tap      tap-routed  eth0           -           off     -          would attach tap0 to bridge br0 (and 1 more: vifkit check tap0)
"
    );
}

#[test]
fn json_has_one_object_per_port_with_every_field() {
    let drifted = Row {
        drift: vec!["first".to_owned(), "second".to_owned()],
        hotplug_status: Some(None),
        domain: Some((4, None)),
        ..row("vif4.0-emu")
    };
    let v = to_json(&[row("vif3.0"), drifted]);
    assert_eq!(
        v[0],
        json!({
            "name": "vif3.0", "kind": "vif", "domain": {"id": 3, "name": "web"},
            "mode": "bridge", "bridge": "xenbr0", "uplinks": [],
            "addresses": ["192.0.2.10"], "filter": true, "hotplug_status": "connected",
            "health": "ok", "drift": [],
        })
    );
    assert_eq!(v[1]["kind"], "emu");
    assert_eq!(v[1]["domain"], json!({"id": 4, "name": null}));
    assert_eq!(v[1]["hotplug_status"], Value::Null);
    assert_eq!(v[1]["health"], "first");
    assert_eq!(v[1]["drift"], json!(["first", "second"]));
    assert_eq!(to_json(&[]), json!([]));
}

#[test]
fn a_tap_is_vifkits_by_its_rule_its_filter_or_its_port_mac() {
    let tap = Link {
        kind: Some("tun".into()),
        mac: Some(MacAddr([0x52, 0x54, 0, 1, 2, 3])),
        ..Link::veth(9, "tap0")
    };
    let config = Config::parse(
        std::path::Path::new("vifkit.conf"),
        "[port tap0]\nbridge = br0\n",
    )
    .unwrap();
    let rule = config.rule_for(&tap.name);
    assert!(
        !plugged_by_vifkit(&tap, None, false),
        "another program's tap"
    );
    assert!(plugged_by_vifkit(&tap, rule, false));
    assert!(plugged_by_vifkit(&tap, None, true));
    let bridged = Link {
        mac: Some(MacAddr::BACKEND_PORT),
        ..tap.clone()
    };
    assert!(plugged_by_vifkit(&bridged, None, false));
    let veth = Link::veth(3, "tap1");
    assert!(!plugged_by_vifkit(&veth, rule, true), "not a tap at all");
}
