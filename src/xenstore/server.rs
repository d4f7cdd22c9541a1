//! A small xenstore server on a unix socket, for tests and demos where no
//! Xen hypervisor runs (CONTRACT 3.6). Not a production daemon: one tree
//! in memory, no permissions, no quotas beyond the wire limits.
//!
//! Each connection gets a reader thread and a writer thread. Only the
//! writer touches the socket's send side, so watch events never interleave
//! with a reply; replies and events are queued under the state lock, so a
//! reply always precedes the events its request caused.

use std::collections::HashMap;
use std::io::{self, BufReader};
use std::net::Shutdown;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use log::{debug, info, trace, warn};

use super::store::{ConnId, State};
use super::wire::{self, Message};

struct Hub {
    state: State,
    outboxes: HashMap<ConnId, Sender<Message>>,
    last_conn: ConnId,
}

pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    hub: Arc<Mutex<Hub>>,
}

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
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves connections, one thread each, until accept fails for a
    /// reason other than a transient one.
    pub fn run(self) -> Result<()> {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let hub = Arc::clone(&self.hub);
                    thread::Builder::new()
                        .name("xenstored-conn".into())
                        .spawn(move || serve(hub, stream))
                        .context("spawn connection thread")?;
                }
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

fn lock(hub: &Mutex<Hub>) -> MutexGuard<'_, Hub> {
    // A panic elsewhere must not take every other connection down with it.
    hub.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn serve(hub: Arc<Mutex<Hub>>, stream: UnixStream) {
    let (tx, rx) = mpsc::channel::<Message>();
    let conn = {
        let mut h = lock(&hub);
        h.last_conn += 1;
        let id = h.last_conn;
        h.outboxes.insert(id, tx);
        id
    };
    debug!("xenstore connection {conn} opened");
    let writer = stream.try_clone().map(|mut out| {
        thread::spawn(move || {
            for msg in rx {
                trace!("xenstore conn {conn} send {msg:?}");
                if let Err(e) = wire::write_message(&mut out, &msg) {
                    debug!("xenstore connection {conn}: write: {e}");
                    break;
                }
            }
        })
    });
    if let Err(e) = &writer {
        warn!("xenstore connection {conn}: cannot clone socket: {e}");
    }
    let mut reader = BufReader::new(&stream);
    while writer.is_ok() {
        match wire::read_message(&mut reader) {
            Ok(req) => {
                trace!("xenstore conn {conn} recv {req:?}");
                let mut h = lock(&hub);
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
        let mut h = lock(&hub);
        h.state.disconnect(conn);
        h.outboxes.remove(&conn);
    }
    let _ = stream.shutdown(Shutdown::Both);
    if let Ok(w) = writer {
        let _ = w.join();
    }
    debug!("xenstore connection {conn} closed");
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
