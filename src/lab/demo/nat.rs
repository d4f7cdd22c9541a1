//! Seed 3: guests on private addresses behind their vif, reached through routes with a
//! source address, the host translating them to its own address on the uplink. The peer
//! has no route back to the guests, so every reply shows the masquerade at work.

use anyhow::{Context, Result};

use super::lab::{Guest, Lab, Script};
use super::netns::Netns;
use super::report::Report;
use super::routed::NO_DAD;

/// The seed's source routes, `192.168.1.10 dev xen1.0 src 192.168.1.1` and the IPv6 one,
/// come from these router addresses; IPv6 masquerade is opt-in.
const VIFKIT_CONF: &str =
    "[port xen1.0]\nrouter = 192.168.1.1 2001:db8:abba::1\nmasquerade6 = yes\n";

pub fn run(lab: &Lab, report: &mut Report) -> Result<()> {
    report
        .heading("3 NAT: vif-nat, private 192.168.1.10 / 2001:db8:abba::1001 masqueraded on eth0");
    let mut host = lab.dom0("host3")?;
    host.sysctl_conf(NO_DAD)?;
    host.sysctl_conf("net.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 1")?;
    let peer = lab.netns("peer3")?;
    peer.sysctl_conf(NO_DAD)?;
    host.veth("eth0", "eth0", &peer)?;
    peer.ipw("link set eth0 up")?;
    peer.ipw("addr add 203.0.113.1/24 dev eth0")?;
    peer.ipw("addr add 2001:db8:ffff::1/64 dev eth0 nodad")?;
    host.ipw("link set eth0 up")?;
    host.ipw("addr add 203.0.113.2/24 dev eth0")?;
    host.ipw("addr add 2001:db8:ffff::2/64 dev eth0 nodad")?;
    host.ipw("route add default via 203.0.113.1")?;
    host.ipw("-6 route add default via 2001:db8:ffff::1")?;
    let conf = lab.scratch("vifkit-nat.conf");
    std::fs::write(&conf, VIFKIT_CONF).with_context(|| format!("write {}", conf.display()))?;
    host.env.push(("VIFKIT_CONFIG", conf.display().to_string()));

    // vif=[ 'mac=00:16:3e:10:10:10,ip=192.168.1.10 2001:db8:abba::1001/64,script=vif-nat,vifname=xen1.0' ]
    let xen1 = Guest {
        name: "xen1nat",
        domid: 1,
        devid: 0,
        mac: "00:16:3e:10:10:10",
        script: Script::Nat,
        vifname: Some("xen1.0"),
        ipv4: "192.168.1.10/24",
        ipv6: Some("2001:db8:abba::1001/64"),
        gateway: Some("192.168.1.1"),
    };
    let guest = host.create_guest(&xen1)?;
    guest.ipw("-6 route add default via 2001:db8:abba::1")?;
    let mut xs = lab.xenstore()?;
    xs.write(
        &format!("{}/ip", xen1.backend()),
        "192.168.1.10 2001:db8:abba::1001/64",
    )?;
    count_echo_requests(&peer)?;

    report.hotplug(&host, &xen1, "online")?;
    report.attached(&host, &xen1)?;
    let tables = host
        .exec("nft")
        .args(["list", "tables"])
        .output()
        .context("run nft")?;
    let tables = String::from_utf8_lossy(&tables.stdout).into_owned();
    report.check(
        tables.contains("table inet vifkit-nat-1-0"),
        "nft table inet vifkit-nat-1-0 holds xen1.0's masquerade",
        format!(": found {tables:?}"),
    );
    let v4 = host.ip_lines("route show dev xen1.0")?;
    report.check(
        v4.iter()
            .any(|r| r.starts_with("192.168.1.10 ") && r.contains("src 192.168.1.1")),
        "route 192.168.1.10 dev xen1.0 src 192.168.1.1",
        format!(": found {v4:?}"),
    );
    let via = "masqueraded by the host";
    report.ping(&guest, "guest xen1", "peer", "203.0.113.1", via)?;
    report.ping(&guest, "guest xen1", "peer", "2001:db8:ffff::1", via)?;
    let seen = echo_requests_seen(&peer)?;
    report.check(
        seen.iter().all(|&n| n > 0),
        "the peer saw the host's 203.0.113.2 and 2001:db8:ffff::2 as the source",
        format!(": echo requests counted {seen:?}"),
    );

    report.detach(&host, &xen1)?;
    // The emptied antispoofing table may stay; no chain of the port may.
    let chains = host
        .exec("nft")
        .args(["list", "chains"])
        .output()
        .context("run nft")?;
    let chains = String::from_utf8_lossy(&chains.stdout).into_owned();
    report.check(
        !chains.contains("chain "),
        "offline deleted the port's masquerade table and antispoofing chain",
        format!(": still there: {chains}"),
    );
    report.no_ping(
        &guest,
        "guest xen1",
        "peer",
        "203.0.113.1",
        "no route, no masquerade",
    )?;
    Ok(())
}

/// Counters in the peer for echo requests from the host's addresses.
fn count_echo_requests(peer: &Netns) -> Result<()> {
    let script = "table inet seen {
        chain input {
            type filter hook input priority 0;
            ip saddr 203.0.113.2 icmp type echo-request counter
            ip6 saddr 2001:db8:ffff::2 icmpv6 type echo-request counter
        }
    }";
    let out = peer
        .exec("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn();
    let mut child = out.context("run nft")?;
    std::io::Write::write_all(
        child.stdin.as_mut().context("nft stdin")?,
        script.as_bytes(),
    )?;
    anyhow::ensure!(
        child.wait()?.success(),
        "nft could not load the peer's counters"
    );
    Ok(())
}

fn echo_requests_seen(peer: &Netns) -> Result<Vec<u64>> {
    let out = peer
        .exec("nft")
        .args(["list", "table", "inet", "seen"])
        .output()
        .context("run nft")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split("packets ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect())
}
