use super::*;

/// A spec as (PVID, tagged, untagged).
type Read = (u16, Vec<u16>, Vec<u16>);

fn read(text: &str) -> Read {
    let spec = XenVlan::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let ids = |vids: &[Vid]| vids.iter().map(|v| v.get()).collect();
    (spec.pvid.get(), ids(&spec.tagged), ids(&spec.untagged))
}

fn error(text: &str) -> String {
    XenVlan::parse(text).unwrap_err().to_string()
}

#[test]
fn a_single_vlan_is_the_pvid_with_or_without_its_mark() {
    for text in ["10", "10p", "10u", "10-10", "10+5x1"] {
        assert_eq!(read(text), (10, vec![], vec![]), "{text}");
    }
}

#[test]
fn every_form_of_term() {
    let cases: [(&str, Read); 7] = [
        ("10p/20", (10, vec![20], vec![])),
        ("10p/20u", (10, vec![], vec![20])),
        ("1p/10-12/20-21u", (1, vec![10, 11, 12], vec![20, 21])),
        ("10p/100+10x4", (10, vec![100, 110, 120, 130], vec![])),
        ("10p/100+10x4u", (10, vec![], vec![100, 110, 120, 130])),
        // Terms in any order; members come out sorted.
        ("30/20u/4094p/1", (4094, vec![1, 30], vec![20])),
        ("1p/2-4094", (1, (2..=4094).collect(), vec![])),
    ];
    for (text, want) in cases {
        assert_eq!(read(text), want, "{text}");
    }
}

#[test]
fn it_gives_a_bridge_port_its_vlans_and_keeps_its_text() {
    let spec = XenVlan::parse("10p/20/30u").unwrap();
    assert_eq!(spec.as_str(), "10p/20/30u");
    assert_eq!(spec.to_string(), "10p/20/30u");
    assert_eq!(
        spec.vlans().to_string(),
        "vlan 10 untagged, trunks 20, untagged 30"
    );
}

#[test]
fn bad_specs_fail_with_one_sentence_each() {
    let grammar = "expected VID, VIDp, VIDu, FIRST-LAST[u] or START+STEPxCOUNT[u]";
    let cases = [
        (
            "",
            "empty term in \"\": terms are separated by single slashes".to_owned(),
        ),
        (
            "10p//20",
            "empty term in \"10p//20\": terms are separated by single slashes".into(),
        ),
        (
            "10p/",
            "empty term in \"10p/\": terms are separated by single slashes".into(),
        ),
        ("0", "VLAN \"0\" is not a number from 1 to 4094".into()),
        (
            "4095p",
            "VLAN \"4095\" is not a number from 1 to 4094".into(),
        ),
        (
            "10p/4000-4095",
            "VLAN \"4095\" is not a number from 1 to 4094".into(),
        ),
        ("010", "VLAN \"010\" is not a number from 1 to 4094".into()),
        (
            "10p/200-100",
            "range \"200-100\" runs backwards: 200 is above 100".into(),
        ),
        (
            "10p/100+0x4",
            "\"100+0x4\" has step 0: the step must be at least 1".into(),
        ),
        (
            "10p/100+10x0",
            "\"100+10x0\" has count 0: the count must be at least 1".into(),
        ),
        (
            "10p/4000+50x3",
            "\"4000+50x3\" goes past VLAN 4094 (its last would be 4100)".into(),
        ),
        (
            "10/20",
            "no PVID in \"10/20\": mark one VLAN with p, as in 10p/20".into(),
        ),
        (
            "10-12",
            "no PVID in \"10-12\": mark one VLAN with p, as in 10p/20".into(),
        ),
        (
            "10p/20p",
            "two PVIDs in \"10p/20p\" (10 and 20): mark only one VLAN with p".into(),
        ),
        (
            "10p/20-30p",
            "\"20-30p\" is a series of VLANs: only a single VLAN can be the PVID".into(),
        ),
        (
            "10p/100+10x4p",
            "\"100+10x4p\" is a series of VLANs: only a single VLAN can be the PVID".into(),
        ),
        (
            "10p/20/20u",
            "VLAN 20 appears twice in \"10p/20/20u\"".into(),
        ),
        (
            "10p/15-25/100+10x4/20",
            "VLAN 20 appears twice in \"10p/15-25/100+10x4/20\"".into(),
        ),
        ("10p/10", "VLAN 10 appears twice in \"10p/10\"".into()),
    ];
    for (text, want) in cases {
        assert_eq!(error(text), want, "{text}");
    }
    for junk in [
        "10q", "ten", "10pu", "10P", " 10", "10-", "-10", "10--20", "10+5", "10+x4", "10+5x",
        "10+05x4", "10x4", "10,20", "10 20", "p", "u",
    ] {
        assert_eq!(
            error(&format!("10p/{junk}")),
            format!("{junk:?} is no VLAN term: {grammar}"),
            "{junk}"
        );
    }
}
