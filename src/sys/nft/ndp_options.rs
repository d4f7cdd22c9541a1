//! The rules on NDP options: the link-layer address a guest's neighbour discovery teaches
//! must be its own MAC.

use super::*;

/// An NDP option's type and length (in 8-byte units) as one big-endian number: source and
/// target link-layer address options and the DAD nonce, each one unit long on Ethernet.
const SOURCE_LINK_LAYER_OPTION: u16 = 0x0101;
const TARGET_LINK_LAYER_OPTION: u16 = 0x0201;
const NONCE_OPTION: u16 = 0x0e01;
/// Where a router solicitation's options start, and a neighbour solicitation's or
/// advertisement's (after the type, code, checksum, reserved word and target).
const RS_OPTIONS: u32 = 8;
const NS_NA_OPTIONS: u32 = 24;

/// An NDP link-layer address option teaches neighbours a MAC for an address, so the one a
/// solicitation or advertisement carries first (the one receivers use) must be the guest's;
/// a first option of another kind, which could hide a second one, is refused. A message
/// without options passes: the loads past its end match nothing.
pub(super) fn link_layer_option_rules(
    icmpv6_type: &dyn Fn(u8) -> Vec<Match>,
    mac: MacAddr,
) -> Vec<Rule> {
    let option = |at: u32, len: u32| Field::TransportBytes { offset: at, len };
    let kind_at = |at: u32| option(at, 2);
    let mac_at = |at: u32| Match::ne(option(at + 2, 6), Value::Mac(mac));
    let with = |t: u8, more: Vec<Match>| {
        let mut matches = icmpv6_type(t);
        matches.extend(more);
        Rule::drop(matches)
    };
    let is = |at: u32, kind: u16| Match::eq(kind_at(at), Value::Number(kind));
    let is_not = |at: u32, kind: u16| Match::ne(kind_at(at), Value::Number(kind));
    vec![
        with(
            ND_ROUTER_SOLICIT,
            vec![is_not(RS_OPTIONS, SOURCE_LINK_LAYER_OPTION)],
        ),
        with(
            ND_ROUTER_SOLICIT,
            vec![is(RS_OPTIONS, SOURCE_LINK_LAYER_OPTION), mac_at(RS_OPTIONS)],
        ),
        with(
            ND_NEIGHBOR_SOLICIT,
            vec![
                is_not(NS_NA_OPTIONS, SOURCE_LINK_LAYER_OPTION),
                is_not(NS_NA_OPTIONS, NONCE_OPTION),
            ],
        ),
        with(
            ND_NEIGHBOR_SOLICIT,
            vec![
                is(NS_NA_OPTIONS, SOURCE_LINK_LAYER_OPTION),
                mac_at(NS_NA_OPTIONS),
            ],
        ),
        // A nonce belongs to duplicate address detection, from `::`, whose receivers ignore
        // link-layer options; anywhere else a nonce could hide one behind it.
        with(
            ND_NEIGHBOR_SOLICIT,
            vec![
                is(NS_NA_OPTIONS, NONCE_OPTION),
                Match::ne(Field::Ipv6Source, Value::Net(unspecified6())),
            ],
        ),
        with(
            ND_NEIGHBOR_ADVERT,
            vec![is_not(NS_NA_OPTIONS, TARGET_LINK_LAYER_OPTION)],
        ),
        with(
            ND_NEIGHBOR_ADVERT,
            vec![
                is(NS_NA_OPTIONS, TARGET_LINK_LAYER_OPTION),
                mac_at(NS_NA_OPTIONS),
            ],
        ),
    ]
}
