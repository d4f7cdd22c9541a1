use super::*;

#[test]
fn requested_options_resolve_with_the_guest_mac() {
    let mac = MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    let requested = Requested {
        learning: Some(false),
        isolated: Some(true),
        ..Requested::default()
    };
    let source = "mac = in its [port] section of vifkit.conf";
    let options = requested.resolve("tap0", Some(mac), source).unwrap();
    assert_eq!(
        options.to_string(),
        "isolated, learning off, 52:54:00:12:34:56 static"
    );
    assert_eq!(
        requested
            .resolve("tap0", None, source)
            .unwrap_err()
            .to_string(),
        "learning = no for tap0 needs the guest MAC to pin: set mac = in its [port] section of vifkit.conf"
    );
    let on = Requested {
        learning: Some(true),
        ..Requested::default()
    };
    assert!(on.resolve("tap0", None, source).unwrap().is_default());
}

#[test]
fn rates_are_read_and_written_as_tc_does() {
    for (text, bits, shown) in [
        ("10mbit", 10_000_000, "10mbit"),
        ("512KBit", 512_000, "512kbit"),
        ("1gbit", 1_000_000_000, "1gbit"),
        ("8000bit", 8_000, "8kbit"),
    ] {
        let rate = Rate::parse(text).unwrap();
        assert_eq!(
            (rate.0, rate.to_string()),
            (bits, shown.to_owned()),
            "{text}"
        );
    }
    for bad in ["10", "10mb", "mbit", "7kbit", "1.5mbit", "-1mbit"] {
        assert_eq!(
            Rate::parse(bad).unwrap_err().to_string(),
            format!("rate {bad:?} is not a rate such as 512kbit, 10mbit or 1gbit (at least 8kbit)")
        );
    }
}
