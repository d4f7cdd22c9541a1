//! `vifkit status` over every kind of port at once, in throwaway namespaces with the
//! xenstore test server standing in for xenstored: a routed, a NAT and a bridged vif (with
//! its HVM guest's `-emu` tap), and a qemu tap. Needs root.

mod common;
mod routed;

use std::process::{Command, Output};

use common::*;
use routed::{no_dad, seed_2_1_uplink, sysctl};
use serde_json::{Value, json};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Seed 2.1's host (uplink eth0 behind a router) with xen1.0 (vif-route, domain "mail"),
/// xen2.0 (vif-nat, a domain without a name) and vif3.0 on xenbr0 (vif-bridge, domain
/// "web", an HVM guest whose vif3.0-emu is plugged too), all online, and tap0 plugged by
/// qemu-ifup onto xenbr0; besides, taps vifkit has nothing to do with.
struct Host {
    _router: Netns,
    host: Netns,
    _guests: [Netns; 3],
    xs: Xenstore,
    dir: Scratch,
}

fn host(tag: &str) -> Host {
    let router = Netns::new(&format!("{tag}r"));
    let host = Netns::new(&format!("{tag}h"));
    let guests = [
        Netns::new(&format!("{tag}1")),
        Netns::new(&format!("{tag}2")),
        Netns::new(&format!("{tag}3")),
    ];
    for ns in [&router, &host] {
        no_dad(ns);
    }
    sysctl(&host, "net.ipv4.conf.all.forwarding", "1");
    sysctl(&host, "net.ipv6.conf.all.forwarding", "1");
    seed_2_1_uplink(&host, &router);
    host.bridge("xenbr0", 1500);
    let dir = scratch(tag);
    let config = dir.join("vifkit.conf");
    std::fs::write(
        &config,
        "[port tap*]\nbridge = xenbr0\nip = 198.51.100.20\nmac = 52:54:00:12:34:56\n",
    )
    .unwrap();
    let config = config.display().to_string();
    let env = [("VIFKIT_CONFIG", config.as_str())];
    let xs = Xenstore::start();
    let ports = [
        (
            1,
            "vif-route",
            Some("xen1.0"),
            "192.0.2.241 2001:db8:abba::1001",
        ),
        (2, "vif-nat", Some("xen2.0"), "192.168.1.10"),
        (3, "vif-bridge", None, "198.51.100.10"),
    ];
    for ((domid, script, vifname, ip), guest) in ports.into_iter().zip(&guests) {
        let mut vif = Vif::new(domid, 0);
        vif.script = leak(format!("/etc/xen/scripts/{script}"));
        vif.vifname = vifname;
        if script != "vif-bridge" {
            vif.bridge = None;
        } else {
            vif.nic_type = "vif_ioemu";
        }
        host.netback_vif(&vif, guest);
        xs.write_vif(&vif);
        xs.write(&format!("{}/ip", vif.backend()), ip);
        assert_ok(&hotplug(&host, &xs, &vif, &["online", "type_if=vif"], &env));
        if vif.nic_type == "vif_ioemu" {
            host.ip(&["tuntap", "add", "vif3.0-emu", "mode", "tap"]);
            assert_ok(&hotplug(&host, &xs, &vif, &["add", "type_if=tap"], &env));
        }
    }
    xs.write("/local/domain/1/name", "mail");
    xs.write("/local/domain/3/name", "web");
    host.ip(&["tuntap", "add", "tap0", "mode", "tap"]);
    must(
        host.exec()
            .args(["env", &format!("VIFKIT_CONFIG={config}")])
            .arg(binary("qemu-ifup"))
            .arg("tap0"),
    );
    // Not vifkit's: another program's tap (no rule names it, qemu-ifup never saw it) and a
    // VPN's layer-3 tun.
    host.ip(&["tuntap", "add", "other0", "mode", "tap"]);
    host.ip(&["tuntap", "add", "tun0", "mode", "tun"]);
    Host {
        _router: router,
        host,
        _guests: guests,
        xs,
        dir,
    }
}

impl Host {
    fn status(&self, args: &[&str]) -> Output {
        self.status_with(
            args,
            &[&format!("XENSTORED_PATH={}", self.xs.socket.display())],
        )
    }

    fn status_with(&self, args: &[&str], env: &[&str]) -> Output {
        let config = format!("VIFKIT_CONFIG={}", self.dir.join("vifkit.conf").display());
        let mut cmd = self.host.exec();
        cmd.args(["env", "-u", "XENSTORED_PATH", "-u", "XENSTORED_RUNDIR"])
            .args(env)
            .arg(config)
            .arg(binary("vifkit"))
            .arg("status")
            .args(args);
        run(&mut cmd)
    }
}

fn parse(out: &Output) -> Vec<Value> {
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json printed no JSON ({e}): {}", stdout(out)));
    assert_eq!(v["watcher"]["running"], false, "no watcher runs here");
    v["ports"]
        .as_array()
        .expect("a JSON array of ports")
        .clone()
}

fn by_name<'a>(ports: &'a [Value], name: &str) -> &'a Value {
    ports
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing from {ports:#?}"))
}

/// The real-Xen lab's dom0 has a xenstore that cannot be made unreachable.
fn real_xenstore() -> bool {
    [
        "/var/run/xenstored/socket",
        "/run/xenstored/socket",
        "/dev/xen/xenbus",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists())
}

#[test]
fn status_lists_every_port_and_drift_makes_it_fail() {
    let h = host("st");

    let out = h.status(&[]);
    assert_ok(&out);
    assert_eq!(
        stdout(&out),
        "\
PORT        DOMAIN    MODE         BRIDGE/UPLINK  ADDRESSES                        FILTER  HOTPLUG    HEALTH
xen1.0      mail (1)  route        eth0           192.0.2.241,2001:db8:abba::1001  on      connected  ok
xen2.0      2         nat          eth0           192.168.1.10                     on      connected  ok
vif3.0      web (3)   bridge       xenbr0         198.51.100.10                    on      connected  ok
vif3.0-emu  web (3)   bridge       xenbr0         198.51.100.10                    on      connected  ok
tap0        tap       tap-bridged  xenbr0         198.51.100.20                    on      -          ok
watcher: not running (vifkit-watch.service)
"
    );

    let out = h.status(&["--json"]);
    assert_ok(&out);
    let ports = parse(&out);
    let names: Vec<&str> = ports.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["xen1.0", "xen2.0", "vif3.0", "vif3.0-emu", "tap0"]);
    assert_eq!(
        by_name(&ports, "xen1.0"),
        &json!({
            "name": "xen1.0", "kind": "vif", "domain": {"id": 1, "name": "mail"},
            "mode": "route", "bridge": null, "uplinks": ["eth0"],
            "addresses": ["192.0.2.241", "2001:db8:abba::1001"], "filter": true,
            "hotplug_status": "connected", "health": "ok", "drift": [],
        })
    );
    let nat = by_name(&ports, "xen2.0");
    assert_eq!(nat["mode"], "nat");
    assert_eq!(nat["domain"], json!({"id": 2, "name": null}));
    assert_eq!(nat["addresses"], json!(["192.168.1.10"]));
    let emu = by_name(&ports, "vif3.0-emu");
    assert_eq!(
        (&emu["kind"], &emu["mode"]),
        (&json!("emu"), &json!("bridge"))
    );
    assert_eq!(
        by_name(&ports, "tap0"),
        &json!({
            "name": "tap0", "kind": "tap", "domain": null, "mode": "tap-bridged",
            "bridge": "xenbr0", "uplinks": [], "addresses": ["198.51.100.20"],
            "filter": true, "hotplug_status": null, "health": "ok", "drift": [],
        })
    );

    // A KVM host: no xenstore to ask, the taps are listed all the same.
    if real_xenstore() {
        eprintln!("skipped the KVM case: this host has a real xenstore");
    } else {
        let out = h.status_with(&["--json"], &[]);
        assert_ok(&out);
        let names: Vec<Value> = parse(&out).iter().map(|p| p["name"].clone()).collect();
        assert_eq!(names, [json!("tap0")]);
    }

    // vif3.0 off its bridge, and xen2.0's guest failed to plug as libxl would report it.
    h.host.ip(&["link", "set", "vif3.0", "nomaster"]);
    let backend = "/local/domain/0/backend/vif/2/0";
    h.xs.write(&format!("{backend}/hotplug-status"), "error");
    h.xs.write(
        &format!("{backend}/hotplug-error"),
        "uplink eth7 (netdev) does not exist",
    );
    let out = h.status(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        stderr(&out),
        "vifkit: error: 2 port(s) drift from what online leaves (vifkit check PORT lists each difference)\n"
    );
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing: {lines:#?}"))
            .clone()
    };
    assert!(
        row("vif3.0").ends_with("connected  would attach vif3.0 to bridge xenbr0"),
        "{}",
        row("vif3.0")
    );
    assert!(
        row("xen2.0").ends_with(
            "error      /local/domain/0/backend/vif/2/0/hotplug-status is \"error\", not \"connected\" (hotplug-error: uplink eth7 (netdev) does not exist)"
        ),
        "{}",
        row("xen2.0")
    );
    for name in ["xen1.0", "vif3.0-emu", "tap0"] {
        assert!(row(name).ends_with("  ok"), "{}", row(name));
    }
    let out = h.status(&["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let ports = parse(&out);
    let vif = by_name(&ports, "vif3.0");
    assert_eq!(vif["health"], "would attach vif3.0 to bridge xenbr0");
    assert_eq!(vif["drift"][0], vif["health"]);
    assert_eq!(by_name(&ports, "xen2.0")["hotplug_status"], "error");
    assert_eq!(by_name(&ports, "xen1.0")["health"], "ok");

    // check says the same, line for line.
    let check = run(h
        .host
        .exec()
        .args(["env", &format!("XENSTORED_PATH={}", h.xs.socket.display())])
        .arg(format!(
            "VIFKIT_CONFIG={}",
            h.dir.join("vifkit.conf").display()
        ))
        .arg(binary("vifkit"))
        .args(["check", "vif3.0"]));
    assert_eq!(check.status.code(), Some(1));
    let first = stdout(&check).lines().next().unwrap_or_default().to_owned();
    assert_eq!(first, format!("drift: {}", vif["health"].as_str().unwrap()));
}

#[test]
fn no_ports_is_one_line_and_success() {
    let host = Netns::new("stn");
    let xs = Xenstore::start();
    // Taps that are not vifkit's, and a bridge.
    host.ip(&["tuntap", "add", "other0", "mode", "tap"]);
    host.ip(&["tuntap", "add", "tun0", "mode", "tun"]);
    host.bridge("xenbr0", 1500);
    let status = |args: &[&str]| {
        run(host
            .exec()
            .args(["env", &format!("XENSTORED_PATH={}", xs.socket.display())])
            .arg("VIFKIT_CONFIG=/dev/null")
            .arg(binary("vifkit"))
            .arg("status")
            .args(args))
    };
    let out = status(&[]);
    assert_ok(&out);
    assert_eq!(
        stdout(&out),
        "no port vifkit manages: no Xen vif in /local/domain/0/backend/vif runs one of its scripts, and no tap was plugged by it\nwatcher: not running (vifkit-watch.service)\n"
    );
    let out = status(&["--json"]);
    assert_ok(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, json!({"watcher": {"running": false}, "ports": []}));
}

#[test]
fn an_unreachable_xenstore_still_lists_the_taps_and_fails() {
    if real_xenstore() {
        eprintln!("skipped: this host has a real xenstore");
        return;
    }
    let host = Netns::new("stx");
    host.bridge("xenbr0", 1500);
    host.ip(&["tuntap", "add", "tap0", "mode", "tap"]);
    must(
        host.exec()
            .arg(binary("qemu-ifup"))
            .args(["tap0", "xenbr0"]),
    );
    let out = run(Command::new("ip")
        .args(["netns", "exec", &host.name])
        .args([
            "env",
            "XENSTORED_PATH=/nonexistent/socket",
            "VIFKIT_CONFIG=/dev/null",
        ])
        .arg(binary("vifkit"))
        .arg("status"));
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.lines().nth(1).is_some_and(|l| l.starts_with("tap0 ")),
        "{text}"
    );
    assert!(
        stderr(&out).starts_with(
            "vifkit: error: Xen vifs not listed: cannot connect to xenstore (tried /nonexistent/socket: "
        ),
        "{}",
        stderr(&out)
    );
}
