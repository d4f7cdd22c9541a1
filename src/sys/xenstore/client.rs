//! Blocking xenstore client: a hotplug run makes a handful of requests, so
//! one connection, one request at a time, each with a deadline: its own timeout, cut
//! short by the run's deadline (`sys::deadline`). A connection that timed out or was
//! answered out of protocol is given up for good: a late reply would otherwise be read as
//! the answer to the next request, or half a message as a header.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use log::{debug, trace, warn};

use super::error::XsError;
use super::path::{PathError, validate_path};
pub use super::sanitise::sanitise_error_text;
use super::transport::{Candidate, CandidateKind, OpenError, Transport, candidates};
use super::wire::{Message, MsgType, XENSTORE_PAYLOAD_MAX, nul_terminated};
use crate::sys::deadline;

/// Per-request deadline unless [`Client::set_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connect may wait for xenstored to accept (within the run's deadline).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a transaction is run before a conflict is reported.
pub const MAX_TRANSACTION_ATTEMPTS: u32 = 20;

#[derive(Debug)]
pub struct Client {
    transport: Transport,
    timeout: Duration,
    last_req_id: u32,
    /// Set by [`Client::connect_within`]: the end of this connection's own budget, which
    /// replaces the run's deadline.
    until: Option<Instant>,
    /// Why the connection was given up, once it was.
    poisoned: Option<String>,
}

impl Client {
    /// Connects in the order of CONTRACT 3.1, honouring `XENSTORED_PATH`
    /// and `XENSTORED_RUNDIR`; waits for [`CONNECT_TIMEOUT`] at most, within the run's
    /// deadline.
    pub fn connect() -> Result<Client> {
        Client::connect_until(deadline::bound(CONNECT_TIMEOUT), None)
    }

    /// A fresh connection whose connect and every request end within `budget` from now,
    /// however little is left of the run's deadline: for the error report, which keeps a
    /// reserve of its own and never reuses the run's connection.
    pub fn connect_within(budget: Duration) -> Result<Client> {
        let until = Instant::now() + budget;
        Client::connect_until(until, Some(until))
    }

    fn connect_until(connect_by: Instant, until: Option<Instant>) -> Result<Client> {
        let path = std::env::var_os("XENSTORED_PATH");
        let rundir = std::env::var_os("XENSTORED_RUNDIR");
        let list = candidates(path.as_deref(), rundir.as_deref());
        let mut client = Client::connect_candidates_until(&list, connect_by)?;
        client.until = until;
        Ok(client)
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
    /// path tried with its reason. A path the caller named in `XENSTORED_PATH` that is
    /// neither a socket nor a device ends the search: vifkit never writes to a regular
    /// file, nor quietly talks to another xenstore than the one named.
    pub fn connect_candidates(list: &[Candidate]) -> Result<Client> {
        Client::connect_candidates_until(list, deadline::bound(CONNECT_TIMEOUT))
    }

    fn connect_candidates_until(list: &[Candidate], until: Instant) -> Result<Client> {
        let mut tried = Vec::new();
        for c in list {
            match Transport::open(c, until) {
                Ok(transport) => {
                    debug!("connected to xenstore at {}", c.path.display());
                    return Ok(Client::new(transport));
                }
                Err(OpenError::Refused(what, CandidateKind::SocketOrDevice)) => bail!(
                    "XENSTORED_PATH={} is {what}: xenstore is reached through a unix socket \
                     or the xenbus character device",
                    c.path.display()
                ),
                Err(e) => tried.push(format!("{}: {e}", c.path.display())),
            }
        }
        bail!("cannot connect to xenstore (tried {})", tried.join(", "))
    }

    /// Connects to the unix socket at `path`, waiting for [`CONNECT_TIMEOUT`] at most.
    pub fn connect_path(path: &Path) -> Result<Client> {
        let s = super::transport::connect_socket(path, deadline::bound(CONNECT_TIMEOUT))
            .with_context(|| format!("cannot connect to xenstore at {}", path.display()))?;
        Ok(Client::new(Transport::socket(s)))
    }

    fn new(transport: Transport) -> Client {
        Client {
            transport,
            timeout: DEFAULT_TIMEOUT,
            last_req_id: 0,
            until: None,
            poisoned: None,
        }
    }

    /// Whether the connection was given up after a timeout or a protocol error; every
    /// request on it then fails at once.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// When a request sent now must be answered: its own timeout, cut short by the run's
    /// deadline (or by this connection's own budget).
    fn request_deadline(&self) -> Instant {
        let own = Instant::now() + self.timeout;
        match self.until {
            Some(until) => own.min(until),
            None => deadline::bound(self.timeout),
        }
    }

    /// Refuses a request on a connection given up earlier, or when no time is left to send
    /// it (nothing is sent then, so the connection stays in step).
    fn usable(&self, deadline: Instant) -> Result<()> {
        if let Some(why) = &self.poisoned {
            bail!("the xenstore connection was given up after an earlier failure ({why})");
        }
        if deadline <= Instant::now() {
            bail!("not sent: out of time (the deadline passed)");
        }
        Ok(())
    }

    /// Gives the connection up: nothing more is sent or read on it.
    fn poison(&mut self, why: &anyhow::Error) {
        if self.poisoned.is_none() {
            debug!("giving up this xenstore connection: {why:#}");
            self.poisoned = Some(format!("{why:#}"));
            self.transport.shut_down();
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
                // A connection given up cannot abort; xenstored drops its transactions
                // when it closes.
                Err(e) if self.is_poisoned() => Err(e),
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
        let deadline = self.request_deadline();
        self.usable(deadline).context("read")?;
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
        let sent = self.transport.send_raw(&batch, deadline);
        self.checked(sent).context("read")?;
        let mut values = Vec::with_capacity(paths.len());
        for (path, id) in paths.iter().zip(ids) {
            let reply = loop {
                let reply = self.transport.recv(deadline);
                let reply = self
                    .checked(reply)
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
        let deadline = self.request_deadline();
        self.usable(deadline).with_context(what)?;
        self.last_req_id = self.last_req_id.wrapping_add(1);
        let req = Message::new(ty, self.last_req_id, tx, payload);
        trace!("xenstore send {req:?}");
        let sent = self.transport.send(&req, deadline);
        self.checked(sent).with_context(what)?;
        loop {
            let reply = self.transport.recv(deadline);
            let reply = self.checked(reply).with_context(what)?;
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
                let err = anyhow!("reply of type {} to a {ty:?} request", reply.msg_type);
                self.poison(&err);
                return Err(err).with_context(what);
            }
            return Ok(reply.payload);
        }
    }

    /// Passes on what the transport did, giving the connection up if it failed: a
    /// timeout, a broken frame or a closed socket leaves it out of step for good.
    fn checked<T>(&mut self, outcome: std::io::Result<T>) -> Result<T> {
        outcome.map_err(|e| {
            let err = anyhow::Error::from(e);
            self.poison(&err);
            err
        })
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

    /// A client on one end of a socket pair; the test plays xenstored on the other.
    fn paired(timeout: Duration) -> (Client, std::os::unix::net::UnixStream) {
        let (mine, peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut c = Client::new(Transport::socket(mine));
        c.set_timeout(timeout);
        (c, peer)
    }

    #[test]
    fn a_timeout_gives_the_connection_up_and_a_late_reply_is_never_read() {
        use crate::sys::xenstore::wire::{read_message, write_message};
        let (mut c, mut peer) = paired(Duration::from_millis(50));
        let err = c.read("/a").unwrap_err();
        assert_eq!(format!("{err:#}"), "read /a: no reply before the deadline");
        assert!(c.is_poisoned());
        // The late answer to /a, and one that would fit the next request's id.
        let asked = read_message(&mut peer).unwrap();
        let late = Message::new(MsgType::Read, asked.req_id, 0, b"late".to_vec());
        let next = Message::new(MsgType::Read, asked.req_id + 1, 0, b"stale".to_vec());
        // The client shut its end down: the peer's writes may fail, which is the point.
        let _ = write_message(&mut peer, &late).and_then(|()| write_message(&mut peer, &next));
        let started = Instant::now();
        let err = c.read("/b").unwrap_err();
        assert!(
            started.elapsed() < Duration::from_millis(40),
            "waited for a reply"
        );
        assert_eq!(
            format!("{err:#}"),
            "read /b: the xenstore connection was given up after an earlier failure \
             (no reply before the deadline)"
        );
        // Nothing more was sent on it: the peer reads end-of-file.
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut peer, &mut rest).unwrap();
        assert!(rest.is_empty(), "{rest:?}");
    }

    #[test]
    fn a_reply_out_of_protocol_gives_the_connection_up() {
        use crate::sys::xenstore::wire::{read_message, write_message};
        let (mut c, mut peer) = paired(Duration::from_secs(5));
        let server = std::thread::spawn(move || {
            let asked = read_message(&mut peer).unwrap();
            let wrong = Message::new(MsgType::Write, asked.req_id, 0, b"OK\0".to_vec());
            write_message(&mut peer, &wrong).unwrap();
            peer
        });
        let err = c.read("/a").unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "read /a: reply of type 11 to a Read request"
        );
        assert!(c.is_poisoned());
        drop(server.join().unwrap());
    }

    #[test]
    fn an_error_reply_keeps_the_connection() {
        use crate::sys::xenstore::wire::{read_message, write_message};
        let (mut c, mut peer) = paired(Duration::from_secs(5));
        let server = std::thread::spawn(move || {
            for answer in [&b"ENOENT\0"[..], b"xenbr0"] {
                let asked = read_message(&mut peer).unwrap();
                let ty = match answer.ends_with(b"\0") {
                    true => MsgType::Error,
                    false => MsgType::Read,
                };
                write_message(
                    &mut peer,
                    &Message::new(ty, asked.req_id, 0, answer.to_vec()),
                )
                .unwrap();
            }
        });
        assert_eq!(c.read_optional("/a").unwrap(), None);
        assert!(!c.is_poisoned());
        assert_eq!(c.read("/b").unwrap(), "xenbr0");
        server.join().unwrap();
    }

    #[test]
    fn a_request_waits_no_longer_than_its_connections_budget() {
        let (mut c, _peer) = paired(Duration::from_secs(10));
        c.until = Some(Instant::now() + Duration::from_millis(60));
        let started = Instant::now();
        c.read("/a").unwrap_err();
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        // Once the budget is spent nothing is sent: no time, no request.
        let (mut c, _peer) = paired(Duration::from_secs(10));
        c.until = Some(Instant::now());
        let err = c.write("/a", "1").unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "write /a: not sent: out of time (the deadline passed)"
        );
        assert!(!c.is_poisoned());
    }

    #[test]
    fn invalid_path_is_refused_locally() {
        let e = check_path("read", "a//b").unwrap_err();
        assert_eq!(e.to_string(), "read a//b: path contains //");
        assert_eq!(e.errno(), "EINVAL");
    }
}
