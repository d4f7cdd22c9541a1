//! The ports the admin verbs act on: every Xen backend whose script is one of ours, as
//! libxl left it in xenstore.

use anyhow::Result;

use crate::entry::XenScript;
use crate::input::invocation::{Parsed, XenCall, parse_xen_call};
use crate::sys::xenstore::{Client, is_enoent};
use crate::types::names::IfName;

pub const BACKENDS: &str = "/local/domain/0/backend/vif";

/// One Xen port (a vif or its `-emu` tap) as libxl left its backend.
pub struct Backend {
    pub mode: XenScript,
    /// The call libxl makes for online (the vif) or add (the tap), with the environment it
    /// gives the script: `netdev` is the backend's `gatewaydev`, as libxl passes it.
    pub call: XenCall,
    /// The name the port has once online ran (`vifname`, else the kernel's).
    pub name: IfName,
    pub bridge: Option<String>,
    pub online: bool,
}

/// Every backend in dom0's directory whose script is one of ours, vif and `-emu` tap.
pub fn xen_ports(xs: &mut Client) -> Result<Vec<Backend>> {
    let mut ports = vec![];
    let domids = match xs.directory(BACKENDS) {
        Ok(domids) => domids,
        Err(err) if is_enoent(&err) => return Ok(ports),
        Err(err) => return Err(err.context(format!("list {BACKENDS}"))),
    };
    for domid in domids {
        for devid in xs.directory(&format!("{BACKENDS}/{domid}"))? {
            let backend = format!("{BACKENDS}/{domid}/{devid}");
            let keys = ["script", "vifname", "bridge", "online", "gatewaydev"]
                .map(|k| format!("{backend}/{k}"));
            let [script, vifname, bridge, online, gatewaydev] =
                <[Option<String>; 5]>::try_from(xs.read_many(&keys)?)
                    .map_err(|_| anyhow::anyhow!("xenstore answered the wrong number of reads"))?;
            let Some(mode) = script.as_deref().and_then(XenScript::from_script) else {
                continue;
            };
            let kernel = format!("vif{domid}.{devid}");
            for tap in [false, true] {
                let env = |key: &str| match key {
                    "XENBUS_PATH" => Some(backend.clone()),
                    "vif" => Some(kernel.clone()),
                    "INTERFACE" => Some(format!("{kernel}-emu")),
                    "netdev" => gatewaydev.clone(),
                    _ => None,
                };
                let args = match tap {
                    false => ["online", "type_if=vif"],
                    true => ["add", "type_if=tap"],
                }
                .map(str::to_owned);
                let Parsed::Run(call) = parse_xen_call(&args, &env)? else {
                    continue;
                };
                let base = vifname.clone().unwrap_or_else(|| kernel.clone());
                let name = IfName::new(&if tap { format!("{base}-emu") } else { base })?;
                ports.push(Backend {
                    mode,
                    call,
                    name,
                    bridge: bridge.clone(),
                    online: online.as_deref() == Some("1"),
                });
            }
        }
    }
    Ok(ports)
}
