//! The test server against the real Debian clients (xenstore-utils 4.17,
//! python3-pyxs) and vifkit's own client (module `client`). Every test
//! runs its own server on a private socket; no real xenstore is touched.

#[path = "xenstore_compat/client.rs"]
mod client;
#[path = "xenstore_compat/support.rs"]
mod support;

use std::os::unix::net::UnixStream;
use std::time::Duration;

use support::{Harness, raw_read};
use vifkit::sys::xenstore::sanitise_error_text;
use vifkit::sys::xenstore::wire::XENSTORE_PAYLOAD_MAX;

#[test]
fn xenstore_write_then_read_single_key() {
    let h = Harness::new();
    let w = h.xs("xenstore-write", &["/local/domain/0/k", "value one"]);
    w.ok();
    let r = h.xs("xenstore-read", &["/local/domain/0/k"]);
    assert_eq!(r.ok(), "value one\n");
}

#[test]
fn xenstore_multi_key_write_and_read_use_one_transaction() {
    let h = Harness::new();
    h.xs("xenstore-write", &["/m/a", "1", "/m/b", "2"]).ok();
    assert_eq!(h.xs("xenstore-read", &["/m/a", "/m/b"]).ok(), "1\n2\n");
    // A missing key anywhere fails the whole read.
    let r = h.xs("xenstore-read", &["/m/a", "/m/none"]);
    assert_eq!(r.code, Some(1));
    assert_eq!(r.stderr, "xenstore-read: couldn't read path /m/none\n");
}

#[test]
fn xenstore_ls_prints_the_tree() {
    let h = Harness::new();
    h.xs(
        "xenstore-write",
        &["/t/a", "1", "/t/b/c", "x y", "/t/b/d", ""],
    )
    .ok();
    assert_eq!(
        h.xs("xenstore-ls", &["/t"]).ok(),
        "a = \"1\"\nb = \"\"\n c = \"x y\"\n d = \"\"\n"
    );
    // Without an argument it lists from the root.
    let all = h.xs("xenstore-ls", &[]).ok();
    assert!(
        all.starts_with("local = \"\"\n domain = \"\"\n  0 = \"\"\n"),
        "{all}"
    );
    let missing = h.xs("xenstore-ls", &["/none"]);
    assert_eq!(missing.code, Some(1));
}

#[test]
fn xenstore_rm_then_read_fails_with_exit_1() {
    let h = Harness::new();
    h.xs("xenstore-write", &["/r/k", "v"]).ok();
    h.xs("xenstore-rm", &["/r/k"]).ok();
    let r = h.xs("xenstore-read", &["/r/k"]);
    assert_eq!(r.code, Some(1));
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, "xenstore-read: couldn't read path /r/k\n");
    // Removing a missing node succeeds; a missing parent does not.
    h.xs("xenstore-rm", &["/r/k"]).ok();
    assert_eq!(h.xs("xenstore-rm", &["/none/k"]).code, Some(1));
}

#[test]
fn xenstore_list_and_exists() {
    let h = Harness::new();
    h.xs("xenstore-write", &["/l/b", "", "/l/a", "", "/l/a/x", "1"])
        .ok();
    assert_eq!(h.xs("xenstore-list", &["/l"]).ok(), "a\nb\n");
    assert_eq!(h.xs("xenstore-list", &["/l/b"]).ok(), "");
    assert_eq!(h.xs("xenstore-exists", &["/l/a/x"]).code, Some(0));
    assert_eq!(h.xs("xenstore-exists", &["/l/zz"]).code, Some(1));
}

#[test]
fn relative_paths_resolve_against_domain_0() {
    let h = Harness::new();
    h.xs("xenstore-write", &["backend/vif/3/0/bridge", "xenbr0"])
        .ok();
    let abs = "/local/domain/0/backend/vif/3/0/bridge";
    assert_eq!(h.xs("xenstore-read", &[abs]).ok(), "xenbr0\n");
    let mut c = h.client();
    assert_eq!(c.read(abs).unwrap(), "xenbr0");
    c.write("/local/domain/0/x", "abs").unwrap();
    assert_eq!(c.read("x").unwrap(), "abs");
    assert_eq!(h.xs("xenstore-read", &["x"]).ok(), "abs\n");
}

#[test]
fn exact_bytes_stored() {
    let h = Harness::new();
    let mut c = h.client();
    c.write("/e/status", "connected").unwrap();
    assert_eq!(raw_read(&h.sock, "/e/status"), b"connected");
    c.write("/e/empty", "").unwrap();
    assert_eq!(raw_read(&h.sock, "/e/empty"), b"");

    // xenstore-write unescapes its value; xenstore-read escapes on output.
    h.xs("xenstore-write", &["/e/esc", r"a\tb\\c\x01\101"]).ok();
    assert_eq!(raw_read(&h.sock, "/e/esc"), b"a\tb\\c\x01A");
    assert_eq!(c.read("/e/esc").unwrap(), "a\tb\\c\u{1}A");
    assert_eq!(
        h.xs("xenstore-read", &["/e/esc"]).ok(),
        "a\\tb\\\\c\\001A\n"
    );
}

#[test]
fn hotplug_error_reads_the_same_through_xenstore_read() {
    let h = Harness::new();
    let mut c = h.client();
    let b = "/local/domain/0/backend/vif/3/0";
    c.write(&format!("{b}/hotplug-status"), "").unwrap();
    let message = "attach vif3.0 to bridge xenbr0:\n\tNo such device \\ (os error 19) – é";
    c.write_hotplug_error(b, message).unwrap();
    let expected = sanitise_error_text(message);
    assert_eq!(
        expected,
        "attach vif3.0 to bridge xenbr0:  No such device ? (os error 19) ? ?"
    );
    assert_eq!(
        raw_read(&h.sock, &format!("{b}/hotplug-error")),
        expected.as_bytes()
    );
    assert_eq!(raw_read(&h.sock, &format!("{b}/hotplug-status")), b"error");
    assert_eq!(
        h.xs("xenstore-read", &[&format!("{b}/hotplug-error")]).ok(),
        format!("{expected}\n")
    );
}

#[test]
fn hotplug_error_is_truncated_to_one_payload() {
    let h = Harness::new();
    let mut c = h.client();
    let b = "backend/vif/1/0";
    c.write_hotplug_error(b, &"e".repeat(10_000)).unwrap();
    let stored = c.read(&format!("{b}/hotplug-error")).unwrap();
    let path_len = format!("{b}/hotplug-error").len();
    assert_eq!(stored.len() + path_len + 1, XENSTORE_PAYLOAD_MAX);
    assert_eq!(c.read(&format!("{b}/hotplug-status")).unwrap(), "error");
}

#[test]
fn pyxs_read_write_transaction_and_watch() {
    let h = Harness::new();
    h.client().write("/py/seed", "from-rust").unwrap();
    let out = h.python(
        r#"
import sys, pyxs
with pyxs.Client(unix_socket_path=sys.argv[1]) as c:
    print(c.read(b"/py/seed").decode())
    c.write(b"/py/a", b"1")
    c.write(b"rel", b"r")
    print(c.read(b"/local/domain/0/rel").decode())
    print(c.list(b"/py"))
    print(c.get_domain_path(7).decode())
    print(c.exists(b"/py/none"))
    try:
        c.read(b"/py/none")
    except pyxs.PyXSError as e:
        print("error", e.args[0])
    c.transaction()
    c.write(b"/py/t", b"in-tx")
    print(c.read(b"/py/t").decode())
    print(c.commit())
    m = c.monitor()
    m.watch(b"/py", b"tok")
    events = m.wait()
    print(next(events))
    c.write(b"/py/w", b"x")
    print(next(events))
"#,
    );
    assert_eq!(
        out,
        "from-rust\nr\n[b'a', b'seed']\n/local/domain/7\nFalse\nerror 2\nin-tx\nTrue\n\
         Event(path=b'/py', token=b'tok')\nEvent(path=b'/py/w', token=b'tok')\n"
    );
    let mut c = h.client();
    assert_eq!(c.read("/py/a").unwrap(), "1");
    assert_eq!(c.read("/py/t").unwrap(), "in-tx");
}

#[test]
fn pyxs_commit_conflict_returns_false() {
    let h = Harness::new();
    let out = h.python(
        r#"
import sys, pyxs
with pyxs.Client(unix_socket_path=sys.argv[1]) as a, pyxs.Client(unix_socket_path=sys.argv[1]) as b:
    a.write(b"/c", b"0")
    a.transaction()
    a.read(b"/c")
    b.write(b"/c", b"other")
    a.write(b"/c", b"mine")
    print(a.commit())
    print(a.read(b"/c").decode())
"#,
    );
    assert_eq!(out, "False\nother\n");
}

#[test]
fn raw_socket_sees_reply_type_and_ids_echoed() {
    use vifkit::sys::xenstore::wire::{Message, MsgType, read_message, write_message};
    let h = Harness::new();
    let mut s = UnixStream::connect(&h.sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write_message(
        &mut s,
        &Message::new(MsgType::Read, 0xdead, 0, b"/local\0".to_vec()),
    )
    .unwrap();
    let r = read_message(&mut s).unwrap();
    assert_eq!(
        (r.kind(), r.req_id, r.tx_id),
        (Some(MsgType::Read), 0xdead, 0)
    );
    let odd = Message {
        msg_type: 0xffff,
        req_id: 4,
        tx_id: 0,
        payload: Vec::new(),
    };
    write_message(&mut s, &odd).unwrap();
    let r = read_message(&mut s).unwrap();
    assert_eq!(
        (r.kind(), r.req_id, r.payload.as_slice()),
        (Some(MsgType::Error), 4, &b"ENOSYS\0"[..])
    );
}
