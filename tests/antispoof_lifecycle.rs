//! What antispoofing leaves in nf_tables across a port's life: no chain and no rule after
//! offline (the shared tables may stay, empty), also for 200 ports, a `B/ip` changed meanwhile or a vif name reused without an offline; flows
//! of a reused address purged on plug; qemu taps alike. A stale chain of the vif name goes
//! when the next guest of that name is unfiltered, and so does the chain a release before
//! the 256 tables left in its old table; a chain flushed or changed by hand is
//! drift for `vifkit check` and repaired by the next online, the rules read back from the
//! kernel as vifkit wrote them. Needs root.

mod common;

use std::process::Output;
use std::time::Duration;

use common::frames::{arrives, in_netns, udp_to_peer};
use common::*;
use serde_json::Value;
use vifkit::sys::nft::{self, PortFilter};
use vifkit::types::mac::MacAddr;
use vifkit::types::names::IfName;
use vifkit::types::prefix::Prefix;

/// `nft -j list ruleset` in `ns`: every table and every chain, as "family table [chain]",
/// and the number of rules.
fn ruleset(ns: &Netns) -> (Vec<String>, Vec<String>, usize) {
    let out = must(ns.exec().args(["nft", "-j", "list", "ruleset"]));
    let json: Value = serde_json::from_str(&out).unwrap();
    let mut tables = vec![];
    let mut chains = vec![];
    let mut rules = 0;
    let name = |o: &Value, key: &str| o[key].as_str().unwrap().to_owned();
    for object in json["nftables"].as_array().unwrap() {
        if let Some(t) = object.get("table") {
            tables.push(format!("{} {}", name(t, "family"), name(t, "name")));
        }
        if let Some(c) = object.get("chain") {
            chains.push(format!(
                "{} {} {}",
                name(c, "family"),
                name(c, "table"),
                name(c, "name")
            ));
        }
        rules += usize::from(object.get("rule").is_some());
    }
    (tables, chains, rules)
}

/// Asserts that no port has a chain or a rule left.
fn assert_nothing_left(ns: &Netns) {
    let (tables, chains, rules) = ruleset(ns);
    assert_eq!((&chains, rules), (&vec![], 0), "left in {tables:?}");
}

/// The rules of one chain as nft prints them.
fn chain_text(ns: &Netns, family: &str, table: &str, chain: &str) -> String {
    must(
        ns.exec()
            .args(["nft", "list", "chain", family, table, chain]),
    )
}

struct Host {
    ns: Netns,
    xs: Xenstore,
}

fn host(tag: &str) -> Host {
    let ns = Netns::new(tag);
    ns.bridge("xenbr0", 1500);
    Host {
        ns,
        xs: Xenstore::start(),
    }
}

impl Host {
    /// A netback vif whose far end stays in this namespace (`g<domid>.<devid>`).
    fn vif(&self, domid: u32, ip: &str) -> Vif {
        let vif = Vif::new(domid, 0);
        self.ns.ip(&[
            "link",
            "add",
            &vif.kernel_name(),
            "type",
            "veth",
            "peer",
            "name",
            &format!("g{domid}.0"),
        ]);
        self.xs.write_vif(&vif);
        self.set_ip(&vif, ip);
        vif
    }

    fn set_ip(&self, vif: &Vif, ip: &str) {
        self.xs.write(&format!("{}/ip", vif.backend()), ip);
    }

    fn run(&self, vif: &Vif, command: &str) {
        assert_ok(&hotplug(
            &self.ns,
            &self.xs,
            vif,
            &[command, "type_if=vif"],
            &[],
        ));
    }
}

#[test]
fn offline_removes_the_port_even_after_b_ip_changed() {
    let host = host("alc");
    let vif = host.vif(3, "192.0.2.10 2001:db8::10");
    host.run(&vif, "online");
    let (tables, chains, _) = ruleset(&host.ns);
    assert_eq!(tables, ["netdev vifkit-antispoof-085"]);
    assert_eq!(chains, ["netdev vifkit-antispoof-085 vif3.0"]);
    let rules = chain_text(&host.ns, "netdev", "vifkit-antispoof-085", "vif3.0");
    assert!(rules.contains("!= 0xc000020a drop"), "{rules}");
    // An admin's `nft list ruleset > file` must load back.
    must(
        host.ns
            .exec()
            .args(["sh", "-c", "nft list ruleset | nft -c -f -"]),
    );

    host.set_ip(&vif, "198.51.100.7");
    host.run(&vif, "offline");
    assert_nothing_left(&host.ns);
    host.run(&vif, "offline");
    assert_nothing_left(&host.ns);
}

#[test]
fn a_reused_vif_name_starts_clean() {
    let host = host("alr");
    let vif = host.vif(5, "192.0.2.50");
    // A routed guest had vif5.0 with another address, and its domain died without an offline.
    let mut routed = Vif::new(5, 0);
    routed.script = "/etc/xen/scripts/vif-route";
    host.ns
        .ip(&["link", "add", "eth0", "type", "veth", "peer", "name", "up0"]);
    host.ns.ip(&["link", "set", "eth0", "up"]);
    host.ns
        .ip(&["addr", "add", "198.51.100.1/24", "dev", "eth0"]);
    let env = [("netdev", "eth0")];
    assert_ok(&hotplug(
        &host.ns,
        &host.xs,
        &routed,
        &["online", "type_if=vif"],
        &env,
    ));
    assert_eq!(ruleset(&host.ns).0, ["netdev vifkit-antispoof-083"]);
    host.ns.ip(&["link", "del", "vif5.0"]);

    host.ns.ip(&[
        "link", "add", "vif5.0", "type", "veth", "peer", "name", "g5.0",
    ]);
    host.set_ip(&vif, "192.0.2.51");
    host.run(&vif, "online");
    let (tables, chains, _) = ruleset(&host.ns);
    assert_eq!(tables, ["netdev vifkit-antispoof-083"]);
    assert_eq!(chains, ["netdev vifkit-antispoof-083 vif5.0"]);
    let rules = chain_text(&host.ns, "netdev", "vifkit-antispoof-083", "vif5.0");
    assert!(
        rules.contains("!= 0xc0000233 drop") && !rules.contains("0xc0000232"),
        "{rules}"
    );
}

#[test]
fn two_hundred_ports_plugged_and_unplugged_leave_nothing() {
    let host = host("al200");
    let vifs: Vec<Vif> = (1..=200)
        .map(|d| host.vif(d, &format!("10.{}.{}.1 2001:db8::{d:x}", d / 256, d % 256)))
        .collect();
    let (host, vifs) = (&host, &vifs);
    for command in ["online", "offline"] {
        std::thread::scope(|scope| {
            for worker in vifs.chunks(25) {
                scope.spawn(move || worker.iter().for_each(|vif| host.run(vif, command)));
            }
        });
        match command {
            "online" => {
                let (tables, chains, _) = ruleset(&host.ns);
                assert_eq!((tables.len(), chains.len()), (110, 200));
            }
            _ => assert_nothing_left(&host.ns),
        }
    }
}

#[test]
fn plug_purges_the_flows_of_the_guest_addresses() {
    let host = host("alct");
    let vif = host.vif(7, "192.0.2.70 2001:db8::70");
    let conntrack = |args: &[&str]| must(host.ns.exec().arg("conntrack").args(args));
    for (src, dst) in [
        ("192.0.2.70", "198.51.100.9"),
        ("198.51.100.9", "192.0.2.70"),
        ("192.0.2.71", "198.51.100.9"),
        ("2001:db8::70", "2001:db8::99"),
    ] {
        conntrack(&[
            "-I",
            "-s",
            src,
            "-d",
            dst,
            "-p",
            "udp",
            "--sport",
            "1000",
            "--dport",
            "53",
            "--timeout",
            "100",
        ]);
    }
    // Under udev the purge runs in the plug itself (tests/conntrack_hold.rs has the
    // background purge libxl's and qemu's plugs use), so its log is the plug's.
    let out = hotplug(
        &host.ns,
        &host.xs,
        &vif,
        &["online", "type_if=vif"],
        &[("VIFKIT_LOG", "debug"), ("UDEV_CALL", "1")],
    );
    assert_ok(&out);
    // This kernel (≥ 5.8) takes the IPv4 filter: the purge never falls back to listing
    // the whole table, which is what keeps it cheap on a busy host (BENCHMARKS.md, "Scale").
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("listing all"), "{log}");
    assert_eq!(log.matches("deleted conntrack entry").count(), 3, "{log}");
    let left = must(host.ns.exec().args(["conntrack", "-L", "-f", "ipv4"]))
        + &must(host.ns.exec().args(["conntrack", "-L", "-f", "ipv6"]));
    assert_eq!(left.lines().count(), 1, "{left}");
    assert!(left.contains("src=192.0.2.71"), "{left}");
}

#[test]
fn qemu_taps_are_filtered_from_the_config_file() {
    let host = host("alq");
    host.ns.ip(&["tuntap", "add", "tap0", "mode", "tap"]);
    let dir = scratch("alq");
    let config = dir.join("vifkit.conf");
    std::fs::write(
        &config,
        "[port tap*]\nbridge = xenbr0\nip = 192.0.2.30\nmac = 52:54:00:12:34:56\n",
    )
    .unwrap();
    let qemu = |binary: &str| {
        run(host
            .ns
            .exec()
            .arg("env")
            .arg(format!("VIFKIT_CONFIG={}", config.display()))
            .arg(binary)
            .arg("tap0"))
    };
    let up = qemu(binary("qemu-ifup").to_str().unwrap());
    assert_ok(&up);
    assert!(stderr(&up).contains("filter tap0 (netdev vifkit-antispoof-214): mac 52:54:00:12:34:56, ipv4 192.0.2.30, ipv6 fe80::5054:ff:fe12:3456"), "{}", stderr(&up));
    assert_eq!(ruleset(&host.ns).0, ["netdev vifkit-antispoof-214"]);
    assert_ok(&qemu(binary("qemu-ifdown").to_str().unwrap()));
    assert_nothing_left(&host.ns);
}

/// `nft list chains netdev` in `ns`: the names of every netdev chain.
fn netdev_chains(ns: &Netns) -> Vec<String> {
    ruleset(ns)
        .1
        .iter()
        .filter_map(|chain| chain.strip_prefix("netdev "))
        .filter_map(|chain| chain.split(' ').nth(1))
        .map(str::to_owned)
        .collect()
}

fn table_of(port: &str) -> String {
    nft::rules::netdev_table(&IfName::new(port).unwrap())
}

/// The chain the release before the 256 tables (32 of them) leaves for `port`, here with a
/// rule dropping everything; returns its table.
fn legacy_chain(ns: &Netns, port: &str) -> String {
    let table = nft::rules::legacy_netdev_table(&IfName::new(port).unwrap());
    let hook =
        format!("{{ type filter hook ingress device \"{port}\" priority -500; policy accept; }}");
    must(ns.exec().args(["nft", "add", "table", "netdev", &table]));
    must(
        ns.exec()
            .args(["nft", "add", "chain", "netdev", &table, port, &hook]),
    );
    must(
        ns.exec()
            .args(["nft", "add", "rule", "netdev", &table, port, "drop"]),
    );
    table
}

#[test]
fn a_previous_releases_chain_goes_at_the_next_online_or_offline() {
    let host = host("allg");
    let vif = host.vif(3, "192.0.2.10 2001:db8::10");
    assert_eq!(legacy_chain(&host.ns, "vif3.0"), "vifkit-antispoof-21");
    let status = vifkit(&host.ns, &host.xs, &["check", "vif3.0"]);
    assert!(
        stdout(&status).contains("are not the ones online installs"),
        "{}",
        stdout(&status)
    );
    // Filtered: online installs the port's own chain and deletes the old one with it.
    host.run(&vif, "online");
    let mine = format!("netdev {} vif3.0", table_of("vif3.0"));
    assert_eq!(ruleset(&host.ns).1, [mine]);
    // Offline deletes both, whichever is there.
    legacy_chain(&host.ns, "vif3.0");
    host.run(&vif, "offline");
    assert_nothing_left(&host.ns);
    legacy_chain(&host.ns, "vif3.0");
    host.run(&vif, "offline");
    assert_nothing_left(&host.ns);
    // Unfiltered (no B/ip): online deletes the old chain, which would drop the guest's
    // traffic.
    legacy_chain(&host.ns, "vif3.0");
    host.xs.rm(&format!("{}/ip", vif.backend()));
    host.run(&vif, "online");
    assert_nothing_left(&host.ns);
}

/// `vifkit ARGS` in `ns`, on the test xenstore.
fn vifkit(ns: &Netns, xs: &Xenstore, args: &[&str]) -> Output {
    let mut cmd = ns.exec();
    cmd.arg("env")
        .arg(format!("XENSTORED_PATH={}", xs.socket.display()));
    run(cmd.arg(binary("vifkit")).args(args))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn online(host: &Netns, xs: &Xenstore, vif: &Vif) -> Output {
    let out = hotplug(host, xs, vif, &["online", "type_if=vif"], &[]);
    assert_ok(&out);
    out
}

#[test]
fn an_unfiltered_guest_does_not_inherit_a_stale_chain_of_its_vif_name() {
    let (host, peer, xs) = bridge_with_peer("alst");
    let _ = &peer;
    // A guest plugged as web1 with B/ip, filtered; its domain destroyed without an offline.
    let first_guest = Netns::new("alst1");
    let mut first = Vif::new(3, 0);
    first.vifname = Some("web1");
    host.netback_vif(&first, &first_guest);
    xs.write_vif(&first);
    xs.write(&format!("{}/ip", first.backend()), "192.0.2.10");
    online(&host, &xs, &first);
    assert_eq!(netdev_chains(&host), ["web1"]);
    host.ip(&["link", "del", "web1"]);
    drop(first_guest);
    // The control: the kernel kept the chain, and hooks it on the next device named web1,
    // which passes no traffic of a guest with another address.
    assert_eq!(
        netdev_chains(&host),
        ["web1"],
        "the chain went with its device"
    );

    let guest = Netns::new("alst2");
    let mut second = Vif::new(4, 0);
    second.vifname = Some("web1");
    host.netback_vif(&second, &guest);
    xs.write_vif(&second);
    guest.ip(&["addr", "add", "192.0.2.20/24", "dev", "eth0"]);
    host.ip(&["link", "set", "vif4.0", "name", "web1"]);
    host.ip(&["link", "set", "web1", "master", "xenbr0", "up"]);
    assert!(
        !guest.ping("192.0.2.242"),
        "the stale chain let web1's guest through"
    );
    host.ip(&["link", "set", "web1", "down", "nomaster"]);
    host.ip(&["link", "set", "web1", "name", "vif4.0"]);
    assert_eq!(netdev_chains(&host), ["web1"]);

    // The next guest named web1, without B/ip: unfiltered, and the old chain is gone.
    let out = online(&host, &xs, &second);
    assert!(
        stderr(&out).contains("delete the antispoofing rules of web1"),
        "{}",
        stderr(&out)
    );
    assert_eq!(netdev_chains(&host), Vec::<String>::new());
    assert!(guest.ping("192.0.2.242"), "web1's guest reaches its peer");
    // Nothing more to remove on a second online.
    assert!(dry_run_steps(&host, &xs, &second, &["online", "type_if=vif"], &[]).is_empty());
}

#[test]
fn check_sees_a_flushed_or_altered_chain_and_online_repairs_it() {
    let (host, peer, xs) = bridge_with_peer("alck");
    let guest = Netns::new("alckg");
    let vif = Vif::new(3, 0);
    host.netback_vif(&vif, &guest);
    xs.write_vif(&vif);
    xs.write(&format!("{}/ip", vif.backend()), "192.0.2.241");
    let table = table_of("vif3.0");
    let wait = Duration::from_millis(400);
    let passes = |src: &str| arrives((&guest, "eth0"), (&peer, "eth0"), &udp_to_peer(src), wait);
    let in_place = || {
        let out = vifkit(&host, &xs, &["check", "vif3.0"]);
        assert_eq!(
            (out.status.code(), stdout(&out).as_str()),
            (Some(0), "vif3.0: in place, as online leaves it\n"),
            "{}",
            stderr(&out)
        );
    };
    let drift = || {
        let out = vifkit(&host, &xs, &["check", "vif3.0"]);
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        stdout(&out)
    };
    let nft = |command: &str| must(host.exec().args(["sh", "-c", &format!("nft {command}")]));
    let not_installed = format!(
        "drift: the antispoofing rules of vif3.0 (netdev {table}) are not the ones online installs: "
    );

    online(&host, &xs, &vif);
    in_place();
    assert!(passes("192.0.2.241"), "the guest's own frame");
    assert!(!passes("192.0.2.99"), "a forged source");
    let rules = ruleset(&host).2;

    // Flushed: the comment stays, the rules are gone, and so is the filtering.
    nft(&format!("flush chain netdev {table} vif3.0"));
    let text = drift();
    assert!(
        text.contains(&format!("{not_installed}the chain is empty (flushed)")),
        "{text}"
    );
    assert!(passes("192.0.2.99"), "the flush is real");
    assert_eq!(
        dry_run_steps(&host, &xs, &vif, &["online", "type_if=vif"], &[]),
        [
            format!(
                "filter vif3.0 (netdev {table}): mac 00:16:3e:10:10:10, ipv4 192.0.2.241, ipv6 fe80::216:3eff:fe10:1010"
            ),
            "purge conntrack entries of 192.0.2.241 (in the background, vif3.0 held meanwhile)"
                .to_owned(),
        ]
    );
    online(&host, &xs, &vif);
    in_place();
    assert!(!passes("192.0.2.99"), "repaired");
    assert_eq!(ruleset(&host).2, rules);

    // An accept inserted ahead of the rules.
    nft(&format!("insert rule netdev {table} vif3.0 accept"));
    let text = drift();
    assert!(
        text.contains(&format!(
            "{not_installed}the chain has {} rules where online installs {rules} (changed by hand)",
            rules + 1
        )),
        "{text}"
    );
    assert!(passes("192.0.2.99"));
    online(&host, &xs, &vif);
    in_place();
    assert!(!passes("192.0.2.99"));

    // The rule that drops other IPv4 sources (192.0.2.241 is 0xc00002f1): its handle, and
    // its place in the chain.
    let ipv4_source_rule = || {
        let listed = nft(&format!("-a list chain netdev {table} vif3.0"));
        let rules: Vec<&str> = listed.lines().filter(|l| l.contains("# handle")).collect();
        let (at, line) = rules
            .iter()
            .enumerate()
            .find(|(_, line)| line.contains("@nh,96,32 != 0xc00002f1 drop"))
            .unwrap_or_else(|| panic!("no IPv4 source rule in {listed}"));
        let handle = line.rsplit("# handle ").next().unwrap().trim().to_owned();
        // The chain's own line carries a handle too.
        (at, handle)
    };

    // That rule replaced by an accept: as many rules, one of them not vifkit's.
    let (at, handle) = ipv4_source_rule();
    nft(&format!(
        "replace rule netdev {table} vif3.0 handle {handle} accept"
    ));
    let text = drift();
    assert!(
        text.contains(&format!(
            "{not_installed}rule {at} differs (changed by hand)"
        )),
        "{text}"
    );
    assert!(passes("192.0.2.99"));
    online(&host, &xs, &vif);
    in_place();
    assert!(!passes("192.0.2.99"));

    // That rule deleted by its handle.
    let (_, handle) = ipv4_source_rule();
    nft(&format!(
        "delete rule netdev {table} vif3.0 handle {handle}"
    ));
    let text = drift();
    assert!(
        text.contains(&format!(
            "{not_installed}the chain has {} rules where online installs {rules} (changed by hand)",
            rules - 1
        )),
        "{text}"
    );
    assert!(passes("192.0.2.99"), "that rule is gone");
    online(&host, &xs, &vif);
    in_place();
    assert!(!passes("192.0.2.99"));
}

#[test]
fn a_kernels_rules_read_back_as_vifkit_wrote_them() {
    let ns = Netns::new("alrb");
    ns.ip(&[
        "link", "add", "vif3.0", "type", "veth", "peer", "name", "vif3.0p",
    ]);
    let port = IfName::new("vif3.0").unwrap();
    let mut filter = PortFilter::new(
        port.clone(),
        Some(MacAddr::parse("00:16:3e:10:10:10").unwrap()),
        &[
            Prefix::new("192.0.2.10".parse().unwrap(), 32),
            Prefix::new("2001:db8::".parse().unwrap(), 64),
        ],
    );
    filter.tagged_vlans = vec![20];
    let table = table_of("vif3.0");
    in_netns(&ns, || {
        assert_eq!(nft::read_port_filter(&port).unwrap(), None);
        nft::set_port_filter(&filter).unwrap();
        let read = nft::read_port_filter(&port).unwrap().unwrap();
        // Rule by rule, so a failure names the first one the decoder reads otherwise.
        let wanted = filter.as_installed();
        assert_eq!(read.fingerprint, wanted.fingerprint);
        for (i, (read, wanted)) in read.rules.iter().zip(&wanted.rules).enumerate() {
            assert_eq!(read, wanted, "rule {}", i + 1);
        }
        assert_eq!(read.rules.len(), wanted.rules.len());
        assert!(filter.is_installed_as(&read));
    });
    must(ns.exec().args([
        "nft",
        &format!("insert rule netdev {table} vif3.0 counter accept"),
    ]));
    in_netns(&ns, || {
        let read = nft::read_port_filter(&port).unwrap().unwrap();
        assert_eq!(read.rules[0], None, "a counter is not vifkit's");
        assert!(!filter.is_installed_as(&read));
    });
    must(
        ns.exec()
            .args(["nft", &format!("flush chain netdev {table} vif3.0")]),
    );
    in_netns(&ns, || {
        let read = nft::read_port_filter(&port).unwrap().unwrap();
        assert_eq!(read.fingerprint, filter.fingerprint(), "the comment stays");
        assert!(read.rules.is_empty());
        nft::remove_port_filter(&port).unwrap();
        assert_eq!(nft::read_port_filter(&port).unwrap(), None);
    });
}
