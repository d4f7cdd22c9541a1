//! `qemu-ifup` / `qemu-ifdown` run by the real Debian qemu (`-machine none`: no guest is
//! needed to exercise the scripts) and directly, in throwaway namespaces. Needs root.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A namespace with bridge `br0` (MTU 1400) and a persistent tap, so that what the
/// downscript did is still visible after qemu exits.
fn rig(tag: &str) -> (Netns, String) {
    let ns = Netns::new(tag);
    ns.bridge("br0", 1400);
    let tap = format!("vkt{}", unique("").split('-').nth(1).unwrap());
    ns.ip(&["tuntap", "add", &tap, "mode", "tap"]);
    (ns, tap)
}

fn script(ns: &Netns, name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = ns.exec();
    cmd.arg("env")
        .arg("-i")
        .arg("PATH=/usr/sbin:/usr/bin:/sbin:/bin");
    for (k, v) in env {
        cmd.arg(format!("{k}={v}"));
    }
    cmd.arg(binary(name)).args(args);
    run(&mut cmd)
}

fn qemu(ns: &Netns, tap: &str, env: &[(&str, &str)], extra: &[&str]) -> Child {
    let netdev = format!(
        "tap,id=n0,ifname={tap},script={},downscript={}",
        binary("qemu-ifup").display(),
        binary("qemu-ifdown").display()
    );
    let mut cmd = ns.exec();
    cmd.arg("env");
    for (k, v) in env {
        cmd.arg(format!("{k}={v}"));
    }
    cmd.args([
        "qemu-system-x86_64",
        "-machine",
        "none",
        "-accel",
        "tcg",
        "-nodefaults",
        "-display",
        "none",
    ])
    .args(["-netdev", &netdev])
    .args(extra)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd.spawn()
        .expect("start qemu-system-x86_64 (package qemu-system-x86)")
}

/// Waits until `check` holds or the qemu child exits, up to 30 s.
fn wait_for(child: &mut Child, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn finish(mut child: Child) -> (i32, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), stderr(&out))
}

fn assert_port(ns: &Netns, tap: &str, bridge: &str, mtu: u64) {
    let link = ns.link(tap).unwrap();
    assert_eq!(link["master"], bridge, "{link}");
    assert_eq!(link["mtu"], mtu);
    assert_eq!(link["address"], "fe:ff:ff:ff:ff:ff");
    assert!(
        link["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
        "{link}"
    );
}

fn assert_detached(ns: &Netns, tap: &str) {
    let link = ns.link(tap).unwrap();
    assert!(link.get("master").is_none(), "{link}");
    assert!(
        !link["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
        "{link}"
    );
}

#[test]
fn qemu_runs_ifup_and_sigterm_runs_ifdown() {
    let (ns, tap) = rig("qsig");
    let mut child = qemu(&ns, &tap, &[("VIFKIT_BRIDGE", "br0")], &[]);
    assert!(
        wait_for(&mut child, || ns.master_of(&tap).as_deref() == Some("br0")),
        "tap never joined br0"
    );
    assert_port(&ns, &tap, "br0", 1400);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let (_, log) = finish(child);
    assert!(
        log.contains(&format!("qemu-ifdown: {tap}: detach {tap} from its bridge")),
        "{log}"
    );
    assert_detached(&ns, &tap);
}

#[test]
fn qmp_quit_runs_ifdown_and_default_route_picks_the_bridge() {
    let (ns, tap) = rig("qqmp");
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "br0"]);
    ns.ip(&[
        "route",
        "add",
        "default",
        "via",
        "192.0.2.254",
        "dev",
        "br0",
        "onlink",
    ]);
    let dir = scratch("qmp");
    let sock = dir.join("qmp");
    let qmp = format!("unix:{},server=on,wait=off", sock.display());
    let mut child = qemu(&ns, &tap, &[("VIFKIT_LOG", "debug")], &["-qmp", &qmp]);
    assert!(
        wait_for(&mut child, || ns.master_of(&tap).as_deref() == Some("br0")),
        "tap never joined br0"
    );
    assert_port(&ns, &tap, "br0", 1400);
    let stream = UnixStream::connect(&sock).expect("QMP socket");
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap(); // greeting
    let mut w = stream;
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n")
        .unwrap();
    let (code, log) = finish(child);
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains(&format!(
            "qemu-ifup: debug: {tap}: bridge br0 carries the default route"
        )),
        "{log}"
    );
    assert_detached(&ns, &tap);
}

#[test]
fn no_bridge_anywhere_and_qemu_refuses_to_start() {
    let (ns, tap) = rig("qnob");
    let dir = scratch("qnob");
    let conf = dir.join("vifkit.conf");
    std::fs::write(
        &conf,
        "# nothing for this tap\n[port web-*]\nbridge = br0\n",
    )
    .unwrap();
    let child = qemu(&ns, &tap, &[("VIFKIT_CONFIG", conf.to_str().unwrap())], &[]);
    let (code, log) = finish(child);
    assert_ne!(code, 0, "qemu must refuse to start: {log}");
    let ours = format!(
        "qemu-ifup: error: {tap}: no bridge for {tap}: no bridge argument, VIFKIT_BRIDGE is unset, no [port] rule in {} matches {tap}, and no IPv4 or IPv6 default route goes through a bridge",
        conf.display()
    );
    assert!(log.contains(&ours), "{log}");
    assert!(log.contains("failed with status 256"), "{log}");
    assert!(ns.master_of(&tap).is_none());
    // Nothing was half-done: MAC and MTU are as qemu found them.
    assert_ne!(ns.link(&tap).unwrap()["address"], "fe:ff:ff:ff:ff:ff");
}

#[test]
fn config_rule_gives_bridge_and_mtu() {
    let (ns, tap) = rig("qcfg");
    ns.bridge("br1", 9000);
    let dir = scratch("qcfg");
    let conf = dir.join("vifkit.conf");
    std::fs::write(
        &conf,
        "[port web-*]\nbridge = br0\n\n[port vkt*]\nbridge = br1\nmtu = 1300\n",
    )
    .unwrap();
    // Decisions are logged at debug level.
    let out = script(
        &ns,
        "qemu-ifup",
        &[&tap],
        &[
            ("VIFKIT_CONFIG", conf.to_str().unwrap()),
            ("VIFKIT_LOG", "debug"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_port(&ns, &tap, "br1", 1300);
    assert!(
        stderr(&out).contains(&format!(
            "qemu-ifup: debug: {tap}: bridge br1 from {}:4",
            conf.display()
        )),
        "{}",
        stderr(&out)
    );
    // A bad line stops the run with file and line, before anything changes.
    std::fs::write(&conf, "[port vkt*]\nbridge = br1\nvlans = 10\n").unwrap();
    let out = script(
        &ns,
        "qemu-ifup",
        &[&tap, "br0"],
        &[("VIFKIT_CONFIG", conf.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "qemu-ifup: error: {tap}: {}:3: unknown key \"vlans\" (expected bridge, mtu, route, ip, uplink, mac, router, masquerade6, antispoof, allow, ethertypes, vlan, trunks, isolated, learning, hairpin, openvswitch or rate)\n",
            conf.display()
        )
    );
    assert_eq!(ns.master_of(&tap).as_deref(), Some("br1"));
}

#[test]
fn bridge_words_with_vlans_load_from_the_config_and_the_environment() {
    let (ns, tap) = rig("qword");
    let dir = scratch("qword");
    let conf = dir.join("vifkit.conf");
    let env = [("VIFKIT_CONFIG", conf.to_str().unwrap())];
    // br0 here cannot filter VLANs: the run gets as far as saying so, so the file loaded.
    let refused = format!(
        "qemu-ifup: error: {tap}: bridge br0 is not VLAN-aware: vlan 10 untagged, trunks 20,30 for {tap} needs vlan_filtering (ip link set br0 type bridge vlan_filtering 1)\n"
    );
    std::fs::write(&conf, "[port vkt*]\nbridge = br0.10:20:30\n").unwrap();
    let out = script(&ns, "qemu-ifup", &[&tap], &env);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), refused);
    let out = script(
        &ns,
        "qemu-ifup",
        &[&tap],
        &[("VIFKIT_BRIDGE", "br0.10:20:30")],
    );
    assert_eq!(stderr(&out), refused);
    assert_eq!(ns.master_of(&tap), None);
    // A word that is no bridge word names file, line and why.
    std::fs::write(&conf, "[port vkt*]\nbridge = br0:x\n").unwrap();
    let out = script(&ns, "qemu-ifup", &[&tap], &env);
    assert_eq!(
        stderr(&out),
        format!(
            "qemu-ifup: error: {tap}: {}:2: invalid bridge \"br0:x\": VLAN \"x\" is not a number from 1 to 4094\n",
            conf.display()
        )
    );
    // A link really called br0.10 is that bridge, not br0's VLAN 10.
    ns.bridge("br0.10", 1500);
    std::fs::write(&conf, "[port vkt*]\nbridge = br0.10\n").unwrap();
    let out = script(&ns, "qemu-ifup", &[&tap], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_port(&ns, &tap, "br0.10", 1500);
}

#[test]
fn argument_beats_environment_and_ipv6_default_route_is_a_fallback() {
    let (ns, tap) = rig("qarg");
    ns.bridge("br6", 1280);
    let out = script(
        &ns,
        "qemu-ifup",
        &[&tap, "br0"],
        &[("VIFKIT_BRIDGE", "br6")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_port(&ns, &tap, "br0", 1400);
    ns.ip(&["-6", "addr", "add", "2001:db8::1/64", "dev", "br6", "nodad"]);
    ns.ip(&[
        "-6",
        "route",
        "add",
        "default",
        "via",
        "2001:db8::fe",
        "dev",
        "br6",
    ]);
    let out = script(&ns, "qemu-ifup", &[&tap], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_port(&ns, &tap, "br6", 1280);
}

#[test]
fn with_only_cap_net_admin_and_no_environment() {
    let (ns, tap) = rig("qcap");
    // libvirt drops every capability but CAP_NET_ADMIN and passes only argv[1].
    let caps = [
        "setpriv",
        "--bounding-set=-all,+net_admin",
        "--inh-caps=-all",
        "--",
    ];
    let mut probe = ns.exec();
    probe
        .args(caps)
        .args(["grep", "^CapEff", "/proc/self/status"]);
    assert_eq!(
        must(&mut probe).split_whitespace().nth(1),
        Some("0000000000001000")
    );
    let mut cmd = ns.exec();
    cmd.args(caps)
        .args(["env", "-i"])
        .arg(binary("qemu-ifup"))
        .arg(&tap)
        .arg("br0");
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_port(&ns, &tap, "br0", 1400);
    let mut cmd = ns.exec();
    cmd.args(caps)
        .args(["env", "-i"])
        .arg(binary("qemu-ifdown"))
        .arg(&tap);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_detached(&ns, &tap);
}

#[test]
fn ifup_twice_ifdown_twice_and_ifdown_of_a_vanished_tap() {
    let (ns, tap) = rig("qtwice");
    for _ in 0..2 {
        let out = script(&ns, "qemu-ifup", &[&tap, "br0"], &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_port(&ns, &tap, "br0", 1400);
    }
    for _ in 0..2 {
        let out = script(&ns, "qemu-ifdown", &[&tap, "br0"], &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_detached(&ns, &tap);
    }
    ns.ip(&["link", "del", &tap]);
    let out = script(&ns, "qemu-ifdown", &[&tap], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The planner sees what the first ifup did, so the second has nothing to do.
#[test]
fn ifup_twice_plans_nothing_the_second_time() {
    let (ns, tap) = rig("qtwicep");
    let out = script(&ns, "qemu-ifup", &[&tap, "br0"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dry = script(&ns, "qemu-ifup", &[&tap, "br0"], &[("VIFKIT_DRY_RUN", "1")]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert_eq!(plan_steps(&dry), Vec::<String>::new());
    let out = script(&ns, "qemu-ifup", &[&tap, "br0"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn bad_input_gets_one_sentence() {
    let (ns, tap) = rig("qbad");
    // A refused argument names no tap; a run about a tap names it first.
    let cases: [(&[&str], String); 4] = [
        (
            &["a234567890123456"],
            "invalid interface name \"a234567890123456\": it is longer than 15 bytes".into(),
        ),
        (&[], "usage: qemu-ifup IFNAME [BRIDGE]".into()),
        (
            &[&tap, "br9"],
            format!("{tap}: bridge br9 does not exist (named by the bridge argument)"),
        ),
        (
            &["vkmissing0", "br0"],
            "vkmissing0: vkmissing0 does not exist".into(),
        ),
    ];
    for (args, message) in cases {
        let out = script(&ns, "qemu-ifup", args, &[]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(stderr(&out), format!("qemu-ifup: error: {message}\n"));
    }
    assert!(ns.master_of(&tap).is_none());
}

#[test]
fn twenty_taps_at_once() {
    let ns = Netns::new("qmany");
    ns.bridge("br0", 1500);
    let taps: Vec<String> = (0..20).map(|i| format!("vkm{i}")).collect();
    for tap in &taps {
        ns.ip(&["tuntap", "add", tap, "mode", "tap"]);
    }
    let outs = at_once(&taps, |t| script(&ns, "qemu-ifup", &[t, "br0"], &[]));
    for (tap, out) in taps.iter().zip(&outs) {
        assert!(out.status.success(), "{tap}: {}", stderr(out));
        assert_eq!(ns.master_of(tap).as_deref(), Some("br0"));
    }
}

#[test]
fn routed_tap_from_the_config() {
    let (ns, tap) = rig("qrt");
    let router = Netns::new("qrtr");
    ns.veth("eth0", "up0", &router);
    ns.ip(&["link", "set", "eth0", "up"]);
    ns.ip(&["addr", "add", "192.0.2.253/28", "dev", "eth0"]);
    let dir = scratch("qrt");
    let conf = dir.join("vifkit.conf");
    std::fs::write(
        &conf,
        format!("[port {tap}]\nroute = 192.0.2.241 2001:db8:abba::1001\nuplink = eth0\nmac = 52:54:00:12:34:56\n"),
    )
    .unwrap();
    let env = [("VIFKIT_CONFIG", conf.to_str().unwrap())];
    let out = script(&ns, "qemu-ifup", &[&tap], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let v4 = ns.ip(&["route", "show", "dev", &tap]);
    assert!(
        v4.contains("192.0.2.241 scope link src 192.0.2.253"),
        "{v4}"
    );
    let v6 = ns.ip(&["-6", "route", "show", "dev", &tap]);
    assert!(
        v6.contains("2001:db8:abba::1001 via fe80::5054:ff:fe12:3456"),
        "{v6}"
    );
    let proxies = ns.ip(&["-6", "neigh", "show", "proxy"]) + &ns.ip(&["neigh", "show", "proxy"]);
    assert!(
        proxies.contains("2001:db8:abba::1001 dev eth0"),
        "{proxies}"
    );
    assert!(proxies.contains("192.0.2.241 dev eth0"), "{proxies}");
    assert!(ns.master_of(&tap).is_none());
    let out = script(&ns, "qemu-ifdown", &[&tap], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let proxies = ns.ip(&["-6", "neigh", "show", "proxy"]) + &ns.ip(&["neigh", "show", "proxy"]);
    assert_eq!(proxies, "");
}
