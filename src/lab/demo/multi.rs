//! Seed 2.2: routed with multiple networks. Each group of guests sits on a host-only bridge
//! (attached with `vif-bridge`), and the host routes whole networks between the bridges and
//! the uplink: no proxy ARP/NDP. What the seed leaves open: the host has no IPv6 address on
//! the bridges (it routes each /64 to its bridge, and guests route via the bridge's
//! link-local, the seed's "link local addresses can be used for routing"), and the router
//! routes both IPv4 networks and the /60 to the host.

use std::process::Command;

use anyhow::Result;

use super::lab::{Guest, Lab, Script};
use super::netns::cmd;
use super::report::Report;
use super::routed::{NO_DAD, proxies, router, uplink};
use crate::types::mac::MacAddr;

/// IP_FORWARD=yes and IPV6_FORWARD=yes in /etc/sysconfig/sysctl.
const SYSCTL: &str = "
    net.ipv4.ip_forward = 1
    net.ipv6.conf.all.forwarding = 1
";
/// The host's eth0: a fixed MAC gives the link-local the router sends the /60 to.
const HOST_MAC: &str = "00:01:01:01:02:53";

/// ifcfg-br1 and ifcfg-br2, plus a /64 routed to each; fixed MACs give fixed link-locals.
const BRIDGES: [(&str, &str, &str, &str); 2] = [
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

pub fn run(lab: &Lab, report: &mut Report) -> Result<()> {
    report.heading(
        "2.2 Routed, multiple networks: host-only br1 and br2, the host routes between them",
    );
    let host = lab.dom0("host22")?;
    host.sysctl_conf(NO_DAD)?;
    host.sysctl_conf(SYSCTL)?;
    let router = router(lab, "router22", &host)?;
    let host_ll = MacAddr::parse(HOST_MAC)?.eui64_link_local().to_string();
    router.ipw("route add 192.0.2.0/28 via 192.0.2.253")?;
    router.ipw("route add 192.0.2.16/28 via 192.0.2.253")?;
    router.ipw(&format!(
        "-6 route add 2001:db8:abba::/60 via {host_ll} dev eth0"
    ))?;

    host.ipw(&format!("link set eth0 address {HOST_MAC}"))?;
    uplink(&host)?;
    for (bridge, ipv4, ipv6, mac) in BRIDGES {
        host.bridge(bridge)?;
        host.ipw(&format!("link set {bridge} address {mac} up"))?;
        host.ipw(&format!("addr add {ipv4} dev {bridge}"))?;
        host.ipw(&format!("-6 route add {ipv6} dev {bridge}"))?;
    }
    // routes: keep the unused rest of the /60 off the default route, back to the router.
    host.ipw("-6 route add unreachable 2001:db8:abba::/60")?;

    // vif=[ 'mac=00:16:3e:10:10:10,script=vif-bridge,bridge=br1' ], and the commented
    // vifname variant for xen2.
    let xen1 = Guest {
        name: "xen1",
        domid: 1,
        devid: 0,
        mac: "00:16:3e:10:10:10",
        script: Script::Bridge("br1"),
        vifname: None,
        ipv4: "192.0.2.1/28",
        ipv6: Some("2001:db8:abba:1::1001/64"),
        gateway: Some("192.0.2.14"),
    };
    let xen2 = Guest {
        name: "xen2",
        domid: 2,
        mac: "00:16:3e:20:20:20",
        script: Script::Bridge("br2"),
        vifname: Some("xen2.0"),
        ipv4: "192.0.2.17/28",
        ipv6: Some("2001:db8:abba:2::1001/64"),
        gateway: Some("192.0.2.30"),
        ..xen1
    };
    let mut guests = Vec::new();
    for (guest, (_, _, _, bridge_mac)) in [&xen1, &xen2].into_iter().zip(BRIDGES) {
        let ns = host.create_guest(guest)?;
        let gateway = MacAddr::parse(bridge_mac)?.eui64_link_local();
        ns.ipw(&format!("-6 route add default via {gateway} dev eth0"))?;
        report.hotplug(&host, guest, "online")?;
        report.attached(&host, guest)?;
        guests.push(ns);
    }
    let [g1, g2] = &guests[..] else {
        unreachable!("two guests")
    };

    let via = "across br1, the host and br2";
    report.ping(g1, "guest xen1", "guest xen2", "192.0.2.17", via)?;
    report.ping(g1, "guest xen1", "guest xen2", "2001:db8:abba:2::1001", via)?;
    let via = "across br2, the host and br1";
    report.ping(g2, "guest xen2", "guest xen1", "192.0.2.1", via)?;
    report.ping(g2, "guest xen2", "guest xen1", "2001:db8:abba:1::1001", via)?;
    let via = "routed by the host";
    report.ping(g1, "guest xen1", "router", "192.0.2.254", via)?;
    report.ping(g1, "guest xen1", "router", "2001:db8:ffff::254", via)?;
    report.ping(&router, "router", "guest xen2", "192.0.2.17", via)?;
    report.ping(
        &router,
        "router",
        "guest xen2",
        "2001:db8:abba:2::1001",
        via,
    )?;
    let get = cmd(Command::new("ip").args([
        "-n",
        &host.name,
        "-6",
        "route",
        "get",
        "2001:db8:abba:3::1",
    ]))?;
    let said = String::from_utf8_lossy(&get.stderr).trim().to_owned();
    report.check(
        !get.status.success() && said.contains("No route to host"),
        "host: 2001:db8:abba:3::1 is unreachable, not sent back to the router",
        format!(": ip route get said {said:?}"),
    );
    let found = proxies(&host)?;
    report.check(
        found.is_empty(),
        "routed, not proxied: no proxy ARP/NDP entry",
        format!(": found {found:?}"),
    );

    report.detach(&host, &xen1)?;
    report.detach(&host, &xen2)?;
    Ok(())
}
