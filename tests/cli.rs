//! The `vifkit` admin CLI verbs that need no root.

use std::process::Command;

fn vifkit(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vifkit"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn eui64_prints_the_link_local_the_seed_computes_by_hand() {
    let out = vifkit(&["eui64", "00:16:3e:10:10:10"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "fe80::216:3eff:fe10:1010\n"
    );
    let out = vifkit(&["eui64", "FE:FF:FF:FF:FF:FF"]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "fe80::fcff:ffff:feff:ffff\n"
    );
}

#[test]
fn eui64_rejects_a_bad_mac_in_one_sentence() {
    let out = vifkit(&["eui64", "00:16:3e:10:10"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "vifkit: error: invalid MAC address \"00:16:3e:10:10\": expected six hex pairs like 00:16:3e:01:02:03\n"
    );
}
