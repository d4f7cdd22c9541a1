//! A small xenstore server on a unix socket, for tests and demos where no
//! Xen hypervisor runs (CONTRACT 3.6). Not a production daemon: one tree
//! in memory, no permissions, no quotas beyond the wire limits.
//!
//! Each connection gets a reader thread and a writer thread. Only the
//! writer touches the socket's send side, so watch events never interleave
//! with a reply; replies and events are queued under the state lock, so a
//! reply always precedes the events its request caused.
//!
//! The threads outlive their connection and wait for the next one: a hotplug
//! run connects once and leaves within a millisecond, and spawning two threads
//! for each connection cost it about 0.1 ms (BENCHMARKS.md). A real xenstored
//! spawns nothing per connection.

use std::collections::HashMap;
use std::io::{self, BufReader};
use std::net::Shutdown;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use log::{debug, info, trace, warn};

use super::store::{ConnId, State};
use crate::sys::xenstore::wire::{self, Message};

struct Hub {
    state: State,
    outboxes: HashMap<ConnId, Sender<Message>>,
    last_conn: ConnId,
}

pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    hub: Arc<Mutex<Hub>>,
    /// Workers waiting for a connection, each by the channel it takes one from.
    idle: Arc<Mutex<Vec<Sender<UnixStream>>>>,
}

/// How many workers may wait for a connection; more leave when their connection closes.
const MAX_IDLE_WORKERS: usize = 64;

/// What a worker hands its writer for one connection: the socket's send side, the queue
/// of messages for it, and where to say the queue has been drained.
type WriterJob = (UnixStream, Receiver<Message>, Sender<()>);

/// Binds `path` and serves until an unrecoverable accept error.
pub fn run(path: &Path) -> Result<()> {
    let server = Server::bind(path)?;
    info!("xenstore test server listening on {}", path.display());
    server.run()
}

impl Server {
    /// Binds the socket, replacing a stale socket left by an earlier run.
    /// Any other file at `path` is left alone and is an error.
    pub fn bind(path: &Path) -> Result<Server> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)
                .with_context(|| format!("remove stale socket {}", path.display()))?,
            Ok(_) => bail!("{} exists and is not a socket", path.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("stat {}", path.display())),
        }
        let listener =
            UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
        Ok(Server {
            listener,
            path: path.to_path_buf(),
            hub: Arc::new(Mutex::new(Hub {
                state: State::new(),
                outboxes: HashMap::new(),
                last_conn: 0,
            })),
            idle: Arc::new(Mutex::new(Vec::new())),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves connections, each on a worker of its own, until accept fails for
    /// a reason other than a transient one.
    pub fn run(self) -> Result<()> {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => self.hand_over(stream)?,
                Err(e) if transient(&e) => {
                    warn!("accept on {}: {e}", self.path.display());
                    thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("accept on {}", self.path.display()));
                }
            }
        }
    }

    /// Gives the connection to an idle worker, or to a new one when all are busy.
    fn hand_over(&self, stream: UnixStream) -> Result<()> {
        let mut stream = stream;
        while let Some(worker) = lock(&self.idle).pop() {
            match worker.send(stream) {
                Ok(()) => return Ok(()),
                // That worker is gone; the failed send gives the connection back.
                Err(mpsc::SendError(back)) => stream = back,
            }
        }
        let (tx, rx) = mpsc::channel();
        tx.send(stream).expect("the receiver is right here");
        let (hub, idle) = (Arc::clone(&self.hub), Arc::clone(&self.idle));
        thread::Builder::new()
            .name("xenstored-conn".into())
            .spawn(move || work(&hub, &idle, &tx, rx))
            .context("spawn connection thread")?;
        Ok(())
    }

    /// Runs the server on a background thread.
    pub fn spawn(self) -> JoinHandle<Result<()>> {
        thread::Builder::new()
            .name("xenstored".into())
            .spawn(move || self.run())
            .expect("spawn xenstored thread")
    }
}

fn transient(e: &io::Error) -> bool {
    use nix::errno::Errno;
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(
            Errno::EINTR
                | Errno::ECONNABORTED
                | Errno::EMFILE
                | Errno::ENFILE
                | Errno::ENOBUFS
                | Errno::ENOMEM
        )
    )
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take every other connection down with it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A worker: serves the connections it is given, one at a time, with a writer thread of
/// its own, and offers itself again after each.
fn work(
    hub: &Mutex<Hub>,
    idle: &Mutex<Vec<Sender<UnixStream>>>,
    me: &Sender<UnixStream>,
    streams: Receiver<UnixStream>,
) {
    let (jobs, queued) = mpsc::channel::<WriterJob>();
    let writer = thread::Builder::new()
        .name("xenstored-write".into())
        .spawn(move || {
            for (mut out, messages, drained) in queued {
                for msg in messages {
                    if let Err(e) = wire::write_message(&mut out, &msg) {
                        debug!("xenstore connection: write: {e}");
                        break;
                    }
                }
                let _ = drained.send(());
            }
        });
    if let Err(e) = writer {
        warn!("xenstore worker: cannot spawn its writer: {e}");
        return;
    }
    for stream in streams {
        serve(hub, stream, &jobs);
        let mut idle = lock(idle);
        // After a burst (1,000 plugs at once), most workers leave rather than idle forever.
        if idle.len() >= MAX_IDLE_WORKERS {
            break;
        }
        idle.push(me.clone());
    }
}

fn serve(hub: &Mutex<Hub>, stream: UnixStream, writer: &Sender<WriterJob>) {
    let (tx, rx) = mpsc::channel::<Message>();
    let conn = {
        let mut h = lock(hub);
        h.last_conn += 1;
        let id = h.last_conn;
        h.outboxes.insert(id, tx);
        id
    };
    debug!("xenstore connection {conn} opened");
    let (drained_tx, drained) = mpsc::channel();
    let writing = match stream.try_clone() {
        Ok(out) => writer
            .send((out, rx, drained_tx))
            .map_err(|_| "its writer is gone".to_owned()),
        Err(e) => Err(format!("cannot clone socket: {e}")),
    };
    if let Err(e) = &writing {
        warn!("xenstore connection {conn}: {e}");
    }
    let mut reader = BufReader::new(&stream);
    while writing.is_ok() {
        match wire::read_message(&mut reader) {
            Ok(req) => {
                trace!("xenstore conn {conn} recv {req:?}");
                let mut h = lock(hub);
                let out = h.state.handle(conn, &req);
                let h = &mut *h;
                if let Some(own) = h.outboxes.get(&conn) {
                    let _ = own.send(out.reply);
                }
                for (to, event) in out.events {
                    if let Some(outbox) = h.outboxes.get(&to) {
                        let _ = outbox.send(event);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => {
                // Includes an oversize length: the stream is out of sync.
                debug!("xenstore connection {conn}: read: {e}");
                break;
            }
        }
    }
    {
        // Dropping the outbox ends the writer's queue for this connection.
        let mut h = lock(hub);
        h.state.disconnect(conn);
        h.outboxes.remove(&conn);
    }
    let _ = stream.shutdown(Shutdown::Both);
    if writing.is_ok() {
        let _ = drained.recv();
    }
    debug!("xenstore connection {conn} closed");
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
