//! The shell glue in hotplug/: it only locates a binary and execs it.

use std::path::Path;
use std::process::Command;

use vifkit::lab::Scratch;

fn recorder(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("#!/bin/sh\necho \"{name} $* UDEV_CALL=$UDEV_CALL\"\n"),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&path)
        .status()
        .unwrap();
    path
}

#[test]
fn vif_setup_execs_the_named_script_else_vif_bridge() {
    let dir = Scratch::new("glue").unwrap();
    let named = recorder(&dir, "vif-route");
    recorder(&dir, "vif-bridge");
    let glue = concat!(env!("CARGO_MANIFEST_DIR"), "/hotplug/vif-setup");
    let run = |script: Option<&Path>| {
        let mut cmd = Command::new(glue);
        cmd.args(["online", "type_if=vif"])
            .env_clear()
            .env("UDEV_CALL", "1")
            .env("XEN_SCRIPT_DIR", dir.path());
        if let Some(script) = script {
            cmd.env("script", script);
        }
        String::from_utf8(cmd.output().unwrap().stdout).unwrap()
    };
    assert_eq!(
        run(Some(&named)),
        "vif-route online type_if=vif UDEV_CALL=1\n"
    );
    assert_eq!(run(None), "vif-bridge online type_if=vif UDEV_CALL=1\n");
}

#[test]
fn udev_rules_are_the_legacy_three_and_mark_udev_calls() {
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/udev/60-vifkit-xen-backend.rules"
    ))
    .unwrap();
    let active: Vec<&str> = rules
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(active.len(), 3);
    for rule in active {
        assert!(rule.contains("ENV{UDEV_CALL}=\"1\""), "{rule}");
        assert!(
            rule.contains("RUN+=\"/etc/xen/scripts/vif-setup "),
            "{rule}"
        );
    }
}
