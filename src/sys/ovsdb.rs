//! Open vSwitch's database over its JSON-RPC unix socket (RFC 7047): what vif-openvswitch
//! does with `ovs-vsctl --if-exists del-port -- add-port`, in two round trips and no fork.
//! The first reads which bridges hold a port of that name; the second is one transaction
//! that drops the stale port and adds the new one with its tag, trunks and external-ids.
//! [`Ovsdb::port_state`] reads a port back in the same shape, so a planner can leave a port
//! that is already as wanted alone.
//!
//! A connection's every wait (the connect, each read and write, vswitchd catching up) ends
//! by one instant: the connection's own timeout or the run's deadline, whichever is first.

use std::io::{self, BufReader, ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
use serde_json::{Value, json};

use crate::sys::deadline::{self, poll_timeout};

/// One port as vif-openvswitch adds it: a Port and its one Interface, both called `name`.
///
/// Two ports are equal when OVSDB would hold the same for them: trunks compare as a set
/// (sorted, duplicates dropped) and external-ids as a map (sorted by key), whatever order
/// they were given in. [`OvsPort::normalised`] is that form; `add_port` writes it and
/// `port_state` reads it back.
#[derive(Clone, Debug, Eq)]
pub struct OvsPort {
    pub name: String,
    pub tag: Option<u16>,
    pub trunks: Vec<u16>,
    /// Interface external-ids: `attached-mac`, `xen-vm-name`, `xen-vm-uuid`
    /// ([`EXTERNAL_ID_KEYS`]).
    pub external_ids: Vec<(String, String)>,
    pub mtu: Option<u32>,
}

/// The Interface external-ids vifkit writes; `port_state` reads back these and no others
/// (another tool's keys on the same interface are not vifkit's to compare).
pub const EXTERNAL_ID_KEYS: [&str; 3] = ["attached-mac", "xen-vm-name", "xen-vm-uuid"];

impl OvsPort {
    /// The port as OVSDB holds it: trunks sorted without duplicates, external-ids sorted by
    /// key (for vifkit's keys, the order vif-openvswitch writes them in).
    pub fn normalised(&self) -> OvsPort {
        let mut port = self.clone();
        port.trunks.sort_unstable();
        port.trunks.dedup();
        port.external_ids.sort();
        port
    }
}

impl PartialEq for OvsPort {
    fn eq(&self, other: &OvsPort) -> bool {
        let (a, b) = (self.normalised(), other.normalised());
        a.name == b.name
            && a.tag == b.tag
            && a.trunks == b.trunks
            && a.external_ids == b.external_ids
            && a.mtu == b.mtu
    }
}

/// How long [`port_state_of`] waits for ovsdb-server: one read, during planning.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The bridge holding the port named `name` and the port as OVSDB holds it (see
/// [`Ovsdb::port_state`]), connecting as the runner does (`$OVS_RUNDIR/db.sock`). No
/// ovsdb-server (no socket, or a stale one nobody listens on) is no port: Ok(None).
pub fn port_state_of(name: &str) -> Result<Option<(String, OvsPort)>> {
    port_state_at(&socket_path(), name)
}

fn port_state_at(path: &Path, name: &str) -> Result<Option<(String, OvsPort)>> {
    let bound = Bound::new(PROBE_TIMEOUT);
    let stream = match connect_by(path, &bound) {
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
            return Ok(None);
        }
        stream => stream.with_context(|| connect_error(path))?,
    };
    Ovsdb::over(stream, bound)?
        .port_state(name)
        .with_context(|| format!("read Open vSwitch port {name}"))
}

/// When a connection's waits end: its own timeout from the connect, or the run's deadline.
#[derive(Clone, Copy, Debug)]
struct Bound {
    until: Instant,
    own: Duration,
}

impl Bound {
    fn new(own: Duration) -> Bound {
        Bound {
            until: deadline::bound(own),
            own,
        }
    }

    /// What is left, or the error saying which bound ended the wait (`nothing`: what did
    /// not happen, when it was the connection's own).
    fn left(&self, nothing: &str) -> io::Result<Duration> {
        match self.until.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(left),
            _ => Err(self.expired(nothing)),
        }
    }

    fn expired(&self, nothing: &str) -> io::Error {
        let text = if deadline::get().is_some_and(|run| run <= self.until) {
            "out of time (the run's deadline passed)".to_owned()
        } else {
            format!("{nothing} within {} s", self.own.as_secs_f32())
        };
        io::Error::new(ErrorKind::TimedOut, text)
    }
}

/// Connects to the unix socket `path` without waiting past `bound`: a server that does not
/// accept (its listen queue full) makes a blocking connect() wait for ever.
fn connect_by(path: &Path, bound: &Bound) -> io::Result<UnixStream> {
    const NOT_ACCEPTED: &str = "not accepted";
    let address = UnixAddr::new(path)?;
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    loop {
        match connect(fd.as_raw_fd(), &address) {
            Ok(()) => break,
            // The listen queue is full: AF_UNIX says so at once; try again shortly.
            Err(Errno::EAGAIN) => {
                let left = bound.left(NOT_ACCEPTED)?;
                std::thread::sleep(left.min(Duration::from_millis(5)));
            }
            Err(Errno::EINTR) => {}
            Err(Errno::EINPROGRESS) => {
                let left = bound.left(NOT_ACCEPTED)?;
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
                if poll(&mut fds, poll_timeout(left))? == 0 {
                    return Err(bound.expired(NOT_ACCEPTED));
                }
                let error =
                    nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::SocketError)?;
                if error != 0 {
                    return Err(io::Error::from_raw_os_error(error));
                }
                break;
            }
            Err(errno) => return Err(errno.into()),
        }
    }
    let stream = UnixStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// The socket's reads, each waiting no longer than the connection's bound.
struct BoundedRead {
    stream: UnixStream,
    bound: Bound,
}

impl Read for BoundedRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        const NOTHING: &str = "no answer";
        self.stream
            .set_read_timeout(Some(self.bound.left(NOTHING)?))?;
        match self.stream.read(buf) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(self.bound.expired(NOTHING))
            }
            other => other,
        }
    }
}

fn connect_error(path: &Path) -> String {
    format!("connect to ovsdb-server at {}", path.display())
}

/// A Bridge row: its UUID, name and the UUIDs of its ports.
struct BridgeRow {
    id: String,
    name: String,
    ports: Vec<String>,
}

pub struct Ovsdb {
    reader: BufReader<BoundedRead>,
    writer: UnixStream,
    id: u64,
    bound: Bound,
}

/// Where ovs-vsctl looks: `$OVS_RUNDIR/db.sock`, by default in /var/run/openvswitch.
fn socket_path() -> PathBuf {
    let rundir = std::env::var_os("OVS_RUNDIR").unwrap_or_else(|| "/var/run/openvswitch".into());
    PathBuf::from(rundir).join("db.sock")
}

fn uuid(value: &Value) -> Option<&str> {
    match value.as_array()?.as_slice() {
        [kind, id] if kind == "uuid" => id.as_str(),
        _ => None,
    }
}

/// A column holding a set of UUIDs: OVSDB writes one element bare, more as `["set", [...]]`.
fn uuids(value: &Value) -> Vec<&str> {
    match value.as_array().map(Vec::as_slice) {
        Some([kind, items]) if kind == "set" => items
            .as_array()
            .map(|items| items.iter().filter_map(uuid).collect())
            .unwrap_or_default(),
        _ => uuid(value).into_iter().collect(),
    }
}

fn set(items: Vec<Value>) -> Value {
    json!(["set", items])
}

/// The integers of a set column: one element bare, else `["set", [...]]`.
fn integers(value: &Value) -> Vec<i64> {
    match value.as_array().map(Vec::as_slice) {
        Some([kind, items]) if kind == "set" => items
            .as_array()
            .map(|items| items.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default(),
        _ => value.as_i64().into_iter().collect(),
    }
}

/// An optional integer column (`min 0, max 1`): `["set", []]` when empty.
fn optional<T: TryFrom<i64>>(value: &Value, column: &str) -> Result<Option<T>> {
    integers(value)
        .first()
        .map(|&n| T::try_from(n).map_err(|_| anyhow!("{column} {n} is out of range")))
        .transpose()
}

/// A string-to-string map column, `["map", [[key, value], ...]]`.
fn string_map(value: &Value) -> Vec<(String, String)> {
    let pairs = match value.as_array().map(Vec::as_slice) {
        Some([kind, pairs]) if kind == "map" => pairs.as_array(),
        _ => None,
    };
    pairs
        .into_iter()
        .flatten()
        .filter_map(|pair| match pair.as_array()?.as_slice() {
            [k, v] => Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())),
            _ => None,
        })
        .collect()
}

impl Ovsdb {
    pub fn connect(timeout: Duration) -> Result<Ovsdb> {
        Ovsdb::connect_at(&socket_path(), timeout)
    }

    /// The database at the socket `path` (`connect` takes ovs-vsctl's).
    /// Every wait of the connection ends within `timeout` of now, and by the run's deadline.
    pub fn connect_at(path: &Path, timeout: Duration) -> Result<Ovsdb> {
        let bound = Bound::new(timeout);
        let stream = connect_by(path, &bound).with_context(|| connect_error(path))?;
        Ovsdb::over(stream, bound)
    }

    fn over(stream: UnixStream, bound: Bound) -> Result<Ovsdb> {
        Ok(Ovsdb {
            writer: stream.try_clone()?,
            reader: BufReader::new(BoundedRead { stream, bound }),
            id: 0,
            bound,
        })
    }

    /// Writes one message within the connection's bound.
    fn send(&mut self, message: &Value) -> Result<()> {
        const NOTHING: &str = "not taken";
        let written = self.bound.left(NOTHING).and_then(|left| {
            self.writer.set_write_timeout(Some(left))?;
            match self.writer.write_all(message.to_string().as_bytes()) {
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    Err(self.bound.expired(NOTHING))
                }
                other => other,
            }
        });
        written.context("write to ovsdb-server")
    }

    /// One `transact`; every operation's result, or the first operation's error.
    fn transact(&mut self, ops: Vec<Value>) -> Result<Vec<Value>> {
        self.id += 1;
        let mut params = vec![json!("Open_vSwitch")];
        params.extend(ops);
        let request = json!({"method": "transact", "params": params, "id": self.id});
        self.send(&request)?;
        loop {
            let mut stream =
                serde_json::Deserializer::from_reader(&mut self.reader).into_iter::<Value>();
            let reply = stream
                .next()
                .ok_or_else(|| anyhow!("ovsdb-server closed the connection"))?
                .context("read ovsdb-server's reply")?;
            if reply["method"] == "echo" {
                let echo = json!({"result": reply["params"], "error": null, "id": reply["id"]});
                self.send(&echo)?;
                continue;
            }
            if reply["id"] != self.id {
                continue;
            }
            if !reply["error"].is_null() {
                bail!("ovsdb-server refused the request: {}", reply["error"]);
            }
            let results = reply["result"].as_array().cloned().unwrap_or_default();
            if let Some(failed) = results.iter().find(|r| r.get("error").is_some()) {
                bail!(
                    "ovsdb transaction failed: {}: {}",
                    failed["error"],
                    failed["details"].as_str().unwrap_or("")
                );
            }
            return Ok(results);
        }
    }

    /// Every bridge by name with its port UUIDs, and the UUID of the port named `port`.
    fn lookup(&mut self, port: &str) -> Result<(Vec<BridgeRow>, Option<String>)> {
        let results = self.transact(vec![
            json!({"op": "select", "table": "Bridge", "where": [],
                   "columns": ["_uuid", "name", "ports"]}),
            json!({"op": "select", "table": "Port", "where": [["name", "==", port]],
                   "columns": ["_uuid"]}),
        ])?;
        let rows = |i: usize| results.get(i).and_then(|r| r["rows"].as_array().cloned());
        let bridges = rows(0)
            .unwrap_or_default()
            .iter()
            .filter_map(|row| {
                let id = uuid(&row["_uuid"])?.to_owned();
                let name = row["name"].as_str()?.to_owned();
                let ports = uuids(&row["ports"])
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                Some(BridgeRow { id, name, ports })
            })
            .collect();
        let stale = rows(1)
            .unwrap_or_default()
            .first()
            .and_then(|row| uuid(&row["_uuid"]).map(str::to_owned));
        Ok((bridges, stale))
    }

    /// Removes the port named `name` from whichever bridge holds it (OVSDB then deletes the
    /// unreferenced Port and Interface rows).
    fn detach_ops(bridges: &[BridgeRow], stale: Option<&str>) -> Vec<Value> {
        let Some(stale) = stale else { return vec![] };
        bridges
            .iter()
            .filter(|bridge| bridge.ports.iter().any(|p| p == stale))
            .map(|BridgeRow { id, .. }| {
                json!({"op": "mutate", "table": "Bridge", "where": [["_uuid", "==", ["uuid", id]]],
                       "mutations": [["ports", "delete", ["uuid", stale]]]})
            })
            .collect()
    }

    /// `--if-exists del-port NAME -- add-port BRIDGE NAME tag=.. trunks=..`, with the
    /// interface's external-ids and MTU request, as one transaction.
    pub fn add_port(&mut self, bridge: &str, port: &OvsPort) -> Result<()> {
        let port = &port.normalised();
        let (bridges, stale) = self.lookup(&port.name)?;
        let Some(BridgeRow { id: bridge_id, .. }) = bridges.iter().find(|b| b.name == bridge)
        else {
            bail!("Open vSwitch bridge {bridge} does not exist (ovs-vsctl add-br {bridge})");
        };
        let mut ops = Self::detach_ops(&bridges, stale.as_deref());
        let ids: Vec<Value> = port
            .external_ids
            .iter()
            .map(|(k, v)| json!([k, v]))
            .collect();
        let mut interface = json!({"name": port.name, "external_ids": ["map", ids]});
        if let Some(mtu) = port.mtu {
            interface["mtu_request"] = json!(mtu);
        }
        ops.push(
            json!({"op": "insert", "table": "Interface", "row": interface,
                        "uuid-name": "iface"}),
        );
        let tag = port.tag.map(|t| vec![json!(t)]).unwrap_or_default();
        let trunks = port.trunks.iter().map(|t| json!(t)).collect();
        ops.push(json!({"op": "insert", "table": "Port", "uuid-name": "port",
                        "row": {"name": port.name, "interfaces": ["named-uuid", "iface"],
                                "tag": set(tag), "trunks": set(trunks)}}));
        ops.push(json!({"op": "mutate", "table": "Bridge",
                        "where": [["_uuid", "==", ["uuid", bridge_id]]],
                        "mutations": [["ports", "insert", ["named-uuid", "port"]]]}));
        self.commit_and_wait(ops)
    }

    /// Commits `ops` with `next_cfg` bumped, then waits until ovs-vswitchd has applied it
    /// (`cur_cfg` caught up), as ovs-vsctl does without `--no-wait`: the port must be in
    /// the datapath before the link comes up, or vswitchd may still be opening it.
    fn commit_and_wait(&mut self, mut ops: Vec<Value>) -> Result<()> {
        ops.push(json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
                        "mutations": [["next_cfg", "+=", 1]]}));
        ops.push(json!({"op": "select", "table": "Open_vSwitch", "where": [],
                        "columns": ["next_cfg"]}));
        let results = self.transact(ops)?;
        let target = results
            .last()
            .and_then(|r| r["rows"][0]["next_cfg"].as_i64());
        let Some(target) = target else {
            bail!("ovsdb has no Open_vSwitch row (run ovs-vsctl init)");
        };
        loop {
            let results = self.transact(vec![json!({"op": "select", "table": "Open_vSwitch",
                                                    "where": [], "columns": ["cur_cfg"]})])?;
            let applied = results[0]["rows"][0]["cur_cfg"].as_i64().unwrap_or(0);
            if applied >= target {
                return Ok(());
            }
            if Instant::now() >= self.bound.until {
                if deadline::get().is_some_and(|run| run <= self.bound.until) {
                    let err = self.bound.expired("");
                    return Err(anyhow::Error::new(err).context("wait for ovs-vswitchd"));
                }
                bail!(
                    "ovs-vswitchd did not apply the change within {} s (is it running?)",
                    self.bound.own.as_secs_f32()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The bridge holding the port named `name`, and that port as OVSDB holds it, in the
    /// normalised form `add_port` writes (so a port read back after `add_port(bridge, &p)`
    /// equals `p`): the Port's tag and trunks, its Interface's `mtu_request` and those of its
    /// external-ids vifkit writes ([`EXTERNAL_ID_KEYS`]). None when no Port has that name.
    ///
    /// A port vifkit makes is one Interface of its own name and the default type. Any other
    /// (a bond, an internal or patch port of that name) comes back named after its
    /// interfaces, `name[:type]` joined by `+`, without external-ids or MTU, so it equals no
    /// port vifkit plans: `add_port` then replaces it, as ovs-vsctl's del-port, add-port did.
    pub fn port_state(&mut self, name: &str) -> Result<Option<(String, OvsPort)>> {
        let results = self.transact(vec![
            json!({"op": "select", "table": "Port", "where": [["name", "==", name]],
                   "columns": ["_uuid", "tag", "trunks", "interfaces"]}),
            json!({"op": "select", "table": "Interface", "where": [["name", "==", name]],
                   "columns": ["_uuid", "type", "external_ids", "mtu_request"]}),
            json!({"op": "select", "table": "Bridge", "where": [],
                   "columns": ["name", "ports"]}),
        ])?;
        let rows = |i: usize| {
            results
                .get(i)
                .and_then(|r| r["rows"].as_array())
                .map(Vec::as_slice)
                .unwrap_or_default()
        };
        let Some(row) = rows(0).first() else {
            return Ok(None);
        };
        let id = uuid(&row["_uuid"]).ok_or_else(|| anyhow!("Port {name} has no _uuid"))?;
        // OVSDB deletes a Port no Bridge holds when the transaction that orphaned it commits.
        let Some(bridge) = rows(2)
            .iter()
            .find(|b| uuids(&b["ports"]).contains(&id))
            .and_then(|b| b["name"].as_str())
        else {
            return Ok(None);
        };
        let mut port = OvsPort {
            name: name.to_owned(),
            tag: optional(&row["tag"], "tag")?,
            trunks: integers(&row["trunks"])
                .into_iter()
                .map(|t| u16::try_from(t).map_err(|_| anyhow!("trunk {t} is out of range")))
                .collect::<Result<_>>()?,
            external_ids: vec![],
            mtu: None,
        };
        let interfaces = uuids(&row["interfaces"]);
        let own = rows(1).first().filter(|iface| {
            interfaces == [uuid(&iface["_uuid"]).unwrap_or_default()]
                && matches!(iface["type"].as_str(), Some("" | "system"))
        });
        if let Some(iface) = own {
            port.external_ids = string_map(&iface["external_ids"])
                .into_iter()
                .filter(|(k, _)| EXTERNAL_ID_KEYS.contains(&k.as_str()))
                .collect();
            port.mtu = optional(&iface["mtu_request"], "mtu_request")?;
        } else {
            port.name = self.describe(&interfaces)?;
        }
        Ok(Some((bridge.to_owned(), port.normalised())))
    }

    /// The interfaces `ids` as `name[:type]` joined by `+`, sorted.
    fn describe(&mut self, ids: &[&str]) -> Result<String> {
        let ops = ids
            .iter()
            .map(|id| {
                json!({"op": "select", "table": "Interface", "where": [["_uuid", "==", ["uuid", id]]],
                       "columns": ["name", "type"]})
            })
            .collect();
        let results = self.transact(ops)?;
        let mut names: Vec<String> = results
            .iter()
            .filter_map(|r| r["rows"].as_array()?.first().cloned())
            .map(|iface| {
                let name = iface["name"].as_str().unwrap_or("?");
                match iface["type"].as_str() {
                    Some("" | "system") | None => name.to_owned(),
                    Some(kind) => format!("{name}:{kind}"),
                }
            })
            .collect();
        names.sort();
        Ok(names.join("+"))
    }

    /// `--if-exists del-port NAME`: none is success.
    pub fn del_port(&mut self, name: &str) -> Result<()> {
        let (bridges, stale) = self.lookup(name)?;
        let ops = Self::detach_ops(&bridges, stale.as_deref());
        if ops.is_empty() {
            return Ok(());
        }
        self.commit_and_wait(ops)
    }
}

#[cfg(test)]
#[path = "ovsdb_tests.rs"]
mod tests;
