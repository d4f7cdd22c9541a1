//! vif-openvswitch against a real Open vSwitch: ovsdb-server and ovs-vswitchd run in user
//! space (`datapath_type=netdev`, no kernel module) inside the test's own namespace, with a
//! private run directory. Tagged guests ping each other, another tag does not get through,
//! the interface carries upstream's external-ids, a rerun replaces the port, offline leaves
//! no port. Needs root and openvswitch-switch.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::hub::HubQemu;
use common::*;
use vifkit::sys::ovsdb::{OvsPort, Ovsdb};

/// ovsdb-server and ovs-vswitchd for one test, stopped by PID on drop (their directory goes
/// after them).
struct Ovs<'n> {
    ns: &'n Netns,
    dir: Scratch,
}

impl<'n> Ovs<'n> {
    fn start(ns: &'n Netns) -> Ovs<'n> {
        let dir = scratch("ovs");
        let ovs = Ovs { ns, dir };
        let db = ovs.path("conf.db");
        must(Command::new("ovsdb-tool").args([
            "create",
            &db,
            "/usr/share/openvswitch/vswitch.ovsschema",
        ]));
        must(ovs.daemon("ovsdb-server").args([
            db.as_str(),
            &format!("--remote=punix:{}", ovs.path("db.sock")),
            &format!("--pidfile={}", ovs.path("ovsdb-server.pid")),
            &format!("--unixctl={}", ovs.path("ovsdb-server.ctl")),
            &format!("--log-file={}", ovs.path("ovsdb-server.log")),
            "--detach",
        ]));
        ovs.vsctl(&["--no-wait", "init"]);
        must(ovs.daemon("ovs-vswitchd").args([
            &format!("unix:{}", ovs.path("db.sock")),
            &format!("--pidfile={}", ovs.path("ovs-vswitchd.pid")),
            &format!("--unixctl={}", ovs.path("ovs-vswitchd.ctl")),
            &format!("--log-file={}", ovs.path("ovs-vswitchd.log")),
            "--detach",
        ]));
        ovs
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().unwrap().to_owned()
    }

    fn rundir(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// A daemon in the namespace, its files all in the private directory.
    fn daemon(&self, program: &str) -> Command {
        let mut cmd = self.ns.exec();
        cmd.arg("env");
        for var in ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"] {
            cmd.arg(format!("{var}={}", self.rundir()));
        }
        cmd.arg(program);
        cmd
    }

    fn vsctl(&self, args: &[&str]) -> String {
        let db = format!("--db=unix:{}", self.path("db.sock"));
        must(
            self.ns
                .exec()
                .args(["ovs-vsctl", &db, "--timeout=10"])
                .args(args),
        )
        .trim()
        .to_owned()
    }
}

impl Drop for Ovs<'_> {
    fn drop(&mut self) {
        for daemon in ["ovs-vswitchd", "ovsdb-server"] {
            let pidfile = self.dir.join(format!("{daemon}.pid"));
            if let Ok(pid) = std::fs::read_to_string(pidfile) {
                let _ = run(Command::new("kill").arg(pid.trim()));
            }
        }
    }
}

struct Host<'n> {
    ns: &'n Netns,
    xs: Xenstore,
    ovs: Ovs<'n>,
}

impl<'n> Host<'n> {
    /// A xenstore, an Open vSwitch and its user-space bridge br0, in `ns`.
    fn with_bridge(ns: &'n Netns) -> Host<'n> {
        let host = Host {
            ns,
            xs: Xenstore::start(),
            ovs: Ovs::start(ns),
        };
        let netdev = ["set", "bridge", "br0", "datapath_type=netdev"];
        host.ovs
            .vsctl(&[&["add-br", "br0", "--"][..], &netdev].concat());
        host
    }

    fn run(&self, vif: &Vif, command: &str) -> Output {
        let env = [("OVS_RUNDIR", self.ovs.rundir())];
        hotplug(self.ns, &self.xs, vif, &[command, "type_if=vif"], &env)
    }

    /// A guest on `bridge` (vif-openvswitch's word) with `address`, and its VM record.
    fn guest(
        &self,
        domid: u32,
        mac: &'static str,
        bridge: &'static str,
        address: &str,
    ) -> (Vif, Netns) {
        let vif = ovs_vif(domid, mac, bridge);
        let guest = Netns::new(&format!("og{domid}"));
        self.ns.netback_vif(&vif, &guest);
        guest.ip(&["addr", "add", address, "dev", "eth0"]);
        self.write_keys(&vif);
        (vif, guest)
    }

    /// What libxl writes for `vif`, and its VM record (name and uuid for external_ids).
    fn write_keys(&self, vif: &Vif) {
        let domid = vif.domid;
        self.xs.write_vif(vif);
        let vm = format!("/vm/{domid:08}-aaaa-4bbb-8ccc-dddddddddddd");
        self.xs.write(&format!("/local/domain/{domid}/vm"), &vm);
        self.xs
            .write(&format!("{vm}/name"), &format!("guest{domid}"));
        self.xs.write(&format!("{vm}/uuid"), &vm["/vm/".len()..]);
    }

    /// The steps a dry run of `command` would take (see [`dry_run_steps`]).
    fn dry_run(&self, vif: &Vif, command: &str) -> Vec<String> {
        let env = [("OVS_RUNDIR", self.ovs.rundir())];
        dry_run_steps(self.ns, &self.xs, vif, &[command, "type_if=vif"], &env)
    }

    fn status(&self, vif: &Vif) -> Option<String> {
        self.xs.read(&format!("{}/hotplug-status", vif.backend()))
    }
}

/// A vif as libxl describes it for `script=vif-openvswitch,bridge=<bridge>`.
fn ovs_vif(domid: u32, mac: &'static str, bridge: &'static str) -> Vif {
    let mut vif = Vif::new(domid, 0);
    vif.script = "/etc/xen/scripts/vif-openvswitch";
    vif.bridge = Some(bridge);
    vif.mac = mac;
    vif
}

#[test]
fn tagged_vifs_reach_each_other_but_not_another_tag_and_leave_no_port() {
    let ns = Netns::new("ovs");
    let host = Host::with_bridge(&ns);
    let (vif1, g1) = host.guest(1, "00:16:3e:00:00:01", "br0.10", "10.9.0.1/24");
    let (vif2, _g2) = host.guest(2, "00:16:3e:00:00:02", "br0.10", "10.9.0.2/24");
    let (vif3, _g3) = host.guest(3, "00:16:3e:00:00:03", "br0.20:30", "10.9.0.3/24");
    for vif in [&vif1, &vif2, &vif3] {
        assert_ok(&host.run(vif, "online"));
        assert_eq!(host.status(vif).as_deref(), Some("connected"));
        let link = ns.link(&vif.kernel_name()).unwrap();
        assert!(link["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    }
    assert_eq!(host.ovs.vsctl(&["get", "port", "vif1.0", "tag"]), "10");
    assert_eq!(host.ovs.vsctl(&["get", "port", "vif3.0", "tag"]), "20");
    assert_eq!(host.ovs.vsctl(&["get", "port", "vif3.0", "trunks"]), "[30]");
    let ids = host
        .ovs
        .vsctl(&["get", "interface", "vif1.0", "external_ids"]);
    for id in [
        "attached-mac=\"00:16:3e:00:00:01\"",
        "xen-vm-name=guest1",
        "xen-vm-uuid=\"00000001-aaaa-4bbb-8ccc-dddddddddddd\"",
    ] {
        assert!(ids.contains(id), "{id} missing from {ids}");
    }
    assert!(g1.ping("10.9.0.2"), "same tag, same segment");
    assert!(!g1.ping("10.9.0.3"), "tag 20 must not hear tag 10");

    // A rerun replaces the port rather than failing on the name; then offline removes all.
    assert_ok(&host.run(&vif1, "online"));
    assert_eq!(
        host.ovs.vsctl(&["list-ports", "br0"]),
        "vif1.0\nvif2.0\nvif3.0"
    );
    assert!(g1.ping("10.9.0.2"), "after the rerun");
    for vif in [&vif1, &vif2, &vif3] {
        assert_ok(&host.run(vif, "offline"));
        assert_ok(&host.run(vif, "offline"));
    }
    assert_eq!(host.ovs.vsctl(&["list-ports", "br0"]), "");
}

#[test]
fn a_missing_ovs_bridge_or_a_bad_word_fails_with_one_sentence() {
    let ns = Netns::new("ovx");
    let host = Host {
        ns: &ns,
        xs: Xenstore::start(),
        ovs: Ovs::start(&ns),
    };
    let (vif, _g) = host.guest(4, "00:16:3e:00:00:04", "br9", "10.9.0.4/24");
    let out = host.run(&vif, "online");
    assert_eq!(out.status.code(), Some(1));
    let error = host.xs.read(&format!("{}/hotplug-error", vif.backend()));
    assert_eq!(
        error.as_deref(),
        Some(
            "add vif4.0 to Open vSwitch bridge br9: Open vSwitch bridge br9 does not exist (ovs-vsctl add-br br9)"
        )
    );
    assert_eq!(host.status(&vif).as_deref(), Some("error"));
    let link = ns.link("vif4.0").unwrap();
    assert!(!link["flags"].as_array().unwrap().iter().any(|f| f == "UP"));

    host.xs.write(&format!("{}/bridge", vif.backend()), "br0.x");
    let out = host.run(&vif, "online");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("No valid bridge was specified: \"br0.x\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_qemu_tap_joins_the_tagged_vlan_and_leaves_no_port() {
    let ns = Netns::new("ovq");
    let host = Host::with_bridge(&ns);
    let (vif1, _g1) = host.guest(1, "00:16:3e:00:00:01", "br0.10", "10.9.0.1/24");
    assert_ok(&host.run(&vif1, "online"));

    let config = host.ovs.path("vifkit.conf");
    std::fs::write(
        &config,
        "[port vkt0]\nbridge = br0.10\nopenvswitch = yes\nmac = 52:54:00:12:34:56\n",
    )
    .unwrap();
    let guest = Netns::new("oqg");
    let env = [
        ("VIFKIT_CONFIG", config.as_str()),
        ("OVS_RUNDIR", host.ovs.rundir()),
    ];
    let pidfile = host.ovs.dir.join("qemu.pid");
    let qemu = HubQemu::start(&ns, pidfile, "vkt0", "vkg0", &env, &guest, "10.9.0.2/24");
    assert_eq!(host.ovs.vsctl(&["get", "port", "vkt0", "tag"]), "10");
    let ids = host
        .ovs
        .vsctl(&["get", "interface", "vkt0", "external_ids"]);
    assert!(ids.contains("attached-mac=\"52:54:00:12:34:56\""), "{ids}");

    assert!(
        guest.ping("10.9.0.1"),
        "the tap's guest reaches the vif's on tag 10"
    );

    qemu.stop();
    assert_eq!(host.ovs.vsctl(&["list-ports", "br0"]), "vif1.0");
    assert_ok(&host.run(&vif1, "offline"));
}

#[test]
fn a_qemu_tap_takes_tag_and_trunks_from_the_readme_word_in_its_section() {
    let ns = Netns::new("ovw");
    let host = Host::with_bridge(&ns);
    ns.ip(&["tuntap", "add", "vkw0", "mode", "tap"]);
    let config = host.ovs.path("vifkit.conf");
    // The README's example, which once kept vifkit.conf from loading at all.
    std::fs::write(
        &config,
        "[port vkw0]\nbridge = ovsbr0.10:20:30\nopenvswitch = yes\n",
    )
    .unwrap();
    let env = [
        ("VIFKIT_CONFIG", config.as_str()),
        ("OVS_RUNDIR", host.ovs.rundir()),
    ];
    let script = |name: &str| {
        let mut cmd = ns.exec();
        cmd.arg("env").args(env.map(|(k, v)| format!("{k}={v}")));
        run(cmd.arg(binary(name)).arg("vkw0"))
    };
    // The word is read whole: no bridge ovsbr0 here, and no Linux bridge is looked for.
    let out = script("qemu-ifup");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Open vSwitch bridge ovsbr0 does not exist"),
        "{}",
        stderr(&out)
    );
    std::fs::write(
        &config,
        "[port vkw0]\nbridge = br0.10:20:30\nopenvswitch = yes\n",
    )
    .unwrap();
    assert_ok(&script("qemu-ifup"));
    assert_eq!(host.ovs.vsctl(&["get", "port", "vkw0", "tag"]), "10");
    assert_eq!(
        host.ovs.vsctl(&["get", "port", "vkw0", "trunks"]),
        "[20, 30]"
    );
    assert_ok(&script("qemu-ifdown"));
    assert_eq!(host.ovs.vsctl(&["list-ports", "br0"]), "");
}

/// Xen 4.19's `vlan=`, as libxl writes it to `B/vlan` before `online`: the PVID is the
/// port's tag and the tagged VLANs its trunks. A guest so plugged reaches one on the same tag;
/// `B/vlan` with a bridge word that has VLANs, another untagged VLAN or bad syntax fail with
/// one sentence and leave no port.
#[test]
fn xen_vlan_gives_the_port_its_tag_and_trunks_and_refuses_what_ovs_cannot_do() {
    let ns = Netns::new("ovxv");
    let host = Host::with_bridge(&ns);
    let (vif1, g1) = host.guest(1, "00:16:3e:00:00:01", "br0.10", "10.9.0.1/24");
    let (vif2, _g2) = host.guest(2, "00:16:3e:00:00:02", "br0", "10.9.0.2/24");
    let vlan = |vif: &Vif, spec: &str| host.xs.write(&format!("{}/vlan", vif.backend()), spec);
    vlan(&vif2, "10p/20/30");
    for vif in [&vif1, &vif2] {
        assert_ok(&host.run(vif, "online"));
        assert_eq!(host.status(vif).as_deref(), Some("connected"));
    }
    assert_eq!(host.ovs.vsctl(&["get", "port", "vif2.0", "tag"]), "10");
    assert_eq!(
        host.ovs.vsctl(&["get", "port", "vif2.0", "trunks"]),
        "[20, 30]"
    );
    assert!(
        g1.ping("10.9.0.2"),
        "B/vlan's PVID 10 meets the word's tag 10"
    );
    assert_eq!(host.dry_run(&vif2, "online"), Vec::<String>::new());

    let (vif3, _g3) = host.guest(3, "00:16:3e:00:00:03", "br0.20", "10.9.0.3/24");
    let cases = [
        (
            "br0.20",
            "10p",
            "bridge \"br0.20\" and backend/vif/3/0/vlan \"10p\" both give vif3.0 its VLANs: give them once, with vlan= and a bridge without VLANs or with the bridge word alone",
        ),
        (
            "br0",
            "10p/20u",
            "backend/vif/3/0/vlan \"10p/20u\" sends VLAN 20 untagged besides the PVID 10, which an Open vSwitch port cannot: mark only the PVID untagged, or use a VLAN-aware Linux bridge",
        ),
        (
            "br0",
            "10/20",
            "backend/vif/3/0/vlan: no PVID in \"10/20\": mark one VLAN with p, as in 10p/20",
        ),
    ];
    for (bridge, spec, error) in cases {
        host.xs.write(&format!("{}/bridge", vif3.backend()), bridge);
        vlan(&vif3, spec);
        let out = host.run(&vif3, "online");
        assert_eq!(out.status.code(), Some(1), "{spec}");
        let written = host.xs.read(&format!("{}/hotplug-error", vif3.backend()));
        assert_eq!(written.as_deref(), Some(error), "{spec}");
        assert_eq!(host.status(&vif3).as_deref(), Some("error"));
    }
    assert_eq!(host.ovs.vsctl(&["list-ports", "br0"]), "vif1.0\nvif2.0");
    for vif in [&vif1, &vif2, &vif3] {
        assert_ok(&host.run(vif, "offline"));
    }
    assert_eq!(host.ovs.vsctl(&["list-ports", "br0"]), "");
}

/// A qemu tap's `[port]` section: its bridge word's VLANs and its `vlan`/`trunks` keys
/// together (the word's tag with the section's trunks, or the other way round), the README's
/// `bridge = ovsbr0.10:20:30` whole, and a part both give differently is an error naming both.
#[test]
fn a_qemu_tap_merges_its_bridge_word_vlans_with_its_section_or_fails_naming_both() {
    let ns = Netns::new("ovtm");
    let host = Host::with_bridge(&ns);
    let netdev = ["set", "bridge", "ovsbr0", "datapath_type=netdev"];
    host.ovs
        .vsctl(&[&["add-br", "ovsbr0", "--"][..], &netdev].concat());
    ns.ip(&["tuntap", "add", "vkm0", "mode", "tap"]);
    let config = host.ovs.path("vifkit.conf");
    let env = [
        ("VIFKIT_CONFIG", config.as_str()),
        ("OVS_RUNDIR", host.ovs.rundir()),
    ];
    let script = |name: &str, keys: &str| {
        let section = format!("[port vkm0]\nopenvswitch = yes\n{keys}");
        std::fs::write(&config, section).unwrap();
        let mut cmd = ns.exec();
        cmd.arg("env").args(env.map(|(k, v)| format!("{k}={v}")));
        run(cmd.arg(binary(name)).arg("vkm0"))
    };
    for (keys, tag, trunks) in [
        ("bridge = ovsbr0.10:20:30\n", "10", "[20, 30]"),
        ("bridge = ovsbr0.10\ntrunks = 20\n", "10", "[20]"),
        ("bridge = ovsbr0:20:30\nvlan = 10\n", "10", "[20, 30]"),
        (
            "bridge = ovsbr0.10:20\nvlan = 10\ntrunks = 20\n",
            "10",
            "[20]",
        ),
    ] {
        assert_ok(&script("qemu-ifup", keys));
        assert_eq!(
            host.ovs.vsctl(&["get", "port", "vkm0", "tag"]),
            tag,
            "{keys}"
        );
        let got = host.ovs.vsctl(&["get", "port", "vkm0", "trunks"]);
        assert_eq!(got, trunks, "{keys}");
        assert_ok(&script("qemu-ifdown", keys));
        assert_eq!(host.ovs.vsctl(&["list-ports", "ovsbr0"]), "");
    }
    for (keys, error) in [
        (
            "bridge = ovsbr0.10\nvlan = 20\n",
            "the bridge word \"ovsbr0.10\" gives vkm0 VLAN 10 and its [port] section's vlan = 20: set the VLAN in one place",
        ),
        (
            "bridge = ovsbr0.10:20:30\ntrunks = 40\n",
            "the bridge word \"ovsbr0.10:20:30\" gives vkm0 trunks 20,30 and its [port] section's trunks = 40: set the trunks in one place",
        ),
    ] {
        let out = script("qemu-ifup", keys);
        assert_eq!(out.status.code(), Some(1), "{keys}");
        assert!(stderr(&out).contains(error), "{}", stderr(&out));
        assert_eq!(host.ovs.vsctl(&["list-ports", "ovsbr0"]), "");
    }
}

/// Twenty vifs on two VLANs of one Open vSwitch bridge, plugged and unplugged at once: every
/// port lands with its own tag, trunks and MAC, and offline leaves no port.
#[test]
fn twenty_concurrent_plugs_onto_one_ovs_bridge() {
    const N: u32 = 20;
    let ns = Netns::new("ovc");
    let guests = Netns::new("ovcg");
    let host = Host::with_bridge(&ns);
    let vifs: Vec<Vif> = (1..=N)
        .map(|d| {
            let bridge = if d % 2 == 0 { "br0.10" } else { "br0.20:30" };
            let vif = ovs_vif(d, leak(format!("00:16:3e:00:02:{d:02x}")), bridge);
            let name = vif.kernel_name();
            ns.veth(&name, &format!("g{d}"), &guests);
            ns.ip(&["link", "set", &name, "address", "fe:ff:ff:ff:ff:ff"]);
            host.write_keys(&vif);
            vif
        })
        .collect();
    let plug = |command: &str| at_once(&vifs, |vif| host.run(vif, command));

    let outs = plug("online");
    for (vif, out) in vifs.iter().zip(&outs) {
        let name = vif.kernel_name();
        assert!(out.status.success(), "{name}: {}", stderr(out));
        assert_eq!(host.status(vif).as_deref(), Some("connected"), "{name}");
        let link = ns.link(&name).unwrap();
        assert!(
            link["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
            "{name} is down"
        );
        let (tag, trunks) = if vif.domid % 2 == 0 {
            ("10", "[]")
        } else {
            ("20", "[30]")
        };
        assert_eq!(
            host.ovs.vsctl(&["get", "port", &name, "tag"]),
            tag,
            "{name}"
        );
        assert_eq!(
            host.ovs.vsctl(&["get", "port", &name, "trunks"]),
            trunks,
            "{name}"
        );
        let ids = host.ovs.vsctl(&["get", "interface", &name, "external_ids"]);
        let mac = format!("attached-mac=\"{}\"", vif.mac);
        assert!(ids.contains(&mac), "{mac} missing from {ids}");
    }
    let mut ports: Vec<String> = host
        .ovs
        .vsctl(&["list-ports", "br0"])
        .lines()
        .map(str::to_owned)
        .collect();
    ports.sort();
    let mut names: Vec<String> = vifs.iter().map(Vif::kernel_name).collect();
    names.sort();
    assert_eq!(ports, names);

    let outs = plug("offline");
    for (vif, out) in vifs.iter().zip(&outs) {
        assert_ok(out);
        let link = ns.link(&vif.kernel_name()).unwrap();
        assert!(!link["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    }
    assert_eq!(host.ovs.vsctl(&["list-ports", "br0"]), "");
}

/// The planner sees what the first online did, so the second has nothing to do.
#[test]
fn online_twice_plans_nothing_the_second_time() {
    let ns = Netns::new("ov2p");
    let host = Host::with_bridge(&ns);
    let (vif1, _g1) = host.guest(1, "00:16:3e:00:00:01", "br0.10", "10.9.0.1/24");
    assert_ok(&host.run(&vif1, "online"));
    assert_eq!(host.dry_run(&vif1, "online"), Vec::<String>::new());
    assert_ok(&host.run(&vif1, "online"));
    assert_eq!(host.ovs.vsctl(&["list-ports", "br0"]), "vif1.0");
}

/// What `add_port` writes, `port_state` reads back equal (trunks and external-ids in any
/// order); a changed field, another tool's port of that name or no port at all is told apart.
#[test]
fn port_state_reads_back_what_add_port_wrote() {
    let ns = Netns::new("ovps");
    let ovs = Ovs::start(&ns);
    ovs.vsctl(&[
        "add-br",
        "br0",
        "--",
        "set",
        "bridge",
        "br0",
        "datapath_type=netdev",
    ]);
    ns.ip(&["tuntap", "add", "vkp0", "mode", "tap"]);
    let mut db = Ovsdb::connect_at(&ovs.dir.join("db.sock"), Duration::from_secs(10)).unwrap();
    let id = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let port = OvsPort {
        name: "vkp0".into(),
        tag: Some(10),
        trunks: vec![30, 20],
        external_ids: vec![
            id("xen-vm-uuid", "00000001-aaaa-4bbb-8ccc-dddddddddddd"),
            id("attached-mac", "00:16:3e:00:00:01"),
            id("xen-vm-name", "guest1"),
        ],
        mtu: Some(1400),
    };
    db.add_port("br0", &port).unwrap();
    let state = |db: &mut Ovsdb, name: &str| db.port_state(name).unwrap();
    let (bridge, read) = state(&mut db, "vkp0").unwrap();
    assert_eq!(bridge, "br0");
    assert_eq!(read, port);
    assert_eq!(read.trunks, [20, 30], "read back normalised");
    assert_eq!(read.external_ids, port.normalised().external_ids);

    // Another tool's external-id is not vifkit's to compare; a changed field is.
    let vsctl = |args: &[&str]| ovs.vsctl(&[&["--no-wait"][..], args].concat());
    vsctl(&["set", "interface", "vkp0", "external_ids:iface-id=other"]);
    assert_eq!(state(&mut db, "vkp0").unwrap().1, port);
    vsctl(&[
        "set",
        "interface",
        "vkp0",
        "external_ids:xen-vm-name=guest2",
    ]);
    assert_ne!(state(&mut db, "vkp0").unwrap().1, port);
    vsctl(&[
        "set",
        "interface",
        "vkp0",
        "external_ids:xen-vm-name=guest1",
    ]);
    vsctl(&["set", "port", "vkp0", "tag=11"]);
    assert_ne!(state(&mut db, "vkp0").unwrap().1, port);

    // add_port replaces the port whole: a bare one reads back bare.
    let bare = OvsPort {
        name: "vkp0".into(),
        tag: None,
        trunks: vec![],
        external_ids: vec![],
        mtu: None,
    };
    db.add_port("br0", &bare).unwrap();
    assert_eq!(state(&mut db, "vkp0"), Some(("br0".to_owned(), bare)));

    // A port of the name that vifkit would not have made equals none it plans.
    vsctl(&["add-bond", "br0", "vkb0", "vkb1", "vkb2"]);
    assert_eq!(state(&mut db, "vkb0").unwrap().1.name, "vkb1+vkb2");
    vsctl(&[
        "add-port",
        "br0",
        "vki0",
        "--",
        "set",
        "interface",
        "vki0",
        "type=internal",
    ]);
    assert_eq!(state(&mut db, "vki0").unwrap().1.name, "vki0:internal");

    assert_eq!(state(&mut db, "vkp9"), None);
}
