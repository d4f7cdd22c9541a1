//! The fingerprints vifkit stores as comments of what it installs in nf_tables, read back
//! from a kernel: a port's antispoofing chain and a NAT table, installed in a throwaway
//! namespace, carry exactly `PortFilter::fingerprint` and `nat_fingerprint`, which `nft`
//! shows as their comments. Needs root (and Linux 5.13 for table comments).

mod common;

use common::frames::in_netns;
use common::*;
use vifkit::sys::nft::{self, Masquerade, PortFilter};
use vifkit::types::link::LinkRef;
use vifkit::types::mac::MacAddr;
use vifkit::types::names::IfName;
use vifkit::types::prefix::Prefix;

fn port() -> IfName {
    IfName::new("vif3.0").unwrap()
}

fn filter(address: &str) -> PortFilter {
    let mac = MacAddr::parse("00:16:3e:10:10:10").unwrap();
    let addresses = [
        Prefix::new(address.parse().unwrap(), 32),
        Prefix::new("2001:db8::".parse().unwrap(), 64),
    ];
    PortFilter::new(port(), Some(mac), &addresses)
}

fn masquerades(source: &str) -> Vec<Masquerade> {
    let uplink = LinkRef {
        index: 1,
        name: IfName::new("lo").unwrap(),
    };
    vec![Masquerade {
        source: source.parse().unwrap(),
        uplink,
    }]
}

#[test]
fn what_vifkit_installs_carries_its_fingerprint() {
    let ns = Netns::new("nftfp");
    ns.ip(&[
        "link", "add", "vif3.0", "type", "veth", "peer", "name", "vif3.0p",
    ]);
    let (filter, changed) = (filter("192.0.2.10"), filter("192.0.2.11"));
    let (rules, other_rules) = (masquerades("192.0.2.10"), masquerades("192.0.2.11"));
    let (print, changed_print) = (filter.fingerprint(), changed.fingerprint());
    let nat_print = nft::nat_fingerprint("1-0", &rules);
    assert_ne!(print, changed_print);

    in_netns(&ns, || {
        assert_eq!(nft::installed_port_filter(&port()).unwrap(), None);
        assert_eq!(nft::installed_nat("1-0").unwrap(), None);
        nft::set_port_filter(&filter).unwrap();
        nft::set_port_nat("1-0", &rules).unwrap();
        assert_eq!(
            nft::installed_port_filter(&port()).unwrap(),
            Some(print.clone())
        );
        assert_eq!(nft::installed_nat("1-0").unwrap(), Some(nat_print.clone()));
        assert!(nft::port_filter_present(&port()).unwrap());
        assert!(nft::nat_present("1-0").unwrap());
    });

    // `nft` reads the same comments.
    let listed = must(ns.exec().args(["nft", "list", "ruleset"]));
    for expected in [&print, &nat_print] {
        assert!(
            listed.contains(&format!("comment \"{expected}\"")),
            "{listed}"
        );
    }

    in_netns(&ns, || {
        // Installing again, or something else, leaves one chain and one table, with the
        // comment of the last install.
        nft::set_port_filter(&filter).unwrap();
        assert_eq!(nft::installed_port_filter(&port()).unwrap(), Some(print));
        nft::set_port_filter(&changed).unwrap();
        assert_eq!(
            nft::installed_port_filter(&port()).unwrap(),
            Some(changed_print)
        );
        nft::set_port_nat("1-0", &other_rules).unwrap();
        assert_eq!(
            nft::installed_nat("1-0").unwrap(),
            Some(nft::nat_fingerprint("1-0", &other_rules))
        );

        nft::remove_port_filter(&port()).unwrap();
        nft::remove_port_nat("1-0").unwrap();
        assert_eq!(nft::installed_port_filter(&port()).unwrap(), None);
        assert_eq!(nft::installed_nat("1-0").unwrap(), None);
    });
}

#[test]
fn what_vifkit_did_not_install_has_an_empty_fingerprint() {
    let ns = Netns::new("nftfp");
    ns.ip(&[
        "link", "add", "vif3.0", "type", "veth", "peer", "name", "vif3.0p",
    ]);
    let table = nft::rules::netdev_table(&port());
    let nat_table = nft::nat_table("2-0");
    let commands = format!(
        "add table netdev {table}\n\
         add chain netdev {table} vif3.0 {{ type filter hook ingress device \"vif3.0\" priority -500; }}\n\
         add table inet {nat_table}\n"
    );
    must(ns.exec().args(["nft", &commands]));
    in_netns(&ns, || {
        assert_eq!(
            nft::installed_port_filter(&port()).unwrap(),
            Some(String::new())
        );
        // A NAT table without its chain is not what vifkit installs either.
        assert_eq!(nft::installed_nat("2-0").unwrap(), Some(String::new()));
    });
    let with_chain = format!(
        "add chain inet {nat_table} postrouting {{ type nat hook postrouting priority 100; }}"
    );
    must(ns.exec().args(["nft", &with_chain]));
    in_netns(&ns, || {
        assert_eq!(nft::installed_nat("2-0").unwrap(), Some(String::new()));
    });
}
