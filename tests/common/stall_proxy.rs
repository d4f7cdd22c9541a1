//! Sick xenstoreds for the tests of what a run does when xenstore is slow or stuck: a
//! proxy that hands every request to a real (test) xenstored at once but holds its answer
//! back as long as the test says, and a socket that never accepts a connection.

use std::io::{BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vifkit::sys::xenstore::wire::{Message, MsgType, read_message, write_message};

use super::{Scratch, scratch};

/// The requests a client sent in one go (a pipelined batch of reads, or one request), as
/// the proxy saw them.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Which connection, counted from 1 in the order the proxy accepted them.
    pub conn: usize,
    /// Counted from 1 over every connection.
    pub index: usize,
    /// Each request's type and first argument (its path, or "" for none).
    pub requests: Vec<(Option<MsgType>, String)>,
}

impl Batch {
    /// Whether one of the requests is a WRITE of `key` (a path ending so).
    pub fn writes(&self, key: &str) -> bool {
        self.requests
            .iter()
            .any(|(ty, path)| *ty == Some(MsgType::Write) && path.ends_with(key))
    }
}

type Delay = dyn Fn(&Batch) -> Duration + Send + Sync;

/// A unix socket in front of `upstream`: every batch goes to xenstored at once, and its
/// answers go back to the client after the delay `delay` gives that batch. A client that
/// gave up meanwhile just loses them.
pub struct StallProxy {
    pub socket: PathBuf,
    seen: Arc<Mutex<Vec<Batch>>>,
    _dir: Scratch,
}

impl StallProxy {
    pub fn start(
        upstream: &Path,
        delay: impl Fn(&Batch) -> Duration + Send + Sync + 'static,
    ) -> StallProxy {
        let dir = scratch("stall");
        let socket = dir.join("socket");
        let listener = UnixListener::bind(&socket).expect("bind the stalling proxy");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            upstream: upstream.to_path_buf(),
            delay: Arc::new(delay),
            seen: Arc::clone(&seen),
            conns: Arc::new(AtomicUsize::new(0)),
            batches: Arc::new(AtomicUsize::new(0)),
        };
        // Like the test xenstored, the threads end with the test binary.
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let shared = shared.clone();
                std::thread::spawn(move || shared.serve(client));
            }
        });
        StallProxy {
            socket,
            seen,
            _dir: dir,
        }
    }

    /// Every batch so far, in the order the proxy read them.
    pub fn seen(&self) -> Vec<Batch> {
        self.seen.lock().unwrap().clone()
    }
}

#[derive(Clone)]
struct Shared {
    upstream: PathBuf,
    delay: Arc<Delay>,
    seen: Arc<Mutex<Vec<Batch>>>,
    conns: Arc<AtomicUsize>,
    batches: Arc<AtomicUsize>,
}

impl Shared {
    /// One client's connection, with one of its own to xenstored; ends when either closes.
    fn serve(&self, client: UnixStream) {
        let conn = self.conns.fetch_add(1, Ordering::SeqCst) + 1;
        let Ok(mut server) = UnixStream::connect(&self.upstream) else {
            return;
        };
        let Ok(mut to_client) = client.try_clone() else {
            return;
        };
        let mut from_client = BufReader::new(client);
        loop {
            // The first request, and every other one that came with it.
            let Ok(first) = read_message(&mut from_client) else {
                return;
            };
            let mut messages = vec![first];
            while !from_client.buffer().is_empty() {
                match read_message(&mut from_client) {
                    Ok(m) => messages.push(m),
                    Err(_) => return,
                }
            }
            let batch = Batch {
                conn,
                index: self.batches.fetch_add(1, Ordering::SeqCst) + 1,
                requests: messages.iter().map(describe).collect(),
            };
            self.seen.lock().unwrap().push(batch.clone());
            let mut replies = Vec::new();
            for m in &messages {
                let reply = write_message(&mut server, m).and_then(|()| read_message(&mut server));
                match reply {
                    Ok(reply) => replies.extend(reply.encode().unwrap()),
                    Err(_) => return,
                }
            }
            std::thread::sleep((self.delay)(&batch));
            if to_client.write_all(&replies).is_err() {
                return;
            }
        }
    }
}

fn describe(m: &Message) -> (Option<MsgType>, String) {
    let first = m.payload.split(|b| *b == 0).next().unwrap_or_default();
    (m.kind(), String::from_utf8_lossy(first).into_owned())
}

/// A unix socket that listens but never accepts, its listen queue full: a blocking
/// connect() to it waits for ever, a non-blocking one gets EAGAIN.
pub struct NeverAccepts {
    pub socket: PathBuf,
    _listener: OwnedFd,
    _queued: Vec<OwnedFd>,
    _dir: Scratch,
}

impl NeverAccepts {
    pub fn start() -> NeverAccepts {
        use nix::errno::Errno;
        use nix::sys::socket::{
            AddressFamily, Backlog, SockFlag, SockType, UnixAddr, bind, connect, listen, socket,
        };
        let dir = scratch("full");
        let path = dir.join("socket");
        let addr = UnixAddr::new(&path).unwrap();
        let stream = |flags| socket(AddressFamily::Unix, SockType::Stream, flags, None).unwrap();
        let listener = stream(SockFlag::SOCK_CLOEXEC);
        bind(listener.as_raw_fd(), &addr).unwrap();
        listen(&listener, Backlog::new(0).unwrap()).unwrap();
        let mut queued = Vec::new();
        loop {
            let s = stream(SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK);
            match connect(s.as_raw_fd(), &addr) {
                Ok(()) => queued.push(s),
                Err(Errno::EAGAIN) => break,
                Err(e) => panic!("fill the listen queue of {}: {e}", path.display()),
            }
            assert!(queued.len() < 1000, "the listen queue never filled");
        }
        NeverAccepts {
            socket: path,
            _listener: listener,
            _queued: queued,
            _dir: dir,
        }
    }
}
