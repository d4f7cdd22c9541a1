//! `vif-route-ifup` against the SLE 11 SP1 examples: seed scenario 2.1 (one shared network,
//! proxy ARP/NDP, the seed's sysconfig files verbatim from `tests/fixtures/sysconfig/seed-2.1`),
//! bad sysconfig input, host knobs left alone, and a vif that vanished before offline.
//! Every topology lives in throwaway namespaces. Needs root.

mod common;
mod routed;

use std::time::Instant;

use common::*;
use routed::*;
// routed's own, which also wants stdout clean, over common's.
use routed::assert_ok;

#[test]
fn seed_2_1_as_written_both_directions_ipv4_and_ipv6() {
    let started = Instant::now();
    let s = Seed21::new("ri");
    let out = s.run(&["online", "type_if=vif"]);
    assert_ok(&out);
    assert!(
        !stderr(&out).contains("warning"),
        "every knob is on: {}",
        stderr(&out)
    );
    assert_eq!(s.key("hotplug-status").as_deref(), Some("connected"));
    assert_eq!(s.key("hotplug-error"), None);

    // Renamed, up, netback's MAC kept (no LLADDR), no address but the EUI-64 link-local.
    assert!(s.host.link("vif1.0").is_none());
    let link = s.host.link("xen1.0").expect("xen1.0");
    assert_eq!(link["address"], "fe:ff:ff:ff:ff:ff");
    assert!(is_up(&s.host, "xen1.0"));
    assert_eq!(
        s.host.addresses("xen1.0"),
        vec!["fe80::fcff:ffff:feff:ffff/64"]
    );

    // routes: the two xen1.0 lines, and nothing else changed.
    assert_eq!(
        routes(&s.host, &["dev", "xen1.0"]),
        vec!["192.0.2.241 scope link proto boot"]
    );
    assert_eq!(
        routes(&s.host, &["-6", "dev", "xen1.0"]),
        vec![
            "2001:db8:abba::1001 via fe80::216:3eff:fe10:1010 scope global proto boot",
            "fe80::/64 scope global proto kernel",
        ]
    );
    assert_eq!(
        routes(&s.host, &["default"]),
        vec!["default via 192.0.2.254 dev eth0 scope global proto boot"]
    );
    assert_eq!(
        routes(&s.host, &["-6", "default"]),
        vec!["default via fe80::201:1ff:fe01:254 dev eth0 scope global proto boot"]
    );

    // ifndp-proxy: ::1001 published on eth0, ::1 on xen1.0.
    assert_eq!(
        proxies(&s.host),
        vec!["2001:db8:abba::1 xen1.0", "2001:db8:abba::1001 eth0"]
    );
    assert_eq!(proc_sys(&s.host, "net/ipv4/conf/xen1.0/proxy_arp"), "1");
    assert_eq!(proc_sys(&s.host, "net/ipv6/conf/xen1.0/proxy_ndp"), "1");

    assert!(pings(&s.guest, "192.0.2.254"), "guest -> router IPv4");
    assert!(pings(&s.router, "192.0.2.241"), "router -> guest IPv4");
    assert!(
        pings(&s.guest, "2001:db8:ffff::254"),
        "guest -> router IPv6"
    );
    assert!(
        pings(&s.router, "2001:db8:abba::1001"),
        "router -> guest IPv6"
    );
    assert!(
        pings(&s.guest, "2001:db8:abba::1"),
        "guest -> host IPv6 (proxied on xen1.0)"
    );

    // online twice: still connected, nothing duplicated.
    let state = (
        routes(&s.host, &[]),
        routes(&s.host, &["-6"]),
        proxies(&s.host),
        s.host.addresses("xen1.0"),
    );
    s.xs.write(&format!("{}/hotplug-status", s.vif.backend()), "");
    assert_ok(&s.run(&["online", "type_if=vif"]));
    assert_eq!(s.key("hotplug-status").as_deref(), Some("connected"));
    assert_eq!(
        (
            routes(&s.host, &[]),
            routes(&s.host, &["-6"]),
            proxies(&s.host),
            s.host.addresses("xen1.0"),
        ),
        state
    );
    assert!(pings(&s.router, "2001:db8:abba::1001"));

    let guest_v4 = "192.0.2.241";
    let guest_v6 = "2001:db8:abba::1001";
    for _ in 0..2 {
        assert_ok(&s.run(&["offline", "type_if=vif"]));
        assert!(!is_up(&s.host, "xen1.0"));
        assert!(s.host.addresses("xen1.0").is_empty());
        assert_eq!(routes(&s.host, &["dev", "xen1.0"]), Vec::<String>::new());
        assert_eq!(
            routes(&s.host, &["-6", "dev", "xen1.0"]),
            Vec::<String>::new()
        );
        assert_eq!(proxies(&s.host), Vec::<String>::new());
        // No trace of the guest's addresses on the host side.
        let everything = [
            routes(&s.host, &["table", "all"]),
            routes(&s.host, &["-6", "table", "all"]),
            vec![
                s.host.ip(&["neigh", "show"]),
                s.host.ip(&["-6", "neigh", "show"]),
            ],
            s.host.addresses("eth0"),
        ]
        .concat();
        for line in &everything {
            assert!(
                !line.contains(guest_v4) && !line.contains(guest_v6),
                "{line}"
            );
        }
        // The uplink keeps what the host service gave it.
        assert_eq!(
            s.host.addresses("eth0")[..2],
            ["192.0.2.253/28", "2001:db8:abba::1/64"]
        );
    }
    assert!(!s.router.ping(guest_v4), "router still reaches the guest");
    assert!(!s.router.ping(guest_v6), "router still reaches the guest");
    eprintln!("seed 2.1: {:?}", started.elapsed());
}

#[test]
fn missing_ifcfg_is_refused_before_anything_changes() {
    let s = Seed21::new("rim");
    s.dir.remove("ifcfg-xen1.0");
    s.assert_refused(&format!(
        "{} does not exist: vif-route-ifup configures xen1.0 from it",
        s.dir.file("ifcfg-xen1.0")
    ));
}

#[test]
fn missing_vifname_is_refused_before_anything_changes() {
    let s = Seed21::new("rin");
    s.xs.rm(&format!("{}/vifname", s.vif.backend()));
    s.assert_refused(&format!(
        "vif-route-ifup needs a static interface name: set vifname= in the vif configuration \
         and describe it in {}",
        s.dir.file("ifcfg-<vifname>")
    ));
}

#[test]
fn dhcp_bootproto_is_refused_before_anything_changes() {
    let s = Seed21::new("rid");
    s.dir.write(
        "ifcfg-xen1.0",
        "NAME='XEN vm 1 virtual interface 0'\nBOOTPROTO='dhcp'\nSTARTMODE='hotplug'\n",
    );
    s.assert_refused(&format!(
        "{}: BOOTPROTO=dhcp is not supported on a routed vif (use static)",
        s.dir.file("ifcfg-xen1.0")
    ));
}

#[test]
fn startmode_off_is_refused_before_anything_changes() {
    let s = Seed21::new("rio");
    s.dir.write(
        "ifcfg-xen1.0",
        "NAME='XEN vm 1 virtual interface 0'\nBOOTPROTO='static'\nSTARTMODE='off'\n",
    );
    s.assert_refused(&format!(
        "{}: STARTMODE=off disables xen1.0",
        s.dir.file("ifcfg-xen1.0")
    ));
}

#[test]
fn malformed_routes_line_is_refused_with_file_and_line() {
    let s = Seed21::new("rir");
    let routes = std::fs::read_to_string(s.dir.file("routes")).unwrap();
    // Line 12: a gateway that is no address.
    s.dir.write(
        "routes",
        &format!("{routes}2001:db8:abba::1002 fe80::zz - xen1.0\n"),
    );
    s.assert_refused(&format!(
        "{}:12: invalid gateway \"fe80::zz\"",
        s.dir.file("routes")
    ));
}

#[test]
fn malformed_ifndp_proxy_line_is_refused_with_file_and_line() {
    let s = Seed21::new("rip");
    s.dir.write(
        "ifndp-proxy",
        "# <address>          <address interface> <proxy interface>\n2001:db8:abba::1     eth0\n",
    );
    s.assert_refused(&format!(
        "{}:2: no proxy interface for 2001:db8:abba::1: list at least one after eth0",
        s.dir.file("ifndp-proxy")
    ));
}

#[test]
fn offline_after_the_vif_vanished_still_unpublishes_the_guest() {
    let s = Seed21::new("riv");
    assert_ok(&s.run(&["online", "type_if=vif"]));
    assert!(proxies(&s.host).contains(&"2001:db8:abba::1001 eth0".to_owned()));
    // netback freed the device before libxl ran the script.
    s.host.ip(&["link", "del", "xen1.0"]);
    for _ in 0..2 {
        let out = s.run(&["offline", "type_if=vif"]);
        assert_ok(&out);
        assert_eq!(proxies(&s.host), Vec::<String>::new());
    }
    assert_eq!(s.key("hotplug-status").as_deref(), Some("connected"));
    assert_eq!(s.key("hotplug-error"), None);
}

#[test]
fn host_knobs_that_are_off_are_reported_and_left_alone() {
    let s = Seed21::new("riw");
    let knobs = [
        "net/ipv4/conf/all/forwarding",
        "net/ipv6/conf/all/forwarding",
        "net/ipv6/conf/all/proxy_ndp",
        "net/ipv4/conf/all/proxy_arp",
        "net/ipv4/conf/eth0/proxy_arp",
        "net/ipv6/conf/eth0/proxy_ndp",
    ];
    for knob in knobs {
        must(
            s.host
                .exec()
                .args(["sh", "-c", &format!("echo 0 > /proc/sys/{knob}")]),
        );
    }
    let out = s.run(&["online", "type_if=vif"]);
    assert_ok(&out);
    assert_eq!(s.key("hotplug-status").as_deref(), Some("connected"));
    let err = stderr(&out);
    // eth0 carries both default routes: each warning must still come once.
    let warnings: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("vif-route-ifup: warning: vif1.0: "))
        .collect();
    assert_eq!(
        warnings,
        vec![
            "IPv4 forwarding is off: routed guests get no IPv4 traffic \
             (set net/ipv4/conf/all/forwarding = 1)",
            "IPv6 forwarding is off: routed guests get no IPv6 traffic \
             (set net/ipv6/conf/all/forwarding = 1)",
            "proxy_ndp is off on eth0: the guest's NDP proxy entry there has no effect \
             (set net/ipv6/conf/eth0/proxy_ndp = 1)",
            "proxy_arp is off on uplink eth0: its neighbours will not find the guest \
             (set net/ipv4/conf/eth0/proxy_arp = 1)",
        ],
        "{err}"
    );
    for knob in knobs {
        assert_eq!(proc_sys(&s.host, knob), "0", "{knob} was changed");
    }
}

/// A stand-in for the system's ifup/ifdown: records its call, and fails when told to.
fn fake_ifupdown(dir: &std::path::Path, fail: bool) {
    for name in ["ifup", "ifdown"] {
        let body = match (name, fail) {
            ("ifup", true) => "#!/bin/sh\necho \"no ifcfg for $1\" >&2\nexit 3\n".to_owned(),
            _ => format!("#!/bin/sh\necho \"{name} $*\" >> {}/calls\n", dir.display()),
        };
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        must(std::process::Command::new("chmod").arg("755").arg(&path));
    }
}

#[test]
fn vifkit_ifup_system_delegates_to_the_system_ifup() {
    let s = Seed21::new("rifs");
    let bin = scratch("ifupbin");
    fake_ifupdown(&bin, false);
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
    let env = [("VIFKIT_IFUP", "system"), ("PATH", path.as_str())];
    let out = hotplug(&s.host, &s.xs, &s.vif, &["online", "type_if=vif"], &env);
    assert_ok(&out);
    assert_eq!(s.key("hotplug-status").as_deref(), Some("connected"));
    assert!(s.host.link("xen1.0").is_some(), "vifkit still renames");
    let out = hotplug(&s.host, &s.xs, &s.vif, &["offline", "type_if=vif"], &env);
    assert_ok(&out);
    let calls = std::fs::read_to_string(bin.join("calls")).unwrap();
    assert_eq!(calls, "ifup xen1.0\nifdown xen1.0\n");

    fake_ifupdown(&bin, true);
    s.host.ip(&["link", "set", "xen1.0", "down"]);
    s.host.ip(&["link", "set", "xen1.0", "name", "vif1.0"]);
    let out = hotplug(&s.host, &s.xs, &s.vif, &["online", "type_if=vif"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        s.key("hotplug-error").unwrap(),
        format!(
            "run {}/ifup xen1.0: ifup failed (exit 3): no ifcfg for xen1.0",
            bin.display()
        )
    );
    assert!(s.host.link("vif1.0").is_some(), "the rename is undone");

    let env = [("VIFKIT_IFUP", "system"), ("PATH", "/nonexistent")];
    let out = hotplug(&s.host, &s.xs, &s.vif, &["online", "type_if=vif"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        s.key("hotplug-error").as_deref(),
        Some("VIFKIT_IFUP=system, but no ifup and ifdown were found in PATH (/nonexistent)")
    );
}

/// The planner sees what the first online did, so the second has nothing to do.
#[test]
fn online_twice_plans_nothing_the_second_time() {
    let s = Seed21::new("ri2p");
    assert_ok(&s.run(&["online", "type_if=vif"]));
    assert_eq!(s.dry_run(&["online", "type_if=vif"]), Vec::<String>::new());
    assert_ok(&s.run(&["online", "type_if=vif"]));
}
