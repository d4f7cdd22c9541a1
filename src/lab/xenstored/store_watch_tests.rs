//! Watch semantics, driven through `State::handle` without sockets.

use super::tests::*;
use super::*;

#[test]
fn watch_fires_on_registration_then_on_changes_below() {
    let mut s = State::new();
    let out = watch(&mut s, A, "/w", "tok");
    assert_eq!(events(&out), [(A, "/w".into(), "tok".into())]);
    assert_eq!(
        write_events(&mut s, "/w/x/y"),
        [(A, "/w/x/y".into(), "tok".into())]
    );
    assert_eq!(write_events(&mut s, "/w"), [(A, "/w".into(), "tok".into())]);
    assert!(write_events(&mut s, "/wx").is_empty());
    assert!(write_events(&mut s, "/other").is_empty());
    // mkdir of an existing node and rm of a missing one change nothing.
    assert!(events(&call(&mut s, B, MsgType::Mkdir as u32, 0, &arg("/w"))).is_empty());
    assert!(events(&call(&mut s, B, MsgType::Rm as u32, 0, &arg("/w/none"))).is_empty());
}

#[test]
fn relative_watch_gets_relative_paths() {
    let mut s = State::new();
    let out = watch(&mut s, A, "backend", "t");
    assert_eq!(events(&out), [(A, "backend".into(), "t".into())]);
    assert_eq!(
        write_events(&mut s, "/local/domain/0/backend/vif/1/0/state"),
        [(A, "backend/vif/1/0/state".into(), "t".into())]
    );
    watch(&mut s, B, "/local/domain/0/backend", "abs");
    let ev = write_events(&mut s, "backend/x");
    assert_eq!(ev.len(), 2);
    assert!(ev.contains(&(A, "backend/x".into(), "t".into())));
    assert!(ev.contains(&(B, "/local/domain/0/backend/x".into(), "abs".into())));
}

#[test]
fn removing_an_ancestor_fires_watches_below() {
    let mut s = State::new();
    write(&mut s, A, 0, "/r/a/b", b"").unwrap();
    watch(&mut s, A, "/r/a/b", "deep");
    watch(&mut s, A, "/", "root");
    let out = call(&mut s, B, MsgType::Rm as u32, 0, &arg("/r"));
    let ev = events(&out);
    assert_eq!(ev.len(), 2);
    assert!(ev.contains(&(A, "/r/a/b".into(), "deep".into())));
    assert!(ev.contains(&(A, "/r".into(), "root".into())));
}

#[test]
fn transactional_writes_fire_at_commit() {
    let mut s = State::new();
    watch(&mut s, A, "/w", "t");
    let tx = start(&mut s, B);
    let mut p = arg("/w/k");
    p.extend_from_slice(b"v");
    assert!(events(&call(&mut s, B, MsgType::Write as u32, tx, &p)).is_empty());
    let out = call(&mut s, B, MsgType::TransactionEnd as u32, tx, b"T\0");
    assert_eq!(out.reply.payload, b"OK\0");
    assert_eq!(events(&out), [(A, "/w/k".into(), "t".into())]);
}

#[test]
fn unwatch_duplicates_and_special_watches() {
    let mut s = State::new();
    watch(&mut s, A, "/w", "t");
    assert_eq!(ask(&mut s, A, MsgType::Watch, 0, b"/w\0t\0"), err("EEXIST"));
    // The same path under another token is a separate watch.
    watch(&mut s, A, "/w", "u");
    assert_eq!(
        ask(&mut s, A, MsgType::Unwatch, 0, b"/w\0t\0").unwrap(),
        b"OK\0"
    );
    assert_eq!(
        ask(&mut s, A, MsgType::Unwatch, 0, b"/w\0t\0"),
        err("ENOENT")
    );
    assert_eq!(write_events(&mut s, "/w"), [(A, "/w".into(), "u".into())]);
    let out = watch(&mut s, A, "@releaseDomain", "rel");
    assert_eq!(events(&out), [(A, "@releaseDomain".into(), "rel".into())]);
    assert_eq!(write_events(&mut s, "/w").len(), 1);
    s.disconnect(A);
    assert!(write_events(&mut s, "/w").is_empty());
}
