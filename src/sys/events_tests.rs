use super::*;

/// One netlink message: struct nlmsghdr, then `body`, padded to 4 bytes.
fn message(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&[0; 10]);
    m.extend_from_slice(body);
    while m.len() % 4 != 0 {
        m.push(0);
    }
    m
}

fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut a = Vec::new();
    a.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
    a.extend_from_slice(&kind.to_ne_bytes());
    a.extend_from_slice(value);
    while a.len() % 4 != 0 {
        a.push(0);
    }
    a
}

fn ifinfomsg(family: u8, index: u32, flags: u32, attrs: &[Vec<u8>]) -> Vec<u8> {
    let mut body = vec![family, 0, 1, 0];
    body.extend_from_slice(&index.to_ne_bytes());
    body.extend_from_slice(&flags.to_ne_bytes());
    body.extend_from_slice(&0u32.to_ne_bytes());
    body.extend(attrs.concat());
    body
}

fn route(datagram: &[u8]) -> Vec<Event> {
    let mut events = vec![];
    route_events(datagram, &mut events);
    events
}

fn nftables(datagram: &[u8]) -> Vec<Event> {
    let mut events = vec![];
    nftables_events(datagram, &mut events);
    events
}

#[test]
fn a_bridge_that_appears_is_named_with_its_kind_and_state() {
    let linkinfo = attr(IFLA_LINKINFO | 0x8000, &attr(IFLA_INFO_KIND, b"bridge\0"));
    let body = ifinfomsg(0, 9, 0, &[attr(IFLA_IFNAME, b"xenbr0\0"), linkinfo]);
    assert_eq!(
        route(&message(RTM_NEWLINK, &body)),
        [Event::Link {
            index: 9,
            name: "xenbr0".into(),
            bridge: true,
            up: false,
            master: None,
            gone: false
        }]
    );
}

#[test]
fn a_port_is_up_and_says_its_master() {
    let body = ifinfomsg(
        0,
        12,
        IFF_UP,
        &[
            attr(IFLA_IFNAME, b"vif3.0\0"),
            attr(IFLA_MASTER, &9u32.to_ne_bytes()),
        ],
    );
    let datagram = [message(RTM_NEWLINK, &body), message(RTM_DELLINK, &body)].concat();
    let events = route(&datagram);
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[1],
        Event::Link {
            index: 12,
            name: "vif3.0".into(),
            bridge: false,
            up: true,
            master: Some(9),
            gone: true
        }
    );
}

#[test]
fn a_bridge_ports_own_notification_is_not_a_link_event() {
    const AF_BRIDGE: u8 = 7;
    let body = ifinfomsg(AF_BRIDGE, 12, 0, &[attr(IFLA_IFNAME, b"vif3.0\0")]);
    assert!(route(&message(RTM_NEWLINK, &body)).is_empty());
}

#[test]
fn only_default_routes_of_the_main_table_count() {
    // family, dst_len, src_len, tos, table, protocol, scope, type, flags
    let rtmsg = |family: u8, dst_len: u8, table: u8, kind: u8| {
        let mut body = vec![family, dst_len, 0, 0, table, 3, 0, kind];
        body.extend_from_slice(&0u32.to_ne_bytes());
        body
    };
    assert_eq!(
        route(&message(RTM_NEWROUTE, &rtmsg(AF_INET, 0, 254, 1))),
        [Event::DefaultRoute]
    );
    assert_eq!(
        route(&message(RTM_DELROUTE, &rtmsg(AF_INET6, 0, 254, 1))),
        [Event::DefaultRoute]
    );
    for other in [
        rtmsg(AF_INET, 32, 254, 1), // a guest's host route
        rtmsg(AF_INET, 0, 255, 1),  // the local table
        rtmsg(AF_INET, 0, 254, 2),  // RTN_LOCAL
    ] {
        assert!(route(&message(RTM_NEWROUTE, &other)).is_empty());
    }
}

#[test]
fn only_a_deleted_proxy_entry_is_a_neighbour_event() {
    // family, pad, pad, ifindex, state, flags, type
    let ndmsg = |family: u8, flags: u8| {
        let mut body = vec![family, 0, 0, 0];
        body.extend_from_slice(&4u32.to_ne_bytes());
        body.extend_from_slice(&0x80u16.to_ne_bytes());
        body.extend_from_slice(&[flags, 1]);
        body
    };
    assert_eq!(
        route(&message(RTM_DELNEIGH, &ndmsg(AF_INET, NTF_PROXY))),
        [Event::ProxyNeighbourGone]
    );
    assert!(route(&message(RTM_DELNEIGH, &ndmsg(AF_INET, 0))).is_empty());
    assert!(route(&message(RTM_DELNEIGH, &ndmsg(7, NTF_PROXY))).is_empty());
    assert!(route(&message(28, &ndmsg(AF_INET6, NTF_PROXY))).is_empty());
}

#[test]
fn nftables_deletions_name_their_table_and_chain() {
    let nft = |msg: u16, attrs: &[Vec<u8>]| {
        let mut body = vec![5, 0, 0, 1]; // nfgenmsg: NFPROTO_NETDEV, version, res_id
        body.extend(attrs.concat());
        message(NFNL_SUBSYS_NFTABLES << 8 | msg, &body)
    };
    let table = attr(NFTA_TABLE, b"vifkit-antispoof-085\0");
    let datagram = [
        nft(
            NFT_MSG_DELRULE,
            &[table.clone(), attr(NFTA_RULE_CHAIN, b"vif3.0\0")],
        ),
        nft(
            NFT_MSG_DELCHAIN,
            &[table.clone(), attr(NFTA_CHAIN_NAME, b"vif3.0\0")],
        ),
        nft(NFT_MSG_DELTABLE, std::slice::from_ref(&table)),
        nft(0, std::slice::from_ref(&table)), // NFT_MSG_NEWTABLE: vifkit's own repair
        nft(16, &[]),                         // NFT_MSG_NEWGEN
    ]
    .concat();
    let deleted = |chain: Option<&str>, whole_table| Event::NftDeleted {
        table: "vifkit-antispoof-085".into(),
        chain: chain.map(str::to_owned),
        whole_table,
    };
    assert_eq!(
        nftables(&datagram),
        [
            deleted(Some("vif3.0"), false),
            deleted(Some("vif3.0"), false),
            deleted(None, true)
        ]
    );
}

#[test]
fn a_truncated_datagram_yields_what_came_before_it() {
    let body = ifinfomsg(0, 3, 0, &[attr(IFLA_IFNAME, b"eth0\0")]);
    let mut datagram = message(RTM_NEWLINK, &body);
    datagram.extend_from_slice(&[200, 0, 0, 0, 16, 0]);
    assert_eq!(route(&datagram).len(), 1);
}
