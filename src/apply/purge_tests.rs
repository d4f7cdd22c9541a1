//! The background purge's description, as the plug writes it and the purge reads it. Pure.

use super::*;

fn held() -> HeldPurge {
    HeldPurge {
        port: IfName::new("vif3.0").unwrap(),
        until_ns: 1_796_385_600_000_000_000,
        holder: 4937,
        addresses: vec![
            Prefix::new("192.0.2.10".parse().unwrap(), 32),
            Prefix::new("2001:db8::".parse().unwrap(), 64),
        ],
    }
}

#[test]
fn a_background_purge_reads_what_the_plug_wrote() {
    let text = held().to_string();
    assert_eq!(
        text,
        "vif3.0 1796385600000000000 4937 192.0.2.10/32 2001:db8::/64"
    );
    assert_eq!(HeldPurge::parse(&text), Ok(held()));
}

#[test]
fn the_hold_is_named_by_its_time_and_plug() {
    assert_eq!(
        held().comment(),
        "vifkit-hold until 1796385600000000000 for 4937"
    );
}

#[test]
fn a_garbled_description_is_refused_in_one_sentence() {
    let cases = [
        ("", "VIFKIT_HELD_PURGE=\"\": no port"),
        ("vif3.0", "VIFKIT_HELD_PURGE=\"vif3.0\": no time"),
        (
            "vif3.0 soon 1 192.0.2.1/32",
            "VIFKIT_HELD_PURGE=\"vif3.0 soon 1 192.0.2.1/32\": \"soon\" is not a time",
        ),
        (
            "vif3.0 1 99999999999 192.0.2.1/32",
            "VIFKIT_HELD_PURGE=\"vif3.0 1 99999999999 192.0.2.1/32\": no such process id",
        ),
        (
            "vif3.0 1 2",
            "VIFKIT_HELD_PURGE=\"vif3.0 1 2\": no address to purge",
        ),
        (
            "vif3.0 1 2 192.0.2.1/33",
            "VIFKIT_HELD_PURGE=\"vif3.0 1 2 192.0.2.1/33\": \"192.0.2.1/33\" is not an address/length",
        ),
        (
            "vif3.0 1 2 192.0.2.1",
            "VIFKIT_HELD_PURGE=\"vif3.0 1 2 192.0.2.1\": \"192.0.2.1\" is not an address/length",
        ),
    ];
    for (text, why) in cases {
        assert_eq!(HeldPurge::parse(text), Err(why.to_owned()), "{text:?}");
    }
    let long = HeldPurge::parse("a-name-longer-than-fifteen 1 2 192.0.2.1/32").unwrap_err();
    assert!(
        long.starts_with("VIFKIT_HELD_PURGE=\"a-name-longer-than-fifteen 1 2 192.0.2.1/32\": ")
    );
}

#[test]
fn the_purge_lowers_its_own_priority_only() {
    // In a thread of its own: Linux keeps a niceness per thread, and this one ends here.
    let niceness = |stat: &str| -> i32 {
        let (_, after_name) = stat.rsplit_once(") ").unwrap();
        // Field 19 of proc_pid_stat(5); fields after the name start at 3.
        after_name.split(' ').nth(19 - 3).unwrap().parse().unwrap()
    };
    let before = niceness(&std::fs::read_to_string("/proc/thread-self/stat").unwrap());
    let after = std::thread::spawn(move || {
        lower_priority();
        niceness(&std::fs::read_to_string("/proc/thread-self/stat").unwrap())
    })
    .join()
    .unwrap();
    assert_eq!(after, PURGE_NICENESS);
    assert_eq!(
        niceness(&std::fs::read_to_string("/proc/thread-self/stat").unwrap()),
        before
    );
}
