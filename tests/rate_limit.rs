//! `rate =` for a qemu tap, with real qemu running our qemu-ifup and real frames: a burst
//! the host floods towards the guest overflows the tap's token bucket, and the kernel's own
//! counters show frames held back and dropped; without `rate` the tap gets no bucket. A
//! burst the guest sends meets the policer on the tap's ingress, where the kernel has
//! `cls_matchall` and `act_police`; where it has not, the plug still succeeds, shapes what
//! the guest gets and says why the rest is not limited. Needs root and qemu-system-x86.

mod common;

use common::frames::{ethernet, mac, send};
use common::hub::HubQemu;
use std::process::Output;
use std::time::Instant;

use common::*;
use serde_json::Value;

/// dom0 with br0, a peer namespace on it, and qemu's tap plugged by our qemu-ifup.
struct Rig {
    dom0: Netns,
    peer: Netns,
    guest: Netns,
    qemu: HubQemu,
    dir: Scratch,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.qemu.stop();
    }
}

/// The tap's config file says `extra`.
fn rig(tag: &str, extra: &str) -> Rig {
    let dom0 = Netns::new(tag);
    dom0.bridge("br0", 1500);
    let peer = Netns::new("rp");
    dom0.veth("up0", "eth0", &peer);
    dom0.ip(&["link", "set", "up0", "master", "br0", "up"]);
    let dir = scratch(tag);
    let config = dir.join("vifkit.conf");
    std::fs::write(&config, format!("[port vkt0]\nbridge = br0\n{extra}")).unwrap();
    let guest = Netns::new("rg");
    let env = [("VIFKIT_CONFIG", config.to_str().unwrap())];
    let pidfile = dir.join("qemu.pid");
    let qemu = HubQemu::start(&dom0, pidfile, "vkt0", "vkg0", &env, &guest, "10.7.0.2/24");
    Rig {
        dom0,
        peer,
        guest,
        qemu,
        dir,
    }
}

impl Rig {
    /// Rewrites the tap's config file with `extra`.
    fn configure(&self, extra: &str) {
        let config = format!("[port vkt0]\nbridge = br0\n{extra}");
        std::fs::write(self.dir.join("vifkit.conf"), config).unwrap();
    }

    /// Runs our `qemu-ifup` or `qemu-ifdown` on the tap again, as qemu did.
    fn script(&self, name: &str) -> Output {
        let config = self.dir.join("vifkit.conf");
        run(self
            .dom0
            .exec()
            .args(["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
            .arg(format!("VIFKIT_CONFIG={}", config.display()))
            .arg(binary(name))
            .arg("vkt0"))
    }
}

fn qdiscs(ns: &Netns, dev: &str) -> Vec<Value> {
    let out = must(
        ns.exec()
            .args(["tc", "-s", "-j", "qdisc", "show", "dev", dev]),
    );
    let qdiscs: Value = serde_json::from_str(&out).unwrap();
    qdiscs.as_array().unwrap().clone()
}

fn root_qdisc(ns: &Netns, dev: &str) -> Value {
    qdiscs(ns, dev)
        .into_iter()
        .find(|q| q["root"] == true)
        .unwrap_or(Value::Null)
}

/// The qdisc on `dev`'s ingress (`ffff:fff1`), if any.
fn ingress_qdisc(ns: &Netns, dev: &str) -> Option<Value> {
    qdiscs(ns, dev)
        .into_iter()
        .find(|q| q["parent"] == "ffff:fff1")
}

/// 300 broadcast frames of 1,400 bytes from the peer: the bridge floods them to the tap.
fn flood(peer: &Netns) {
    flood_from(peer, "eth0");
}

const FLOOD: u64 = 300;
const PAYLOAD: u64 = 1400;

/// `FLOOD` broadcast frames with `PAYLOAD` bytes after the Ethernet header, out of `dev`.
fn flood_from(ns: &Netns, dev: &str) {
    let frame = ethernet(
        mac("02:00:00:00:00:01"),
        mac("ff:ff:ff:ff:ff:ff"),
        0x88b5, // local experimental ethertype: nothing answers it
        &[0x5a; PAYLOAD as usize],
    );
    for _ in 0..FLOOD {
        send(ns, dev, &frame);
    }
}

#[test]
fn a_rate_holds_back_and_drops_a_burst_towards_the_guest() {
    // Slow enough that this test's sender (a socket per frame) outruns it many times over.
    let rig = rig("rl", "rate = 100kbit\n");
    let bucket = root_qdisc(&rig.dom0, "vkt0");
    assert_eq!(bucket["kind"], "tbf", "{bucket}");
    assert_eq!(
        bucket["options"]["rate"], 12_500,
        "100kbit is 12,500 bytes/s"
    );
    flood(&rig.peer);
    let bucket = root_qdisc(&rig.dom0, "vkt0");
    // 420 KB that would take 34 s at 12.5 KB/s: the bucket's queue (64 KiB) overflows.
    assert!(bucket["overlimits"].as_u64().unwrap() > 0, "{bucket}");
    assert!(bucket["drops"].as_u64().unwrap() > 0, "{bucket}");
}

#[test]
fn without_a_rate_the_tap_gets_no_bucket_and_no_policer() {
    let rig = rig("rn", "");
    flood(&rig.peer);
    let root = root_qdisc(&rig.dom0, "vkt0");
    assert_ne!(root["kind"], "tbf", "{root}");
    assert_eq!(ingress_qdisc(&rig.dom0, "vkt0"), None);
    // The guest's own burst, the one a policer would thin out, arrives whole.
    let before = rx_packets(&rig.peer, "eth0");
    flood_from(&rig.guest, "vkg0");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let passed = rx_packets(&rig.peer, "eth0") - before;
    assert!(passed >= FLOOD, "{passed} of {FLOOD} frames arrived");
}

/// Whether this kernel polices: tc puts a matchall filter with a police action on a
/// scratch veth's ingress, in a namespace of its own.
fn kernel_polices() -> bool {
    let ns = Netns::new("rk");
    ns.ip(&["link", "add", "p0", "type", "veth", "peer", "name", "p1"]);
    must(
        ns.exec()
            .args(["tc", "qdisc", "add", "dev", "p0", "ingress"]),
    );
    let police = [
        "tc",
        "filter",
        "add",
        "dev",
        "p0",
        "ingress",
        "matchall",
        "action",
        "police",
        "rate",
        "1mbit",
        "burst",
        "64k",
        "conform-exceed",
        "drop",
    ];
    run(ns.exec().args(police)).status.success()
}

const UNSUPPORTED: &str =
    "what vkt0 takes from its guest is not limited: this kernel lacks cls_matchall or act_police";

/// `tc filter show` of the tap's ingress, as text: tc 6.1 prints the police rate there only.
fn ingress_filters(ns: &Netns) -> String {
    must(
        ns.exec()
            .args(["tc", "filter", "show", "dev", "vkt0", "ingress"]),
    )
}

/// The police action's counters, from `tc -s -j filter show`.
fn police_stats(ns: &Netns) -> Value {
    let out = must(
        ns.exec()
            .args(["tc", "-s", "-j", "filter", "show", "dev", "vkt0", "ingress"]),
    );
    let filters: Value = serde_json::from_str(&out).unwrap();
    let actions: Vec<&Value> = filters
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["options"]["actions"].as_array())
        .flatten()
        .collect();
    match actions[..] {
        [police] if police["kind"] == "police" => police["stats"].clone(),
        _ => panic!("not one police action: {out}"),
    }
}

fn rx_packets(ns: &Netns, dev: &str) -> u64 {
    let link = ns.ip_json(&["-s", "link", "show", "dev", dev]);
    link[0]["stats64"]["rx"]["packets"].as_u64().unwrap()
}

/// The guest's burst meets the policer on the tap's ingress; a second online changes
/// nothing, a new rate replaces the policer, and offline removes it, twice.
fn guest_sends_are_policed() {
    let rig = rig("rp", "rate = 1mbit\n");
    let shown = ingress_filters(&rig.dom0);
    assert!(
        shown.contains("matchall") && shown.contains("rate 1Mbit burst 64Kb mtu 64Kb action drop"),
        "{shown}"
    );
    assert_eq!(ingress_qdisc(&rig.dom0, "vkt0").unwrap()["kind"], "ingress");
    assert_eq!(root_qdisc(&rig.dom0, "vkt0")["kind"], "tbf");

    let before = rx_packets(&rig.peer, "eth0");
    let start = Instant::now();
    flood_from(&rig.guest, "vkg0");
    // qemu forwards the last frames a little later.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let passed = rx_packets(&rig.peer, "eth0") - before;
    let seconds = start.elapsed().as_secs_f64();
    // 64 KiB of burst, then 125,000 bytes a second; a few frames of slack for the IPv6
    // chatter of the guest's link.
    let budget = ((65_536.0 + 125_000.0 * seconds) / PAYLOAD as f64) as u64 + 5;
    assert!(
        passed > 0 && passed <= budget,
        "{passed} of {FLOOD} frames passed in {seconds:.3} s, the rate allows {budget}"
    );
    let stats = police_stats(&rig.dom0);
    let drops = stats["drops"].as_u64().unwrap();
    assert!(drops > 0, "{stats}");

    // Online again: the same policer stays, counters and all.
    let out = rig.script("qemu-ifup");
    assert_ok(&out);
    assert_eq!(ingress_filters(&rig.dom0), shown);
    assert_eq!(police_stats(&rig.dom0)["drops"].as_u64(), Some(drops));

    // A new rate replaces it.
    rig.configure("rate = 2mbit\n");
    assert_ok(&rig.script("qemu-ifup"));
    let replaced = ingress_filters(&rig.dom0);
    assert!(replaced.contains("rate 2Mbit "), "{replaced}");
    assert_eq!(replaced.matches(" police ").count(), 1, "{replaced}");

    // Offline removes it; a second offline finds nothing and succeeds.
    for _ in 0..2 {
        assert_ok(&rig.script("qemu-ifdown"));
        assert_eq!(ingress_qdisc(&rig.dom0, "vkt0"), None);
    }
}

#[test]
fn what_the_guest_sends_is_policed_where_the_kernel_can() {
    if !kernel_polices() {
        eprintln!(
            "skipped: this kernel lacks cls_matchall or act_police; `cargo test --test rate_limit -- --ignored` insists"
        );
        return;
    }
    guest_sends_are_policed();
}

// The CI kernel has neither and loads no modules (tc: "TC classifier not found").
#[test]
#[ignore = "needs cls_matchall and act_police (run in the real-Xen lab's dom0)"]
fn what_the_guest_sends_is_policed() {
    assert!(
        kernel_polices(),
        "this kernel cannot run the test (built without CONFIG_NET_CLS_MATCHALL or CONFIG_NET_ACT_POLICE?)"
    );
    guest_sends_are_policed();
}

#[test]
fn without_police_in_the_kernel_a_rate_still_shapes_and_says_why_the_rest_is_not() {
    if kernel_polices() {
        eprintln!("skipped: this kernel has cls_matchall and act_police");
        return;
    }
    let rig = rig("ru", "rate = 1mbit\n");
    assert_eq!(root_qdisc(&rig.dom0, "vkt0")["kind"], "tbf");
    // Online again, to hear it: success, the warning, and no ingress qdisc left behind.
    let out = rig.script("qemu-ifup");
    assert_ok(&out);
    assert!(stderr(&out).contains(UNSUPPORTED), "{}", stderr(&out));
    assert_eq!(ingress_qdisc(&rig.dom0, "vkt0"), None);
    assert_eq!(root_qdisc(&rig.dom0, "vkt0")["kind"], "tbf");
    // Offline finds no ingress qdisc and succeeds.
    assert_ok(&rig.script("qemu-ifdown"));
}
