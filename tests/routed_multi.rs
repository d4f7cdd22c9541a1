//! Routed modes at scale and with several networks: ten vif-route-ifup guests plugged at
//! once, and seed 2.2 (host-only bridges routed by the host). Needs root.

mod common;
mod routed;

use std::process::Output;
use std::time::Instant;

use common::*;
use routed::*;
// routed's own, which also wants stdout clean, over common's.
use routed::assert_ok;

#[test]
fn ten_routed_guests_plugged_at_once() {
    const N: u32 = 10;
    let started = Instant::now();
    let router = Netns::new("ricr");
    let host = Netns::new("rich");
    let guests = Netns::new("ricg");
    for ns in [&router, &host, &guests] {
        no_dad(ns);
    }
    // The host-wide knobs of the seed, but not its `default` ones: each vif starts with
    // proxy_arp and proxy_ndp off, so vif-route-ifup must set them.
    apply_sysctl_conf(&host, SEED_SYSCONFIG_SYSCTL);
    sysctl(&host, "net.ipv6.conf.all.proxy_ndp", "1");
    sysctl(&host, "net.ipv4.conf.all.proxy_arp", "1");
    host.veth("eth0", "up0", &router);
    seed_2_1_host_eth0(&host);

    let dir = SysconfigDir::empty();
    let names: Vec<String> = (1..=N).map(|d| format!("xen{d}.0")).collect();
    let mut routes_file = String::from("# IPv4\n");
    let mut ndp = format!("2001:db8:abba::1 eth0 {}\n", names.join(" "));
    let xs = Xenstore::start();
    let mut vifs = Vec::new();
    for d in 1..=N {
        let name = &names[d as usize - 1];
        let vif = routed_vif(d, leak(format!("00:16:3e:10:10:{d:02x}")));
        dir.write(
            &format!("ifcfg-{name}"),
            "BOOTPROTO='static'\nSTARTMODE='hotplug'\n",
        );
        routes_file += &format!("192.0.2.{} - - {name}\n", 240 + d);
        routes_file += &format!(
            "2001:db8:abba::{:x} {} - {name}\n",
            0x1000 + d,
            link_local(vif.mac)
        );
        ndp += &format!("2001:db8:abba::{:x} {name} eth0\n", 0x1000 + d);
        host.veth(&vif.kernel_name(), &format!("g{d}"), &guests);
        host.ip(&[
            "link",
            "set",
            &vif.kernel_name(),
            "address",
            "fe:ff:ff:ff:ff:ff",
        ]);
        xs.write_vif(&vif);
        xs.write(&format!("{}/vifname", vif.backend()), name);
        vifs.push(vif);
    }
    // The uplink's lines and seed 2.2's reject route: the host's, never vif-route-ifup's.
    routes_file += "default 192.0.2.254 - eth0\n\
                    default fe80::201:1ff:fe01:254 - eth0\n\
                    2001:db8:abba::/60 - - - unreachable\n";
    dir.write("routes", &routes_file);
    dir.write("ifndp-proxy", &ndp);
    let env = dir.env();
    let extra = [("VIFKIT_SYSCONFIG_DIR", env.as_str())];

    let plug = |command: &str| -> Vec<Output> {
        at_once(&vifs, |vif| {
            hotplug(&host, &xs, vif, &[command, "type_if=vif"], &extra)
        })
    };

    let online = Instant::now();
    let outs = plug("online");
    eprintln!("10 x online at once: {:?}", online.elapsed());
    let mut expected_proxies = Vec::new();
    for ((vif, out), name) in vifs.iter().zip(&outs).zip(&names) {
        assert_ok(out);
        assert!(!stderr(out).contains("warning"), "{}", stderr(out));
        assert_eq!(
            xs.read(&format!("{}/hotplug-status", vif.backend()))
                .as_deref(),
            Some("connected"),
            "{name}"
        );
        assert!(host.link(&vif.kernel_name()).is_none());
        assert!(is_up(&host, name));
        assert_eq!(
            routes(&host, &["dev", name]),
            vec![format!("192.0.2.{} scope link proto boot", 240 + vif.domid)]
        );
        assert_eq!(
            routes(&host, &["-6", "dev", name]),
            vec![
                format!(
                    "2001:db8:abba::{:x} via {} scope global proto boot",
                    0x1000 + vif.domid,
                    link_local(vif.mac)
                ),
                "fe80::/64 scope global proto kernel".to_owned(),
            ]
        );
        assert_eq!(
            proc_sys(&host, &format!("net/ipv4/conf/{name}/proxy_arp")),
            "1"
        );
        assert_eq!(
            proc_sys(&host, &format!("net/ipv6/conf/{name}/proxy_ndp")),
            "1"
        );
        expected_proxies.push(format!("2001:db8:abba::1 {name}"));
        expected_proxies.push(format!("2001:db8:abba::{:x} eth0", 0x1000 + vif.domid));
    }
    expected_proxies.sort();
    assert_eq!(proxies(&host), expected_proxies);
    // Only the host's own defaults (set above), once each, and no reject route.
    assert_eq!(
        routes(&host, &["default"]),
        vec!["default via 192.0.2.254 dev eth0 scope global proto boot"]
    );
    assert_eq!(
        routes(&host, &["-6", "default"]),
        vec!["default via fe80::201:1ff:fe01:254 dev eth0 scope global proto boot"]
    );
    assert!(
        routes(&host, &["-6", "table", "all"])
            .iter()
            .all(|r| !r.contains("2001:db8:abba::/60")),
        "{:?}",
        routes(&host, &["-6", "table", "all"])
    );

    let offline = Instant::now();
    let outs = plug("offline");
    eprintln!("10 x offline at once: {:?}", offline.elapsed());
    for (out, name) in outs.iter().zip(&names) {
        assert_ok(out);
        assert!(!is_up(&host, name));
        assert_eq!(routes(&host, &["dev", name]), Vec::<String>::new());
        assert_eq!(routes(&host, &["-6", "dev", name]), Vec::<String>::new());
    }
    assert_eq!(proxies(&host), Vec::<String>::new());
    eprintln!("ten guests: {:?}", started.elapsed());
}

/// Seed 2.2 does not use vif-route-ifup at all: its guests sit on host-only bridges `br1`
/// (192.0.2.0/28, 2001:db8:abba:1::/64) and `br2` (192.0.2.16/28, 2001:db8:abba:2::/64),
/// attached with `script=vif-bridge`, and the host routes between them and the uplink. What
/// the seed leaves open: the host gets no IPv6 address on the bridges (it routes each /64 to
/// its bridge and the guests use the bridge's link-local as their router, the seed's "link
/// local addresses can be used for routing"), and the router routes the /60 and both IPv4
/// networks to the host.
#[test]
fn seed_2_2_host_only_bridges_routed_by_the_host() {
    let started = Instant::now();
    let router = Netns::new("r22r");
    let host = Netns::new("r22h");
    let g1 = Netns::new("r22a");
    let g2 = Netns::new("r22b");
    for ns in [&router, &host, &g1, &g2] {
        no_dad(ns);
    }
    apply_sysctl_conf(&host, SEED_SYSCONFIG_SYSCTL);

    host.veth("eth0", "up0", &router);
    router.ip(&["link", "set", "up0", "down"]);
    router.ip(&["link", "set", "up0", "address", "00:01:01:01:02:54", "up"]);
    router.ip(&["addr", "add", "192.0.2.254/28", "dev", "up0"]);
    router.ip(&["addr", "add", "2001:db8:ffff::254/128", "dev", "lo"]);
    router.ip(&["-6", "route", "add", "2001:db8:abba::/64", "dev", "up0"]);
    let host_eth0_mac = "00:01:01:01:02:53";
    let host_ll = link_local(host_eth0_mac);
    router.ip(&["route", "add", "192.0.2.0/28", "via", "192.0.2.253"]);
    router.ip(&["route", "add", "192.0.2.16/28", "via", "192.0.2.253"]);
    router.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:abba::/60",
        "via",
        &host_ll,
        "dev",
        "up0",
    ]);

    // ifcfg-eth0, ifcfg-br1, ifcfg-br2 and routes of seed 2.2: the host network service's job.
    host.ip(&["link", "set", "eth0", "address", host_eth0_mac, "up"]);
    host.ip(&["addr", "add", "192.0.2.253/28", "dev", "eth0"]);
    host.ip(&["addr", "add", "2001:db8:abba::1/64", "dev", "eth0", "nodad"]);
    let bridges = [
        (
            "br1",
            "192.0.2.14/28",
            "2001:db8:abba:1::/64",
            "02:00:00:00:01:0e",
        ),
        (
            "br2",
            "192.0.2.30/28",
            "2001:db8:abba:2::/64",
            "02:00:00:00:01:1e",
        ),
    ];
    for (br, v4, v6, mac) in bridges {
        host.ip(&["link", "add", br, "address", mac, "type", "bridge"]);
        host.ip(&[
            "link",
            "set",
            br,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ]);
        host.ip(&["link", "set", br, "up"]);
        host.ip(&["addr", "add", v4, "dev", br]);
        host.ip(&["-6", "route", "add", v6, "dev", br]);
    }
    host.ip(&[
        "route",
        "add",
        "default",
        "via",
        "192.0.2.254",
        "dev",
        "eth0",
    ]);
    host.ip(&["-6", "route", "add", "unreachable", "2001:db8:abba::/60"]);
    host.ip(&[
        "-6",
        "route",
        "add",
        "default",
        "via",
        "fe80::201:1ff:fe01:254",
        "dev",
        "eth0",
    ]);

    // Guest 1 on br1 as vif1.0; guest 2 on br2 with the optional vifname=xen2.0.
    let xs = Xenstore::start();
    let mut vif1 = Vif::new(1, 0);
    vif1.bridge = Some("br1");
    let mut vif2 = Vif::new(2, 0);
    vif2.bridge = Some("br2");
    vif2.mac = "00:16:3e:20:20:20";
    let guests = [
        (
            &vif1,
            &g1,
            "192.0.2.1/28",
            "192.0.2.14",
            "2001:db8:abba:1::1001/64",
            &bridges[0],
        ),
        (
            &vif2,
            &g2,
            "192.0.2.17/28",
            "192.0.2.30",
            "2001:db8:abba:2::1001/64",
            &bridges[1],
        ),
    ];
    for (vif, guest, v4, gw4, v6, (_, _, _, br_mac)) in guests {
        host.veth(&vif.kernel_name(), "eth0", guest);
        guest.ip(&["link", "set", "eth0", "down"]);
        guest.ip(&["link", "set", "eth0", "address", vif.mac, "up"]);
        guest.ip(&["addr", "add", v4, "dev", "eth0"]);
        guest.ip(&["addr", "add", v6, "dev", "eth0", "nodad"]);
        guest.ip(&["route", "add", "default", "via", gw4, "dev", "eth0"]);
        guest.ip(&[
            "-6",
            "route",
            "add",
            "default",
            "via",
            &link_local(br_mac),
            "dev",
            "eth0",
        ]);
        xs.write_vif(vif);
    }
    xs.write(&format!("{}/vifname", vif2.backend()), "xen2.0");

    for (vif, port, br) in [(&vif1, "vif1.0", "br1"), (&vif2, "xen2.0", "br2")] {
        let out = hotplug(&host, &xs, vif, &["online", "type_if=vif"], &[]);
        assert_ok(&out);
        assert_eq!(
            xs.read(&format!("{}/hotplug-status", vif.backend()))
                .as_deref(),
            Some("connected")
        );
        assert_eq!(host.master_of(port).as_deref(), Some(br));
    }

    // The host's reject route keeps the unused rest of the /60 off the default route.
    let get = run(std::process::Command::new("ip").args([
        "-n",
        &host.name,
        "-6",
        "route",
        "get",
        "2001:db8:abba:3::1",
    ]));
    assert!(
        !get.status.success() && stderr(&get).contains("No route to host"),
        "{}",
        stderr(&get)
    );
    assert_eq!(
        routes(&host, &["-6", "type", "unreachable"]),
        vec!["unreachable 2001:db8:abba::/60 dev lo scope global proto boot"]
    );

    for (from, to) in [
        (&g1, "192.0.2.17"),
        (&g1, "2001:db8:abba:2::1001"),
        (&g2, "192.0.2.1"),
        (&g2, "2001:db8:abba:1::1001"),
        (&g1, "192.0.2.254"),
        (&g1, "2001:db8:ffff::254"),
        (&g2, "192.0.2.254"),
        (&g2, "2001:db8:ffff::254"),
        (&router, "192.0.2.1"),
        (&router, "2001:db8:abba:1::1001"),
        (&router, "192.0.2.17"),
        (&router, "2001:db8:abba:2::1001"),
    ] {
        assert!(pings(from, to), "{} -> {to}", from.name);
    }
    // Routed, not proxied: no proxy entry anywhere.
    assert_eq!(proxies(&host), Vec::<String>::new());
    eprintln!("seed 2.2: {:?}", started.elapsed());
}
