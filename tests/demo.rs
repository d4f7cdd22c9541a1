//! `vifkit demo` end to end (root): every scenario check passes, and nothing it created is
//! left behind.

use std::process::{Command, Stdio};

/// The checks that carry each scenario's point; the report has more.
const EXPECTED: &[&str] = &[
    "ok   vif-bridge online vif1.0 (bridge=br0)",
    "ok   /local/domain/0/backend/vif/1/0/hotplug-status = connected",
    "ok   /local/domain/1/device/vif/0/mtu = 1500",
    "ok   vif1.0 is an up port of br0 with MAC fe:ff:ff:ff:ff:ff",
    "ok   guest xen1 -> host 192.168.0.1 (IPv4) across br0",
    "ok   guest xen1 -> host 2001:db8:abba::1 (IPv6) across br0",
    "ok   guest xen1 -> LAN router 192.168.0.254 (IPv4) across br0 and eth0",
    "ok   guest xen1 -> LAN router 2001:db8:abba::fe (IPv6) across br0 and eth0",
    "ok   vif-bridge online vif2.0 (bridge=br0, vifname=xen2.0)",
    "ok   xen2.0 is an up port of br0",
    "ok   vif2.0 was renamed",
    "ok   vif-bridge offline vif1.0 (bridge=br0)",
    "ok   vif1.0 left br0",
    "ok   xen2.0 left br0",
    "ok   vif-bridge online vif3.0 (bridge=br1)",
    "ok   vif-bridge online vif4.0 (bridge=br1)",
    "ok   guest xen3 -> host 192.168.1.1 (IPv4) across br1",
    "ok   guest xen3 -> guest xen4 192.168.1.40 (IPv4) across br1",
    "ok   guest xen4 -> guest xen3 192.168.1.30 (IPv4) across br1",
    "ok   guest xen3 -> guest xen4 fe80::216:3eff:fe12:1212%eth0 (IPv6)",
    "ok   guest xen3 does not reach LAN router 192.168.0.254 (host-only)",
    "ok   vif3.0 left br1",
    "ok   vif4.0 left br1",
];

#[test]
fn demo_passes_and_cleans_up() {
    let child = Command::new(env!("CARGO_BIN_EXE_vifkit"))
        .arg("demo")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vifkit demo");
    // The demo names everything after its pid.
    let prefix = format!("vkdemo{}", child.id());
    let out = child.wait_with_output().expect("wait for vifkit demo");
    let report = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "vifkit demo failed:\n{report}\n{stderr}"
    );
    for line in EXPECTED {
        assert!(
            report.lines().any(|l| l.starts_with(line)),
            "no line {line:?} in:\n{report}"
        );
    }
    assert!(!report.contains("FAIL"), "{report}");
    assert!(
        report.contains(&format!("namespaces {prefix}-*")),
        "{report}"
    );
    assert!(report.trim_end().ends_with(", 0 failed"), "{report}");

    let netns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let left: Vec<_> = String::from_utf8_lossy(&netns.stdout)
        .lines()
        .filter(|l| l.starts_with(&format!("{prefix}-")))
        .map(str::to_owned)
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    let scratch = std::env::temp_dir().join(&prefix);
    assert!(!scratch.exists(), "{} left behind", scratch.display());
}
