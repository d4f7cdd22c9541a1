//! The test server's request semantics, free of I/O: `State::handle` turns
//! one request into a reply plus the watch events it caused, so the rules
//! can be tested without sockets and the server can send both under one
//! lock (events then never overtake the reply that caused them).

use std::collections::HashMap;

use super::tree::{Errno, Tree, at_or_below};
use crate::sys::xenstore::path::{is_absolute, validate_path, validate_watch_path};
use crate::sys::xenstore::wire::{Message, MsgType, XENSTORE_PAYLOAD_MAX, nul_terminated};

pub(crate) type ConnId = u64;

/// Where relative paths of socket clients resolve.
pub(crate) const HOME: &str = "/local/domain/0";

/// C xenstored's default `quota_max_transaction`.
const MAX_TRANSACTIONS_PER_CONNECTION: usize = 10;

pub(crate) struct State {
    tree: Tree,
    generation: u64,
    last_tx: u32,
    txs: HashMap<u32, Tx>,
    watches: Vec<Watch>,
}

/// A transaction works on a private copy of the tree and remembers the
/// generation of every node it depended on, as first seen; commit fails
/// with EAGAIN if any of them changed since, else replays its changes.
struct Tx {
    conn: ConnId,
    work: Tree,
    seen: HashMap<String, Option<u64>>,
    log: Vec<Change>,
}

enum Change {
    Write(String, Vec<u8>),
    Mkdir(String),
    Rm(String),
}

impl Change {
    fn path(&self) -> &str {
        match self {
            Change::Write(p, _) | Change::Mkdir(p) | Change::Rm(p) => p,
        }
    }

    fn footprint(&self, t: &Tree) -> Vec<String> {
        match self {
            Change::Write(p, _) | Change::Mkdir(p) => t.create_footprint(p),
            Change::Rm(p) => t.rm_footprint(p),
        }
    }

    /// Applies to `t`; true if the tree changed (watches fire).
    fn apply(&self, t: &mut Tree, generation: u64) -> Result<bool, Errno> {
        match self {
            Change::Write(p, v) => {
                t.write(p, v, generation);
                Ok(true)
            }
            Change::Mkdir(p) => Ok(t.mkdir(p, generation)),
            Change::Rm(p) => t.rm(p, generation),
        }
    }
}

struct Watch {
    conn: ConnId,
    /// As registered: events use the same relative or absolute form.
    path: String,
    abs: String,
    token: Vec<u8>,
}

pub(crate) struct Outcome {
    pub(crate) reply: Message,
    pub(crate) events: Vec<(ConnId, Message)>,
}

impl State {
    pub(crate) fn new() -> State {
        State {
            tree: Tree::new(),
            generation: 0,
            last_tx: 0,
            txs: HashMap::new(),
            watches: Vec::new(),
        }
    }

    pub(crate) fn handle(&mut self, conn: ConnId, req: &Message) -> Outcome {
        let mut events = Vec::new();
        let reply = match self.dispatch(conn, req, &mut events) {
            Ok(payload) => Message {
                payload,
                ..req.clone()
            },
            Err(errno) => Message {
                msg_type: MsgType::Error as u32,
                payload: nul_terminated(errno),
                ..req.clone()
            },
        };
        Outcome { reply, events }
    }

    /// Forgets the transactions and watches of a closed connection.
    pub(crate) fn disconnect(&mut self, conn: ConnId) {
        self.txs.retain(|_, tx| tx.conn != conn);
        self.watches.retain(|w| w.conn != conn);
    }

    fn dispatch(
        &mut self,
        conn: ConnId,
        req: &Message,
        events: &mut Vec<(ConnId, Message)>,
    ) -> Result<Vec<u8>, Errno> {
        let tx = req.tx_id;
        let p = &req.payload;
        match req.kind() {
            Some(MsgType::Read) => {
                let path = node_arg(p)?;
                let t = self.view(conn, tx, |_| vec![path.clone()])?;
                t.value(&path).map(<[u8]>::to_vec).ok_or("ENOENT")
            }
            Some(MsgType::Directory) => {
                let path = node_arg(p)?;
                let t = self.view(conn, tx, |_| vec![path.clone()])?;
                let mut out = Vec::new();
                for name in t.children(&path).ok_or("ENOENT")? {
                    out.extend_from_slice(name.as_bytes());
                    out.push(0);
                }
                match out.len() > XENSTORE_PAYLOAD_MAX {
                    true => Err("E2BIG"),
                    false => Ok(out),
                }
            }
            Some(MsgType::GetPerms) => {
                let path = node_arg(p)?;
                let t = self.view(conn, tx, |_| vec![path.clone()])?;
                // No permission model: every node reads as "owned by dom0,
                // no access for others", which is what dom0 tools expect.
                t.value(&path).ok_or("ENOENT")?;
                Ok(b"n0\0".to_vec())
            }
            Some(MsgType::Write) => {
                let nul = p.iter().position(|b| *b == 0).ok_or("EINVAL")?;
                let path = resolve(text_arg(&p[..nul])?)?;
                let change = Change::Write(path, p[nul + 1..].to_vec());
                self.change(conn, tx, change, events)
            }
            Some(MsgType::Mkdir) => self.change(conn, tx, Change::Mkdir(node_arg(p)?), events),
            Some(MsgType::Rm) => self.change(conn, tx, Change::Rm(node_arg(p)?), events),
            Some(MsgType::Watch) => self.watch(conn, p, events),
            Some(MsgType::Unwatch) => self.unwatch(conn, p),
            Some(MsgType::TransactionStart) => self.start(conn, tx),
            Some(MsgType::TransactionEnd) => self.end(conn, tx, p, events),
            Some(MsgType::GetDomainPath) => {
                let [domid] = args(p)?;
                let domid: u32 = text_arg(domid)?.parse().map_err(|_| "EINVAL")?;
                Ok(nul_terminated(&format!("/local/domain/{domid}")))
            }
            _ => Err("ENOSYS"),
        }
    }

    /// The tree a request sees: the live one, or its transaction's copy
    /// after noting the nodes the request depends on.
    fn view(
        &mut self,
        conn: ConnId,
        tx: u32,
        depends: impl FnOnce(&Tree) -> Vec<String>,
    ) -> Result<&mut Tree, Errno> {
        if tx == 0 {
            return Ok(&mut self.tree);
        }
        let t = self.own_tx(conn, tx)?;
        for p in depends(&t.work) {
            let generation = t.work.generation(&p);
            t.seen.entry(p).or_insert(generation);
        }
        Ok(&mut t.work)
    }

    fn own_tx(&mut self, conn: ConnId, tx: u32) -> Result<&mut Tx, Errno> {
        self.txs
            .get_mut(&tx)
            .filter(|t| t.conn == conn)
            .ok_or("ENOENT")
    }

    fn change(
        &mut self,
        conn: ConnId,
        tx: u32,
        change: Change,
        events: &mut Vec<(ConnId, Message)>,
    ) -> Result<Vec<u8>, Errno> {
        if tx == 0 {
            self.apply_live(&change, events)?;
        } else {
            // Private copy: generations there are never compared.
            change.apply(self.view(conn, tx, |t| change.footprint(t))?, 0)?;
            self.own_tx(conn, tx)?.log.push(change);
        }
        Ok(ok())
    }

    fn apply_live(
        &mut self,
        change: &Change,
        events: &mut Vec<(ConnId, Message)>,
    ) -> Result<(), Errno> {
        self.generation += 1;
        if change.apply(&mut self.tree, self.generation)? {
            self.fire(change.path(), matches!(change, Change::Rm(_)), events);
        }
        Ok(())
    }

    /// Events for a change at `path`: every watch at or above it fires
    /// with `path`; a removal also fires the watches below it, with their
    /// own path, as C xenstored does.
    fn fire(&self, path: &str, removed: bool, events: &mut Vec<(ConnId, Message)>) {
        for w in &self.watches {
            let event_path = if at_or_below(path, &w.abs) {
                match is_absolute(&w.path) {
                    true => path,
                    false => path
                        .strip_prefix(HOME)
                        .and_then(|r| r.strip_prefix('/'))
                        .unwrap_or(path),
                }
            } else if removed && at_or_below(&w.abs, path) {
                &w.path
            } else {
                continue;
            };
            events.push((w.conn, watch_event(event_path, &w.token)));
        }
    }

    fn watch(
        &mut self,
        conn: ConnId,
        payload: &[u8],
        events: &mut Vec<(ConnId, Message)>,
    ) -> Result<Vec<u8>, Errno> {
        let [path, token] = args(payload)?;
        let path = text_arg(path)?;
        validate_watch_path(path).map_err(|_| "EINVAL")?;
        if self.find_watch(conn, path, token).is_some() {
            return Err("EEXIST");
        }
        let abs = match path.starts_with('@') {
            true => path.to_string(),
            false => resolve(path)?,
        };
        self.watches.push(Watch {
            conn,
            path: path.to_string(),
            abs,
            token: token.to_vec(),
        });
        events.push((conn, watch_event(path, token)));
        Ok(ok())
    }

    fn unwatch(&mut self, conn: ConnId, payload: &[u8]) -> Result<Vec<u8>, Errno> {
        let [path, token] = args(payload)?;
        let i = self
            .find_watch(conn, text_arg(path)?, token)
            .ok_or("ENOENT")?;
        self.watches.remove(i);
        Ok(ok())
    }

    fn find_watch(&self, conn: ConnId, path: &str, token: &[u8]) -> Option<usize> {
        self.watches
            .iter()
            .position(|w| w.conn == conn && w.path == path && w.token == token)
    }

    fn start(&mut self, conn: ConnId, tx: u32) -> Result<Vec<u8>, Errno> {
        if tx != 0 {
            return Err("EBUSY");
        }
        if self.txs.values().filter(|t| t.conn == conn).count() >= MAX_TRANSACTIONS_PER_CONNECTION {
            return Err("ENOSPC");
        }
        loop {
            self.last_tx = self.last_tx.wrapping_add(1);
            if self.last_tx != 0 && !self.txs.contains_key(&self.last_tx) {
                break;
            }
        }
        let tx = Tx {
            conn,
            work: self.tree.clone(),
            seen: HashMap::new(),
            log: Vec::new(),
        };
        self.txs.insert(self.last_tx, tx);
        Ok(nul_terminated(&self.last_tx.to_string()))
    }

    fn end(
        &mut self,
        conn: ConnId,
        tx: u32,
        payload: &[u8],
        events: &mut Vec<(ConnId, Message)>,
    ) -> Result<Vec<u8>, Errno> {
        let commit = match payload {
            b"T\0" => true,
            b"F\0" => false,
            _ => return Err("EINVAL"),
        };
        self.own_tx(conn, tx)?;
        let t = self.txs.remove(&tx).expect("checked");
        if !commit {
            return Ok(ok());
        }
        if t.seen.iter().any(|(p, g)| self.tree.generation(p) != *g) {
            return Err("EAGAIN");
        }
        for change in &t.log {
            // Nothing the change depends on moved, so it succeeds here as
            // it did in the copy.
            self.apply_live(change, events)?;
        }
        Ok(ok())
    }
}

fn ok() -> Vec<u8> {
    b"OK\0".to_vec()
}

fn watch_event(path: &str, token: &[u8]) -> Message {
    let mut payload = nul_terminated(path);
    payload.extend_from_slice(token);
    payload.push(0);
    Message::new(MsgType::WatchEvent, 0, 0, payload)
}

/// Exactly `N` NUL-terminated strings, as C xenstored requires.
fn args<const N: usize>(payload: &[u8]) -> Result<[&[u8]; N], Errno> {
    let body = payload.strip_suffix(&[0]).ok_or("EINVAL")?;
    let parts: Vec<&[u8]> = body.split(|b| *b == 0).collect();
    parts.try_into().map_err(|_| "EINVAL")
}

fn text_arg(b: &[u8]) -> Result<&str, Errno> {
    std::str::from_utf8(b).map_err(|_| "EINVAL")
}

/// A single path argument, validated and made absolute.
fn node_arg(payload: &[u8]) -> Result<String, Errno> {
    let [path] = args(payload)?;
    resolve(text_arg(path)?)
}

fn resolve(path: &str) -> Result<String, Errno> {
    validate_path(path).map_err(|_| "EINVAL")?;
    Ok(match is_absolute(path) {
        true => path.to_string(),
        false => format!("{HOME}/{path}"),
    })
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
#[cfg(test)]
#[path = "store_watch_tests.rs"]
mod watch_tests;
