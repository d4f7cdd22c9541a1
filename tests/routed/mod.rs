//! Fixtures shared by the routed-mode tests: the seed's sysconfig files, sysctl helpers,
//! and the seed 2.1 topology (router, host with uplink eth0, guest behind vif1.0).

#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;
use std::process::Output;

use crate::common::*;
use serde_json::Value;

pub const SEED_2_1_FILES: [&str; 4] = ["ifcfg-eth0", "ifcfg-xen1.0", "routes", "ifndp-proxy"];

/// The host's /etc/sysctl.conf from seed 2.1, verbatim.
pub const SEED_SYSCTL_CONF: &str = "\
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
pub const SEED_SYSCONFIG_SYSCTL: &str = "\
net.ipv4.ip_forward = 1
net.ipv6.conf.all.forwarding = 1
";

/// A private copy of sysconfig files, removed on drop.
pub struct SysconfigDir {
    pub path: Scratch,
}

impl SysconfigDir {
    pub fn empty() -> SysconfigDir {
        SysconfigDir {
            path: scratch("sysconfig"),
        }
    }

    /// The host's `/etc/sysconfig/network` files of seed 2.1, as the seed prints them.
    pub fn seed_2_1() -> SysconfigDir {
        let dir = SysconfigDir::empty();
        let fixtures =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysconfig/seed-2.1");
        for name in SEED_2_1_FILES {
            std::fs::copy(fixtures.join(name), dir.path.join(name))
                .unwrap_or_else(|e| panic!("copy fixture {name}: {e}"));
        }
        dir
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path.join(name), text).unwrap();
    }

    pub fn remove(&self, name: &str) {
        std::fs::remove_file(self.path.join(name)).unwrap();
    }

    pub fn file(&self, name: &str) -> String {
        self.path.join(name).display().to_string()
    }

    pub fn env(&self) -> String {
        self.path.display().to_string()
    }
}

pub fn sysctl(ns: &Netns, key: &str, value: &str) {
    must(ns.exec().args(["sysctl", "-qw", &format!("{key}={value}")]));
}

/// `key = value` lines of a sysctl.conf, applied in `ns`.
pub fn apply_sysctl_conf(ns: &Netns, text: &str) {
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').expect("key = value");
        sysctl(ns, key.trim(), value.trim());
    }
}

/// A value under /proc/sys in `ns`, by path: dotted keys cannot name `xen1.0`.
pub fn proc_sys(ns: &Netns, path: &str) -> String {
    must(ns.exec().args(["cat", &format!("/proc/sys/{path}")]))
        .trim()
        .to_owned()
}

pub fn no_dad(ns: &Netns) {
    sysctl(ns, "net.ipv6.conf.all.accept_dad", "0");
    sysctl(ns, "net.ipv6.conf.default.accept_dad", "0");
}

/// `ip -j -d route show` entries as `[type] dst [via gw] [dev d] [scope s] proto p`, the type
/// only when it is not unicast. Leading `-4`/`-6` in `args` select the family.
pub fn routes(ns: &Netns, args: &[&str]) -> Vec<String> {
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
pub fn proxies(ns: &Netns) -> Vec<String> {
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

pub fn is_up(ns: &Netns, dev: &str) -> bool {
    ns.link(dev)
        .unwrap_or_else(|| panic!("{dev} missing"))
        .get("flags")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|f| f == "UP"))
}

pub fn assert_ok(out: &Output) {
    crate::common::assert_ok(out);
    assert!(
        out.stdout.is_empty(),
        "stdout must stay clean: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A fresh path may need a moment for neighbour discovery: a few tries, bounded.
pub fn pings(from: &Netns, to: &str) -> bool {
    (0..3).any(|_| from.ping(to))
}

/// The modified EUI-64 link-local address of a MAC, as the kernel derives it.
pub fn link_local(mac: &str) -> String {
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

/// A vif as libxl describes it for `script=vif-route-ifup,vifname=<vifname>`.
pub fn routed_vif(domid: u32, mac: &'static str) -> Vif {
    let mut vif = Vif::new(domid, 0);
    vif.script = "/etc/xen/scripts/vif-route-ifup";
    vif.bridge = None;
    vif.mac = mac;
    vif
}

/// Seed 2.1's provider side: the router on the host's uplink eth0 with 192.0.2.254 and,
/// from its MAC, the link-local fe80::201:1ff:fe01:254 the seed routes to. A link-local
/// cannot be pinged from a guest, so the router also has 2001:db8:ffff::254, off the shared
/// /64, reached through the host as on a provider's network. The host's eth0 as its
/// ifcfg-eth0 and the eth0 lines of its routes say.
pub fn seed_2_1_uplink(host: &Netns, router: &Netns) {
    host.veth("eth0", "up0", router);
    router.ip(&["link", "set", "up0", "down"]);
    router.ip(&["link", "set", "up0", "address", "00:01:01:01:02:54", "up"]);
    router.ip(&["addr", "add", "192.0.2.254/28", "dev", "up0"]);
    router.ip(&["addr", "add", "2001:db8:ffff::254/128", "dev", "lo"]);
    router.ip(&["-6", "route", "add", "2001:db8:abba::/64", "dev", "up0"]);
    seed_2_1_host_eth0(host);
}

/// The host's eth0 as its ifcfg-eth0 and the eth0 lines of its routes say.
pub fn seed_2_1_host_eth0(host: &Netns) {
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
}

/// Seed 2.1: a router on the uplink, the host, and guest xen1 behind `vif1.0`.
pub struct Seed21 {
    pub router: Netns,
    pub host: Netns,
    pub guest: Netns,
    pub xs: Xenstore,
    pub vif: Vif,
    pub dir: SysconfigDir,
}

impl Seed21 {
    /// Router 192.0.2.254/28 with link-local fe80::201:1ff:fe01:254 (from its MAC) on the
    /// shared network, plus 2001:db8:ffff::254 on its lo: a link-local alone cannot be pinged
    /// from the guest, so its global address is off the shared /64 and reached through the
    /// host, as on a provider's network. The host's eth0 is configured as its ifcfg-eth0 and
    /// routes say (the host network service's job), its sysctls as the seed's sysctl.conf;
    /// the guest as the seed's guest ifcfg-eth0 and routes.
    pub fn new(tag: &str) -> Seed21 {
        let router = Netns::new(&format!("{tag}r"));
        let host = Netns::new(&format!("{tag}h"));
        let guest = Netns::new(&format!("{tag}g"));
        for ns in [&router, &host, &guest] {
            no_dad(ns);
        }
        // Boot: sysctl.conf is applied before xen starts any domain.
        apply_sysctl_conf(&host, SEED_SYSCONFIG_SYSCTL);
        apply_sysctl_conf(&host, SEED_SYSCTL_CONF);

        seed_2_1_uplink(&host, &router);

        // xl create: netback's vif1.0, whose far end is the guest's eth0.
        let vif = routed_vif(1, "00:16:3e:10:10:10");
        host.netback_vif(&vif, &guest);
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
        xs.write_vif(&vif);
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

    pub fn run(&self, args: &[&str]) -> Output {
        let dir = self.dir.env();
        hotplug(
            &self.host,
            &self.xs,
            &self.vif,
            args,
            &[("VIFKIT_SYSCONFIG_DIR", &dir)],
        )
    }

    /// The steps a dry run of `args` would take (see [`dry_run_steps`]).
    pub fn dry_run(&self, args: &[&str]) -> Vec<String> {
        let dir = self.dir.env();
        let env = [("VIFKIT_SYSCONFIG_DIR", dir.as_str())];
        dry_run_steps(&self.host, &self.xs, &self.vif, args, &env)
    }

    pub fn key(&self, key: &str) -> Option<String> {
        self.xs.read(&format!("{}/{key}", self.vif.backend()))
    }

    /// Runs online expecting the failure `message`, and checks nothing was touched.
    pub fn assert_refused(&self, message: &str) {
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
    pub fn host_state(&self) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>, String) {
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
