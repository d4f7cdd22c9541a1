//! Seed 2.1: one shared network for host and guests, the host routing each guest address to
//! its vif and publishing it on the uplink by proxy ARP/NDP. `vif-route-ifup` does the
//! ifup part from the seed's sysconfig files, which the demo writes verbatim.

use anyhow::{Context, Result};

use super::lab::{Dom0, Guest, Lab, Script};
use super::netns::Netns;
use super::report::Report;

/// The host's /etc/sysconfig/network files of seed 2.1, exactly as the seed prints them.
const SYSCONFIG: [(&str, &str); 4] = [
    (
        "ifcfg-eth0",
        include_str!("../../../tests/fixtures/sysconfig/seed-2.1/ifcfg-eth0"),
    ),
    (
        "ifcfg-xen1.0",
        include_str!("../../../tests/fixtures/sysconfig/seed-2.1/ifcfg-xen1.0"),
    ),
    (
        "routes",
        include_str!("../../../tests/fixtures/sysconfig/seed-2.1/routes"),
    ),
    (
        "ifndp-proxy",
        include_str!("../../../tests/fixtures/sysconfig/seed-2.1/ifndp-proxy"),
    ),
];

/// The seed's /etc/sysctl.conf, and what boot.sysctl makes of IP_FORWARD=yes and
/// IPV6_FORWARD=yes. accept_dad=0 only spares the demo DAD's wait.
const SYSCTL_CONF: &str = "
    net.ipv4.ip_forward = 1
    net.ipv6.conf.default.forwarding = 1
    net.ipv6.conf.all.forwarding = 1
    net.ipv6.conf.default.proxy_ndp = 1
    net.ipv6.conf.all.proxy_ndp = 1
    net.ipv4.conf.default.proxy_arp = 1
    net.ipv4.conf.all.proxy_arp = 1
";
pub const NO_DAD: &str = "
    net.ipv6.conf.all.accept_dad = 0
    net.ipv6.conf.default.accept_dad = 0
";

/// The provider's router: 192.0.2.254, and from its MAC the link-local
/// fe80::201:1ff:fe01:254 the seed routes to. A link-local cannot be pinged from a guest,
/// so it also has 2001:db8:ffff::254 on lo, off the shared /64, reached through the host.
pub fn router(lab: &Lab, tag: &str, host: &Dom0) -> Result<Netns> {
    let router = lab.netns(tag)?;
    router.sysctl_conf(NO_DAD)?;
    host.veth("eth0", "eth0", &router)?;
    router.ipw("link set eth0 address 00:01:01:01:02:54 up")?;
    router.ipw("addr add 192.0.2.254/28 dev eth0")?;
    router.ipw("addr add 2001:db8:ffff::254/128 dev lo")?;
    router.ipw("-6 route add 2001:db8:abba::/64 dev eth0")?;
    Ok(router)
}

/// The host's uplink as its ifcfg-eth0 and the eth0 lines of its routes say.
pub fn uplink(host: &Dom0) -> Result<()> {
    host.ipw("link set eth0 up")?;
    host.ipw("addr add 192.0.2.253/28 dev eth0")?;
    host.ipw("addr add 2001:db8:abba::1/64 dev eth0 nodad")?;
    host.ipw("route add default via 192.0.2.254 dev eth0")?;
    host.ipw("-6 route add default via fe80::201:1ff:fe01:254 dev eth0")?;
    Ok(())
}

pub fn run(lab: &Lab, report: &mut Report) -> Result<()> {
    report.heading(
        "2.1 Routed, one shared network: vif-route-ifup, proxy ARP/NDP, router 192.0.2.254",
    );
    let mut host = lab.dom0("host21")?;
    host.sysctl_conf(NO_DAD)?;
    // Boot: sysctl.conf is applied before xen starts any domain.
    host.sysctl_conf(SYSCTL_CONF)?;
    let router = router(lab, "router21", &host)?;
    uplink(&host)?;
    let dir = lab.scratch("sysconfig-2.1");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    for (name, text) in SYSCONFIG {
        std::fs::write(dir.join(name), text).with_context(|| format!("write {name}"))?;
    }
    host.env
        .push(("VIFKIT_SYSCONFIG_DIR", dir.display().to_string()));
    report.ping(
        &host,
        "host",
        "router",
        "192.0.2.254",
        "on eth0 (the uplink works)",
    )?;

    // vif=[ 'mac=00:16:3e:10:10:10,script=vif-route-ifup,vifname=xen1.0' ]
    let xen1 = Guest {
        name: "xen1",
        domid: 1,
        devid: 0,
        mac: "00:16:3e:10:10:10",
        script: Script::RouteIfup,
        vifname: Some("xen1.0"),
        ipv4: "192.0.2.241/28",
        ipv6: Some("2001:db8:abba::1001/64"),
        gateway: None,
    };
    let guest = host.create_guest(&xen1)?;
    // The guest's routes file: the host is its router, on the vif's netback MAC.
    guest.ipw("route add 192.0.2.253 dev eth0")?;
    guest.ipw("route add default via 192.0.2.253 dev eth0")?;
    guest.ipw("-6 route add default via fe80::fcff:ffff:feff:ffff dev eth0")?;

    report.hotplug(&host, &xen1, "online")?;
    report.attached(&host, &xen1)?;
    let v4 = host.ip_lines("route show dev xen1.0")?;
    let v6 = host.ip_lines("-6 route show dev xen1.0")?;
    report.check(
        v4.iter().any(|r| r.starts_with("192.0.2.241 ")),
        "routes: 192.0.2.241 dev xen1.0",
        format!(": found {v4:?}"),
    );
    report.check(
        v6.iter()
            .any(|r| r.starts_with("2001:db8:abba::1001 via fe80::216:3eff:fe10:1010 ")),
        "routes: 2001:db8:abba::1001 via fe80::216:3eff:fe10:1010 dev xen1.0",
        format!(": found {v6:?}"),
    );
    let found = proxies(&host)?;
    report.check(
        found
            == [
                "2001:db8:abba::1 dev xen1.0",
                "2001:db8:abba::1001 dev eth0",
            ],
        "ifndp-proxy: 2001:db8:abba::1001 published on eth0, 2001:db8:abba::1 on xen1.0",
        format!(": found {found:?}"),
    );

    let via = "proxied and routed by the host";
    report.ping(&guest, "guest xen1", "router", "192.0.2.254", via)?;
    report.ping(&router, "router", "guest xen1", "192.0.2.241", via)?;
    report.ping(&guest, "guest xen1", "router", "2001:db8:ffff::254", via)?;
    report.ping(&router, "router", "guest xen1", "2001:db8:abba::1001", via)?;
    let why = "(proxied on xen1.0)";
    report.ping(&guest, "guest xen1", "host", "2001:db8:abba::1", why)?;

    report.detach(&host, &xen1)?;
    let left = [
        host.ip_lines("route show dev xen1.0")?,
        host.ip_lines("-6 route show dev xen1.0")?,
        proxies(&host)?,
    ]
    .concat();
    report.check(
        left.is_empty(),
        "no route to xen1.0 and no proxy entry left",
        format!(": found {left:?}"),
    );
    let why = "the host no longer routes or proxies it";
    report.no_ping(&router, "router", "guest xen1", "192.0.2.241", why)?;
    report.no_ping(&router, "router", "guest xen1", "2001:db8:abba::1001", why)?;
    Ok(())
}

/// Proxy ARP and NDP entries as `address dev name`, sorted.
pub fn proxies(ns: &Netns) -> Result<Vec<String>> {
    let mut all = [
        ns.ip_lines("-4 neigh show proxy")?,
        ns.ip_lines("-6 neigh show proxy")?,
    ]
    .concat();
    for line in &mut all {
        *line = line.trim_end_matches(" proxy").to_owned();
    }
    all.sort();
    Ok(all)
}
