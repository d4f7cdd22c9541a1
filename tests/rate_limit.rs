//! `rate =` for a qemu tap, with real qemu running our qemu-ifup and real frames: a burst
//! the host floods towards the guest overflows the tap's token bucket, and the kernel's own
//! counters show frames held back and dropped; without `rate` the tap gets no bucket. Needs
//! root and qemu-system-x86.

mod common;

use common::frames::{ethernet, mac, send};
use common::hub::HubQemu;
use std::path::PathBuf;

use common::*;
use serde_json::Value;

/// dom0 with br0, a peer namespace on it, and qemu's tap plugged by our qemu-ifup.
struct Rig {
    dom0: Netns,
    peer: Netns,
    _guest: Netns,
    qemu: HubQemu,
    dir: PathBuf,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.qemu.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The tap's config file says `extra`.
fn rig(tag: &str, extra: &str) -> Rig {
    let dom0 = Netns::new(tag);
    dom0.bridge("br0", 1500);
    let peer = Netns::new("rp");
    dom0.veth("up0", "eth0", &peer);
    dom0.ip(&["link", "set", "up0", "master", "br0", "up"]);
    let dir = scratch_dir(tag);
    let config = dir.join("vifkit.conf");
    std::fs::write(&config, format!("[port vkt0]\nbridge = br0\n{extra}")).unwrap();
    let guest = Netns::new("rg");
    let env = [("VIFKIT_CONFIG", config.to_str().unwrap())];
    let pidfile = dir.join("qemu.pid");
    let qemu = HubQemu::start(&dom0, pidfile, "vkt0", "vkg0", &env, &guest, "10.7.0.2/24");
    Rig {
        dom0,
        peer,
        _guest: guest,
        qemu,
        dir,
    }
}

fn root_qdisc(ns: &Netns, dev: &str) -> Value {
    let out = must(
        ns.exec()
            .args(["tc", "-s", "-j", "qdisc", "show", "dev", dev]),
    );
    let qdiscs: Value = serde_json::from_str(&out).unwrap();
    qdiscs
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["root"] == true)
        .cloned()
        .unwrap_or(Value::Null)
}

/// 300 broadcast frames of 1,400 bytes from the peer: the bridge floods them to the tap.
fn flood(peer: &Netns) {
    let frame = ethernet(
        mac("02:00:00:00:00:01"),
        mac("ff:ff:ff:ff:ff:ff"),
        0x88b5, // local experimental ethertype: nothing in the guest answers it
        &[0x5a; 1400],
    );
    for _ in 0..300 {
        send(peer, "eth0", &frame);
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
fn without_a_rate_the_tap_gets_no_bucket() {
    let rig = rig("rn", "");
    flood(&rig.peer);
    let root = root_qdisc(&rig.dom0, "vkt0");
    assert_ne!(root["kind"], "tbf", "{root}");
}
