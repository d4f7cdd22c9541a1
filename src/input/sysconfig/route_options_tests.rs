use super::*;

fn parse(text: &str) -> Options {
    let words: Vec<&str> = text.split_whitespace().collect();
    parse_options(&words).unwrap()
}

fn err(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    parse_options(&words).unwrap_err()
}

fn metric(kind: RouteMetricKind, value: u32, lock: bool) -> RouteMetric {
    RouteMetric { kind, value, lock }
}

#[test]
fn no_options() {
    let opts = parse("");
    assert_eq!(opts.kind, None);
    assert!(opts.metrics.is_empty() && opts.nexthops.is_empty());
}

#[test]
fn metric_aliases() {
    assert_eq!(parse("metric 0").metric, Some(0));
    assert_eq!(parse("priority 4294967295").metric, Some(u32::MAX));
    assert_eq!(parse("preference 1024").metric, Some(1024));
    assert_eq!(
        err("metric 4294967296"),
        "invalid metric \"4294967296\": expected a number"
    );
    assert_eq!(
        err("priority -1"),
        "invalid priority \"-1\": expected a number"
    );
    assert_eq!(err("metric 5 preference 6"), "\"preference\" given twice");
}

#[test]
fn every_route_metric_with_and_without_lock() {
    let opts = parse(
        "window 65535 rtt lock 100ms rttvar 2s ssthresh 10 cwnd lock 20 advmss 1460 \
         reordering 3 hoplimit 64 initcwnd 10 initrwnd 20 rto_min 200ms",
    );
    assert_eq!(
        opts.metrics,
        vec![
            metric(RouteMetricKind::Window, 65535, false),
            metric(RouteMetricKind::Rtt, 800, true),
            metric(RouteMetricKind::RttVar, 8000, false),
            metric(RouteMetricKind::Ssthresh, 10, false),
            metric(RouteMetricKind::Cwnd, 20, true),
            metric(RouteMetricKind::AdvMss, 1460, false),
            metric(RouteMetricKind::Reordering, 3, false),
            metric(RouteMetricKind::Hoplimit, 64, false),
            metric(RouteMetricKind::InitCwnd, 10, false),
            metric(RouteMetricKind::InitRwnd, 20, false),
            metric(RouteMetricKind::RtoMin, 200, false),
        ]
    );
    let ids: Vec<u16> = opts.metrics.iter().map(|m| m.kind.kernel_id()).collect();
    assert_eq!(ids, [3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 13]);
}

#[test]
fn time_units() {
    let rtt = |text: &str| parse(&format!("rtt {text}")).metrics[0].value;
    assert_eq!(rtt("100"), 100);
    assert_eq!(rtt("1ms"), 8);
    assert_eq!(rtt("1msec"), 8);
    assert_eq!(rtt("1MSECS"), 8);
    assert_eq!(rtt("1s"), 8000);
    assert_eq!(rtt("1sec"), 8000);
    assert_eq!(rtt("1secs"), 8000);
    assert_eq!(parse("rto_min 1s").metrics[0].value, 1000);
    assert_eq!(parse("rto_min 300").metrics[0].value, 300);
    assert_eq!(parse("rttvar 3ms").metrics[0].value, 12);
    for bad in ["5min", "ms", "1.5s", "-1ms", "4294967s"] {
        assert_eq!(
            err(&format!("rtt {bad}")),
            format!("invalid rtt \"{bad}\": expected a time like 300ms or 2s")
        );
    }
    assert_eq!(
        err("window 10ms"),
        "invalid window \"10ms\": expected a number"
    );
}

#[test]
fn mtu() {
    assert_eq!(parse("mtu 68").mtu, Some((68, false)));
    assert_eq!(parse("mtu lock 65535").mtu, Some((65535, true)));
    assert_eq!(
        err("mtu 65536"),
        "invalid MTU \"65536\": expected a number from 68 to 65535"
    );
    assert_eq!(err("mtu lock"), "\"mtu\" needs a value");
    assert_eq!(err("mtu 1400 mtu 1500"), "\"mtu\" given twice");
    assert_eq!(err("hoplimit 1 hoplimit 2"), "\"hoplimit\" given twice");
}

#[test]
fn table_scope_protocol() {
    assert_eq!(parse("table main").table, Some(254));
    assert_eq!(parse("table local").table, Some(255));
    assert_eq!(parse("table default").table, Some(253));
    assert_eq!(parse("table 1").table, Some(1));
    assert_eq!(parse("table 4294967295").table, Some(u32::MAX));
    for bad in ["0", "4294967296", "mytable"] {
        assert_eq!(
            err(&format!("table {bad}")),
            format!(
                "invalid table \"{bad}\": expected main, local, default or a number from 1 to 4294967295"
            )
        );
    }
    for (name, value) in [
        ("global", 0),
        ("universe", 0),
        ("site", 200),
        ("link", 253),
        ("host", 254),
        ("nowhere", 255),
        ("7", 7),
    ] {
        assert_eq!(parse(&format!("scope {name}")).scope, Some(value), "{name}");
    }
    assert_eq!(
        err("scope 256"),
        "invalid scope \"256\": expected global, site, link, host, nowhere or a number up to 255"
    );
    for (name, value) in [
        ("boot", 3),
        ("kernel", 2),
        ("static", 4),
        ("ra", 9),
        ("dhcp", 16),
        ("redirect", 1),
        ("255", 255),
    ] {
        assert_eq!(
            parse(&format!("proto {name}")).protocol,
            Some(value),
            "{name}"
        );
    }
    assert_eq!(parse("protocol static").protocol, Some(4));
    assert_eq!(
        err("protocol zebra"),
        "invalid protocol \"zebra\": expected boot, kernel, static, ra, dhcp or a number up to 255"
    );
    assert_eq!(err("table 1 table 2"), "\"table\" given twice");
}

#[test]
fn realm_mark_tos() {
    assert_eq!(parse("realm 255").realm, Some(255));
    assert_eq!(
        err("realm 256"),
        "invalid realm \"256\": expected a number up to 255"
    );
    assert_eq!(parse("mark 42").mark, Some(42));
    assert_eq!(parse("mark 0xff").mark, Some(255));
    assert_eq!(err("mark x"), "invalid mark \"x\": expected a number");
    assert_eq!(parse("tos 10").tos, Some(0x10));
    assert_eq!(parse("dsfield 0xb8").tos, Some(0xb8));
    assert_eq!(parse("tos ff").tos, Some(255));
    assert_eq!(
        err("tos 100"),
        "invalid tos \"100\": expected a hex number up to ff"
    );
    assert_eq!(
        err("dsfield +1"),
        "invalid dsfield \"+1\": expected a hex number up to ff"
    );
}

#[test]
fn src() {
    assert_eq!(
        parse("src 192.0.2.1").src,
        Some("192.0.2.1".parse().unwrap())
    );
    assert_eq!(err("src me"), "invalid src \"me\": expected an IP address");
    assert_eq!(err("src"), "\"src\" needs a value");
}

#[test]
fn route_types() {
    assert_eq!(parse("blackhole metric 5").kind, Some(RouteKind::Blackhole));
    assert_eq!(
        parse("metric 5 type prohibit").kind,
        Some(RouteKind::Prohibit)
    );
    assert_eq!(err("type teleport"), "unknown route type \"teleport\"");
    assert_eq!(err("type"), "\"type\" needs a value");
    assert_eq!(
        err("unreachable type blackhole"),
        "two route types: unreachable and blackhole"
    );
}

#[test]
fn via_dev_and_unknown_words() {
    assert_eq!(
        err("via 192.0.2.1"),
        "\"via\" is not a route option: the gateway goes in the second column"
    );
    assert_eq!(
        err("dev eth0"),
        "\"dev\" is not a route option: the interface goes in the fourth column"
    );
    assert_eq!(err("onlink"), "unknown route option \"onlink\"");
    assert_eq!(err("Metric 5"), "unknown route option \"Metric\"");
}

#[test]
fn nexthops() {
    let opts = parse(
        "metric 10 nexthop via 192.0.2.1 nexthop via 192.0.2.2 dev eth1 weight 256 onlink nexthop onlink via 192.0.2.3 weight 1",
    );
    assert_eq!(opts.metric, Some(10));
    assert_eq!(
        opts.nexthops,
        vec![
            NexthopLine {
                gateway: "192.0.2.1".parse().unwrap(),
                dev: None,
                weight: None,
                onlink: false,
            },
            NexthopLine {
                gateway: "192.0.2.2".parse().unwrap(),
                dev: Some(IfName::new("eth1").unwrap()),
                weight: Some(256),
                onlink: true,
            },
            NexthopLine {
                gateway: "192.0.2.3".parse().unwrap(),
                dev: None,
                weight: Some(1),
                onlink: true,
            },
        ]
    );
}

#[test]
fn nexthop_errors() {
    let cases = [
        ("nexthop", "a nexthop needs \"via <gateway>\""),
        ("nexthop dev eth0", "a nexthop needs \"via <gateway>\""),
        (
            "nexthop via 192.0.2.1 nexthop",
            "a nexthop needs \"via <gateway>\"",
        ),
        ("nexthop via gw", "invalid nexthop gateway \"gw\""),
        ("nexthop via 0.0.0.0", "invalid nexthop gateway \"0.0.0.0\""),
        ("nexthop via 192.0.2.1 via 192.0.2.2", "\"via\" given twice"),
        ("nexthop via 192.0.2.1 dev a dev b", "\"dev\" given twice"),
        (
            "nexthop via 192.0.2.1 dev eth0:1",
            "invalid interface name \"eth0:1\": it contains ':'",
        ),
        (
            "nexthop via 192.0.2.1 weight 0",
            "invalid weight \"0\": expected 1 to 256",
        ),
        (
            "nexthop via 192.0.2.1 weight 257",
            "invalid weight \"257\": expected 1 to 256",
        ),
        ("nexthop via 192.0.2.1 weight", "\"weight\" needs a value"),
        (
            "nexthop via 192.0.2.1 onlink onlink",
            "\"onlink\" given twice",
        ),
        (
            "nexthop via 192.0.2.1 table 5",
            "unknown nexthop option \"table\": route options go before the first \"nexthop\"",
        ),
    ];
    for (text, msg) in cases {
        assert_eq!(err(text), msg, "{text}");
    }
}
