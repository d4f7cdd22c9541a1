//! `vif-route-ifup` against the SLE 11 SP1 examples: seed scenario 2.1 (one shared network,
//! proxy ARP/NDP, the seed's sysconfig files verbatim from `tests/fixtures/sysconfig/seed-2.1`),
//! seed scenario 2.2 (host-only bridges, which the seed attaches with `vif-bridge`), bad
//! sysconfig input, ten vifs plugged at once and a vif that vanished before offline.
//! Every topology lives in throwaway namespaces. Needs root.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Instant;

use common::*;
use serde_json::Value;

const SEED_2_1_FILES: [&str; 4] = ["ifcfg-eth0", "ifcfg-xen1.0", "routes", "ifndp-proxy"];

/// The host's /etc/sysctl.conf from seed 2.1, verbatim.
const SEED_SYSCTL_CONF: &str = "\
# enable ipv6 forwarding and proxy ndp:
net.ipv6.conf.default.forwarding = 1
net.ipv6.conf.all.forwarding = 1
net.ipv6.conf.default.proxy_ndp = 1
net.ipv6.conf.all.proxy_ndp = 1
net.ipv4.conf.default.proxy_arp = 1
net.ipv4.conf.all.proxy_arp = 1
";

/// What boot.sysctl makes of seed 2.1's `IP_FORWARD=yes` and `IPV6_FORWARD=yes` in
/// /etc/sysconfig/sysctl.
const SEED_SYSCONFIG_SYSCTL: &str = "\
net.ipv4.ip_forward = 1
net.ipv6.conf.all.forwarding = 1
";

/// A private copy of sysconfig files, removed on drop.
struct SysconfigDir {
    path: PathBuf,
}

impl SysconfigDir {
    fn empty() -> SysconfigDir {
        SysconfigDir {
            path: scratch_dir("sysconfig"),
        }
    }

    /// The host's `/etc/sysconfig/network` files of seed 2.1, as the seed prints them.
    fn seed_2_1() -> SysconfigDir {
        let dir = SysconfigDir::empty();
        let fixtures =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysconfig/seed-2.1");
        for name in SEED_2_1_FILES {
            std::fs::copy(fixtures.join(name), dir.path.join(name))
                .unwrap_or_else(|e| panic!("copy fixture {name}: {e}"));
        }
        dir
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path.join(name), text).unwrap();
    }

    fn remove(&self, name: &str) {
        std::fs::remove_file(self.path.join(name)).unwrap();
    }

    fn file(&self, name: &str) -> String {
        self.path.join(name).display().to_string()
    }

    fn env(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for SysconfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn sysctl(ns: &Netns, key: &str, value: &str) {
    must(ns.exec().args(["sysctl", "-qw", &format!("{key}={value}")]));
}

/// `key = value` lines of a sysctl.conf, applied in `ns`.
fn apply_sysctl_conf(ns: &Netns, text: &str) {
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').expect("key = value");
        sysctl(ns, key.trim(), value.trim());
    }
}

/// A value under /proc/sys in `ns`, by path: dotted keys cannot name `xen1.0`.
fn proc_sys(ns: &Netns, path: &str) -> String {
    must(ns.exec().args(["cat", &format!("/proc/sys/{path}")]))
        .trim()
        .to_owned()
}

fn no_dad(ns: &Netns) {
    sysctl(ns, "net.ipv6.conf.all.accept_dad", "0");
    sysctl(ns, "net.ipv6.conf.default.accept_dad", "0");
}

/// `ip -j -d route show` entries as `[type] dst [via gw] [dev d] [scope s] proto p`, the type
/// only when it is not unicast. Leading `-4`/`-6` in `args` select the family.
fn routes(ns: &Netns, args: &[&str]) -> Vec<String> {
    let split = args.iter().take_while(|a| a.starts_with('-')).count();
    let (options, selector) = args.split_at(split);
    let v = ns.ip_json(&[options, &["-d", "route", "show"], selector].concat());
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut s = match r["type"].as_str() {
                Some("unicast") | None => String::new(),
                Some(kind) => format!("{kind} "),
            };
            s += r["dst"].as_str().unwrap();
            if let Some(gw) = r["gateway"].as_str() {
                s += &format!(" via {gw}");
            }
            if let Some(dev) = r["dev"].as_str() {
                s += &format!(" dev {dev}");
            }
            if let Some(scope) = r["scope"].as_str() {
                s += &format!(" scope {scope}");
            }
            if let Some(proto) = r["protocol"].as_str() {
                s += &format!(" proto {proto}");
            }
            s
        })
        .collect()
}

/// Proxy ARP/NDP entries as `address dev`, sorted.
fn proxies(ns: &Netns) -> Vec<String> {
    let mut out = Vec::new();
    for family in ["-4", "-6"] {
        let v = ns.ip_json(&[family, "neigh", "show", "proxy"]);
        out.extend(v.as_array().unwrap().iter().map(|n| {
            format!(
                "{} {}",
                n["dst"].as_str().unwrap(),
                n["dev"].as_str().unwrap()
            )
        }));
    }
    out.sort();
    out
}

fn is_up(ns: &Netns, dev: &str) -> bool {
    ns.link(dev)
        .unwrap_or_else(|| panic!("{dev} missing"))
        .get("flags")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|f| f == "UP"))
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        stderr(out)
    );
    assert!(
        out.stdout.is_empty(),
        "stdout must stay clean: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A fresh path may need a moment for neighbour discovery: a few tries, bounded.
fn pings(from: &Netns, to: &str) -> bool {
    (0..3).any(|_| from.ping(to))
}

/// The modified EUI-64 link-local address of a MAC, as the kernel derives it.
fn link_local(mac: &str) -> String {
    let b: Vec<u8> = mac
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect();
    let groups = [
        u16::from_be_bytes([b[0] ^ 2, b[1]]),
        u16::from_be_bytes([b[2], 0xff]),
        u16::from_be_bytes([0xfe, b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
    ];
    let ip = std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, groups[0], groups[1], groups[2], groups[3]);
    ip.to_string()
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A vif as libxl describes it for `script=vif-route-ifup,vifname=<vifname>`.
fn routed_vif(domid: u32, mac: &'static str) -> Vif {
    let mut vif = Vif::new(domid, 0);
    vif.script = "/etc/xen/scripts/vif-route-ifup";
    vif.bridge = None;
    vif.mac = mac;
    vif
}

/// Seed 2.1: a router on the uplink, the host, and guest xen1 behind `vif1.0`.
struct Seed21 {
    router: Netns,
    host: Netns,
    guest: Netns,
    xs: Xenstore,
    vif: Vif,
    dir: SysconfigDir,
}

impl Seed21 {
    /// Router 192.0.2.254/28 with link-local fe80::201:1ff:fe01:254 (from its MAC) on the
    /// shared network, plus 2001:db8:ffff::254 on its lo: a link-local alone cannot be pinged
    /// from the guest, so its global address is off the shared /64 and reached through the
    /// host, as on a provider's network. The host's eth0 is configured as its ifcfg-eth0 and
    /// routes say (the host network service's job), its sysctls as the seed's sysctl.conf;
    /// the guest as the seed's guest ifcfg-eth0 and routes.
    fn new(tag: &str) -> Seed21 {
        let router = Netns::new(&format!("{tag}r"));
        let host = Netns::new(&format!("{tag}h"));
        let guest = Netns::new(&format!("{tag}g"));
        for ns in [&router, &host, &guest] {
            no_dad(ns);
        }
        // Boot: sysctl.conf is applied before xen starts any domain.
        apply_sysctl_conf(&host, SEED_SYSCONFIG_SYSCTL);
        apply_sysctl_conf(&host, SEED_SYSCTL_CONF);

        host.veth("eth0", "up0", &router);
        router.ip(&["link", "set", "up0", "down"]);
        router.ip(&["link", "set", "up0", "address", "00:01:01:01:02:54", "up"]);
        router.ip(&["addr", "add", "192.0.2.254/28", "dev", "up0"]);
        router.ip(&["addr", "add", "2001:db8:ffff::254/128", "dev", "lo"]);
        router.ip(&["-6", "route", "add", "2001:db8:abba::/64", "dev", "up0"]);

        // ifcfg-eth0 and the eth0 lines of routes.
        host.ip(&["link", "set", "eth0", "up"]);
        host.ip(&["addr", "add", "192.0.2.253/28", "dev", "eth0"]);
        host.ip(&["addr", "add", "2001:db8:abba::1/64", "dev", "eth0", "nodad"]);
        host.ip(&[
            "route",
            "add",
            "default",
            "via",
            "192.0.2.254",
            "dev",
            "eth0",
        ]);
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

        // xl create: netback's vif1.0, whose far end is the guest's eth0.
        let vif = routed_vif(1, "00:16:3e:10:10:10");
        host.veth(&vif.kernel_name(), "eth0", &guest);
        host.ip(&[
            "link",
            "set",
            &vif.kernel_name(),
            "address",
            "fe:ff:ff:ff:ff:ff",
        ]);
        guest.ip(&["link", "set", "eth0", "down"]);
        guest.ip(&["link", "set", "eth0", "address", vif.mac, "up"]);
        guest.ip(&["addr", "add", "192.0.2.241/28", "dev", "eth0"]);
        guest.ip(&[
            "addr",
            "add",
            "2001:db8:abba::1001/64",
            "dev",
            "eth0",
            "nodad",
        ]);
        guest.ip(&["route", "add", "192.0.2.253", "dev", "eth0"]);
        guest.ip(&[
            "route",
            "add",
            "default",
            "via",
            "192.0.2.253",
            "dev",
            "eth0",
        ]);
        guest.ip(&[
            "-6",
            "route",
            "add",
            "default",
            "via",
            "fe80::fcff:ffff:feff:ffff",
            "dev",
            "eth0",
        ]);

        let xs = Xenstore::start();
        vif.write_to(&xs);
        xs.write(&format!("{}/vifname", vif.backend()), "xen1.0");
        Seed21 {
            router,
            host,
            guest,
            xs,
            vif,
            dir: SysconfigDir::seed_2_1(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let dir = self.dir.env();
        hotplug(
            &self.host,
            &self.xs,
            &self.vif,
            args,
            &[("VIFKIT_SYSCONFIG_DIR", &dir)],
        )
    }

    fn key(&self, key: &str) -> Option<String> {
        self.xs.read(&format!("{}/{key}", self.vif.backend()))
    }

    /// Runs online expecting the failure `message`, and checks nothing was touched.
    fn assert_refused(&self, message: &str) {
        let before = self.host_state();
        let out = self.run(&["online", "type_if=vif"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(out.stdout.is_empty());
        assert_eq!(self.key("hotplug-error").as_deref(), Some(message));
        assert_eq!(self.key("hotplug-status").as_deref(), Some("error"));
        assert!(
            stderr(&out).contains(message),
            "stderr lacks the message: {}",
            stderr(&out)
        );
        assert!(self.host.link("vif1.0").is_some(), "vif1.0 was renamed");
        assert!(self.host.link("xen1.0").is_none(), "xen1.0 appeared");
        assert!(!is_up(&self.host, "vif1.0"), "vif1.0 was brought up");
        assert_eq!(self.host_state(), before, "the host changed");
        assert_eq!(routes(&self.host, &["dev", "vif1.0"]), Vec::<String>::new());
        assert!(proxies(&self.host).is_empty(), "{:?}", proxies(&self.host));
    }

    /// Everything a failed run must leave alone.
    fn host_state(&self) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>, String) {
        (
            routes(&self.host, &[]),
            routes(&self.host, &["-6"]),
            proxies(&self.host),
            self.host.addresses("vif1.0"),
            proc_sys(&self.host, "net/ipv4/conf/vif1.0/proxy_arp")
                + &proc_sys(&self.host, "net/ipv6/conf/vif1.0/proxy_ndp"),
        )
    }
}

#[test]
fn seed_2_1_as_written_both_directions_ipv4_and_ipv6() {
    let started = Instant::now();
    let s = Seed21::new("ri");
    let out = s.run(&["online", "type_if=vif"]);
    assert_ok(&out);
    assert!(
        !stderr(&out).contains("warning"),
        "every knob is on: {}",
        stderr(&out)
    );
    assert_eq!(s.key("hotplug-status").as_deref(), Some("connected"));
    assert_eq!(s.key("hotplug-error"), None);

    // Renamed, up, netback's MAC kept (no LLADDR), no address but the EUI-64 link-local.
    assert!(s.host.link("vif1.0").is_none());
    let link = s.host.link("xen1.0").expect("xen1.0");
    assert_eq!(link["address"], "fe:ff:ff:ff:ff:ff");
    assert!(is_up(&s.host, "xen1.0"));
    assert_eq!(
        s.host.addresses("xen1.0"),
        vec!["fe80::fcff:ffff:feff:ffff/64"]
    );

    // routes: the two xen1.0 lines, and nothing else changed.
    assert_eq!(
        routes(&s.host, &["dev", "xen1.0"]),
        vec!["192.0.2.241 scope link proto boot"]
    );
    assert_eq!(
        routes(&s.host, &["-6", "dev", "xen1.0"]),
        vec![
            "2001:db8:abba::1001 via fe80::216:3eff:fe10:1010 scope global proto boot",
            "fe80::/64 scope global proto kernel",
        ]
    );
    assert_eq!(
        routes(&s.host, &["default"]),
        vec!["default via 192.0.2.254 dev eth0 scope global proto boot"]
    );
    assert_eq!(
        routes(&s.host, &["-6", "default"]),
        vec!["default via fe80::201:1ff:fe01:254 dev eth0 scope global proto boot"]
    );

    // ifndp-proxy: ::1001 published on eth0, ::1 on xen1.0.
    assert_eq!(
        proxies(&s.host),
        vec!["2001:db8:abba::1 xen1.0", "2001:db8:abba::1001 eth0"]
    );
    assert_eq!(proc_sys(&s.host, "net/ipv4/conf/xen1.0/proxy_arp"), "1");
    assert_eq!(proc_sys(&s.host, "net/ipv6/conf/xen1.0/proxy_ndp"), "1");

    assert!(pings(&s.guest, "192.0.2.254"), "guest -> router IPv4");
    assert!(pings(&s.router, "192.0.2.241"), "router -> guest IPv4");
    assert!(
        pings(&s.guest, "2001:db8:ffff::254"),
        "guest -> router IPv6"
    );
    assert!(
        pings(&s.router, "2001:db8:abba::1001"),
        "router -> guest IPv6"
    );
    assert!(
        pings(&s.guest, "2001:db8:abba::1"),
        "guest -> host IPv6 (proxied on xen1.0)"
    );

    // online twice: still connected, nothing duplicated.
    let state = (
        routes(&s.host, &[]),
        routes(&s.host, &["-6"]),
        proxies(&s.host),
        s.host.addresses("xen1.0"),
    );
    s.xs.write(&format!("{}/hotplug-status", s.vif.backend()), "");
    assert_ok(&s.run(&["online", "type_if=vif"]));
    assert_eq!(s.key("hotplug-status").as_deref(), Some("connected"));
    assert_eq!(
        (
            routes(&s.host, &[]),
            routes(&s.host, &["-6"]),
            proxies(&s.host),
            s.host.addresses("xen1.0"),
        ),
        state
    );
    assert!(pings(&s.router, "2001:db8:abba::1001"));

    let guest_v4 = "192.0.2.241";
    let guest_v6 = "2001:db8:abba::1001";
    for _ in 0..2 {
        assert_ok(&s.run(&["offline", "type_if=vif"]));
        assert!(!is_up(&s.host, "xen1.0"));
        assert!(s.host.addresses("xen1.0").is_empty());
        assert_eq!(routes(&s.host, &["dev", "xen1.0"]), Vec::<String>::new());
        assert_eq!(
            routes(&s.host, &["-6", "dev", "xen1.0"]),
            Vec::<String>::new()
        );
        assert_eq!(proxies(&s.host), Vec::<String>::new());
        // No trace of the guest's addresses on the host side.
        let everything = [
            routes(&s.host, &["table", "all"]),
            routes(&s.host, &["-6", "table", "all"]),
            vec![
                s.host.ip(&["neigh", "show"]),
                s.host.ip(&["-6", "neigh", "show"]),
            ],
            s.host.addresses("eth0"),
        ]
        .concat();
        for line in &everything {
            assert!(
                !line.contains(guest_v4) && !line.contains(guest_v6),
                "{line}"
            );
        }
        // The uplink keeps what the host service gave it.
        assert_eq!(
            s.host.addresses("eth0")[..2],
            ["192.0.2.253/28", "2001:db8:abba::1/64"]
        );
    }
    assert!(!s.router.ping(guest_v4), "router still reaches the guest");
    assert!(!s.router.ping(guest_v6), "router still reaches the guest");
    eprintln!("seed 2.1: {:?}", started.elapsed());
}

#[test]
fn missing_ifcfg_is_refused_before_anything_changes() {
    let s = Seed21::new("rim");
    s.dir.remove("ifcfg-xen1.0");
    s.assert_refused(&format!(
        "{} does not exist: vif-route-ifup configures xen1.0 from it",
        s.dir.file("ifcfg-xen1.0")
    ));
}

#[test]
fn missing_vifname_is_refused_before_anything_changes() {
    let s = Seed21::new("rin");
    s.xs.rm(&format!("{}/vifname", s.vif.backend()));
    s.assert_refused(&format!(
        "vif-route-ifup needs a static interface name: set vifname= in the vif configuration \
         and describe it in {}",
        s.dir.file("ifcfg-<vifname>")
    ));
}

#[test]
fn dhcp_bootproto_is_refused_before_anything_changes() {
    let s = Seed21::new("rid");
    s.dir.write(
        "ifcfg-xen1.0",
        "NAME='XEN vm 1 virtual interface 0'\nBOOTPROTO='dhcp'\nSTARTMODE='hotplug'\n",
    );
    s.assert_refused(&format!(
        "{}: BOOTPROTO=dhcp is not supported on a routed vif (use static)",
        s.dir.file("ifcfg-xen1.0")
    ));
}

#[test]
fn startmode_off_is_refused_before_anything_changes() {
    let s = Seed21::new("rio");
    s.dir.write(
        "ifcfg-xen1.0",
        "NAME='XEN vm 1 virtual interface 0'\nBOOTPROTO='static'\nSTARTMODE='off'\n",
    );
    s.assert_refused(&format!(
        "{}: STARTMODE=off disables xen1.0",
        s.dir.file("ifcfg-xen1.0")
    ));
}

#[test]
fn malformed_routes_line_is_refused_with_file_and_line() {
    let s = Seed21::new("rir");
    let routes = std::fs::read_to_string(s.dir.file("routes")).unwrap();
    // Line 12: a gateway that is no address.
    s.dir.write(
        "routes",
        &format!("{routes}2001:db8:abba::1002 fe80::zz - xen1.0\n"),
    );
    s.assert_refused(&format!(
        "{}:12: invalid gateway \"fe80::zz\"",
        s.dir.file("routes")
    ));
}

#[test]
fn malformed_ifndp_proxy_line_is_refused_with_file_and_line() {
    let s = Seed21::new("rip");
    s.dir.write(
        "ifndp-proxy",
        "# <address>          <address interface> <proxy interface>\n2001:db8:abba::1     eth0\n",
    );
    s.assert_refused(&format!(
        "{}:2: no proxy interface for 2001:db8:abba::1: list at least one after eth0",
        s.dir.file("ifndp-proxy")
    ));
}

#[test]
fn offline_after_the_vif_vanished_still_unpublishes_the_guest() {
    let s = Seed21::new("riv");
    assert_ok(&s.run(&["online", "type_if=vif"]));
    assert!(proxies(&s.host).contains(&"2001:db8:abba::1001 eth0".to_owned()));
    // netback freed the device before libxl ran the script.
    s.host.ip(&["link", "del", "xen1.0"]);
    for _ in 0..2 {
        let out = s.run(&["offline", "type_if=vif"]);
        assert_ok(&out);
        assert_eq!(proxies(&s.host), Vec::<String>::new());
    }
    assert_eq!(s.key("hotplug-status").as_deref(), Some("connected"));
    assert_eq!(s.key("hotplug-error"), None);
}

#[test]
fn host_knobs_that_are_off_are_reported_and_left_alone() {
    let s = Seed21::new("riw");
    let knobs = [
        "net/ipv4/conf/all/forwarding",
        "net/ipv6/conf/all/forwarding",
        "net/ipv6/conf/all/proxy_ndp",
        "net/ipv4/conf/all/proxy_arp",
        "net/ipv4/conf/eth0/proxy_arp",
        "net/ipv6/conf/eth0/proxy_ndp",
    ];
    for knob in knobs {
        must(
            s.host
                .exec()
                .args(["sh", "-c", &format!("echo 0 > /proc/sys/{knob}")]),
        );
    }
    let out = s.run(&["online", "type_if=vif"]);
    assert_ok(&out);
    assert_eq!(s.key("hotplug-status").as_deref(), Some("connected"));
    let err = stderr(&out);
    // eth0 carries both default routes: each warning must still come once.
    let warnings: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("vif-route-ifup: warning: "))
        .collect();
    assert_eq!(
        warnings,
        vec![
            "IPv4 forwarding is off: routed guests get no IPv4 traffic \
             (set net/ipv4/conf/all/forwarding = 1)",
            "IPv6 forwarding is off: routed guests get no IPv6 traffic \
             (set net/ipv6/conf/all/forwarding = 1)",
            "proxy_ndp is off on eth0: the guest's NDP proxy entry there has no effect \
             (set net/ipv6/conf/eth0/proxy_ndp = 1)",
            "proxy_arp is off on uplink eth0: its neighbours will not find the guest \
             (set net/ipv4/conf/eth0/proxy_arp = 1)",
        ],
        "{err}"
    );
    for knob in knobs {
        assert_eq!(proc_sys(&s.host, knob), "0", "{knob} was changed");
    }
}

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
    host.ip(&["link", "set", "eth0", "up"]);
    host.ip(&["addr", "add", "192.0.2.253/28", "dev", "eth0"]);
    host.ip(&["addr", "add", "2001:db8:abba::1/64", "dev", "eth0", "nodad"]);
    host.ip(&[
        "route",
        "add",
        "default",
        "via",
        "192.0.2.254",
        "dev",
        "eth0",
    ]);
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
        vif.write_to(&xs);
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
        std::thread::scope(|scope| {
            let handles: Vec<_> = vifs
                .iter()
                .map(|vif| {
                    let (host, xs, extra) = (&host, &xs, &extra);
                    scope.spawn(move || hotplug(host, xs, vif, &[command, "type_if=vif"], extra))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
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
        vif.write_to(&xs);
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
