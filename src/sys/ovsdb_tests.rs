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

/// A listener on a socket of its own that takes `backlog` connections and never accepts.
fn deaf_server(tag: &str, backlog: i32) -> (PathBuf, std::os::fd::OwnedFd) {
    use nix::sys::socket::{Backlog, bind, listen};
    let dir = std::env::temp_dir().join(format!("vifkit-ovsdb-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("db.sock");
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    bind(fd.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
    listen(&fd, Backlog::new(backlog).unwrap()).unwrap();
    (path, fd)
}

#[test]
fn a_server_that_never_accepts_costs_the_timeout_not_for_ever() {
    let (path, _listener) = deaf_server("full", 0);
    // The queue holds one connection; the next connect() would block.
    let _queued = UnixStream::connect(&path).unwrap();
    let started = Instant::now();
    let err = Ovsdb::connect_at(&path, Duration::from_millis(300))
        .err()
        .expect("nobody accepts");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(
        format!("{err:#}"),
        format!(
            "connect to ovsdb-server at {}: not accepted within 0.3 s",
            path.display()
        )
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn a_server_that_never_answers_costs_the_timeout_not_for_ever() {
    let (path, _listener) = deaf_server("mute", 8);
    // The kernel completes the connection in the queue: the server never reads or answers.
    let started = Instant::now();
    let mut db = Ovsdb::connect_at(&path, Duration::from_millis(300)).unwrap();
    let err = db.port_state("vif1.0").unwrap_err();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(
        format!("{err:#}"),
        "read ovsdb-server's reply: no answer within 0.3 s"
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
