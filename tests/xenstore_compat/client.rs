//! vifkit's own client against the test server (and against fake
//! servers that misbehave on purpose).

use std::time::{Duration, Instant};

use super::support::{self, Harness};
use vifkit::sys::xenstore::client::MAX_TRANSACTION_ATTEMPTS;
use vifkit::sys::xenstore::transport::candidates;
use vifkit::sys::xenstore::wire::XENSTORE_PAYLOAD_MAX;
use vifkit::sys::xenstore::{Client, XsError, is_eagain, is_enoent};

#[test]
fn client_basic_operations() {
    let h = Harness::new();
    let mut c = h.client();
    c.write("/b/k", "v").unwrap();
    assert_eq!(c.read("/b/k").unwrap(), "v");
    assert_eq!(c.read_optional("/b/k").unwrap().as_deref(), Some("v"));
    assert_eq!(c.read_optional("/b/none").unwrap(), None);
    assert!(c.exists("/b").unwrap());
    assert!(!c.exists("/b/none").unwrap());
    c.mkdir("/b/dir/sub").unwrap();
    assert_eq!(c.directory("/b").unwrap(), ["dir", "k"]);
    assert_eq!(c.directory("/b/dir/sub").unwrap(), Vec::<String>::new());
    c.rm("/b/dir").unwrap();
    c.rm("/b/dir").unwrap();
    c.rm("/nothing/below").unwrap();
    assert_eq!(c.directory("/b").unwrap(), ["k"]);
    assert_eq!(c.get_domain_path(5).unwrap(), "/local/domain/5");

    let err = c.read("backend/vif/3/0/bridge").unwrap_err();
    assert_eq!(err.to_string(), "read backend/vif/3/0/bridge: ENOENT");
    assert!(is_enoent(&err));
    let xs = err.downcast_ref::<XsError>().unwrap();
    assert!(matches!(xs, XsError::Remote { op: "read", .. }));
    assert_eq!(xs.errno(), "ENOENT");

    let err = c.directory("/b/none").unwrap_err();
    assert_eq!(err.to_string(), "directory /b/none: ENOENT");

    let err = c.write("/b//x", "v").unwrap_err();
    assert_eq!(err.to_string(), "write /b//x: path contains //");
    let err = c
        .write("/b/big", &"v".repeat(XENSTORE_PAYLOAD_MAX))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "write /b/big: request of 4103 bytes exceeds the 4096-byte payload limit"
    );
    // The connection is still in step after local refusals.
    assert_eq!(c.read("/b/k").unwrap(), "v");
}

#[test]
fn client_transaction_commits_and_aborts() {
    let h = Harness::new();
    let mut c = h.client();
    let n = c
        .transaction(|tx| {
            tx.write("/tx/a", "1")?;
            tx.mkdir("/tx/d")?;
            assert_eq!(tx.read("/tx/a")?, "1");
            assert_eq!(tx.read_optional("/tx/none")?, None);
            assert!(tx.exists("/tx/d")?);
            Ok(tx.directory("/tx")?.len())
        })
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(c.read("/tx/a").unwrap(), "1");

    let err = c
        .transaction(|tx| -> anyhow::Result<()> {
            tx.write("/tx/a", "2")?;
            tx.rm("/tx/d")?;
            anyhow::bail!("planned failure")
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "planned failure");
    assert_eq!(c.read("/tx/a").unwrap(), "1");
    assert!(c.exists("/tx/d").unwrap());
}

#[test]
fn client_transaction_reruns_on_eagain() {
    let h = Harness::new();
    let mut a = h.client();
    let mut b = h.client();
    a.write("/cnt", "10").unwrap();
    let mut attempts = 0;
    a.transaction(|tx| {
        attempts += 1;
        let n: u32 = tx.read("/cnt")?.parse()?;
        if attempts == 1 {
            // Another writer sneaks in between our read and our commit.
            b.write("/cnt", "20")?;
        }
        tx.write("/cnt", &(n + 1).to_string())
    })
    .unwrap();
    assert_eq!(attempts, 2);
    assert_eq!(a.read("/cnt").unwrap(), "21");
}

#[test]
fn client_transaction_gives_up_after_bounded_attempts() {
    let h = Harness::new();
    let mut a = h.client();
    let mut b = h.client();
    a.write("/busy", "0").unwrap();
    let mut attempts = 0;
    let err = a
        .transaction(|tx| {
            attempts += 1;
            tx.read("/busy")?;
            b.write("/busy", &attempts.to_string())?;
            tx.write("/busy", "mine")
        })
        .unwrap_err();
    assert_eq!(attempts, MAX_TRANSACTION_ATTEMPTS);
    assert!(is_eagain(&err));
    let text = format!("{err:#}");
    assert!(
        text.starts_with(&format!(
            "transaction still conflicting after {MAX_TRANSACTION_ATTEMPTS} attempts in "
        )),
        "{text}"
    );
    assert!(text.contains(": commit transaction "), "{text}");
    assert!(text.ends_with(": EAGAIN"), "{text}");
}

#[test]
fn concurrent_transactions_never_lose_an_update() {
    let h = Harness::new();
    h.client().write("/counter", "0").unwrap();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let sock = h.sock.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect_path(&sock).unwrap();
                for _ in 0..10 {
                    c.transaction(|tx| {
                        let n: u32 = tx.read("/counter")?.parse()?;
                        tx.write("/counter", &(n + 1).to_string())
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(h.client().read("/counter").unwrap(), "40");
}

#[test]
fn client_skips_watch_events_and_stale_replies() {
    let h = Harness::fake(|req, out| {
        use vifkit::sys::xenstore::wire::{Message, MsgType, write_message};
        let event = Message::new(MsgType::WatchEvent, 0, 0, b"/x\0tok\0".to_vec());
        write_message(out, &event).unwrap();
        let stale = Message::new(
            MsgType::Read,
            req.req_id.wrapping_sub(1),
            0,
            b"old".to_vec(),
        );
        write_message(out, &stale).unwrap();
        let reply = Message {
            payload: b"fresh".to_vec(),
            ..req
        };
        write_message(out, &reply).unwrap();
    });
    let mut c = Client::connect_path(&h.sock).unwrap();
    assert_eq!(c.read("/x").unwrap(), "fresh");
}

#[test]
fn client_request_times_out() {
    let h = Harness::fake(|_req, _out| std::thread::sleep(Duration::from_secs(3)));
    let mut c = Client::connect_path(&h.sock).unwrap();
    c.set_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let err = c.read("/x").unwrap_err();
    let waited = started.elapsed();
    assert_eq!(format!("{err:#}"), "read /x: no reply before the deadline");
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
}

#[test]
fn connect_lists_every_path_tried() {
    let dir = support::scratch();
    let missing = dir.path().join("no-such-socket");
    let list = candidates(Some(missing.as_os_str()), Some(dir.path().as_os_str()));
    let err = Client::connect_candidates(&list).expect_err("no xenstore here");
    let text = err.to_string();
    let prefix = format!(
        "cannot connect to xenstore (tried {}: No such file or directory (os error 2), {}: ",
        missing.display(),
        dir.path().join("socket").display()
    );
    assert!(text.starts_with(&prefix), "{text}");
    for c in &list {
        assert!(text.contains(&format!("{}: ", c.path.display())), "{text}");
    }
    assert!(text.contains("/var/run/xenstored/socket: "), "{text}");
    assert!(text.contains(", /proc/xen/xenbus: "), "{text}");
    assert!(text.ends_with(')'), "{text}");
}

#[test]
fn connect_reads_the_environment() {
    // Env vars are process-wide and tests run in parallel, so Client::connect
    // runs in a child copy of this test binary (see `child_connect`).
    let h = Harness::new();
    h.client().write("/env/k", "via-env").unwrap();
    assert_eq!(support::child_connect(&h.sock), Ok("via-env".to_string()));

    let dir = support::scratch();
    let missing = dir.path().join("absent");
    let err = support::child_connect(&missing).unwrap_err();
    let prefix = format!(
        "cannot connect to xenstore (tried {}: No such file or directory (os error 2), ",
        missing.display()
    );
    assert!(err.starts_with(&prefix), "{err}");
    assert!(err.contains(", /run/xenstored/socket: "), "{err}");
}

/// Not a test of its own: the body `connect_reads_the_environment` runs in
/// a child process. Without the marker variable it returns at once.
#[test]
fn child_connect() {
    let Some(report) = std::env::var_os(support::CHILD_MARKER) else {
        return;
    };
    let text = match Client::connect().and_then(|mut c| c.read("/env/k")) {
        Ok(v) => format!("ok:{v}"),
        Err(e) => format!("error:{e:#}"),
    };
    std::fs::write(report, text).unwrap();
}

#[test]
fn read_many_pipelines_and_keeps_order() {
    let h = Harness::new();
    let mut c = h.client();
    c.write("/p/a", "1").unwrap();
    c.write("p/c", "3").unwrap();
    let paths: Vec<String> = ["/p/a", "/p/b", "/p/c", "/local/domain/0/p/c"]
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(
        c.read_many(&paths).unwrap(),
        [Some("1".to_owned()), None, None, Some("3".to_owned())]
    );
    // The connection is still in step: a plain read afterwards gets its own reply.
    assert_eq!(c.read("/p/a").unwrap(), "1");
    let bad = vec!["/p//x".to_owned()];
    assert!(c.read_many(&bad).is_err());
}
