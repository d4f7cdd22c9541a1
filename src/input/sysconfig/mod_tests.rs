use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A fresh directory per test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vifkit-sysconfig-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: impl AsRef<[u8]>) {
        std::fs::write(self.0.join(name), text).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn xen() -> IfName {
    IfName::new("xen1.0").unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn seed_routed_host_directory() {
    let dir = TempDir::new();
    dir.write(
        "ifcfg-eth0",
        "BOOTPROTO='static'\nSTARTMODE='onboot'\nIPADDR='192.0.2.253/28'\nIPADDR_1='2001:db8:abba::1/64'\n",
    );
    dir.write(
        "ifcfg-xen1.0",
        "NAME='XEN vm 1 virtual interface 0'\nBOOTPROTO='static'\nSTARTMODE='hotplug'\n",
    );
    dir.write(
        "routes",
        "192.0.2.241 - - xen1.0\ndefault 192.0.2.254 - eth0\n\
         2001:db8:abba::1001 fe80::216:3eff:fe10:1010 - xen1.0\ndefault fe80::201:1ff:fe01:254 - eth0\n",
    );
    dir.write(
        "ifndp-proxy",
        "# <address> <address interface> <proxy interface>\n2001:db8:abba::1 eth0 xen1.0\n2001:db8:abba::1001 xen1.0 eth0\n",
    );
    let config = load(&dir.0, &xen()).unwrap();
    let ifcfg = config.ifcfg.unwrap();
    assert_eq!(ifcfg.startmode, StartMode::Hotplug);
    assert!(ifcfg.addresses.is_empty());
    let routes: Vec<(String, Option<IpAddr>)> = config
        .routes
        .iter()
        .map(|r| (r.destination.to_string(), r.gateway))
        .collect();
    assert_eq!(
        routes,
        [
            ("192.0.2.241/32".to_string(), None),
            (
                "2001:db8:abba::1001/128".to_string(),
                Some(ip("fe80::216:3eff:fe10:1010"))
            ),
        ]
    );
    let proxies: Vec<(usize, IpAddr)> =
        config.proxies.iter().map(|p| (p.line, p.address)).collect();
    assert_eq!(
        proxies,
        [(2, ip("2001:db8:abba::1")), (3, ip("2001:db8:abba::1001"))]
    );
}

#[test]
fn missing_directory_and_files_are_absent() {
    let dir = TempDir::new();
    assert_eq!(load(&dir.0, &xen()).unwrap(), Sysconfig::default());
    assert_eq!(
        load(&dir.0.join("nowhere"), &xen()).unwrap(),
        Sysconfig::default()
    );
}

#[test]
fn ifroute_and_every_ifndp_proxy_file_are_read() {
    let dir = TempDir::new();
    dir.write("ifroute-xen1.0", "192.0.2.241\n192.0.2.242 - - eth0\n");
    dir.write("ifroute-xen2.0", "192.0.2.250\n");
    dir.write("ifndp-proxy-xen1.0", "2001:db8::1001 - eth0\n");
    dir.write("ifndp-proxy-eth0", "2001:db8::1 - xen1.0 xen2.0\n");
    dir.write("ifndp-proxy", "192.0.2.241 xen1.0 eth0\n");
    let config = load(&dir.0, &xen()).unwrap();
    assert_eq!(config.routes.len(), 1);
    assert_eq!(config.routes[0].interface, Some(xen()));
    let proxies: Vec<(IpAddr, &str)> = config
        .proxies
        .iter()
        .map(|p| (p.address, p.address_interface.as_str()))
        .collect();
    assert_eq!(
        proxies,
        [
            (ip("192.0.2.241"), "xen1.0"),
            (ip("2001:db8::1"), "eth0"),
            (ip("2001:db8::1001"), "xen1.0"),
        ]
    );
}

#[test]
fn backup_files_are_ignored() {
    let dir = TempDir::new();
    for suffix in IGNORED_SUFFIXES {
        dir.write(&format!("ifndp-proxy-xen1.0{suffix}"), "not a proxy line\n");
    }
    dir.write("ifndp-proxy-a234567890123456", "2001:db8::1 - eth0\n");
    dir.write("ifndp-proxy-", "2001:db8::1 - eth0\n");
    assert!(load(&dir.0, &xen()).unwrap().proxies.is_empty());

    let old = IfName::new("xen1.old").unwrap();
    dir.write("ifcfg-xen1.old", "STARTMODE=bogus\n");
    dir.write("ifroute-xen1.old", "bogus\n");
    assert_eq!(load(&dir.0, &old).unwrap().ifcfg, None);
}

#[test]
fn ignored_suffixes() {
    for name in [
        "ifcfg-eth0~",
        "ifcfg-eth0.old",
        "ifcfg-eth0.bak",
        "ifcfg-eth0.orig",
        "ifcfg-eth0.scpmbackup",
        "ifcfg-eth0.rpmnew",
        "ifcfg-eth0.rpmsave",
        "ifcfg-eth0.rpmorig",
    ] {
        assert!(is_ignored_name(name), "{name}");
    }
    for name in ["ifcfg-eth0", "ifcfg-xen1.0", "ifcfg-eth0.bak1", "routes"] {
        assert!(!is_ignored_name(name), "{name}");
    }
}

#[test]
fn parse_errors_propagate_with_the_file_name() {
    let dir = TempDir::new();
    dir.write("routes", "10.0.0.0/8 192.0.2.300 - eth0\n");
    let err = load(&dir.0, &xen()).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}:1: invalid gateway \"192.0.2.300\"",
            dir.0.join("routes").display()
        )
    );
}

#[test]
fn non_utf8_text_is_not_fatal() {
    let dir = TempDir::new();
    dir.write(
        "ifcfg-xen1.0",
        b"NAME='Netzwerkkarte f\xfcr xen1'\nSTARTMODE=hotplug\n",
    );
    let ifcfg = load(&dir.0, &xen()).unwrap().ifcfg.unwrap();
    assert_eq!(ifcfg.startmode, StartMode::Hotplug);
    assert_eq!(ifcfg.name.as_deref(), Some("Netzwerkkarte f\u{fffd}r xen1"));
}

#[test]
fn read_errors_other_than_not_found_name_the_file() {
    let dir = TempDir::new();
    // A directory where a file is expected reads as EISDIR, even for root.
    std::fs::create_dir(dir.0.join("ifcfg-xen1.0")).unwrap();
    let err = load(&dir.0, &xen()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("read {}", dir.0.join("ifcfg-xen1.0").display())
    );
    assert_eq!(err.root_cause().to_string(), "Is a directory (os error 21)");
}

#[test]
fn dir_from_env_defaults() {
    // Only the fallback is checked: the environment is shared by parallel tests.
    if std::env::var_os("VIFKIT_SYSCONFIG_DIR").is_none() {
        assert_eq!(dir_from_env(), PathBuf::from(DEFAULT_DIR));
    }
}

#[test]
fn devices_the_route_lines_name_without_an_ifcfg_file_are_kept_with_their_line() {
    let dir = TempDir::new();
    dir.write("ifcfg-xen2.0", "BOOTPROTO='static'\n");
    dir.write(
        "routes",
        "192.0.2.241 - - xen1.0\n192.0.2.242 - - xen1.O\n192.0.2.243 - - xen2.0\n\
         192.0.2.244 - - xen1.O\n",
    );
    dir.write(
        "ifroute-xen1.0",
        "198.51.100.0/24 - - - nexthop via 192.0.2.1 dev eth9 nexthop via 192.0.2.2\n",
    );
    let config = load(&dir.0, &xen()).unwrap();
    let named: Vec<(String, usize, &str, String)> = config
        .unconfigured
        .iter()
        .map(|n| {
            let file = n.path.file_name().unwrap().to_string_lossy().into_owned();
            (file, n.line, n.device.as_str(), n.destination.to_string())
        })
        .collect();
    assert_eq!(
        named,
        [
            ("routes".into(), 2, "xen1.O", "192.0.2.242/32".into()),
            ("routes".into(), 4, "xen1.O", "192.0.2.244/32".into()),
            ("ifroute-xen1.0".into(), 1, "eth9", "198.51.100.0/24".into()),
        ]
    );
}
