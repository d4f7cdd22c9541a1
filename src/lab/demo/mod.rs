//! `vifkit demo`: the scenarios of the SLE 11 SP1 Xen/KVM networking guide (seed 1.1, 1.2,
//! 2.1, 2.2 and 3) and a KVM tap, run end to end in throwaway network namespaces. Namespaces
//! play dom0, the physical LAN with its router, and each guest; the real `vif-bridge` and
//! `vif-route-ifup` and `vif-nat` binaries plug the guests' vifs exactly as libxl would, against a private
//! xenstore, the real qemu runs `qemu-ifup`/`qemu-ifdown`, and pings show what each layout
//! connects and what it keeps apart. The report goes to stdout, one line per check.

mod kvm;
mod lab;
mod multi;
mod nat;
mod netns;
mod report;
mod routed;

use anyhow::{Result, bail};

use crate::types::mac::MacAddr;
use lab::{Dom0, Guest, Lab, Script};
use netns::Netns;
use report::Report;

pub fn run() -> Result<()> {
    // The lab's own xenstore writes are set-up, not news (and would go to syslog): the
    // report is the output. VIFKIT_LOG still turns them back on.
    if std::env::var_os("VIFKIT_LOG").is_none() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    netns::catch_interrupts()?;
    let lab = Lab::new()?;
    println!(
        "vifkit demo: dom0, LAN and guests live in network namespaces {}-*",
        lab.prefix
    );
    let mut report = Report::default();
    {
        let host = lab.dom0("host")?;
        let lan = lab.netns("lan")?;
        bridged_to_lan(&host, &lan, &mut report)?;
        host_only(&host, &mut report)?;
        kvm::run(&host, &mut report)?;
    }
    routed::run(&lab, &mut report)?;
    multi::run(&lab, &mut report)?;
    nat::run(&lab, &mut report)?;
    let skipped = match report.skipped {
        0 => String::new(),
        n => format!(" ({n} skipped)"),
    };
    println!(
        "\n{} checks{skipped}, {} failed",
        report.passed + report.failed,
        report.failed
    );
    if report.failed > 0 {
        bail!(
            "{} of {} checks failed",
            report.failed,
            report.passed + report.failed
        );
    }
    Ok(())
}

/// Seed 1.1: br0 carries the host's addresses and has the physical NIC eth0 as its uplink to
/// the LAN; guests' vifs join br0 and sit on the LAN like any other machine.
fn bridged_to_lan(host: &Dom0, lan: &Netns, report: &mut Report) -> Result<()> {
    report.heading("1.1 Bridged to a physical network: br0 = eth0 + guest vifs, router 192.168.0.254 on the LAN");
    // No dummy module on these machines: a veth pair stands in for the NIC and its cable.
    host.veth("eth0", "eth0", lan)?;
    lan.ipw("addr add 192.168.0.254/24 dev eth0")?;
    lan.ipw("addr add 2001:db8:abba::fe/64 dev eth0 nodad")?;
    lan.ipw("link set eth0 up")?;
    // ifcfg-br0: BRIDGE_PORTS='eth0'.
    host.bridge("br0")?;
    host.ipw("addr add 192.168.0.1/24 dev br0")?;
    host.ipw("addr add 2001:db8:abba::1/64 dev br0 nodad")?;
    host.ipw("link set eth0 master br0 up")?;
    host.ipw("link set br0 up")?;
    // routes: default 192.168.0.254 - br0
    host.ipw("route add default via 192.168.0.254 dev br0")?;
    report.ping(
        host,
        "host",
        "LAN router",
        "192.168.0.254",
        "across br0 and eth0 (the uplink works)",
    )?;

    let xen1 = Guest {
        name: "xen1",
        domid: 1,
        devid: 0,
        mac: "00:16:3e:10:10:10",
        script: Script::Bridge("br0"),
        vifname: None,
        ipv4: "192.168.0.10/24",
        ipv6: Some("2001:db8:abba::10/64"),
        gateway: Some("192.168.0.254"),
    };
    let xen1_ns = host.create_guest(&xen1)?;
    report.hotplug(host, &xen1, "online")?;
    report.attached(host, &xen1)?;
    let from_xen1 = [
        ("host", "192.168.0.1", "across br0"),
        ("host", "2001:db8:abba::1", "across br0"),
        ("LAN router", "192.168.0.254", "across br0 and eth0"),
        ("LAN router", "2001:db8:abba::fe", "across br0 and eth0"),
    ];
    for (to, address, how) in from_xen1 {
        report.ping(&xen1_ns, "guest xen1", to, address, how)?;
    }

    // The seed's commented variant: vifname gives the port a stable name for firewall rules.
    let xen2 = Guest {
        name: "xen2",
        domid: 2,
        devid: 0,
        mac: "00:16:3e:20:20:20",
        script: Script::Bridge("br0"),
        vifname: Some("xen2.0"),
        ipv4: "192.168.0.20/24",
        ipv6: Some("2001:db8:abba::20/64"),
        gateway: Some("192.168.0.254"),
    };
    let xen2_ns = host.create_guest(&xen2)?;
    report.hotplug(host, &xen2, "online")?;
    report.attached(host, &xen2)?;
    let renamed = host.link(&xen2.kernel_name())?.is_none();
    report.check(
        renamed,
        "vif2.0 was renamed: only xen2.0 is left",
        ": vif2.0 still exists",
    );
    report.ping(
        &xen2_ns,
        "guest xen2",
        "LAN router",
        "192.168.0.254",
        "across xen2.0, br0 and eth0",
    )?;
    report.ping(
        &xen2_ns,
        "guest xen2",
        "guest xen1",
        "2001:db8:abba::10",
        "across br0",
    )?;

    report.detach(host, &xen1)?;
    report.detach(host, &xen2)?;
    report.no_ping(
        &xen1_ns,
        "guest xen1",
        "host",
        "192.168.0.1",
        "its vif is off the bridge",
    )?;
    Ok(())
}

/// Seed 1.2: br1 has no physical port, so guests on it reach each other and the host but not
/// the LAN behind br0, even with the host as their default gateway: dom0 does not forward.
fn host_only(host: &Dom0, report: &mut Report) -> Result<()> {
    report.heading("1.2 Host-only bridge: br1 without ports, next to br0 on the same host");
    // A new namespace may inherit forwarding from the caller's; host-only must not route.
    host.sysctl("net.ipv4.ip_forward", "0")?;
    host.bridge("br1")?;
    host.ipw("addr add 192.168.1.1/24 dev br1")?;
    host.ipw("link set br1 up")?;

    let xen3 = Guest {
        name: "xen3",
        domid: 3,
        devid: 0,
        mac: "00:16:3e:11:11:11",
        script: Script::Bridge("br1"),
        vifname: None,
        ipv4: "192.168.1.30/24",
        ipv6: None,
        gateway: Some("192.168.1.1"),
    };
    let xen4 = Guest {
        name: "xen4",
        domid: 4,
        mac: "00:16:3e:12:12:12",
        ipv4: "192.168.1.40/24",
        ..xen3
    };
    let xen3_ns = host.create_guest(&xen3)?;
    let xen4_ns = host.create_guest(&xen4)?;
    report.hotplug(host, &xen3, "online")?;
    report.hotplug(host, &xen4, "online")?;
    report.attached(host, &xen3)?;
    report.attached(host, &xen4)?;
    let across_br1 = [
        (&xen3_ns, "guest xen3", "host", "192.168.1.1"),
        (&xen3_ns, "guest xen3", "guest xen4", "192.168.1.40"),
        (&xen4_ns, "guest xen4", "guest xen3", "192.168.1.30"),
    ];
    for (ns, from, to, address) in across_br1 {
        report.ping(ns, from, to, address, "across br1")?;
    }
    // The seed: host-only guests need no IPv6 plan, link-local addresses just work.
    let link_local = format!("{}%eth0", MacAddr::parse(xen4.mac)?.eui64_link_local());
    report.ping(
        &xen3_ns,
        "guest xen3",
        "guest xen4",
        &link_local,
        "across br1, link-local",
    )?;
    report.no_ping(
        &xen3_ns,
        "guest xen3",
        "LAN router",
        "192.168.0.254",
        "host-only",
    )?;
    report.ping(
        host,
        "host",
        "LAN router",
        "192.168.0.254",
        "(still there, only not for br1)",
    )?;

    report.detach(host, &xen3)?;
    report.detach(host, &xen4)?;
    Ok(())
}
