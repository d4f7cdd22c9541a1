//! Blocking xenstore client: a hotplug run makes a handful of requests, so
//! one connection, one request at a time, each with a deadline.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use log::{debug, trace, warn};

use super::error::XsError;
use super::path::{PathError, validate_path};
pub use super::sanitise::sanitise_error_text;
use super::transport::{Candidate, Transport, candidates};
use super::wire::{Message, MsgType, XENSTORE_PAYLOAD_MAX, nul_terminated};

/// Per-request deadline unless [`Client::set_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a transaction is run before a conflict is reported.
pub const MAX_TRANSACTION_ATTEMPTS: u32 = 20;

#[derive(Debug)]
pub struct Client {
    transport: Transport,
    timeout: Duration,
    last_req_id: u32,
}

impl Client {
    /// Connects in the order of CONTRACT 3.1, honouring `XENSTORED_PATH`
    /// and `XENSTORED_RUNDIR`.
    pub fn connect() -> Result<Client> {
        let path = std::env::var_os("XENSTORED_PATH");
        let rundir = std::env::var_os("XENSTORED_RUNDIR");
        Client::connect_candidates(&candidates(path.as_deref(), rundir.as_deref()))
    }

    /// Whether this host is meant to have a xenstore: a Xen dom0 (its xenbus device is
    /// there) or a caller that named one (`XENSTORED_PATH`, `XENSTORED_RUNDIR`). A KVM host
    /// has none, and not reaching it there is no error.
    pub fn expected() -> bool {
        let named = ["XENSTORED_PATH", "XENSTORED_RUNDIR"]
            .iter()
            .any(|key| std::env::var_os(key).is_some_and(|v| !v.is_empty()));
        named
            || ["/dev/xen/xenbus", "/proc/xen/xenbus"]
                .iter()
                .any(|p| Path::new(p).exists())
    }

    /// Connects to the first candidate that opens; the error lists every
    /// path tried with its reason.
    pub fn connect_candidates(list: &[Candidate]) -> Result<Client> {
        let mut tried = Vec::new();
        for c in list {
            match Transport::open(c) {
                Ok(transport) => {
                    debug!("connected to xenstore at {}", c.path.display());
                    return Ok(Client::new(transport));
                }
                Err(e) => tried.push(format!("{}: {e}", c.path.display())),
            }
        }
        bail!("cannot connect to xenstore (tried {})", tried.join(", "))
    }

    /// Connects to the unix socket at `path`.
    pub fn connect_path(path: &Path) -> Result<Client> {
        let s = std::os::unix::net::UnixStream::connect(path)
            .with_context(|| format!("cannot connect to xenstore at {}", path.display()))?;
        Ok(Client::new(Transport::socket(s)))
    }

    fn new(transport: Transport) -> Client {
        Client {
            transport,
            timeout: DEFAULT_TIMEOUT,
            last_req_id: 0,
        }
    }

    /// Deadline for each request, and for the retries of a transaction.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The value at `path`, as lossy UTF-8.
    pub fn read(&mut self, path: &str) -> Result<String> {
        self.op_read(0, path)
    }

    /// The value at `path`, or `None` when the node does not exist.
    pub fn read_optional(&mut self, path: &str) -> Result<Option<String>> {
        optional(self.op_read(0, path))
    }

    // Callers log the changes they mean at info (a plan step, `connected`); the transport
    // only traces them, so a log line is not printed twice.
    pub fn write(&mut self, path: &str, value: &str) -> Result<()> {
        debug!("xenstore write {path} = {value:?}");
        self.op_write(0, path, value)
    }

    /// Creates `path` (and missing parents) with empty values; an existing
    /// node keeps its value.
    pub fn mkdir(&mut self, path: &str) -> Result<()> {
        debug!("xenstore mkdir {path}");
        self.op_path(MsgType::Mkdir, "mkdir", 0, path).map(drop)
    }

    /// Removes `path` and everything below it; a missing node is success.
    pub fn rm(&mut self, path: &str) -> Result<()> {
        debug!("xenstore rm {path}");
        self.op_rm(0, path)
    }

    /// Names of the children of `path`.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>> {
        self.op_directory(0, path)
    }

    pub fn exists(&mut self, path: &str) -> Result<bool> {
        Ok(optional(self.op_read(0, path))?.is_some())
    }

    /// The home path of domain `domid`, e.g. `/local/domain/3`.
    pub fn get_domain_path(&mut self, domid: u32) -> Result<String> {
        let reply = self.request(
            MsgType::GetDomainPath,
            0,
            nul_terminated(&domid.to_string()),
            ("get domain path of", &domid.to_string()),
        )?;
        Ok(text(trim_nul(&reply)))
    }

    /// Runs `f` inside a transaction and commits it. On a commit conflict
    /// (`EAGAIN`) the whole closure runs again, reads included, up to
    /// [`MAX_TRANSACTION_ATTEMPTS`] times and within the client timeout.
    /// If `f` fails, the transaction is aborted and its error returned.
    pub fn transaction<T>(
        &mut self,
        mut f: impl FnMut(&mut Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let id = self.start_transaction()?;
            let outcome = f(&mut Transaction { client: self, id });
            let result = match outcome {
                Ok(value) => self.end_transaction(id, true).map(|()| value),
                Err(e) => {
                    if let Err(abort) = self.end_transaction(id, false) {
                        warn!("abort transaction {id}: {abort:#}");
                    }
                    Err(e)
                }
            };
            match result {
                Err(e) if super::error::is_eagain(&e) => {
                    let elapsed = started.elapsed();
                    if attempt >= MAX_TRANSACTION_ATTEMPTS || elapsed >= self.timeout {
                        return Err(e.context(format!(
                            "transaction still conflicting after {attempt} attempts in {elapsed:.1?}"
                        )));
                    }
                    debug!("transaction {id} conflicted (attempt {attempt}); running it again");
                    // Grows a little each time so two busy writers drift apart.
                    std::thread::sleep(Duration::from_millis(u64::from(attempt.min(10))));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Reports a hotplug failure the way libxl and netback expect:
    /// `hotplug-error` (one sanitised line) and `hotplug-status` = `error`,
    /// in one transaction.
    pub fn write_hotplug_error(&mut self, backend_path: &str, message: &str) -> Result<()> {
        check_path("write hotplug error under", backend_path)?;
        let backend = backend_path.strip_suffix('/').unwrap_or(backend_path);
        let error_path = format!("{backend}/hotplug-error");
        let status_path = format!("{backend}/hotplug-status");
        let mut text = sanitise_error_text(message);
        text.truncate(XENSTORE_PAYLOAD_MAX.saturating_sub(error_path.len() + 1));
        debug!("xenstore write {error_path} = {text:?}, {status_path} = \"error\"");
        self.transaction(|tx| {
            tx.write(&error_path, &text)?;
            tx.write(&status_path, "error")
        })
    }

    fn start_transaction(&mut self) -> Result<u32> {
        let reply = self.request(
            MsgType::TransactionStart,
            0,
            vec![0],
            ("start transaction", ""),
        )?;
        let id_text = text(trim_nul(&reply));
        match id_text.parse::<u32>() {
            Ok(id) if id != 0 => Ok(id),
            _ => bail!("start transaction: server sent transaction id {id_text:?}"),
        }
    }

    fn end_transaction(&mut self, id: u32, commit: bool) -> Result<()> {
        let (arg, op) = match commit {
            true => (b"T\0".to_vec(), "commit transaction"),
            false => (b"F\0".to_vec(), "abort transaction"),
        };
        self.request(MsgType::TransactionEnd, id, arg, (op, &id.to_string()))
            .map(drop)
    }

    fn op_read(&mut self, tx: u32, path: &str) -> Result<String> {
        let reply = self.op_path(MsgType::Read, "read", tx, path)?;
        Ok(text(&reply))
    }

    fn op_write(&mut self, tx: u32, path: &str, value: &str) -> Result<()> {
        check_path("write", path)?;
        let mut payload = nul_terminated(path);
        payload.extend_from_slice(value.as_bytes());
        self.request(MsgType::Write, tx, payload, ("write", path))
            .map(drop)
    }

    fn op_rm(&mut self, tx: u32, path: &str) -> Result<()> {
        match self.op_path(MsgType::Rm, "rm", tx, path) {
            Err(e) if super::error::is_enoent(&e) => Ok(()),
            other => other.map(drop),
        }
    }

    fn op_directory(&mut self, tx: u32, path: &str) -> Result<Vec<String>> {
        let reply = self.op_path(MsgType::Directory, "directory", tx, path)?;
        Ok(reply
            .split(|b| *b == 0)
            .filter(|name| !name.is_empty())
            .map(text)
            .collect())
    }

    /// Reads several keys with one round trip on a socket: every READ goes out before the
    /// first reply is awaited (xenstored answers a connection's requests in order; each is
    /// matched by its req_id). The kernel device gets them one at a time. A missing key is None.
    pub fn read_many(&mut self, paths: &[String]) -> Result<Vec<Option<String>>> {
        if matches!(self.transport, Transport::Device(_)) {
            return paths.iter().map(|p| self.read_optional(p)).collect();
        }
        let deadline = Instant::now() + self.timeout;
        let mut ids = Vec::with_capacity(paths.len());
        let mut batch = Vec::new();
        for path in paths {
            check_path("read", path)?;
            self.last_req_id = self.last_req_id.wrapping_add(1);
            ids.push(self.last_req_id);
            batch.extend(
                Message::new(MsgType::Read, self.last_req_id, 0, nul_terminated(path)).encode()?,
            );
        }
        self.transport.send_raw(&batch, deadline).context("read")?;
        let mut values = Vec::with_capacity(paths.len());
        for (path, id) in paths.iter().zip(ids) {
            let reply = loop {
                let reply = self
                    .transport
                    .recv(deadline)
                    .with_context(|| format!("read {path}"))?;
                if reply.kind() != Some(MsgType::WatchEvent) && reply.req_id == id {
                    break reply;
                }
            };
            values.push(match reply.kind() {
                Some(MsgType::Error) => {
                    let err = XsError::Remote {
                        op: "read",
                        path: path.clone(),
                        errno: text(trim_nul(&reply.payload)),
                    };
                    if !err.is_enoent() {
                        return Err(err.into());
                    }
                    None
                }
                _ => Some(text(&reply.payload)),
            });
        }
        Ok(values)
    }

    /// A request whose only argument is `path`.
    fn op_path(&mut self, ty: MsgType, op: &'static str, tx: u32, path: &str) -> Result<Vec<u8>> {
        check_path(op, path)?;
        self.request(ty, tx, nul_terminated(path), (op, path))
    }

    /// Sends one request and waits for its reply, skipping watch events
    /// and stale replies to requests that timed out earlier.
    fn request(
        &mut self,
        ty: MsgType,
        tx: u32,
        payload: Vec<u8>,
        (op, path): (&'static str, &str),
    ) -> Result<Vec<u8>> {
        let what = || match path {
            "" => op.to_string(),
            p => format!("{op} {p}"),
        };
        if payload.len() > XENSTORE_PAYLOAD_MAX {
            return Err(XsError::TooBig {
                op,
                path: path.to_string(),
                len: payload.len(),
            }
            .into());
        }
        self.last_req_id = self.last_req_id.wrapping_add(1);
        let req = Message::new(ty, self.last_req_id, tx, payload);
        let deadline = Instant::now() + self.timeout;
        trace!("xenstore send {req:?}");
        self.transport.send(&req, deadline).with_context(what)?;
        loop {
            let reply = self.transport.recv(deadline).with_context(what)?;
            trace!("xenstore recv {reply:?}");
            if reply.kind() == Some(MsgType::WatchEvent) || reply.req_id != req.req_id {
                continue;
            }
            if reply.kind() == Some(MsgType::Error) {
                return Err(XsError::Remote {
                    op,
                    path: path.to_string(),
                    errno: text(trim_nul(&reply.payload)),
                }
                .into());
            }
            if reply.msg_type != req.msg_type {
                return Err(anyhow!(
                    "reply of type {} to a {ty:?} request",
                    reply.msg_type
                ))
                .with_context(what);
            }
            return Ok(reply.payload);
        }
    }
}

/// A transaction in progress; see [`Client::transaction`].
#[derive(Debug)]
pub struct Transaction<'a> {
    client: &'a mut Client,
    id: u32,
}

impl Transaction<'_> {
    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn read(&mut self, path: &str) -> Result<String> {
        self.client.op_read(self.id, path)
    }

    pub fn read_optional(&mut self, path: &str) -> Result<Option<String>> {
        optional(self.client.op_read(self.id, path))
    }

    pub fn write(&mut self, path: &str, value: &str) -> Result<()> {
        debug!("xenstore transaction {} write {path} = {value:?}", self.id);
        self.client.op_write(self.id, path, value)
    }

    pub fn mkdir(&mut self, path: &str) -> Result<()> {
        debug!("xenstore transaction {} mkdir {path}", self.id);
        self.client
            .op_path(MsgType::Mkdir, "mkdir", self.id, path)
            .map(drop)
    }

    pub fn rm(&mut self, path: &str) -> Result<()> {
        debug!("xenstore transaction {} rm {path}", self.id);
        self.client.op_rm(self.id, path)
    }

    pub fn directory(&mut self, path: &str) -> Result<Vec<String>> {
        self.client.op_directory(self.id, path)
    }

    pub fn exists(&mut self, path: &str) -> Result<bool> {
        Ok(self.read_optional(path)?.is_some())
    }
}

fn check_path(op: &'static str, path: &str) -> Result<(), XsError> {
    validate_path(path).map_err(|reason: PathError| XsError::InvalidPath {
        op,
        path: path.to_string(),
        reason,
    })
}

fn optional(r: Result<String>) -> Result<Option<String>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.downcast_ref::<XsError>().is_some_and(XsError::is_enoent) => Ok(None),
        Err(e) => Err(e),
    }
}

fn trim_nul(b: &[u8]) -> &[u8] {
    b.strip_suffix(&[0]).unwrap_or(b)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hotplug_error_needs_a_valid_backend_path() {
        let (mine, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut c = Client::new(Transport::socket(mine));
        let err = c.write_hotplug_error("", "boom").unwrap_err();
        assert_eq!(err.to_string(), "write hotplug error under: empty path");
        let err = c.write_hotplug_error("backend/", "boom").unwrap_err();
        assert_eq!(
            err.to_string(),
            "write hotplug error under backend/: path ends with /"
        );
    }

    #[test]
    fn invalid_path_is_refused_locally() {
        let e = check_path("read", "a//b").unwrap_err();
        assert_eq!(e.to_string(), "read a//b: path contains //");
        assert_eq!(e.errno(), "EINVAL");
    }
}
