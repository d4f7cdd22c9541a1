use super::*;

fn port() -> OvsPort {
    OvsPort {
        name: "vif1.0".into(),
        tag: Some(10),
        trunks: vec![30, 20],
        external_ids: vec![
            ("xen-vm-name".into(), "guest1".into()),
            ("attached-mac".into(), "00:16:3e:00:00:01".into()),
        ],
        mtu: Some(1400),
    }
}

#[test]
fn ports_compare_as_ovsdb_holds_them() {
    let p = port();
    let n = p.normalised();
    assert_eq!(n.trunks, [20, 30]);
    assert_eq!(n.external_ids[0].0, "attached-mac");
    let mut doubled = p.clone();
    doubled.trunks.push(20);
    assert_eq!(p, n);
    assert_eq!(p, doubled);
    let mut other = p.clone();
    other.external_ids[0].1 = "guest2".into();
    assert_ne!(p, other);
    let mut other = p.clone();
    other.mtu = None;
    assert_ne!(p, other);
}

#[test]
fn columns_parse_in_both_set_forms() {
    assert_eq!(integers(&json!(7)), [7]);
    assert_eq!(integers(&json!(["set", [7, 9]])), [7, 9]);
    assert_eq!(integers(&json!(["set", []])), Vec::<i64>::new());
    assert_eq!(optional::<u16>(&json!(["set", []]), "tag").unwrap(), None);
    assert_eq!(optional::<u16>(&json!(10), "tag").unwrap(), Some(10));
    assert!(optional::<u16>(&json!(70000), "tag").is_err());
    let map = json!(["map", [["attached-mac", "00:16:3e:00:00:01"], ["k", "v"]]]);
    assert_eq!(string_map(&map).len(), 2);
    assert_eq!(string_map(&json!(["map", []])), vec![]);
}

#[test]
fn no_ovsdb_server_is_no_port() {
    let dir = std::env::temp_dir().join(format!("vifkit-ovsdb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("db.sock");
    assert!(
        port_state_at(&path, "vif1.0").unwrap().is_none(),
        "no socket"
    );
    // A socket file left behind by an ovsdb-server that is gone.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(
        port_state_at(&path, "vif1.0").unwrap().is_none(),
        "stale socket"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
