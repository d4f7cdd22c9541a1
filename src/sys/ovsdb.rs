//! Open vSwitch's database over its JSON-RPC unix socket (RFC 7047): what vif-openvswitch
//! does with `ovs-vsctl --if-exists del-port -- add-port`, in two round trips and no fork.
//! The first reads which bridges hold a port of that name; the second is one transaction
//! that drops the stale port and adds the new one with its tag, trunks and external-ids.

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

/// One port as vif-openvswitch adds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OvsPort {
    pub name: String,
    pub tag: Option<u16>,
    pub trunks: Vec<u16>,
    /// Interface external-ids: `attached-mac`, `xen-vm-name`, `xen-vm-uuid`.
    pub external_ids: Vec<(String, String)>,
    pub mtu: Option<u32>,
}

/// A Bridge row: its UUID, name and the UUIDs of its ports.
struct BridgeRow {
    id: String,
    name: String,
    ports: Vec<String>,
}

pub struct Ovsdb {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    id: u64,
    timeout: Duration,
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

impl Ovsdb {
    pub fn connect(timeout: Duration) -> Result<Ovsdb> {
        let path = socket_path();
        let stream = UnixStream::connect(&path)
            .with_context(|| format!("connect to ovsdb-server at {}", path.display()))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Ovsdb {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
            id: 0,
            timeout,
        })
    }

    /// One `transact`; every operation's result, or the first operation's error.
    fn transact(&mut self, ops: Vec<Value>) -> Result<Vec<Value>> {
        self.id += 1;
        let mut params = vec![json!("Open_vSwitch")];
        params.extend(ops);
        let request = json!({"method": "transact", "params": params, "id": self.id});
        self.writer.write_all(request.to_string().as_bytes())?;
        loop {
            let mut stream =
                serde_json::Deserializer::from_reader(&mut self.reader).into_iter::<Value>();
            let reply = stream
                .next()
                .ok_or_else(|| anyhow!("ovsdb-server closed the connection"))?
                .context("read ovsdb-server's reply")?;
            if reply["method"] == "echo" {
                let echo = json!({"result": reply["params"], "error": null, "id": reply["id"]});
                self.writer.write_all(echo.to_string().as_bytes())?;
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
        let deadline = Instant::now() + self.timeout;
        loop {
            let results = self.transact(vec![json!({"op": "select", "table": "Open_vSwitch",
                                                    "where": [], "columns": ["cur_cfg"]})])?;
            let applied = results[0]["rows"][0]["cur_cfg"].as_i64().unwrap_or(0);
            if applied >= target {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "ovs-vswitchd did not apply the change within {:?} (is it running?)",
                    self.timeout
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
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
