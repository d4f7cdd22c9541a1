use super::*;

const PATH: &str = "/etc/sysconfig/network/ifcfg-xen1.0";

fn parse(text: &str) -> Ifcfg {
    parse_ifcfg(Path::new(PATH), text).unwrap()
}

fn err(text: &str) -> String {
    parse_ifcfg(Path::new(PATH), text).unwrap_err().to_string()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn addr(suffix: &str, address: &str, prefix_len: u8) -> IfcfgAddress {
    IfcfgAddress {
        suffix: suffix.into(),
        address: ip(address),
        prefix_len,
        broadcast: None,
        peer: None,
        label: None,
        scope: None,
    }
}

#[test]
fn seed_bridged_br0() {
    let ifcfg = parse(
        "STARTMODE='auto'
BOOTPROTO='static'
# boot protocol can be also 'dhcp'
# in case of 'static' the IP static
# configuration:
IPADDR='192.168.0.1/24'
IPADDR_1='2001:db8:abba::1/64'
# bridge settings
BRIDGE='yes'
BRIDGE_PORTS='eth0'
BRIDGE_STP='off'
BRIDGE_FORWARDDELAY='0'
",
    );
    assert_eq!(
        ifcfg,
        Ifcfg {
            startmode: StartMode::Auto,
            bootproto: "static".into(),
            addresses: vec![
                addr("", "192.168.0.1", 24),
                addr("_1", "2001:db8:abba::1", 64)
            ],
            bridge: true,
            ..Ifcfg::default()
        }
    );
}

#[test]
fn seed_routed_vif_xen1_0_has_no_address() {
    let ifcfg = parse(
        "            NAME='XEN vm 1 virtual interface 0'
            BOOTPROTO='static'
            STARTMODE='hotplug'
            #          ^^^^^^^
            # to avoid attempts to start/wait for it at boot time
",
    );
    assert_eq!(
        ifcfg,
        Ifcfg {
            startmode: StartMode::Hotplug,
            name: Some("XEN vm 1 virtual interface 0".into()),
            ..Ifcfg::default()
        }
    );
}

#[test]
fn seed_uplink_eth0_onboot_and_named_suffix() {
    let ifcfg = parse(
        "BOOTPROTO='static'\nSTARTMODE='onboot'\nIPADDR='192.0.2.253/28'\nIPADDR_v6='2001:db8:abba::1/64'\n",
    );
    assert_eq!(ifcfg.startmode, StartMode::Auto);
    assert_eq!(
        ifcfg.addresses,
        vec![
            addr("", "192.0.2.253", 28),
            addr("_v6", "2001:db8:abba::1", 64)
        ]
    );
    assert!(!ifcfg.bridge);
}

#[test]
fn defaults_when_empty() {
    assert_eq!(parse(""), Ifcfg::default());
    assert_eq!(Ifcfg::default().bootproto, "static");
    assert_eq!(parse("BOOTPROTO=''\nSTARTMODE=\n").bootproto, "static");
}

#[test]
fn startmode_aliases_and_case() {
    for (value, mode) in [
        ("manual", StartMode::Manual),
        ("auto", StartMode::Auto),
        ("onboot", StartMode::Auto),
        ("on", StartMode::Auto),
        ("boot", StartMode::Auto),
        ("hotplug", StartMode::Hotplug),
        ("ifplugd", StartMode::Ifplugd),
        ("nfsroot", StartMode::Nfsroot),
        ("off", StartMode::Off),
        ("Auto", StartMode::Auto),
    ] {
        assert_eq!(
            parse(&format!("STARTMODE={value}")).startmode,
            mode,
            "{value}"
        );
    }
    assert_eq!(
        err("\nSTARTMODE='sometimes'"),
        format!(
            "{PATH}:2: invalid STARTMODE \"sometimes\": expected manual, auto, hotplug, ifplugd, nfsroot or off"
        )
    );
}

#[test]
fn bootproto_is_lowercased() {
    assert_eq!(parse("BOOTPROTO=DHCP+autoip").bootproto, "dhcp+autoip");
}

#[test]
fn quoting_rules() {
    let ifcfg = parse(
        "NAME=\"a 'b' c\"  # trailing words are not part of the value
LLADDR=00:16:3e:10:10:10 ignored
MTU='9000'",
    );
    assert_eq!(ifcfg.name.as_deref(), Some("a 'b' c"));
    assert_eq!(
        ifcfg.lladdr,
        Some(MacAddr([0, 0x16, 0x3e, 0x10, 0x10, 0x10]))
    );
    assert_eq!(ifcfg.mtu, Some(9000));
    // No escapes: the backslash is kept, and quoted runs join as in a shell.
    assert_eq!(parse(r#"NAME="a\b""#).name.as_deref(), Some(r"a\b"));
    assert_eq!(parse("NAME=x'y z'\"w\"").name.as_deref(), Some("xy zw"));
}

#[test]
fn ignored_lines() {
    let ifcfg = parse(
        "# STARTMODE=off
 \t# indented comment
_STARTMODE=off
1STARTMODE=off
STARTMODE =off
STARTMODE-1=off
export STARTMODE=off
=off

STARTMODE=hotplug",
    );
    assert_eq!(ifcfg.startmode, StartMode::Hotplug);
}

#[test]
fn unterminated_quote_names_line() {
    assert_eq!(
        err("NAME='ok'\nIPADDR='192.0.2.1/24\n"),
        format!("{PATH}:2: unterminated ' quote in the value of IPADDR")
    );
    assert_eq!(
        err("NAME=\"xen1"),
        format!("{PATH}:1: unterminated \" quote in the value of NAME")
    );
}

#[test]
fn last_assignment_wins() {
    let ifcfg = parse("IPADDR_1=10.0.0.1/8\nMTU=1500\nIPADDR_1=10.0.0.2/8\nMTU=9000\n");
    assert_eq!(ifcfg.addresses, vec![addr("_1", "10.0.0.2", 8)]);
    assert_eq!(ifcfg.mtu, Some(9000));
}

#[test]
fn plain_ipaddr_first_then_file_order() {
    let ifcfg = parse(
        "IPADDR_2=10.0.0.2/8\nIPADDRxxx=10.0.0.3/8\nIPADDR=10.0.0.1/8\nIPADDR_10=10.0.0.10/8\nIPADDR_1=10.0.0.11/8\n",
    );
    let suffixes: Vec<&str> = ifcfg.addresses.iter().map(|a| a.suffix.as_str()).collect();
    assert_eq!(suffixes, ["", "_2", "xxx", "_10", "_1"]);
}

#[test]
fn empty_and_unspecified_addresses_are_skipped() {
    let ifcfg = parse("IPADDR=''\nIPADDR_1=0.0.0.0\nIPADDR_2=::/64\nIPADDR_3=10.1.1.1/8\n");
    assert_eq!(ifcfg.addresses, vec![addr("_3", "10.1.1.1", 8)]);
}

#[test]
fn prefix_precedence() {
    let ifcfg = parse(
        "IPADDR=10.0.0.1/8\nPREFIXLEN=16\nNETMASK=255.255.255.0
IPADDR_a=10.0.0.2\nPREFIXLEN_a=16\nNETMASK_a=255.255.255.0
IPADDR_b=10.0.0.3\nNETMASK_b=255.255.255.0
IPADDR_c=10.0.0.4
IPADDR_d=2001:db8::4
IPADDR_e=2001:db8::5\nNETMASK_e=255.255.255.0
IPADDR_f=2001:db8::6\nPREFIXLEN_f=48
",
    );
    let lens: Vec<(&str, u8)> = ifcfg
        .addresses
        .iter()
        .map(|a| (a.suffix.as_str(), a.prefix_len))
        .collect();
    assert_eq!(
        lens,
        [
            ("", 8),
            ("_a", 16),
            ("_b", 24),
            ("_c", 32),
            ("_d", 128),
            ("_e", 128),
            ("_f", 48)
        ]
    );
}

#[test]
fn prefix_boundaries() {
    assert_eq!(parse("IPADDR=10.0.0.1/32").addresses[0].prefix_len, 32);
    assert_eq!(parse("IPADDR=10.0.0.1/1").addresses[0].prefix_len, 1);
    assert_eq!(parse("IPADDR=::1/128").addresses[0].prefix_len, 128);
    assert_eq!(
        err("IPADDR=10.0.0.1/33"),
        format!("{PATH}:1: invalid IPADDR \"10.0.0.1/33\": the prefix length must be 1 to 32")
    );
    assert_eq!(
        err("IPADDR_1=2001:db8::1/129"),
        format!(
            "{PATH}:1: invalid IPADDR_1 \"2001:db8::1/129\": the prefix length must be 1 to 128"
        )
    );
    assert_eq!(
        err("IPADDR=10.0.0.1/0"),
        format!("{PATH}:1: invalid IPADDR \"10.0.0.1/0\": the prefix length must be 1 to 32")
    );
    assert_eq!(
        err("IPADDR=10.0.0.1/"),
        format!("{PATH}:1: invalid IPADDR \"10.0.0.1/\": the prefix length must be 1 to 32")
    );
}

#[test]
fn address_errors() {
    assert_eq!(
        err("IPADDR_1=192.0.2.300/24"),
        format!(
            "{PATH}:1: invalid IPADDR_1 \"192.0.2.300/24\": expected an IPv4 or IPv6 address with an optional /prefix length"
        )
    );
    assert_eq!(
        err("IPADDR=10.0.0.1\nPREFIXLEN=33"),
        format!("{PATH}:2: invalid PREFIXLEN \"33\": expected 1 to 32")
    );
    assert_eq!(
        err("IPADDR_x=10.0.0.1\n\nNETMASK_x=255.0.255.0"),
        format!(
            "{PATH}:3: invalid NETMASK_x \"255.0.255.0\": expected a contiguous mask like 255.255.255.0"
        )
    );
    assert_eq!(
        err("IPADDR=10.0.0.1\nNETMASK=0.0.0.0"),
        format!(
            "{PATH}:2: invalid NETMASK \"0.0.0.0\": expected a contiguous mask like 255.255.255.0"
        )
    );
}

#[test]
fn stale_prefix_vars_behind_a_slash_are_not_read() {
    let ifcfg = parse("IPADDR=10.0.0.1/8\nPREFIXLEN=junk\nNETMASK=junk\nPREFIXLEN_9=junk\n");
    assert_eq!(ifcfg.addresses, vec![addr("", "10.0.0.1", 8)]);
}

#[test]
fn per_address_attributes() {
    let ifcfg = parse(
        "IPADDR_1=192.0.2.1/24\nBROADCAST_1=192.0.2.255\nLABEL_1=vm\nSCOPE_1=Link
IPADDR_2=10.1.0.1/16\nBROADCAST_2=+
IPADDR_3=10.9.0.1/31\nBROADCAST_3=+
IPADDR_4=10.8.0.1\nREMOTE_IPADDR_4=10.8.0.2\nBROADCAST_4=-
IPADDR_5=2001:db8::1/64\nBROADCAST_5=junk\nLABEL_5=ignored\nSCOPE_5=global
",
    );
    let a = &ifcfg.addresses;
    assert_eq!(a[0].broadcast, Some(ip("192.0.2.255")));
    assert_eq!(a[0].label.as_deref(), Some("vm"));
    assert_eq!(a[0].scope.as_deref(), Some("link"));
    assert_eq!(a[1].broadcast, Some(ip("10.1.255.255")));
    assert_eq!(a[2].broadcast, None);
    assert_eq!(a[3].prefix_len, 32);
    assert_eq!(a[3].peer, Some(ip("10.8.0.2")));
    assert_eq!(a[3].broadcast, None);
    assert_eq!(
        a[4],
        IfcfgAddress {
            scope: Some("global".into()),
            ..addr("_5", "2001:db8::1", 64)
        }
    );
}

#[test]
fn per_address_attribute_errors() {
    assert_eq!(
        err("IPADDR=10.0.0.1/8\nBROADCAST=10.0.0.256"),
        format!("{PATH}:2: invalid BROADCAST \"10.0.0.256\": expected an IPv4 address")
    );
    assert_eq!(
        err("IPADDR_p=10.0.0.1\nREMOTE_IPADDR_p=peer"),
        format!("{PATH}:2: invalid REMOTE_IPADDR_p \"peer\": expected an IP address")
    );
    assert_eq!(
        err("IPADDR_p=10.0.0.1\nREMOTE_IPADDR_p=2001:db8::2"),
        format!(
            "{PATH}:2: REMOTE_IPADDR_p 2001:db8::2 and IPADDR_p 10.0.0.1 are of different families"
        )
    );
    assert_eq!(
        err("IPADDR=10.0.0.1\nSCOPE=universe"),
        format!("{PATH}:2: invalid SCOPE \"universe\": expected global, site, link or host")
    );
}

#[test]
fn mtu_and_lladdr() {
    assert_eq!(parse("MTU=68").mtu, Some(68));
    assert_eq!(parse("MTU=65535").mtu, Some(65535));
    assert_eq!(parse("MTU=''").mtu, None);
    assert_eq!(
        err("MTU=67"),
        format!("{PATH}:1: invalid MTU \"67\": expected a number from 68 to 65535")
    );
    assert_eq!(
        err("\n\nLLADDR=00:16:3e:10:10"),
        format!(
            "{PATH}:3: invalid MAC address \"00:16:3e:10:10\": expected six hex pairs like 00:16:3e:01:02:03"
        )
    );
}

#[test]
fn bridge_needs_exactly_yes() {
    assert!(parse("BRIDGE=yes").bridge);
    assert!(!parse("BRIDGE=no").bridge);
    assert!(!parse("BRIDGE=''").bridge);
}

#[test]
fn crlf_line_endings() {
    let ifcfg = parse("STARTMODE='hotplug'\r\nIPADDR=10.0.0.1/8\r\n");
    assert_eq!(ifcfg.startmode, StartMode::Hotplug);
    assert_eq!(ifcfg.addresses, vec![addr("", "10.0.0.1", 8)]);
}

#[test]
fn netmask_bits_boundaries() {
    assert_eq!(netmask_bits("255.255.255.255"), Some(32));
    assert_eq!(netmask_bits("255.255.255.240"), Some(28));
    assert_eq!(netmask_bits("128.0.0.0"), Some(1));
    assert_eq!(netmask_bits("0.0.0.0"), Some(0));
    assert_eq!(netmask_bits("255.255.255.1"), None);
    assert_eq!(netmask_bits("24"), None);
}
