use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::tc::TcStats2;

use super::*;

/// The ifindex of vp0 when tc sent the fixtures.
const VP0: u32 = 3;

/// A message from `tests/fixtures/tc/`: hex bytes after `#` comment lines.
fn fixture(text: &str) -> Vec<u8> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .flat_map(str::split_whitespace)
        .map(|byte| u8::from_str_radix(byte, 16).unwrap())
        .collect()
}

/// The whole message as sent, with sequence number and port id 0.
fn wire(message: RouteNetlinkMessage, flags: u16) -> Vec<u8> {
    let mut message = NetlinkMessage::from(message);
    message.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    message.finalize();
    let mut buf = vec![0; message.buffer_len()];
    message.serialize(&mut buf);
    buf
}

// The fixtures are x86 bytes.
#[cfg(target_endian = "little")]
#[test]
fn the_policer_is_what_tc_sends() {
    let tc = fixture(include_str!("../../../tests/fixtures/tc/police-10mbit.hex"));
    let filter = police_filter(VP0, &Policer::new(10_000_000));
    let ours = wire(
        RouteNetlinkMessage::NewTrafficFilter(filter),
        NLM_F_CREATE | NLM_F_EXCL,
    );
    assert_eq!(ours, tc);
    // Above 4 GB/s the rate also goes in TCA_POLICE_RATE64; the burst is 20 ms of traffic.
    let tc = fixture(include_str!("../../../tests/fixtures/tc/police-40gbit.hex"));
    let filter = police_filter(VP0, &Policer::new(40_000_000_000));
    let ours = wire(
        RouteNetlinkMessage::NewTrafficFilter(filter),
        NLM_F_CREATE | NLM_F_EXCL,
    );
    assert_eq!(ours, tc);
}

#[cfg(target_endian = "little")]
#[test]
fn the_ingress_qdisc_and_the_deletes_are_what_tc_sends() {
    for (tc, ours) in [
        (
            include_str!("../../../tests/fixtures/tc/ingress-add.hex"),
            wire(
                RouteNetlinkMessage::NewQueueDiscipline(ingress_qdisc(VP0)),
                NLM_F_CREATE | NLM_F_EXCL,
            ),
        ),
        (
            include_str!("../../../tests/fixtures/tc/ingress-del.hex"),
            wire(
                RouteNetlinkMessage::DelQueueDiscipline(ingress_parent(VP0)),
                0,
            ),
        ),
        (
            include_str!("../../../tests/fixtures/tc/filter-del.hex"),
            wire(
                RouteNetlinkMessage::DelTrafficFilter(filters_at_pref(VP0)),
                0,
            ),
        ),
    ] {
        assert_eq!(ours, fixture(tc));
    }
}

#[test]
fn the_bucket_holds_20_ms_and_at_least_one_64k_frame() {
    let policer = Policer::new(10_000_000);
    assert_eq!((policer.rate, policer.burst), (1_250_000, 65_536));
    // 64 KiB at 1.25 MB/s: 52,428 µs (truncated, as tc does), at 15.625 ticks per µs.
    assert_eq!(policer.ticks(65_536), 819_187);
    assert_eq!(Policer::new(1_000_000_000).burst, 2_500_000);
    assert_eq!(Policer::cell_log(), 9);
    let parms = policer.parms();
    assert_eq!(parms.len(), TC_POLICE_LEN);
    assert_eq!(policer.rate_table().len(), 1024, "TC_RTAB_SIZE");
}

/// A filter as the kernel dumps it: the police options carry the kernel's own index,
/// counters and timestamps, and the action its statistics.
fn dumped(policer: &Policer, pref: u16, kind: &str) -> Vec<TcMessage> {
    let mut parms = policer.parms();
    parms[0..4].copy_from_slice(&7u32.to_ne_bytes()); // index
    parms[20] = 0; // the rate's cell_log is not dumped
    parms[44..52].copy_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0]); // refcnt, bindcnt
    let mut options = vec![
        TcActionOption::Other(DefaultNla::new(TCA_POLICE_TBF, parms)),
        TcActionOption::Other(DefaultNla::new(6, vec![0; 32])), // TCA_POLICE_TM
    ];
    if policer.rate > u64::from(u32::MAX) {
        let rate64 = policer.rate.to_ne_bytes().to_vec();
        options.push(TcActionOption::Other(DefaultNla::new(
            TCA_POLICE_RATE64,
            rate64,
        )));
    }
    // TCA_STATS_BASIC, _PKT64, _QUEUE, _BASIC_HW, _APP.
    let stats = [(1, 16), (8, 8), (3, 20), (7, 16), (4, 0)]
        .map(|(kind, len)| TcStats2::Other(DefaultNla::new(kind, vec![0; len])));
    let mut action = TcAction::default();
    action.attributes = vec![
        TcActionAttribute::Kind("police".into()),
        // TCA_ACT_HW_STATS and _USED_HW_STATS, two bitfields.
        TcActionAttribute::Other(DefaultNla::new(8, vec![3, 0, 0, 0, 3, 0, 0, 0])),
        TcActionAttribute::Other(DefaultNla::new(9, vec![0; 8])),
        TcActionAttribute::Options(options),
        TcActionAttribute::Stats(stats.to_vec()),
    ];
    let mut classifier = filters_at_pref(VP0);
    classifier.header.info = (u32::from(pref) << 16) | u32::from(ETH_P_ALL.to_be());
    classifier.attributes = vec![TcAttribute::Kind(kind.into()), TcAttribute::Chain(0)];
    let mut filter = classifier.clone();
    filter.header.handle = TcHandle::from(HANDLE);
    filter.attributes.push(TcAttribute::Options(vec![
        TcOption::MatchAll(TcFilterMatchAllOption::Action(vec![action])),
        TcOption::MatchAll(TcFilterMatchAllOption::Flags(8)), // TCA_CLS_FLAGS_NOT_IN_HW
        TcOption::MatchAll(TcFilterMatchAllOption::Pnct(vec![0; 8])),
    ]));
    // Through the bytes, so that the dump is read by netlink-packet-route's own parser.
    [classifier, filter]
        .into_iter()
        .map(|m| {
            let bytes = wire(RouteNetlinkMessage::NewTrafficFilter(m), 0);
            match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes)
                .unwrap()
                .payload
            {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewTrafficFilter(m)) => m,
                other => panic!("{other:?}"),
            }
        })
        .collect()
}

#[test]
fn the_same_policer_read_back_is_left_alone_and_any_other_replaced() {
    let wanted = Policer::new(10_000_000);
    assert_eq!(
        at_pref(&dumped(&wanted, 1, "matchall"), &wanted),
        AtPref::This
    );
    let fast = Policer::new(40_000_000_000);
    assert_eq!(at_pref(&dumped(&fast, 1, "matchall"), &fast), AtPref::This);
    assert_eq!(at_pref(&[], &wanted), AtPref::Nothing);
    assert_eq!(
        at_pref(&dumped(&wanted, 2, "matchall"), &wanted),
        AtPref::Nothing,
        "another pref is not ours"
    );
    let stale = Policer::new(20_000_000);
    assert_eq!(
        at_pref(&dumped(&stale, 1, "matchall"), &wanted),
        AtPref::Other
    );
    assert_eq!(
        at_pref(&dumped(&fast, 1, "matchall"), &wanted),
        AtPref::Other
    );
    assert_eq!(
        at_pref(&dumped(&wanted, 1, "basic"), &wanted),
        AtPref::Other
    );
    let mut twice = dumped(&wanted, 1, "matchall");
    twice.extend(dumped(&wanted, 1, "matchall"));
    assert_eq!(at_pref(&twice, &wanted), AtPref::Other);
    let header_only = &dumped(&wanted, 1, "matchall")[..1];
    assert_eq!(at_pref(header_only, &wanted), AtPref::Other);
}

#[test]
fn the_same_policer_is_recognised_whatever_the_kernel_adds() {
    let policer = Policer::new(10_000_000);
    let options = |result: u32| {
        let action = policer.action();
        let mut options = match &action.attributes[1] {
            TcActionAttribute::Options(options) => options.clone(),
            other => panic!("{other:?}"),
        };
        options.push(TcActionOption::Other(DefaultNla::new(
            TCA_POLICE_RESULT,
            result.to_ne_bytes().to_vec(),
        )));
        options
    };
    assert!(policer.is(&options(0)), "TC_ACT_OK is what conforms anyway");
    assert!(!policer.is(&options(2)), "conforming traffic dropped");
    assert!(!Policer::new(20_000_000).is(&options(0)));
    assert!(!policer.is(&[]));
}
