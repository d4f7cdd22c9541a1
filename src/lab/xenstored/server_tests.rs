//! The server over real sockets: binding, framing limits, ordering.

use super::*;
use crate::lab::Scratch;
use crate::sys::xenstore::wire::{HEADER_LEN, Header, MsgType, XENSTORE_PAYLOAD_MAX};
use std::io::{Read, Write};

/// A socket path in a private directory, which goes with it.
struct SocketPath {
    path: PathBuf,
    _dir: Scratch,
}

impl std::ops::Deref for SocketPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for SocketPath {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

fn socket_path(name: &str) -> SocketPath {
    let dir = Scratch::new("xs-unit").unwrap();
    SocketPath {
        path: dir.join(name),
        _dir: dir,
    }
}

fn started(name: &str) -> (SocketPath, UnixStream) {
    let path = socket_path(name);
    Server::bind(&path).unwrap().spawn();
    let s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (path, s)
}

fn send(s: &mut UnixStream, ty: MsgType, req_id: u32, payload: &[u8]) {
    wire::write_message(s, &Message::new(ty, req_id, 0, payload.to_vec())).unwrap();
}

#[test]
fn bind_replaces_a_stale_socket_but_not_a_file() {
    let path = socket_path("sock");
    drop(UnixListener::bind(&path).unwrap());
    let server = Server::bind(&path).unwrap();
    assert_eq!(server.path(), &*path);
    drop(server);
    let file = socket_path("file");
    std::fs::write(&file, "keep").unwrap();
    let err = Server::bind(&file).err().unwrap();
    assert_eq!(
        err.to_string(),
        format!("{} exists and is not a socket", file.display())
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
}

#[test]
fn oversize_length_closes_the_connection() {
    let (_path, mut s) = started("sock");
    let head = Header {
        msg_type: MsgType::Write as u32,
        req_id: 1,
        tx_id: 0,
        len: XENSTORE_PAYLOAD_MAX as u32 + 1,
    };
    s.write_all(&head.encode()).unwrap();
    let mut buf = [0u8; HEADER_LEN];
    assert_eq!(s.read(&mut buf).unwrap(), 0, "expected EOF");
}

#[test]
fn full_size_payload_is_accepted() {
    let (_path, mut s) = started("sock");
    let mut payload = b"/big\0".to_vec();
    payload.resize(XENSTORE_PAYLOAD_MAX, b'v');
    send(&mut s, MsgType::Write, 1, &payload);
    assert_eq!(wire::read_message(&mut s).unwrap().payload, b"OK\0");
    send(&mut s, MsgType::Read, 2, b"/big\0");
    let reply = wire::read_message(&mut s).unwrap();
    assert_eq!(reply.payload.len(), XENSTORE_PAYLOAD_MAX - 5);
}

#[test]
fn reply_precedes_the_events_it_caused() {
    let (_path, mut s) = started("sock");
    send(&mut s, MsgType::Watch, 5, b"/w\0tok\0");
    let first = wire::read_message(&mut s).unwrap();
    assert_eq!((first.kind(), first.req_id), (Some(MsgType::Watch), 5));
    let second = wire::read_message(&mut s).unwrap();
    assert_eq!(second.kind(), Some(MsgType::WatchEvent));
    assert_eq!(second.payload, b"/w\0tok\0");
    send(&mut s, MsgType::Write, 6, b"/w/a\0v");
    let reply = wire::read_message(&mut s).unwrap();
    assert_eq!((reply.kind(), reply.req_id), (Some(MsgType::Write), 6));
    let event = wire::read_message(&mut s).unwrap();
    assert_eq!(event.payload, b"/w/a\0tok\0");
}

#[test]
fn events_from_other_connections_never_split_a_reply() {
    let (path, mut watcher) = started("sock");
    send(&mut watcher, MsgType::Watch, 1, b"/\0all\0");
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let path = path.to_path_buf();
            thread::spawn(move || {
                let mut s = UnixStream::connect(&path).unwrap();
                for i in 0..100u32 {
                    let payload = format!("/n{w}/k{i}\0{}", "x".repeat(1000));
                    send(&mut s, MsgType::Write, i, payload.as_bytes());
                    wire::read_message(&mut s).unwrap();
                }
            })
        })
        .collect();
    // Meanwhile the watcher reads a big value over and over; every
    // message, reply or event, must come out whole.
    send(
        &mut watcher,
        MsgType::Write,
        2,
        format!("/big\0{}", "y".repeat(4000)).as_bytes(),
    );
    let mut events = 0;
    for req in 3..53 {
        send(&mut watcher, MsgType::Read, req, b"/big\0");
        loop {
            let m = wire::read_message(&mut watcher).unwrap();
            match m.kind() {
                Some(MsgType::WatchEvent) => {
                    assert!(m.payload.ends_with(b"\0all\0"), "{m:?}");
                    events += 1;
                }
                Some(MsgType::Watch) | Some(MsgType::Write) => assert_eq!(m.payload, b"OK\0"),
                Some(MsgType::Read) if m.req_id == req => {
                    assert_eq!(m.payload.len(), 4000);
                    break;
                }
                _ => panic!("unexpected {m:?}"),
            }
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    assert!(events > 0);
}

#[test]
fn disconnect_drops_transactions_and_watches() {
    let (path, mut a) = started("sock");
    send(&mut a, MsgType::TransactionStart, 1, b"\0");
    let id = wire::read_message(&mut a).unwrap().payload;
    send(&mut a, MsgType::Watch, 2, b"/\0t\0");
    drop(a);
    let mut b = UnixStream::connect(&path).unwrap();
    b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let tx: u32 = std::str::from_utf8(id.strip_suffix(&[0]).unwrap())
        .unwrap()
        .parse()
        .unwrap();
    wire::write_message(&mut b, &Message::new(MsgType::Read, 3, tx, b"/\0".to_vec())).unwrap();
    let reply = wire::read_message(&mut b).unwrap();
    // Either the server already forgot the transaction (ENOENT) or it
    // belongs to another connection (ENOENT as well).
    assert_eq!(reply.payload, b"ENOENT\0");
}
