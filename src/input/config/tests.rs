use super::*;
use crate::types::prefix::Prefix;

fn parse(text: &str) -> Result<Config> {
    Config::parse(Path::new("/etc/vifkit/vifkit.conf"), text)
}

fn error(text: &str) -> String {
    format!("{:#}", parse(text).unwrap_err())
}

#[test]
fn sections_keys_and_first_match_wins() {
    let config = parse(
        "# comment\n; also a comment\n\n[port web-* vnet1?]\nbridge = br1\nmtu=9000\n\n  [port *]\n  bridge = br0\n",
    )
    .unwrap();
    assert_eq!(config.ports.len(), 2);
    let web = config.rule_for(&IfName::new("web-3").unwrap()).unwrap();
    assert_eq!(
        (
            web.bridge.as_ref().map(BridgeWord::as_str),
            web.mtu,
            web.line
        ),
        (Some("br1"), Some(9000), 4)
    );
    let other = config.rule_for(&IfName::new("tap0").unwrap()).unwrap();
    assert_eq!(other.bridge.as_ref().map(BridgeWord::as_str), Some("br0"));
    assert_eq!(
        config
            .rule_for(&IfName::new("vnet1").unwrap())
            .unwrap()
            .line,
        8
    );
    assert_eq!(
        config
            .rule_for(&IfName::new("vnet12").unwrap())
            .unwrap()
            .line,
        4
    );
}

#[test]
fn empty_config_matches_nothing() {
    assert!(
        parse("")
            .unwrap()
            .rule_for(&IfName::new("tap0").unwrap())
            .is_none()
    );
}

#[test]
fn every_bad_line_names_file_and_line() {
    let cases = [
        (
            "bridge = br0\n",
            "/etc/vifkit/vifkit.conf:1: \"bridge = br0\" is outside a [port ...] section",
        ),
        (
            "[port tap*\n",
            "/etc/vifkit/vifkit.conf:1: section header [port tap* has no closing ]",
        ),
        (
            "[bridge br0]\n",
            "/etc/vifkit/vifkit.conf:1: unknown section [bridge] (expected [port PATTERN...] or [host])",
        ),
        (
            "[]\n",
            "/etc/vifkit/vifkit.conf:1: empty section header [] (expected [port PATTERN...])",
        ),
        (
            "[port]\n",
            "/etc/vifkit/vifkit.conf:1: [port] needs at least one interface name pattern, such as [port tap*]",
        ),
        (
            "[port tap[0]\n",
            "/etc/vifkit/vifkit.conf:1: pattern \"tap[0\" has an unclosed [",
        ),
        (
            "[port *]\nbridge br0\n",
            "/etc/vifkit/vifkit.conf:2: expected key = value, found \"bridge br0\"",
        ),
        (
            "[port *]\nbridge =\n",
            "/etc/vifkit/vifkit.conf:2: bridge has no value",
        ),
        (
            "[port *]\nvlans = 10\n",
            "/etc/vifkit/vifkit.conf:2: unknown key \"vlans\" (expected bridge, mtu, route, ip, uplink, mac, router, masquerade6, antispoof, allow, ethertypes, vlan, trunks, isolated, learning, hairpin, openvswitch or rate)",
        ),
        (
            "[port *]\nvlan = 4095\n",
            "/etc/vifkit/vifkit.conf:2: VLAN \"4095\" is not a number from 1 to 4094",
        ),
        (
            "[port *]\ntrunks = 10,x\n",
            "/etc/vifkit/vifkit.conf:2: VLAN \"x\" is not a number from 1 to 4094",
        ),
        (
            "[port *]\nisolated = maybe\n",
            "/etc/vifkit/vifkit.conf:2: isolated = \"maybe\": expected yes or no",
        ),
        (
            "[port *]\nvlan = 10\nvlan = 20\n",
            "/etc/vifkit/vifkit.conf:3: vlan is set twice in this section",
        ),
        (
            "[port *]\nroute = 192.0.2.1\nisolated = yes\n",
            "/etc/vifkit/vifkit.conf:1: vlan, trunks, isolated, learning and hairpin are bridge port options: a routed port has no bridge",
        ),
        (
            "[port *]\nmtu = 9k\n",
            "/etc/vifkit/vifkit.conf:2: invalid MTU \"9k\": expected a number from 68 to 65535",
        ),
        (
            "[port *]\nmtu = 67\n",
            "/etc/vifkit/vifkit.conf:2: invalid MTU \"67\": expected a number from 68 to 65535",
        ),
        (
            "[port *]\nbridge = a234567890123456\n",
            "/etc/vifkit/vifkit.conf:2: invalid interface name \"a234567890123456\": it is longer than 15 bytes",
        ),
        (
            "[port *]\nbridge = br0:x\n",
            "/etc/vifkit/vifkit.conf:2: invalid bridge \"br0:x\": VLAN \"x\" is not a number from 1 to 4094",
        ),
        (
            "[port *]\nbridge = br0\n\nbridge = br1\n",
            "/etc/vifkit/vifkit.conf:4: bridge is set twice in this section",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(error(text), message, "{text:?}");
    }
}

#[test]
fn missing_files() {
    let absent = Path::new("/nonexistent/vifkit.conf");
    assert!(Config::load(absent, false).unwrap().ports.is_empty());
    assert_eq!(
        format!("{:#}", Config::load(absent, true).unwrap_err()),
        "read /nonexistent/vifkit.conf: No such file or directory (os error 2)"
    );
}

#[test]
fn routed_ports() {
    let config = parse("[port mail*]\nroute = 192.0.2.241 2001:db8:abba::1001\nuplink = eth0\nmac = 52:54:00:12:34:56\n").unwrap();
    let rule = config.rule_for(&IfName::new("mail0").unwrap()).unwrap();
    assert_eq!(rule.route.len(), 2);
    assert_eq!(rule.uplink.as_deref(), Some("eth0"));
    assert_eq!(rule.mac.unwrap().to_string(), "52:54:00:12:34:56");
    assert_eq!(
        error("[port *]\nbridge = br0\nroute = 192.0.2.1\n"),
        "/etc/vifkit/vifkit.conf:1: bridge and route exclude each other: a port is bridged or routed"
    );
    assert_eq!(
        error("[port *]\nroute = 192.0.2.300\n"),
        "/etc/vifkit/vifkit.conf:2: invalid address \"192.0.2.300\""
    );
    assert_eq!(
        error("[port *]\nmac = 52:54:00\n"),
        "/etc/vifkit/vifkit.conf:2: mac: invalid MAC address \"52:54:00\": expected six hex pairs like 00:16:3e:01:02:03"
    );
    for (mac, why) in [
        ("ff:ff:ff:ff:ff:ff", "is the broadcast address"),
        ("01:00:5e:00:00:01", "is a multicast address"),
        ("00:00:00:00:00:00", "is the all-zero address"),
        ("fe:ff:ff:ff:ff:ff", "is the backend port's own address"),
    ] {
        assert_eq!(
            error(&format!("[port *]\nbridge = br0\nmac = {mac}\n")),
            format!("/etc/vifkit/vifkit.conf:3: mac: {mac} {why}, not a guest's MAC")
        );
    }
}

#[test]
fn antispoof_host_wide_and_per_port() {
    let tap = IfName::new("tap0").unwrap();
    let db = IfName::new("db0").unwrap();
    let config = parse("[port db0]\nbridge = br0\nip = 192.0.2.20 2001:db8::20/64\nantispoof = yes\n\n[host]\nantispoof = no\n").unwrap();
    assert_eq!(
        config.antispoof_for(&db),
        (true, "/etc/vifkit/vifkit.conf:1".to_owned())
    );
    assert_eq!(
        config.antispoof_for(&tap),
        (false, "[host] in /etc/vifkit/vifkit.conf".to_owned())
    );
    assert_eq!(
        config.rule_for(&db).unwrap().ip,
        vec![
            Prefix::new("192.0.2.20".parse().unwrap(), 32),
            Prefix::new("2001:db8::20".parse().unwrap(), 64)
        ]
    );
    assert_eq!(
        parse("").unwrap().antispoof_for(&tap),
        (true, "the default".to_owned())
    );
}

#[test]
fn antispoof_errors_name_the_line() {
    let cases = [
        (
            "[host]\nantispoof = maybe\n",
            "/etc/vifkit/vifkit.conf:2: antispoof = \"maybe\": expected yes or no",
        ),
        (
            "[host]\nbridge = br0\n",
            "/etc/vifkit/vifkit.conf:2: unknown key \"bridge\" in [host] (expected antispoof)",
        ),
        (
            "[host]\nantispoof = no\nantispoof = yes\n",
            "/etc/vifkit/vifkit.conf:3: antispoof is set twice in [host]",
        ),
        (
            "[host tap*]\n",
            "/etc/vifkit/vifkit.conf:1: [host] takes no interface patterns",
        ),
        (
            "[port mail0]\nroute = 192.0.2.241\nip = 192.0.2.241\n",
            "/etc/vifkit/vifkit.conf:1: ip and route exclude each other: route already lists a routed guest's addresses",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(error(text), want, "for {text:?}");
    }
}

#[test]
fn bridge_port_options_are_read_per_section() {
    let text = "[port vif3.0]\nbridge = br0\nvlan = 10\ntrunks = 30, 20,30\nisolated = yes\nlearning = no\nhairpin = on\n[port tap*]\nbridge = br0\n";
    let config = Config::parse(Path::new("/etc/vifkit/vifkit.conf"), text).unwrap();
    let vif = &config.ports[0].port;
    assert_eq!(vif.vlans.to_string(), "vlan 10 untagged, trunks 20,30");
    assert_eq!(
        (vif.isolated, vif.learning, vif.hairpin),
        (Some(true), Some(false), Some(true))
    );
    assert_eq!(config.ports[1].port, Default::default());
}

#[test]
fn bridge_takes_the_bridge_word_with_its_vlans() {
    // The README's Open vSwitch section, and a word that may be br0's VLAN 10 or a link.
    let text = "[port vkt0]\nbridge = ovsbr0.10:20:30\nopenvswitch = yes\n\n[port vkt1]\nbridge = br0.10\n\n[port vkt2]\nbridge = br0:20\n";
    let config = parse(text).unwrap();
    let word = |n: usize| config.ports[n].bridge.as_ref().unwrap();
    let tagged = word(0).tagged().unwrap();
    assert_eq!(
        (tagged.bridge.as_str(), tagged.vlans.to_string()),
        ("ovsbr0", "vlan 10 untagged, trunks 20,30".to_owned())
    );
    assert_eq!(config.ports[0].openvswitch, Some(true));
    assert_eq!(word(1).name().map(IfName::as_str), Some("br0.10"));
    assert_eq!(word(1).with_vlans().unwrap().bridge.as_str(), "br0");
    assert_eq!(word(2).as_str(), "br0:20");
    assert_eq!(word(2).name(), None);
}

#[test]
fn a_port_opts_in_to_more_traffic() {
    let router = IfName::new("router0").unwrap();
    let config = parse(
        "[port router*]\nallow = dhcp-server router-advertisements\nethertypes = pppoe 0x88b5\n",
    )
    .unwrap();
    let traffic = config.traffic_for(&router);
    assert!(traffic.dhcp_server && traffic.router_advertisements);
    assert_eq!(traffic.ethertypes, [0x8863, 0x8864, 0x88b5]);
    assert!(
        config
            .traffic_for(&IfName::new("tap0").unwrap())
            .is_default()
    );
    assert_eq!(
        error("[port *]\nallow = dhcp\n"),
        "/etc/vifkit/vifkit.conf:2: allow = \"dhcp\" is not something a guest can be allowed to send (expected dhcp-server or router-advertisements)"
    );
    assert_eq!(
        error("[port *]\nethertypes = 0x8100\n"),
        "/etc/vifkit/vifkit.conf:2: ether type 0x8100 is a VLAN tag: a port passes tagged frames on its trunk VLANs (trunks =), not through ethertypes"
    );
    assert_eq!(
        error("[port *]\nallow = dhcp-server\nallow = dhcp-server\n"),
        "/etc/vifkit/vifkit.conf:3: allow is set twice in this section"
    );
}

/// The shipped example, every commented-out setting taken in, is a valid config.
#[test]
fn the_example_parses_uncommented() {
    let example = include_str!("../../../hotplug/vifkit.conf.example");
    let text: String = example
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c == '[' || c.is_ascii_lowercase()) => rest,
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let config = parse(&text).unwrap();
    let router = config.traffic_for(&IfName::new("router1.0").unwrap());
    assert!(router.dhcp_server && router.router_advertisements);
    assert_eq!(router.ethertypes, [0x8863, 0x8864]);
    assert_eq!(config.antispoof, Some(false));
}

/// Every vifkit.conf example the README shows (an `ini` block opening a section, comments
/// included) is a valid config as written.
#[test]
fn the_readme_examples_parse() {
    let readme = include_str!("../../../README.md");
    let mut blocks = 0;
    for block in readme.split("```ini\n").skip(1) {
        let text = &block[..block.find("```").expect("an ini block ends")];
        let first = text.lines().find(|l| !l.trim_start().starts_with('#'));
        if first.is_some_and(|l| l.starts_with("[port") || l.starts_with("[host")) {
            parse(text).unwrap_or_else(|e| panic!("README example {text:?}: {e:#}"));
            blocks += 1;
        }
    }
    assert!(
        blocks >= 3,
        "found {blocks} vifkit.conf examples in the README"
    );
}

#[test]
fn a_pattern_over_255_bytes_names_file_and_line() {
    let long = "*".repeat(256);
    assert_eq!(
        error(&format!("[port tap*]\nbridge = br0\n[port vnet* {long}]\n")),
        "/etc/vifkit/vifkit.conf:3: a pattern of 256 bytes is longer than the limit of 255 bytes"
    );
    let config = parse(&format!("[port {}]\nbridge = br0\n", "*".repeat(255))).unwrap();
    assert_eq!(config.ports[0].patterns[0].len(), 255);
}

#[test]
fn sections_of_a_hundred_stars_are_matched_at_once() {
    let stars = "*".repeat(100);
    let started = std::time::Instant::now();
    let config = parse(&format!(
        "[port {stars}x {stars}y]\nbridge = br1\n[port {stars}]\nbridge = br0\n"
    ))
    .unwrap();
    let rule = config.rule_for(&IfName::new("vif123456.78901").unwrap());
    assert_eq!(rule.map(|r| r.line), Some(3));
    assert_eq!(
        config
            .rule_for(&IfName::new("tapx").unwrap())
            .map(|r| r.line),
        Some(1)
    );
    assert!(started.elapsed() < std::time::Duration::from_millis(100));
}

/// The lists the manual is checked against are the parser's: each listed key is read (a
/// bad value is refused by the key's own parser, not as unknown), each listed section opens.
#[test]
fn every_listed_section_and_key_is_parsed() {
    let read = |text: String| match parse(&text) {
        Ok(_) => {}
        Err(err) => {
            let message = format!("{err:#}");
            assert!(
                !message.contains("unknown key") && !message.contains("not parsed"),
                "{text:?}: {message}"
            );
        }
    };
    for key in PORT_KEYS {
        read(format!("[port *]\n{key} = \u{1}\n"));
    }
    for key in HOST_KEYS {
        read(format!("[host]\n{key} = \u{1}\n"));
    }
    for section in SECTIONS {
        let header = match section {
            "host" => "[host]".to_owned(),
            other => format!("[{other} tap*]"),
        };
        assert!(parse(&header).is_ok(), "{header}");
    }
    assert_eq!(one_of(&["a"]), "a");
    assert_eq!(one_of(&["a", "b", "c"]), "a, b or c");
}
