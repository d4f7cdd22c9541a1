use super::*;

fn word(text: &str) -> BridgeWord {
    BridgeWord::parse(text).unwrap()
}

fn tagged(text: &str) -> (String, String) {
    let word = word(text);
    let tagged = word.tagged().unwrap();
    (tagged.bridge.to_string(), tagged.vlans.to_string())
}

#[test]
fn a_plain_name_is_a_link_and_a_bridge_without_vlans() {
    let w = word("xenbr0");
    assert_eq!(w.name().map(IfName::as_str), Some("xenbr0"));
    assert_eq!(w.link_name().as_str(), "xenbr0");
    assert_eq!(tagged("xenbr0"), ("xenbr0".into(), "".into()));
    assert!(w.with_vlans().is_none());
    assert_eq!(w.to_string(), "xenbr0");
}

#[test]
fn tag_and_trunks_give_a_bridge_and_its_vlans() {
    let cases = [
        (
            "ovsbr0.10:30:20",
            "ovsbr0",
            "vlan 10 untagged, trunks 20,30",
        ),
        ("br0:20:30:20", "br0", "trunks 20,30"),
        ("br0.4094", "br0", "vlan 4094 untagged"),
        // The tag follows the last dot.
        ("br0.1.10", "br0.1", "vlan 10 untagged"),
    ];
    for (text, bridge, vlans) in cases {
        assert_eq!(tagged(text), (bridge.into(), vlans.into()), "{text}");
        let w = word(text);
        assert_eq!(w.with_vlans().unwrap().bridge.as_str(), bridge);
        assert_eq!(w.as_str(), text);
    }
}

#[test]
fn a_word_with_a_tag_keeps_both_readings() {
    // A Linux bridge may really be called br0.10: the kernel decides.
    let w = word("br0.10");
    assert_eq!(w.name().map(IfName::as_str), Some("br0.10"));
    assert_eq!(w.link_name().as_str(), "br0.10");
    assert_eq!(w.with_vlans().unwrap().bridge.as_str(), "br0");
    // Trunks name no link: ':' is in no interface name.
    let w = word("br0.10:20");
    assert_eq!(w.name(), None);
    assert_eq!(w.link_name().as_str(), "br0");
}

#[test]
fn a_name_that_is_no_tagged_word_is_still_a_link_name() {
    for (text, why) in [
        ("br0.", "VLAN \"\" is not a number from 1 to 4094"),
        ("br0.5000", "VLAN \"5000\" is not a number from 1 to 4094"),
        ("br0.x", "VLAN \"x\" is not a number from 1 to 4094"),
        ("br0.0", "VLAN \"0\" is not a number from 1 to 4094"),
        (".10", "the bridge name is empty"),
    ] {
        let w = word(text);
        assert_eq!(w.link_name().as_str(), text);
        let bad = w.tagged().unwrap_err();
        assert_eq!((bad.word(), bad.why()), (text, why));
        assert_eq!(bad.to_string(), format!("invalid bridge {text:?}: {why}"));
    }
}

#[test]
fn a_word_with_neither_reading_gets_one_sentence() {
    let cases = [
        ("", "invalid interface name \"\": it is empty"),
        (
            "a234567890123456",
            "invalid interface name \"a234567890123456\": it is longer than 15 bytes",
        ),
        (
            "a234567890123456.10",
            "invalid interface name \"a234567890123456.10\": it is longer than 15 bytes",
        ),
        (
            "br0:x",
            "invalid bridge \"br0:x\": VLAN \"x\" is not a number from 1 to 4094",
        ),
        (
            "br0:",
            "invalid bridge \"br0:\": VLAN \"\" is not a number from 1 to 4094",
        ),
        (
            "br0:4095",
            "invalid bridge \"br0:4095\": VLAN \"4095\" is not a number from 1 to 4094",
        ),
        (
            "br0.5000:20",
            "invalid bridge \"br0.5000:20\": VLAN \"5000\" is not a number from 1 to 4094",
        ),
        (
            "a234567890123456:20",
            "invalid bridge \"a234567890123456:20\": the bridge name is longer than 15 bytes",
        ),
        (":20", "invalid bridge \":20\": the bridge name is empty"),
        (
            "br 0:20",
            "invalid bridge \"br 0:20\": the bridge name contains whitespace or a control character",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(
            BridgeWord::parse(text).unwrap_err().to_string(),
            message,
            "{text}"
        );
    }
}

#[test]
fn names_are_pinned_at_15_bytes() {
    assert_eq!(
        word("a23456789012345").link_name().as_str(),
        "a23456789012345"
    );
    // 16 bytes are no link, but the part before the tag may be a bridge.
    let w = word("a234567890123.10");
    assert_eq!(w.name(), None);
    assert_eq!(w.link_name().as_str(), "a234567890123");
    assert_eq!(
        w.with_vlans().unwrap().vlans.to_string(),
        "vlan 10 untagged"
    );
}

#[test]
fn an_origin_names_the_place_an_admin_edits() {
    let origins = [
        (
            BridgeOrigin::Xenstore("backend/vif/3/0/bridge".into()),
            "backend/vif/3/0/bridge, the vif configuration's bridge=",
        ),
        (BridgeOrigin::XenArgument, "the script's bridge= argument"),
        (
            BridgeOrigin::XenEnvironment,
            "the bridge environment variable",
        ),
        (BridgeOrigin::TapArgument, "the bridge argument"),
        (BridgeOrigin::TapEnvironment, "VIFKIT_BRIDGE"),
        (
            BridgeOrigin::Config {
                path: "/etc/vifkit/vifkit.conf".into(),
                line: 7,
            },
            "/etc/vifkit/vifkit.conf:7",
        ),
        (BridgeOrigin::DefaultRoute, "the default route"),
    ];
    for (origin, text) in origins {
        assert_eq!(origin.to_string(), text);
    }
    let given = GivenBridge::new("br0.10", BridgeOrigin::TapEnvironment);
    assert_eq!(given.word().unwrap().link_name().as_str(), "br0.10");
}
