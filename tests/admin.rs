//! `vifkit plan`, `check` and `reattach` against real ports in throwaway namespaces, with
//! the xenstore test server standing in for xenstored. Needs root.

mod common;

use std::process::Output;

use common::*;

fn vifkit(ns: &Netns, xs: &Xenstore, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut cmd = ns.exec();
    cmd.arg("env")
        .arg(format!("XENSTORED_PATH={}", xs.socket.display()));
    for (key, value) in extra {
        cmd.arg(format!("{key}={value}"));
    }
    run(cmd.arg(binary("vifkit")).args(args))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
}

/// Bridge xenbr0 with vif3.0 (guest B/ip 192.0.2.10) not yet plugged.
fn rig(tag: &str) -> (Netns, Netns, Xenstore, Vif) {
    let host = Netns::new(&format!("{tag}h"));
    let guest = Netns::new(&format!("{tag}g"));
    host.bridge("xenbr0", 1500);
    let vif = Vif::new(3, 0);
    host.netback_vif(&vif, &guest);
    let xs = Xenstore::start();
    xs.write_vif(&vif);
    xs.write(&format!("{}/ip", vif.backend()), "192.0.2.10");
    (host, guest, xs, vif)
}

#[test]
fn plan_and_check_follow_the_port_through_online_and_drift() {
    let (host, _guest, xs, vif) = rig("adm");
    let plan = vifkit(&host, &xs, &["plan", "vif3.0"], &[]);
    assert_ok(&plan);
    let text = stdout(&plan);
    for line in [
        "attach vif3.0 to bridge xenbr0",
        "filter vif3.0 (netdev vifkit-antispoof-21)",
        "set vif3.0 up",
    ] {
        assert!(
            text.contains(line),
            "{line:?} missing from the plan:\n{text}"
        );
    }
    assert_eq!(host.master_of("vif3.0"), None, "plan changed something");

    let before = vifkit(&host, &xs, &["check", "vif3.0"], &[]);
    assert_eq!(before.status.code(), Some(1));
    assert!(
        stdout(&before).contains("drift: would attach vif3.0 to bridge xenbr0"),
        "{}",
        stdout(&before)
    );
    assert!(
        stdout(&before).contains("hotplug-status is Some(\"\"), not \"connected\""),
        "{}",
        stdout(&before)
    );

    assert_ok(&hotplug(&host, &xs, &vif, &["online", "type_if=vif"], &[]));
    let after = vifkit(&host, &xs, &["check", "vif3.0"], &[]);
    assert_ok(&after);
    assert_eq!(stdout(&after), "vif3.0: in place, as online leaves it\n");

    host.ip(&["link", "set", "vif3.0", "nomaster"]);
    must(host.exec().args([
        "nft",
        "delete",
        "chain",
        "netdev",
        "vifkit-antispoof-21",
        "vif3.0",
    ]));
    let drifted = vifkit(&host, &xs, &["check", "vif3.0"], &[]);
    assert_eq!(drifted.status.code(), Some(1));
    let text = stdout(&drifted);
    assert!(
        text.contains("drift: would attach vif3.0 to bridge xenbr0"),
        "{text}"
    );
    assert!(
        text.contains("drift: no antispoofing rules for vif3.0 (netdev vifkit-antispoof-21)"),
        "{text}"
    );
    assert!(
        stderr(&drifted).contains("vif3.0 has drifted from what online leaves"),
        "{}",
        stderr(&drifted)
    );
}

#[test]
fn an_unknown_port_is_one_sentence() {
    let (host, _guest, xs, _vif) = rig("admu");
    let out = vifkit(&host, &xs, &["check", "vif9.9"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "vifkit: error: vif9.9 is neither a Xen vif in /local/domain/0/backend/vif nor an existing tap\n"
    );
}

#[test]
fn a_vif_name_with_xenstore_unreachable_is_that_error_not_a_tap_plan() {
    // Where a real xenstore answers (the real-Xen lab's dom0), it cannot be made unreachable.
    let real = [
        "/var/run/xenstored/socket",
        "/run/xenstored/socket",
        "/dev/xen/xenbus",
    ];
    if real.iter().any(|p| std::path::Path::new(p).exists()) {
        eprintln!("skipped: this host has a real xenstore");
        return;
    }
    let (host, _guest, xs, vif) = rig("adx");
    let down = [("XENSTORED_PATH", "/nonexistent/socket")];
    for verb in ["plan", "check"] {
        let out = vifkit(&host, &xs, &[verb, &vif.kernel_name()], &down);
        assert_eq!(out.status.code(), Some(1), "{verb}: {}", stdout(&out));
        let want = "vifkit: error: vif3.0 looks like a Xen vif: cannot connect to xenstore (tried /nonexistent/socket: ";
        assert!(stderr(&out).starts_with(want), "{verb}: {}", stderr(&out));
        assert!(
            stdout(&out).is_empty(),
            "{verb} planned something: {}",
            stdout(&out)
        );
    }
    // reattach still tries the taps, and says the vifs were not reattached.
    let out = vifkit(&host, &xs, &["reattach"], &down);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("Xen vifs: not reattached: cannot connect to xenstore"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn reattach_puts_vifs_and_taps_back_on_a_recreated_bridge() {
    let (host, _guest, xs, vif) = rig("adr");
    let dir = scratch("adr");
    let config = dir.join("vifkit.conf");
    std::fs::write(&config, "[port tap*]\nbridge = xenbr0\n").unwrap();
    let env = [("VIFKIT_CONFIG", config.to_str().unwrap())];
    host.ip(&["tuntap", "add", "tap0", "mode", "tap"]);
    assert_ok(&hotplug(&host, &xs, &vif, &["online", "type_if=vif"], &[]));
    must(
        host.exec()
            .args(["env", &format!("VIFKIT_CONFIG={}", config.display())])
            .arg(binary("qemu-ifup"))
            .arg("tap0"),
    );
    assert_eq!(host.master_of("tap0").as_deref(), Some("xenbr0"));

    // What an admin's `ifdown br0; ifup br0` or a network manager restart does.
    host.ip(&["link", "del", "xenbr0"]);
    host.bridge("xenbr0", 1500);
    assert_eq!(host.master_of("vif3.0"), None);

    let out = vifkit(&host, &xs, &["reattach", "xenbr0"], &env);
    assert_ok(&out);
    assert_eq!(stdout(&out), "vif3.0: reattached\ntap0: reattached\n");
    assert_eq!(host.master_of("vif3.0").as_deref(), Some("xenbr0"));
    assert_eq!(host.master_of("tap0").as_deref(), Some("xenbr0"));

    let again = vifkit(&host, &xs, &["reattach", "xenbr0"], &env);
    assert_ok(&again);
    assert_eq!(
        stdout(&again),
        "vif3.0: already in place\ntap0: already in place\n"
    );
    let other = vifkit(&host, &xs, &["reattach", "br9"], &env);
    assert_ok(&other);
    assert_eq!(stdout(&other), "no port names br9\n");
}
