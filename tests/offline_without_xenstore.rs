//! `offline` when xenstore cannot be reached: the kernel name libxl passes is enough to take
//! the port out of its bridge and delete its antispoofing chain, so that is done before the
//! xenstore failure is reported (exit 1). Needs root.

mod common;

use std::path::Path;

use common::*;

/// A filtered guest on xenbr0, plugged while xenstore worked: (host, guest, xenstore, vif).
fn plugged(tag: &str, vifname: Option<&'static str>) -> (Netns, Netns, Xenstore, Vif) {
    let host = Netns::new(&format!("{tag}h"));
    let guest = Netns::new(&format!("{tag}g"));
    host.bridge("xenbr0", 1500);
    let mut vif = Vif::new(3, 0);
    vif.vifname = vifname;
    host.netback_vif(&vif, &guest);
    let xs = Xenstore::start();
    xs.write_vif(&vif);
    xs.write(&format!("{}/ip", vif.backend()), "192.0.2.241");
    assert_ok(&hotplug(&host, &xs, &vif, &["online", "type_if=vif"], &[]));
    (host, guest, xs, vif)
}

fn chains(ns: &Netns) -> String {
    must(ns.exec().args(["nft", "list", "chains", "netdev"]))
}

/// Runs `offline` as libxl does, but with xenstored's socket gone.
fn offline_without_xenstore(host: &Netns, vif: &Vif) -> std::process::Output {
    let binary = binary(vif.script_name());
    let nowhere = Path::new("/nonexistent/vifkit-test/xenstored/socket");
    run(&mut vif.command(&host.name, &binary, &["offline", "type_if=vif"], nowhere))
}

fn detached_and_unfiltered(host: &Netns, name: &str) {
    assert_eq!(host.master_of(name), None, "{name} is still in a bridge");
    let link = host.link(name).expect("the link is still there");
    assert!(
        !link["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
        "{name} is still up: {link}"
    );
    let chains = chains(host);
    assert!(
        !chains.contains(&format!("chain {name} ")),
        "the chain of {name} is left: {chains}"
    );
}

#[test]
fn offline_detaches_and_unfilters_then_reports_xenstore() {
    let (host, _guest, _xs, vif) = plugged("oxb", None);
    assert_eq!(host.master_of("vif3.0").as_deref(), Some("xenbr0"));
    assert!(
        chains(&host).contains("chain vif3.0 "),
        "the control: filtered"
    );

    let out = offline_without_xenstore(&host, &vif);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "vif-bridge: error: vif3.0: took vif3.0 down and out of its bridge and removed its \
             antispoofing chain, but could not read the backend's keys: "
        ),
        "{err}"
    );
    detached_and_unfiltered(&host, "vif3.0");

    // A second offline finds nothing left to do, and still reports xenstore.
    let again = offline_without_xenstore(&host, &vif);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    detached_and_unfiltered(&host, "vif3.0");
}

#[test]
fn a_renamed_vif_is_found_by_the_alias_its_rename_left() {
    let (host, _guest, _xs, vif) = plugged("oxr", Some("web1"));
    assert!(host.link("vif3.0").is_none(), "renamed to web1");
    assert_eq!(host.master_of("web1").as_deref(), Some("xenbr0"));
    assert!(
        chains(&host).contains("chain web1 "),
        "the control: filtered"
    );

    let out = offline_without_xenstore(&host, &vif);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    detached_and_unfiltered(&host, "web1");
}
