//! Inputs a hostile or broken caller may give (issue 17), run through the real binaries in
//! throwaway namespaces: each is refused with one sentence before anything changes, or,
//! for the glob, simply costs nothing. Needs root.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::*;

/// A host namespace with bridge `xenbr0` (192.0.2.1/24), the uplink `eth0` (a veth with
/// 198.51.100.2/24 and the default route via 198.51.100.1, enslaved to nothing) and, when
/// asked, netback's `vif3.0`; a xenstore with libxl's keys for vif 3/0.
struct Rig {
    host: Netns,
    _far: Netns,
    xs: Xenstore,
    vif: Vif,
}

impl Rig {
    fn new(tag: &str, with_vif: bool) -> Rig {
        let host = Netns::new(&format!("{tag}h"));
        let far = Netns::new(&format!("{tag}f"));
        host.bridge("xenbr0", 1500);
        host.ip(&["addr", "add", "192.0.2.1/24", "dev", "xenbr0"]);
        host.veth("eth0", "eth0", &far);
        host.ip(&["addr", "add", "198.51.100.2/24", "dev", "eth0"]);
        host.ip(&["link", "set", "eth0", "up"]);
        host.ip(&["route", "add", "default", "via", "198.51.100.1"]);
        let vif = Vif::new(3, 0);
        if with_vif {
            host.veth(&vif.kernel_name(), "eth1", &far);
        }
        let xs = Xenstore::start();
        xs.write_vif(&vif);
        Rig {
            host,
            _far: far,
            xs,
            vif,
        }
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        hotplug(&self.host, &self.xs, &self.vif, args, env)
    }

    fn key(&self, key: &str) -> Option<String> {
        self.xs.read(&format!("{}/{key}", self.vif.backend()))
    }

    fn set(&self, key: &str, value: &str) {
        self.xs
            .write(&format!("{}/{key}", self.vif.backend()), value);
    }

    /// eth0 as the host's uplink must stay: its address, no master, up.
    fn assert_uplink_untouched(&self) {
        let eth0 = self.host.link("eth0").expect("eth0 is gone");
        assert!(eth0.get("master").is_none(), "eth0 was enslaved: {eth0}");
        assert!(
            eth0["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
            "eth0 went down: {eth0}"
        );
        assert!(
            self.host
                .addresses("eth0")
                .contains(&"198.51.100.2/24".to_owned()),
            "eth0 lost its address: {:?}",
            self.host.addresses("eth0")
        );
    }
}

/// Exit 1 with exactly one line on stderr: `<binary>: error: vif3.0: <message>` (a run's
/// lines name the vif of its `XENBUS_PATH`).
fn assert_refused(out: &Output, binary: &str, message: &str) {
    assert_refused_about(out, binary, "vif3.0", message);
}

fn assert_refused_about(out: &Output, binary: &str, port: &str, message: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    assert_eq!(stderr(out), format!("{binary}: error: {port}: {message}\n"));
}

#[test]
fn vif_naming_the_uplink_is_refused_before_anything_changes() {
    let rig = Rig::new("upl", false);
    let sentence = "vif=eth0 is not the device of backend/vif/3/0: expected vif3.0";
    let out = rig.run(&["online", "type_if=vif"], &[("vif", "eth0")]);
    assert_refused(&out, "vif-bridge", sentence);
    rig.assert_uplink_untouched();
    assert_eq!(rig.key("hotplug-status").as_deref(), Some("error"));
    assert_eq!(rig.key("hotplug-error").as_deref(), Some(sentence));
    assert!(rig.host.ip_json(&["link", "show", "master", "xenbr0"]) == serde_json::json!([]));

    // A detach may run without xenstore, on the name alone: it is checked at once, and
    // reports nothing to xenstore (a detach never does).
    rig.set("hotplug-status", "");
    rig.xs.rm(&format!("{}/hotplug-error", rig.vif.backend()));
    let out = rig.run(&["offline", "type_if=vif"], &[("vif", "eth0")]);
    assert_refused(&out, "vif-bridge", sentence);
    rig.assert_uplink_untouched();
    assert_eq!(rig.key("hotplug-error"), None);
    // Without a xenstore at all, too.
    let out = rig.run(
        &["offline", "type_if=vif"],
        &[("vif", "eth0"), ("XENSTORED_PATH", "/nonexistent/socket")],
    );
    assert_refused(&out, "vif-bridge", sentence);
    rig.assert_uplink_untouched();

    // The emulated NIC's run names its tap in INTERFACE.
    let out = rig.run(
        &["add", "type_if=tap"],
        &[("INTERFACE", "eth0"), ("XENBUS_PATH", "backend/vif/3/0")],
    );
    assert_refused_about(
        &out,
        "vif-bridge",
        "vif3.0-emu",
        "INTERFACE=eth0 is not the tap of backend/vif/3/0: expected vif3.0-emu",
    );
    rig.assert_uplink_untouched();
}

#[test]
fn vif_route_naming_the_uplink_is_refused_too() {
    let mut rig = Rig::new("uplr", false);
    rig.vif.script = "/etc/xen/scripts/vif-route";
    rig.vif.bridge = None;
    rig.set("script", rig.vif.script);
    rig.set("ip", "192.0.2.241");
    let out = rig.run(&["online", "type_if=vif"], &[("vif", "eth0")]);
    let sentence = "vif=eth0 is not the device of backend/vif/3/0: expected vif3.0";
    assert_refused(&out, "vif-route", sentence);
    assert_eq!(rig.key("hotplug-error").as_deref(), Some(sentence));
    rig.assert_uplink_untouched();
    assert!(
        rig.host
            .ip_json(&["route", "show", "192.0.2.241"])
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_b_mac_no_guest_can_have_is_refused_and_nothing_is_plugged() {
    let rig = Rig::new("mac", true);
    let before = rig.host.link("vif3.0").unwrap();
    for (mac, why) in [
        ("ff:ff:ff:ff:ff:ff", "is the broadcast address"),
        ("01:00:5e:00:00:01", "is a multicast address"),
        ("33:33:00:00:00:01", "is a multicast address"),
        ("00:00:00:00:00:00", "is the all-zero address"),
        ("fe:ff:ff:ff:ff:ff", "is the backend port's own address"),
    ] {
        rig.set("mac", mac);
        rig.set("hotplug-status", "");
        let out = rig.run(&["online", "type_if=vif"], &[]);
        let sentence = format!("backend/vif/3/0/mac: {mac} {why}, not a guest's MAC");
        assert_refused(&out, "vif-bridge", &sentence);
        assert_eq!(rig.key("hotplug-status").as_deref(), Some("error"), "{mac}");
        assert_eq!(rig.key("hotplug-error"), Some(sentence), "{mac}");
        assert_eq!(
            rig.host.link("vif3.0").unwrap(),
            before,
            "{mac}: vif3.0 changed"
        );
    }
    // A guest's MAC plugs as before.
    rig.set("mac", "00:16:3e:10:10:10");
    assert_ok(&rig.run(&["online", "type_if=vif"], &[]));
    assert_eq!(rig.host.master_of("vif3.0").as_deref(), Some("xenbr0"));
    assert_eq!(rig.key("hotplug-status").as_deref(), Some("connected"));
}

#[test]
fn a_routed_guest_given_a_host_address_or_every_address_is_refused() {
    let mut rig = Rig::new("gw", true);
    rig.vif.script = "/etc/xen/scripts/vif-route";
    rig.vif.bridge = None;
    rig.set("script", rig.vif.script);
    rig.set("ip", "198.51.100.2");
    let before = rig.host.link("vif3.0").unwrap();
    let out = rig.run(&["online", "type_if=vif"], &[]);
    let sentence = "guest address 198.51.100.2 is the host's own address on eth0: routed to vif3.0 it would take the host's own traffic";
    assert_refused(&out, "vif-route", sentence);
    assert_eq!(rig.key("hotplug-error").as_deref(), Some(sentence));
    assert_eq!(rig.host.link("vif3.0").unwrap(), before);
    rig.set("ip", "::/0");
    let out = rig.run(&["online", "type_if=vif"], &[]);
    assert_refused(
        &out,
        "vif-route",
        "guest address ::/0 is every IPv6 address: routed to vif3.0 it would take the host's own traffic",
    );
    assert_eq!(rig.host.link("vif3.0").unwrap(), before);
    // The default route's gateway, read from the kernel.
    rig.set("ip", "198.51.100.1");
    let out = rig.run(&["online", "type_if=vif"], &[]);
    assert_refused(
        &out,
        "vif-route",
        "guest address 198.51.100.1 is the host's default gateway on eth0: routed to vif3.0 it would take the host's own traffic",
    );
    assert_eq!(rig.host.link("vif3.0").unwrap(), before);
    rig.assert_uplink_untouched();
}

/// Sections whose patterns are 100 `*` (one ending in a byte no name has): the old
/// backtracking glob never finished these; now a plug costs what any plug does.
fn hundred_star_config(dir: &Scratch, matching: &str) -> std::path::PathBuf {
    let stars = "*".repeat(100);
    let config = dir.join("vifkit.conf");
    std::fs::write(
        &config,
        format!("[port {stars}x {stars}?????????????????]\nbridge = nosuch\n\n[port {stars}]\n{matching}\n"),
    )
    .unwrap();
    config
}

#[test]
fn a_hundred_star_pattern_costs_nothing_for_qemu_ifup() {
    let ns = Netns::new("glq");
    ns.bridge("br0", 1400);
    let tap = format!("vkg{}", unique("").split('-').nth(1).unwrap());
    ns.ip(&["tuntap", "add", &tap, "mode", "tap"]);
    let dir = scratch("glob");
    let config = hundred_star_config(&dir, "bridge = br0");
    let started = Instant::now();
    let mut cmd = ns.exec();
    cmd.arg("env")
        .arg("-i")
        .arg("PATH=/usr/sbin:/usr/bin:/sbin:/bin")
        .arg(format!("VIFKIT_CONFIG={}", config.display()))
        .arg(binary("qemu-ifup"))
        .arg(&tap);
    let out = run(&mut cmd);
    let took = started.elapsed();
    assert_ok(&out);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(ns.master_of(&tap).as_deref(), Some("br0"));
    assert_eq!(ns.link(&tap).unwrap()["mtu"], 1400);

    // A pattern over 255 bytes is refused with its file and line.
    std::fs::write(
        &config,
        format!("[port tap*]\nbridge = br0\n[port {}]\n", "*".repeat(256)),
    )
    .unwrap();
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "qemu-ifup: error: {tap}: {}:3: a pattern of 256 bytes is longer than the limit of 255 bytes\n",
            config.display()
        )
    );
}

#[test]
fn a_hundred_star_pattern_costs_nothing_for_vif_bridge() {
    let rig = Rig::new("glv", true);
    let dir = scratch("glob");
    let config = hundred_star_config(&dir, "isolated = yes");
    let started = Instant::now();
    let out = rig.run(
        &["online", "type_if=vif"],
        &[("VIFKIT_CONFIG", config.to_str().unwrap())],
    );
    let took = started.elapsed();
    assert_ok(&out);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(rig.host.master_of("vif3.0").as_deref(), Some("xenbr0"));
    assert_eq!(rig.key("hotplug-status").as_deref(), Some("connected"));
    let vif = rig.host.link("vif3.0").unwrap();
    assert_eq!(
        vif["linkinfo"]["info_slave_data"]["isolated"], true,
        "the matching section's isolated = yes: {vif}"
    );
}

#[test]
fn a_bridged_guest_given_the_bridges_address_or_every_address_is_warned_and_plugged() {
    let rig = Rig::new("brw", true);
    rig.set("ip", "192.0.2.10 192.0.2.1 0.0.0.0/0");
    let out = rig.run(&["online", "type_if=vif"], &[("VIFKIT_DRY_RUN", "1")]);
    assert_ok(&out);
    let plan = String::from_utf8_lossy(&out.stdout);
    for warning in [
        "# warning: guest address 192.0.2.1 is the host's own address on xenbr0: the antispoofing of vif3.0 lets the guest send from it",
        "# warning: guest address 0.0.0.0/0 is every IPv4 address: the antispoofing of vif3.0 lets the guest send from it",
    ] {
        assert!(plan.lines().any(|line| line == warning), "{plan}");
    }
    assert!(!plan.contains("192.0.2.10 is"), "{plan}");
    let out = rig.run(&["online", "type_if=vif"], &[]);
    assert_ok(&out);
    assert_eq!(rig.host.master_of("vif3.0").as_deref(), Some("xenbr0"));
    assert_eq!(rig.key("hotplug-status").as_deref(), Some("connected"));
}

/// A call libxl could not have made (here a `vif` no interface can be named) fails before
/// xenstore is read, and the backend still hears why: `XENBUS_PATH` names it.
#[test]
fn an_attach_whose_call_is_malformed_is_reported_to_its_backend() {
    let rig = Rig::new("mal", false);
    let out = rig.run(&["online", "type_if=vif"], &[("vif", "a234567890123456")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let error = rig.key("hotplug-error").unwrap_or_default();
    assert!(error.contains("longer than 15 bytes"), "{error:?}");
    assert_eq!(
        stderr(&out),
        format!("vif-bridge: error: vif3.0: {error}\n")
    );
    assert_eq!(rig.key("hotplug-status").as_deref(), Some("error"));
    rig.assert_uplink_untouched();
}

/// A bridged tap given the bridge's own address is plugged, with a warning (as a vif is).
#[test]
fn a_bridged_tap_given_the_bridges_address_is_warned_and_plugged() {
    let ns = Netns::new("brq");
    ns.bridge("br0", 1500);
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "br0"]);
    let tap = format!("vkw{}", unique("").split('-').nth(1).unwrap());
    ns.ip(&["tuntap", "add", &tap, "mode", "tap"]);
    let dir = scratch("brq");
    let config = dir.join("vifkit.conf");
    std::fs::write(
        &config,
        format!("[port {tap}]\nbridge = br0\nip = 192.0.2.1 192.0.2.10\nmac = 52:54:00:12:34:56\n"),
    )
    .unwrap();
    let mut cmd = ns.exec();
    cmd.arg("env")
        .arg("-i")
        .arg("PATH=/usr/sbin:/usr/bin:/sbin:/bin")
        .arg(format!("VIFKIT_CONFIG={}", config.display()))
        .arg(binary("qemu-ifup"))
        .arg(&tap);
    let out = run(&mut cmd);
    assert_ok(&out);
    let warning = format!(
        "qemu-ifup: warning: {tap}: guest address 192.0.2.1 is the host's own address on br0: the antispoofing of {tap} lets the guest send from it"
    );
    assert!(
        stderr(&out).lines().any(|l| l == warning),
        "{}",
        stderr(&out)
    );
    assert_eq!(ns.master_of(&tap).as_deref(), Some("br0"));
}
