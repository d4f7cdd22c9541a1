//! `vifkit demo` end to end (root): every scenario check passes (the KVM ones only with
//! qemu installed), and nothing it created is left behind.

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
    // 2.1: vif-route-ifup from the seed's sysconfig files, proxy ARP/NDP.
    "ok   vif-route-ifup online vif1.0 (vifname=xen1.0)",
    "ok   vif1.0 was renamed: only xen1.0 is left",
    "ok   xen1.0 is up, no bridge port, MAC fe:ff:ff:ff:ff:ff kept",
    "ok   routes: 192.0.2.241 dev xen1.0",
    "ok   routes: 2001:db8:abba::1001 via fe80::216:3eff:fe10:1010 dev xen1.0",
    "ok   ifndp-proxy: 2001:db8:abba::1001 published on eth0, 2001:db8:abba::1 on xen1.0",
    "ok   guest xen1 -> router 192.0.2.254 (IPv4)",
    "ok   router -> guest xen1 192.0.2.241 (IPv4)",
    "ok   guest xen1 -> router 2001:db8:ffff::254 (IPv6)",
    "ok   router -> guest xen1 2001:db8:abba::1001 (IPv6)",
    "ok   guest xen1 -> host 2001:db8:abba::1 (IPv6) (proxied on xen1.0)",
    "ok   vif-route-ifup offline vif1.0 (vifname=xen1.0)",
    "ok   no route to xen1.0 and no proxy entry left",
    "ok   router does not reach guest xen1 192.0.2.241",
    "ok   router does not reach guest xen1 2001:db8:abba::1001",
    // 2.2: host-only br1 and br2, routed by the host.
    "ok   vif-bridge online vif1.0 (bridge=br1)",
    "ok   vif-bridge online vif2.0 (bridge=br2, vifname=xen2.0)",
    "ok   guest xen1 -> guest xen2 192.0.2.17 (IPv4) across br1, the host and br2",
    "ok   guest xen1 -> guest xen2 2001:db8:abba:2::1001 (IPv6) across br1, the host and br2",
    "ok   guest xen2 -> guest xen1 192.0.2.1 (IPv4) across br2, the host and br1",
    "ok   guest xen2 -> guest xen1 2001:db8:abba:1::1001 (IPv6) across br2, the host and br1",
    "ok   guest xen1 -> router 2001:db8:ffff::254 (IPv6) routed by the host",
    "ok   router -> guest xen2 2001:db8:abba:2::1001 (IPv6) routed by the host",
    "ok   host: 2001:db8:abba:3::1 is unreachable",
    "ok   routed, not proxied: no proxy ARP/NDP entry",
    "ok   vif1.0 left br1",
    "ok   xen2.0 left br2",
    // 3: NAT.
    "ok   vif-nat online vif1.0 (vifname=xen1.0)",
    "ok   nft table inet vifkit-nat-1-0 holds xen1.0's masquerade",
    "ok   route 192.168.1.10 dev xen1.0 src 192.168.1.1",
    "ok   guest xen1 -> peer 203.0.113.1 (IPv4) masqueraded by the host",
    "ok   guest xen1 -> peer 2001:db8:ffff::1 (IPv6) masqueraded by the host",
    "ok   the peer saw the host's 203.0.113.2 and 2001:db8:ffff::2 as the source",
    "ok   offline deleted the port's masquerade table and antispoofing chain",
    "ok   guest xen1 does not reach peer 203.0.113.1 (no route, no masquerade)",
];

/// The KVM checks, which need the real qemu (Debian's qemu-system-x86).
const KVM: &[&str] = &[
    "ok   qemu started, ran qemu-ifup, QMP ready",
    "ok   tap0 is an up port of br0, MTU 9000 -> 1500 (br0's), MAC fe:ff:ff:ff:ff:ff",
    "ok   QMP quit: qemu exited 0 in",
    "ok   tap0 left br0 and is down; qemu's stderr: qemu-ifdown: tap0: detach tap0 from its bridge",
    "ok   no VIFKIT_BRIDGE, no [port] rule, no default route: qemu refuses to start",
    "ok   qemu's stderr: qemu-ifup: error: tap0: no bridge for tap0: no bridge argument, VIFKIT_BRIDGE is unset, no [port] rule in ",
    "ok   tap0 was left alone",
];
const KVM_SKIP: &str =
    "skip KVM: qemu-system-x86_64 is not installed (Debian package qemu-system-x86)";

/// The demo looks for qemu on the plain PATH it gives its children.
fn qemu_installed() -> bool {
    "/usr/sbin:/usr/bin:/sbin:/bin".split(':').any(|dir| {
        std::path::Path::new(dir)
            .join("qemu-system-x86_64")
            .is_file()
    })
}

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
    let has = |line: &str| report.lines().any(|l| l.starts_with(line));
    for line in EXPECTED {
        assert!(has(line), "no line {line:?} in:\n{report}");
    }
    if qemu_installed() {
        for line in KVM {
            assert!(has(line), "no line {line:?} in:\n{report}");
        }
        assert!(!report.contains("\nskip "), "{report}");
    } else {
        assert!(
            has(KVM_SKIP),
            "qemu is absent, no {KVM_SKIP:?} in:\n{report}"
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
    // A qemu left running would keep its namespace alive after `ip netns del`.
    let netdev = format!("ifname=tap0,script={}", env!("CARGO_BIN_EXE_qemu-ifup"));
    let qemus: Vec<_> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&netdev))
        .collect();
    assert!(qemus.is_empty(), "qemu left running: {qemus:?}");
}
