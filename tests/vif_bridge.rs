//! `vif-bridge` against real bridges, veth "netback" devices and taps in throwaway
//! namespaces, with the xenstore test server standing in for xenstored. Needs root.

mod common;

use common::*;

/// Host namespace with bridge `xenbr0` (MTU 9000, 192.0.2.1/24) and a guest namespace
/// whose `eth0` is the far end of `vif<d>.<n>`.
struct Rig {
    host: Netns,
    guest: Netns,
    xs: Xenstore,
    vif: Vif,
}

impl Rig {
    fn new(tag: &str) -> Rig {
        let host = Netns::new(&format!("{tag}h"));
        let guest = Netns::new(&format!("{tag}g"));
        host.bridge("xenbr0", 9000);
        host.ip(&["addr", "add", "192.0.2.1/24", "dev", "xenbr0"]);
        let vif = Vif::new(3, 0);
        host.veth(&vif.kernel_name(), "eth0", &guest);
        guest.ip(&["addr", "add", "192.0.2.10/24", "dev", "eth0"]);
        let xs = Xenstore::start();
        xs.write_vif(&vif);
        Rig {
            host,
            guest,
            xs,
            vif,
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        hotplug(&self.host, &self.xs, &self.vif, args, &[])
    }

    fn status(&self) -> Option<String> {
        self.xs
            .read(&format!("{}/hotplug-status", self.vif.backend()))
    }

    fn error(&self) -> Option<String> {
        self.xs
            .read(&format!("{}/hotplug-error", self.vif.backend()))
    }
}

/// common's check, plus a clean stdout (libxl's log is stderr).
fn assert_ok(out: &std::process::Output) {
    common::assert_ok(out);
    assert!(
        out.stdout.is_empty(),
        "stdout must stay clean: {:?}",
        out.stdout
    );
}

fn assert_attached(rig: &Rig, dev: &str, mtu: u64) {
    let link = rig
        .host
        .link(dev)
        .unwrap_or_else(|| panic!("{dev} missing"));
    assert_eq!(link["master"], "xenbr0");
    assert_eq!(link["mtu"], mtu);
    assert_eq!(link["address"], "fe:ff:ff:ff:ff:ff");
    assert!(
        link["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
        "{link}"
    );
    assert_eq!(rig.status().as_deref(), Some("connected"));
}

#[test]
fn online_attaches_sets_mtu_mac_and_reports_connected() {
    let rig = Rig::new("on");
    rig.host
        .ip(&["addr", "add", "198.51.100.7/32", "dev", "vif3.0"]);
    let out = rig.run(&["online", "type_if=vif"]);
    assert_ok(&out);
    assert_attached(&rig, "vif3.0", 9000);
    assert!(
        rig.host
            .addresses("vif3.0")
            .iter()
            .all(|a| !a.starts_with("198.51.100.7"))
    );
    assert_eq!(
        rig.xs
            .read(&format!("{}/mtu", rig.vif.frontend()))
            .as_deref(),
        Some("9000")
    );
    assert_eq!(rig.error(), None);
    // The guest reaches the host across the bridge.
    assert!(rig.guest.ping("192.0.2.1"), "ping across xenbr0 failed");
}

#[test]
fn backend_mtu_overrides_the_bridge() {
    let rig = Rig::new("mtu");
    rig.xs.write(&format!("{}/mtu", rig.vif.backend()), "1400");
    assert_ok(&rig.run(&["online", "type_if=vif"]));
    assert_attached(&rig, "vif3.0", 1400);
    assert_eq!(
        rig.xs
            .read(&format!("{}/mtu", rig.vif.frontend()))
            .as_deref(),
        Some("1400")
    );
}

#[test]
fn online_twice_is_a_no_op_that_still_says_connected() {
    let rig = Rig::new("on2");
    assert_ok(&rig.run(&["online", "type_if=vif"]));
    let before = rig.host.link("vif3.0").unwrap();
    rig.xs
        .write(&format!("{}/hotplug-status", rig.vif.backend()), "");
    assert_ok(&rig.run(&["online", "type_if=vif"]));
    assert_attached(&rig, "vif3.0", 9000);
    assert_eq!(
        rig.host.link("vif3.0").unwrap()["ifindex"],
        before["ifindex"]
    );
    assert!(rig.guest.ping("192.0.2.1"));
}

/// A second online keeps the port's IPv6 link-local (the kernel's, not an address the
/// port should lose) and drops an address it should not have.
#[test]
fn online_again_keeps_the_link_local_and_drops_stray_addresses() {
    let rig = Rig::new("onll");
    assert_ok(&rig.run(&["online", "type_if=vif"]));
    let addresses = |rig: &Rig| rig.host.ip(&["addr", "show", "dev", "vif3.0"]);
    for _ in 0..50 {
        if addresses(&rig).contains("inet6 fe80::") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        addresses(&rig).contains("inet6 fe80::"),
        "{}",
        addresses(&rig)
    );
    rig.host
        .ip(&["addr", "add", "198.51.100.7/24", "dev", "vif3.0"]);
    assert_ok(&rig.run(&["online", "type_if=vif"]));
    let after = addresses(&rig);
    assert!(after.contains("inet6 fe80::"), "{after}");
    assert!(!after.contains("198.51.100.7"), "{after}");
}

/// The planner sees what the first online did, so the second has nothing to do.
#[test]
fn online_twice_plans_nothing_the_second_time() {
    let rig = Rig::new("on2p");
    assert_ok(&rig.run(&["online", "type_if=vif"]));
    let second = &["online", "type_if=vif"];
    assert_eq!(
        dry_run_steps(&rig.host, &rig.xs, &rig.vif, second, &[]),
        Vec::<String>::new()
    );
    assert_ok(&rig.run(second));
}

#[test]
fn offline_twice_and_offline_of_a_vanished_vif() {
    let rig = Rig::new("off");
    assert_ok(&rig.run(&["online", "type_if=vif"]));
    for _ in 0..2 {
        assert_ok(&rig.run(&["offline", "type_if=vif"]));
        let link = rig.host.link("vif3.0").unwrap();
        assert!(link.get("master").is_none(), "{link}");
        assert!(!link["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    }
    // netback usually frees the device before libxl runs offline.
    rig.host.ip(&["link", "del", "vif3.0"]);
    let out = rig.run(&["offline", "type_if=vif"]);
    assert_ok(&out);
    assert_eq!(rig.error(), None);
}

#[test]
fn missing_bridge_fails_cleanly() {
    let rig = Rig::new("nobr");
    rig.xs
        .write(&format!("{}/bridge", rig.vif.backend()), "xenbr7");
    let before = rig.host.link("vif3.0").unwrap();
    let out = rig.run(&["online", "type_if=vif"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(
        err.lines().next(),
        Some(
            "vif-bridge: error: vif3.0: bridge xenbr7 does not exist (named by backend/vif/3/0/bridge, the vif configuration's bridge=)"
        ),
        "{err}"
    );
    assert_eq!(rig.status().as_deref(), Some("error"));
    assert_eq!(
        rig.error().as_deref(),
        Some(
            "bridge xenbr7 does not exist (named by backend/vif/3/0/bridge, the vif configuration's bridge=)"
        )
    );
    assert_eq!(
        rig.host.link("vif3.0").unwrap(),
        before,
        "nothing may change"
    );
}

#[test]
fn no_bridge_anywhere_is_an_error_not_a_guess() {
    let rig = Rig::new("nob");
    rig.xs.rm(&format!("{}/bridge", rig.vif.backend()));
    let out = rig.run(&["online", "type_if=vif"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        rig.error().as_deref(),
        Some(
            "no bridge specified: set bridge= in the vif configuration (looked in backend/vif/3/0/bridge, the bridge= argument and the bridge environment variable)"
        )
    );
    // The bridge= word of an old toolstack is honoured.
    assert_ok(&rig.run(&["online", "type_if=vif", "bridge=xenbr0"]));
    assert_attached(&rig, "vif3.0", 9000);
}

#[test]
fn target_that_is_not_a_bridge() {
    let rig = Rig::new("nbr");
    let other = Netns::new("nbro");
    rig.host.veth("eth1", "x", &other);
    rig.xs
        .write(&format!("{}/bridge", rig.vif.backend()), "eth1");
    let out = rig.run(&["online", "type_if=vif"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        rig.error().as_deref(),
        Some("eth1 exists but is not a bridge (it is a veth link)")
    );
    assert_eq!(rig.status().as_deref(), Some("error"));
    assert!(rig.host.master_of("vif3.0").is_none());
}

#[test]
fn failed_hook_rolls_everything_back() {
    let rig = Rig::new("hook");
    let hooks = hook_dir(
        "hooks",
        "50-deny.hook",
        "fatal \"denied $dev on $bridge\"\n",
    );
    let before = rig.host.link("vif3.0").unwrap();
    let out = hotplug(
        &rig.host,
        &rig.xs,
        &rig.vif,
        &["online"],
        &[("VIFKIT_HOOK_DIR", hooks.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        rig.error().as_deref(),
        Some(
            format!(
                "run hooks in {}: hook 50-deny.hook failed (exit 1): denied vif3.0 on xenbr0",
                hooks.display()
            )
            .as_str()
        )
    );
    let after = rig.host.link("vif3.0").unwrap();
    assert!(after.get("master").is_none(), "left enslaved: {after}");
    assert_eq!(after["mtu"], before["mtu"]);
    assert_eq!(after["address"], before["address"]);
    assert_eq!(after["flags"], before["flags"]);
}

#[test]
fn vifname_renames_and_reruns_find_the_renamed_device() {
    let rig = Rig::new("ren");
    rig.xs
        .write(&format!("{}/vifname", rig.vif.backend()), "xen1.0");
    assert_ok(&rig.run(&["online", "type_if=vif"]));
    assert!(rig.host.link("vif3.0").is_none());
    assert_attached(&rig, "xen1.0", 9000);
    // The frontend MTU goes to the real frontend path (upstream's FIX).
    assert_eq!(
        rig.xs
            .read(&format!("{}/mtu", rig.vif.frontend()))
            .as_deref(),
        Some("9000")
    );
    assert_ok(&rig.run(&["online", "type_if=vif"]));
    assert!(rig.guest.ping("192.0.2.1"));
    assert_ok(&rig.run(&["offline", "type_if=vif"]));
    assert!(rig.host.master_of("xen1.0").is_none());
}

#[test]
fn vifname_collision_is_an_error() {
    let rig = Rig::new("col");
    let other = Netns::new("colo");
    rig.host.veth("xen1.0", "y", &other);
    rig.xs
        .write(&format!("{}/vifname", rig.vif.backend()), "xen1.0");
    let out = rig.run(&["online", "type_if=vif"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        rig.error().as_deref(),
        Some("Cannot rename interface vif3.0. An interface with name xen1.0 already exists.")
    );
    assert!(rig.host.link("vif3.0").is_some());
    assert!(rig.host.master_of("xen1.0").is_none());
}

#[test]
fn hvm_tap_branch() {
    let mut rig = Rig::new("tap");
    rig.vif.nic_type = "vif_ioemu";
    rig.xs
        .write(&format!("{}/type", rig.vif.backend()), "vif_ioemu");
    rig.host.ip(&["tuntap", "add", "vif3.0-emu", "mode", "tap"]);
    assert_ok(&rig.run(&["online", "type_if=vif"]));
    assert_ok(&rig.run(&["add", "type_if=tap"]));
    let tap = rig.host.link("vif3.0-emu").unwrap();
    assert_eq!(tap["master"], "xenbr0");
    assert_eq!(tap["mtu"], 9000);
    assert_eq!(tap["address"], "fe:ff:ff:ff:ff:ff");
    // The vif run, not the tap run, says connected; a failed tap must not overwrite it.
    assert_eq!(rig.status().as_deref(), Some("connected"));
    assert_ok(&rig.run(&["remove", "type_if=tap"]));
    assert!(rig.host.master_of("vif3.0-emu").is_none());
    // Filters: tap words on a vif run and vice versa do nothing.
    assert_ok(&rig.run(&["online", "type_if=tap"]));
    assert!(rig.host.master_of("vif3.0-emu").is_none());
}

#[test]
fn fifty_concurrent_plugs_onto_one_bridge() {
    let host = Netns::new("conh");
    let peers = Netns::new("conp");
    host.bridge("xenbr0", 1500);
    let xs = Xenstore::start();
    let vifs: Vec<Vif> = (1..=50).map(|d| Vif::new(d, 0)).collect();
    for vif in &vifs {
        host.veth(&vif.kernel_name(), &format!("p{}", vif.domid), &peers);
        xs.write_vif(vif);
    }
    let outputs = at_once(&vifs, |vif| {
        hotplug(&host, &xs, vif, &["online", "type_if=vif"], &[])
    });
    for (vif, out) in vifs.iter().zip(&outputs) {
        assert!(
            out.status.success(),
            "{}: {}",
            vif.kernel_name(),
            stderr(out)
        );
        assert_eq!(
            host.master_of(&vif.kernel_name()).as_deref(),
            Some("xenbr0")
        );
        assert_eq!(
            xs.read(&format!("{}/hotplug-status", vif.backend()))
                .as_deref(),
            Some("connected")
        );
    }
    let ports = host.ip_json(&["link", "show", "master", "xenbr0"]);
    assert_eq!(ports.as_array().unwrap().len(), 50);
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let rig = Rig::new("dry");
    let before = rig.host.link("vif3.0").unwrap();
    let out = hotplug(
        &rig.host,
        &rig.xs,
        &rig.vif,
        &["online"],
        &[("VIFKIT_DRY_RUN", "1")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let plan = String::from_utf8(out.stdout).unwrap();
    assert!(plan.contains("attach vif3.0 to bridge xenbr0\n"), "{plan}");
    assert!(plan.contains("set vif3.0 mtu 9000\n"), "{plan}");
    assert_eq!(rig.host.link("vif3.0").unwrap(), before);
    assert_eq!(rig.status().as_deref(), Some(""));
}

#[test]
fn invalid_command_writes_nothing() {
    let rig = Rig::new("inv");
    let out = rig.run(&["start", "type_if=vif"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "vif-bridge: error: vif3.0: invalid command \"start\": expected online, offline, add or remove\n"
    );
    assert_eq!(rig.status().as_deref(), Some(""));
    assert_eq!(rig.error(), None);
}

#[test]
fn udev_call_is_skipped_when_libxl_disabled_udev() {
    let rig = Rig::new("udev");
    rig.xs.write("/local/domain/0/libxl/disable_udev", "1");
    let out = hotplug(
        &rig.host,
        &rig.xs,
        &rig.vif,
        &["online"],
        &[("UDEV_CALL", "1")],
    );
    assert_ok(&out);
    assert!(rig.host.master_of("vif3.0").is_none());
    rig.xs.rm("/local/domain/0/libxl/disable_udev");
    assert_ok(&hotplug(
        &rig.host,
        &rig.xs,
        &rig.vif,
        &["online"],
        &[("UDEV_CALL", "1")],
    ));
    assert_attached(&rig, "vif3.0", 9000);
}

#[test]
fn appends_to_xen_hotplug_log_when_the_directory_exists() {
    let rig = Rig::new("log");
    // A private tmpfs over /var/log, inside the mount namespace `ip netns exec` gives us.
    let mut cmd = rig.host.exec();
    let backend = "backend/vif/3/0".to_string();
    cmd.args(["sh", "-c", "mount -t tmpfs vifkit-log /var/log && mkdir /var/log/xen && \"$@\" && cat /var/log/xen/xen-hotplug.log", "sh"])
        .arg("env")
        .arg(format!("XENSTORED_PATH={}", rig.xs.socket.display()))
        .arg(format!("XENBUS_PATH={backend}"))
        .arg("vif=vif3.0")
        .arg("VIFKIT_HOOK_DIR=/nonexistent")
        .arg(binary("vif-bridge"))
        .arg("online");
    let log = must(&mut cmd);
    assert!(log.contains("vif-bridge["), "{log}");
    assert!(
        log.contains(": info: vif3.0: attach vif3.0 to bridge xenbr0\n"),
        "{log}"
    );
    assert_eq!(rig.status().as_deref(), Some("connected"));
}
