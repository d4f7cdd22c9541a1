//! Server semantics, driven through `State::handle` without sockets.

use super::*;

pub(super) const A: ConnId = 1;
pub(super) const B: ConnId = 2;

pub(super) fn call(s: &mut State, conn: ConnId, ty: u32, tx: u32, payload: &[u8]) -> Outcome {
    let req = Message {
        msg_type: ty,
        req_id: 77,
        tx_id: tx,
        payload: payload.to_vec(),
    };
    let out = s.handle(conn, &req);
    assert_eq!(out.reply.req_id, 77);
    assert_eq!(out.reply.tx_id, tx);
    out
}

/// The reply payload, or the error name.
pub(super) fn ask(
    s: &mut State,
    conn: ConnId,
    ty: MsgType,
    tx: u32,
    payload: &[u8],
) -> Result<Vec<u8>, String> {
    let r = call(s, conn, ty as u32, tx, payload).reply;
    match r.kind() {
        Some(MsgType::Error) => {
            let name = r.payload.strip_suffix(&[0]).expect("NUL-terminated");
            Err(String::from_utf8(name.to_vec()).unwrap())
        }
        _ => {
            assert_eq!(r.msg_type, ty as u32);
            Ok(r.payload)
        }
    }
}

pub(super) fn arg(path: &str) -> Vec<u8> {
    nul_terminated(path)
}

pub(super) fn write(
    s: &mut State,
    conn: ConnId,
    tx: u32,
    path: &str,
    value: &[u8],
) -> Result<(), String> {
    let mut p = arg(path);
    p.extend_from_slice(value);
    assert_eq!(ask(s, conn, MsgType::Write, tx, &p)?, b"OK\0");
    Ok(())
}

pub(super) fn read(s: &mut State, conn: ConnId, tx: u32, path: &str) -> Result<Vec<u8>, String> {
    ask(s, conn, MsgType::Read, tx, &arg(path))
}

pub(super) fn start(s: &mut State, conn: ConnId) -> u32 {
    let id = ask(s, conn, MsgType::TransactionStart, 0, b"\0").unwrap();
    let id = String::from_utf8(id.strip_suffix(&[0]).unwrap().to_vec()).unwrap();
    id.parse().unwrap()
}

pub(super) fn end(s: &mut State, conn: ConnId, tx: u32, commit: bool) -> Result<Vec<u8>, String> {
    let arg: &[u8] = if commit { b"T\0" } else { b"F\0" };
    ask(s, conn, MsgType::TransactionEnd, tx, arg)
}

pub(super) fn err(e: &str) -> Result<Vec<u8>, String> {
    Err(e.to_string())
}

/// (connection, path, token) of each event.
pub(super) fn events(out: &Outcome) -> Vec<(ConnId, String, String)> {
    out.events
        .iter()
        .map(|(c, m)| {
            assert_eq!(
                (m.kind(), m.req_id, m.tx_id),
                (Some(MsgType::WatchEvent), 0, 0)
            );
            let text = String::from_utf8(m.payload.clone()).unwrap();
            let parts: Vec<&str> = text.split('\0').collect();
            assert_eq!(parts.len(), 3, "{text:?}");
            (*c, parts[0].to_string(), parts[1].to_string())
        })
        .collect()
}

pub(super) fn watch(s: &mut State, conn: ConnId, path: &str, token: &str) -> Outcome {
    let out = call(
        s,
        conn,
        MsgType::Watch as u32,
        0,
        format!("{path}\0{token}\0").as_bytes(),
    );
    assert_eq!(out.reply.payload, b"OK\0");
    out
}

pub(super) fn write_events(s: &mut State, path: &str) -> Vec<(ConnId, String, String)> {
    let mut p = arg(path);
    p.push(b'x');
    events(&call(s, B, MsgType::Write as u32, 0, &p))
}

#[test]
fn relative_paths_resolve_against_domain_0() {
    let mut s = State::new();
    write(&mut s, A, 0, "a/b", b"v").unwrap();
    assert_eq!(read(&mut s, A, 0, "/local/domain/0/a/b").unwrap(), b"v");
    assert_eq!(read(&mut s, A, 0, "a").unwrap(), b"");
    assert_eq!(read(&mut s, A, 0, "/local/domain/0").unwrap(), b"");
}

#[test]
fn values_are_stored_byte_for_byte() {
    let mut s = State::new();
    let value = b"\0\x01\\n\xff tail\n";
    write(&mut s, A, 0, "/v", value).unwrap();
    assert_eq!(read(&mut s, A, 0, "/v").unwrap(), value);
    write(&mut s, A, 0, "/v", b"").unwrap();
    assert_eq!(read(&mut s, A, 0, "/v").unwrap(), b"");
}

#[test]
fn error_replies_echo_the_request() {
    let mut s = State::new();
    let r = call(&mut s, A, MsgType::Read as u32, 0, b"/missing\0").reply;
    assert_eq!(
        (r.kind(), r.req_id, r.payload.as_slice()),
        (Some(MsgType::Error), 77, &b"ENOENT\0"[..])
    );
}

#[test]
fn rm_subtree_and_missing_nodes() {
    let mut s = State::new();
    write(&mut s, A, 0, "/a/b/c", b"1").unwrap();
    assert_eq!(
        ask(&mut s, A, MsgType::Rm, 0, &arg("/a/b")).unwrap(),
        b"OK\0"
    );
    assert_eq!(read(&mut s, A, 0, "/a/b/c"), err("ENOENT"));
    assert_eq!(
        ask(&mut s, A, MsgType::Rm, 0, &arg("/a/b")).unwrap(),
        b"OK\0"
    );
    assert_eq!(
        ask(&mut s, A, MsgType::Rm, 0, &arg("/a/b/c")),
        err("ENOENT")
    );
    assert_eq!(ask(&mut s, A, MsgType::Rm, 0, &arg("/")), err("EINVAL"));
}

#[test]
fn directory_lists_children() {
    let mut s = State::new();
    write(&mut s, A, 0, "/d/b", b"").unwrap();
    write(&mut s, A, 0, "/d/a", b"").unwrap();
    assert_eq!(
        ask(&mut s, A, MsgType::Directory, 0, &arg("/d")).unwrap(),
        b"a\0b\0"
    );
    assert_eq!(
        ask(&mut s, A, MsgType::Directory, 0, &arg("/d/a")).unwrap(),
        b""
    );
    assert_eq!(
        ask(&mut s, A, MsgType::Directory, 0, &arg("/none")),
        err("ENOENT")
    );
    assert_eq!(
        ask(&mut s, A, MsgType::Directory, 0, &arg("/")).unwrap(),
        b"d\0local\0"
    );
}

#[test]
fn directory_too_big_for_one_payload() {
    let mut s = State::new();
    // 300 names of 13 bytes + NUL = 4200 bytes.
    for i in 0..300 {
        write(&mut s, A, 0, &format!("/big/child-{i:07}"), b"").unwrap();
    }
    assert_eq!(
        ask(&mut s, A, MsgType::Directory, 0, &arg("/big")),
        err("E2BIG")
    );
}

#[test]
fn mkdir_keeps_value() {
    let mut s = State::new();
    write(&mut s, A, 0, "/m", b"keep").unwrap();
    assert_eq!(
        ask(&mut s, A, MsgType::Mkdir, 0, &arg("/m")).unwrap(),
        b"OK\0"
    );
    assert_eq!(
        ask(&mut s, A, MsgType::Mkdir, 0, &arg("/m/n/o")).unwrap(),
        b"OK\0"
    );
    assert_eq!(read(&mut s, A, 0, "/m").unwrap(), b"keep");
    assert_eq!(read(&mut s, A, 0, "/m/n/o").unwrap(), b"");
}

#[test]
fn malformed_requests_get_einval() {
    let mut s = State::new();
    for bad in ["a//b", "/a/", "", "@introduceDomain", "a b"] {
        assert_eq!(read(&mut s, A, 0, bad), err("EINVAL"), "{bad:?}");
    }
    let too_long = format!("/{}", "a".repeat(3072));
    assert_eq!(read(&mut s, A, 0, &too_long), err("EINVAL"));
    assert_eq!(ask(&mut s, A, MsgType::Read, 0, b"/a"), err("EINVAL"));
    assert_eq!(ask(&mut s, A, MsgType::Read, 0, b"/a\0/b\0"), err("EINVAL"));
    assert_eq!(ask(&mut s, A, MsgType::Read, 0, b"/\xff\0"), err("EINVAL"));
    assert_eq!(ask(&mut s, A, MsgType::Write, 0, b"/no-nul"), err("EINVAL"));
    assert_eq!(ask(&mut s, A, MsgType::Watch, 0, b"/a\0"), err("EINVAL"));
    assert_eq!(
        ask(&mut s, A, MsgType::Watch, 0, b"@foo\0t\0"),
        err("EINVAL")
    );
}

#[test]
fn unsupported_types_get_enosys() {
    let mut s = State::new();
    for ty in [
        0, 8, 9, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 99, 0xffff,
    ] {
        let r = call(&mut s, A, ty, 0, b"/\0").reply;
        assert_eq!(
            (r.kind(), r.payload.as_slice()),
            (Some(MsgType::Error), &b"ENOSYS\0"[..]),
            "type {ty}"
        );
    }
}

#[test]
fn domain_path_and_perms() {
    let mut s = State::new();
    assert_eq!(
        ask(&mut s, A, MsgType::GetDomainPath, 0, b"3\0").unwrap(),
        b"/local/domain/3\0"
    );
    assert_eq!(
        ask(&mut s, A, MsgType::GetDomainPath, 0, b"x\0"),
        err("EINVAL")
    );
    assert_eq!(
        ask(&mut s, A, MsgType::GetPerms, 0, &arg("/local")).unwrap(),
        b"n0\0"
    );
    assert_eq!(
        ask(&mut s, A, MsgType::GetPerms, 0, &arg("/none")),
        err("ENOENT")
    );
}

#[test]
fn transaction_isolation_and_abort() {
    let mut s = State::new();
    let tx = start(&mut s, A);
    write(&mut s, A, tx, "/t", b"in-tx").unwrap();
    assert_eq!(read(&mut s, A, tx, "/t").unwrap(), b"in-tx");
    assert_eq!(read(&mut s, A, 0, "/t"), err("ENOENT"));
    // Another connection cannot use this transaction id.
    assert_eq!(read(&mut s, B, tx, "/t"), err("ENOENT"));
    assert_eq!(end(&mut s, A, tx, false).unwrap(), b"OK\0");
    assert_eq!(read(&mut s, A, 0, "/t"), err("ENOENT"));
    assert_eq!(end(&mut s, A, tx, true), err("ENOENT"));
}

#[test]
fn commit_applies_writes_and_removals() {
    let mut s = State::new();
    write(&mut s, A, 0, "/old/x", b"1").unwrap();
    let tx = start(&mut s, A);
    write(&mut s, A, tx, "/new/y", b"2").unwrap();
    assert_eq!(
        ask(&mut s, A, MsgType::Rm, tx, &arg("/old")).unwrap(),
        b"OK\0"
    );
    assert_eq!(read(&mut s, A, tx, "/old/x"), err("ENOENT"));
    assert_eq!(end(&mut s, A, tx, true).unwrap(), b"OK\0");
    assert_eq!(read(&mut s, A, 0, "/new/y").unwrap(), b"2");
    assert_eq!(read(&mut s, A, 0, "/old"), err("ENOENT"));
}

#[test]
fn conflicting_commit_gets_eagain() {
    let mut s = State::new();
    write(&mut s, A, 0, "/c", b"0").unwrap();
    let tx = start(&mut s, A);
    assert_eq!(read(&mut s, A, tx, "/c").unwrap(), b"0");
    write(&mut s, B, 0, "/c", b"1").unwrap();
    write(&mut s, A, tx, "/c", b"2").unwrap();
    assert_eq!(end(&mut s, A, tx, true), err("EAGAIN"));
    assert_eq!(read(&mut s, A, 0, "/c").unwrap(), b"1");
    // The failed transaction is gone.
    assert_eq!(end(&mut s, A, tx, true), err("ENOENT"));
}

#[test]
fn change_after_start_but_before_first_read_conflicts() {
    let mut s = State::new();
    write(&mut s, A, 0, "/c", b"0").unwrap();
    let tx = start(&mut s, A);
    write(&mut s, B, 0, "/c", b"1").unwrap();
    // The transaction reads its snapshot, so the commit must be refused.
    assert_eq!(read(&mut s, A, tx, "/c").unwrap(), b"0");
    assert_eq!(end(&mut s, A, tx, true), err("EAGAIN"));
}

#[test]
fn unrelated_changes_do_not_conflict() {
    let mut s = State::new();
    write(&mut s, A, 0, "/p/a", b"0").unwrap();
    write(&mut s, A, 0, "/p/b", b"0").unwrap();
    let tx = start(&mut s, A);
    read(&mut s, A, tx, "/p/a").unwrap();
    write(&mut s, A, tx, "/p/a", b"1").unwrap();
    write(&mut s, B, 0, "/p/b", b"1").unwrap();
    write(&mut s, B, 0, "/q", b"1").unwrap();
    assert_eq!(end(&mut s, A, tx, true).unwrap(), b"OK\0");
    assert_eq!(read(&mut s, A, 0, "/p/a").unwrap(), b"1");
}

#[test]
fn transaction_limits() {
    let mut s = State::new();
    let ids: Vec<u32> = (0..10).map(|_| start(&mut s, A)).collect();
    assert_eq!(
        ask(&mut s, A, MsgType::TransactionStart, 0, b"\0"),
        err("ENOSPC")
    );
    assert_eq!(
        ask(&mut s, A, MsgType::TransactionStart, ids[0], b"\0"),
        err("EBUSY")
    );
    assert_eq!(
        ask(&mut s, A, MsgType::TransactionEnd, ids[0], b"X\0"),
        err("EINVAL")
    );
    start(&mut s, B);
    s.disconnect(A);
    assert_eq!(end(&mut s, A, ids[1], false), err("ENOENT"));
}
