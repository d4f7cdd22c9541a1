//! What the host does to a guest's traffic outside the objects vifkit installs, which a
//! plug does not change but `vifkit check` (and a plug's warnings) report: `br_netfilter`
//! handing bridged frames to an nf_tables forward chain that drops them, and a tap's root
//! qdisc replaced after `qemu-ifup` ran (libvirt sets `noqueue`), which drops its rate limit.

use anyhow::{Context, Result};

use crate::sys::nft::{self, ForwardChain, IpFamily};
use crate::sys::rtnl::RootQdisc;
use crate::sys::sysctl::{self, Key};
use crate::types::names::IfName;
use crate::types::port::Rate;

const CALL_IPTABLES: &str = "bridge-nf-call-iptables";
const CALL_IP6TABLES: &str = "bridge-nf-call-ip6tables";

/// None when bridged guests' traffic is not handed to a forward chain that drops it by
/// default; else one sentence naming the sysctl, the table and the chain. Reads
/// `/proc/sys/net/bridge` (absent without `br_netfilter`: then fine) and, only when a
/// sysctl is 1, dumps the nf_tables chains. Chains of iptables-legacy are not seen.
pub fn bridged_traffic_dropped() -> Result<Option<String>> {
    let read = |name: &str| sysctl::read(&Key::new(&format!("net/bridge/{name}"))?);
    let (v4, v6) = (read(CALL_IPTABLES)?, read(CALL_IP6TABLES)?);
    if v4.as_deref() != Some("1") && v6.as_deref() != Some("1") {
        return Ok(None);
    }
    let chains = nft::forward_chains().context("list the nft forward chains")?;
    Ok(bridged_verdict(v4.as_deref(), v6.as_deref(), &chains))
}

/// The decision, from the two sysctls' values (None: absent) and the forward chains.
pub fn bridged_verdict(
    call_iptables: Option<&str>,
    call_ip6tables: Option<&str>,
    chains: &[ForwardChain],
) -> Option<String> {
    let v4 = call_iptables.map(str::trim) == Some("1");
    let v6 = call_ip6tables.map(str::trim) == Some("1");
    let sees = |family: IpFamily| match family {
        IpFamily::Ip => v4,
        IpFamily::Ip6 => v6,
        IpFamily::Inet => v4 || v6,
    };
    let dropping: Vec<&ForwardChain> = chains
        .iter()
        .filter(|c| c.drops && sees(c.family))
        .collect();
    if dropping.is_empty() {
        return None;
    }
    let has = |families: [IpFamily; 2]| dropping.iter().any(|c| families.contains(&c.family));
    let mut sysctls = vec![];
    if v4 && has([IpFamily::Ip, IpFamily::Inet]) {
        sysctls.push(CALL_IPTABLES);
    }
    if v6 && has([IpFamily::Ip6, IpFamily::Inet]) {
        sysctls.push(CALL_IP6TABLES);
    }
    let names: Vec<String> = dropping
        .iter()
        .map(|c| format!("{} {} {}", c.family.as_str(), c.table, c.name))
        .collect();
    let (is, chain, drops, it) = match (sysctls.len(), names.len()) {
        (1, 1) => ("is", "chain", "drops", "it"),
        (1, _) => ("is", "chains", "drop", "them"),
        (_, 1) => ("are", "chain", "drops", "it"),
        _ => ("are", "chains", "drop", "them"),
    };
    let zero: Vec<String> = sysctls
        .iter()
        .map(|s| format!("net.bridge.{s} = 0"))
        .collect();
    Some(format!(
        "{} {is} 1 and nft {chain} {} {drops} by default: bridged guests' traffic goes through {it} (accept it there, or set {})",
        sysctls.join(" and "),
        names.join(" and "),
        zero.join(" and "),
    ))
}

/// What `check` says when the tbf a tap's `rate` rule set is no longer its root qdisc
/// (libvirt replaces it after the script), or limits to another rate; None when in place.
pub fn rate_gone(tap: &IfName, rate: Rate, root: Option<&RootQdisc>) -> Option<String> {
    const LIBVIRT: &str = "libvirt replaces a tap's root qdisc after qemu-ifup: give the guest's <interface> a <bandwidth> element instead";
    let wanted = (rate.0 / 8).max(1);
    let now = match root {
        Some(RootQdisc {
            tbf_rate: Some(bytes),
            ..
        }) if *bytes == wanted => return None,
        Some(RootQdisc {
            tbf_rate: Some(bytes),
            ..
        }) => {
            return Some(format!(
                "the root tbf of {tap} limits to {}, not to rate {rate}",
                Rate(bytes * 8)
            ));
        }
        Some(other) => format!("its root qdisc is {}", other.kind),
        None => "it has no root qdisc".to_owned(),
    };
    Some(format!(
        "rate {rate} of {tap} is gone: {now}, not vifkit's tbf ({LIBVIRT})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(family: IpFamily, table: &str, name: &str, drops: bool) -> ForwardChain {
        ForwardChain {
            family,
            table: table.into(),
            name: name.into(),
            drops,
        }
    }

    #[test]
    fn a_dropping_forward_chain_matters_only_to_the_family_br_netfilter_hands_it() {
        let docker = [chain(IpFamily::Ip, "filter", "FORWARD", true)];
        assert_eq!(
            bridged_verdict(Some("1"), Some("1"), &docker).as_deref(),
            Some(
                "bridge-nf-call-iptables is 1 and nft chain ip filter FORWARD drops by default: bridged guests' traffic goes through it (accept it there, or set net.bridge.bridge-nf-call-iptables = 0)"
            )
        );
        assert_eq!(bridged_verdict(Some("0"), Some("1"), &docker), None);
        // br_netfilter not loaded: no sysctls, nothing reaches the IP hooks.
        assert_eq!(bridged_verdict(None, None, &docker), None);
        let ip6 = [chain(IpFamily::Ip6, "filter", "FORWARD", true)];
        assert_eq!(bridged_verdict(Some("1"), Some("0"), &ip6), None);
        assert!(
            bridged_verdict(Some("0"), Some("1\n"), &ip6)
                .unwrap()
                .starts_with(
                    "bridge-nf-call-ip6tables is 1 and nft chain ip6 filter FORWARD drops"
                )
        );
    }

    #[test]
    fn accepting_chains_are_fine_and_every_dropping_one_is_named() {
        let open = [chain(IpFamily::Inet, "firewalld", "filter_FORWARD", false)];
        assert_eq!(bridged_verdict(Some("1"), Some("1"), &open), None);
        let both = [
            chain(IpFamily::Inet, "firewalld", "filter_FORWARD", true),
            chain(IpFamily::Ip, "filter", "FORWARD", false),
            chain(IpFamily::Ip6, "filter", "FORWARD", true),
        ];
        assert_eq!(
            bridged_verdict(Some("1"), Some("1"), &both).as_deref(),
            Some(
                "bridge-nf-call-iptables and bridge-nf-call-ip6tables are 1 and nft chains inet firewalld filter_FORWARD and ip6 filter FORWARD drop by default: bridged guests' traffic goes through them (accept it there, or set net.bridge.bridge-nf-call-iptables = 0 and net.bridge.bridge-nf-call-ip6tables = 0)"
            )
        );
        assert_eq!(bridged_verdict(Some("1"), None, &[]), None);
    }

    #[test]
    fn a_rate_is_gone_unless_the_root_qdisc_is_a_tbf_at_that_rate() {
        let tap = IfName::new("tap0").unwrap();
        let rate = Rate(10_000_000);
        let tbf = |bytes| RootQdisc {
            kind: "tbf".into(),
            tbf_rate: Some(bytes),
        };
        assert_eq!(rate_gone(&tap, rate, Some(&tbf(1_250_000))), None);
        assert_eq!(
            rate_gone(&tap, rate, Some(&tbf(625_000))).as_deref(),
            Some("the root tbf of tap0 limits to 5mbit, not to rate 10mbit")
        );
        let noqueue = RootQdisc {
            kind: "noqueue".into(),
            tbf_rate: None,
        };
        assert_eq!(
            rate_gone(&tap, rate, Some(&noqueue)).as_deref(),
            Some(
                "rate 10mbit of tap0 is gone: its root qdisc is noqueue, not vifkit's tbf (libvirt replaces a tap's root qdisc after qemu-ifup: give the guest's <interface> a <bandwidth> element instead)"
            )
        );
        assert!(
            rate_gone(&tap, rate, None)
                .unwrap()
                .starts_with("rate 10mbit of tap0 is gone: it has no root qdisc, not vifkit's tbf")
        );
    }
}
