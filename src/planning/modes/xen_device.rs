//! Which netdev a Xen run acts on: the kernel name, or the `vifname` it is (or was) renamed
//! to (CONTRACT 4.1 items 3-5).

use anyhow::{Result, bail};

use crate::input::invocation::TypeIf;
use crate::input::xen_port::XenPort;
use crate::planning::snapshot::Snapshot;
use crate::sys::rtnl::Link;
use crate::types::names::IfName;

/// The device an attach acts on, as found, and the name it must end up with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved<'k> {
    pub found: &'k Link,
    pub rename_to: Option<IfName>,
}

pub fn resolve_attach<'k>(port: &XenPort, kernel: &'k Snapshot) -> Result<Resolved<'k>> {
    let dev = &port.kernel_name;
    let wanted = port.name.clone();
    let current = kernel.link(dev.as_str());
    if wanted == *dev {
        return match current {
            Some(found) => Ok(Resolved {
                found,
                rename_to: None,
            }),
            None => bail!("{dev} does not exist"),
        };
    }
    match (current, kernel.link(wanted.as_str())) {
        (Some(found), None) => Ok(Resolved {
            found,
            rename_to: Some(wanted),
        }),
        (Some(_), Some(_)) => {
            bail!("Cannot rename interface {dev}. An interface with name {wanted} already exists.")
        }
        // qemu-xen may have been told the final tap name already.
        (None, Some(found)) if port.type_if == TypeIf::Tap => Ok(Resolved {
            found,
            rename_to: None,
        }),
        (None, Some(found)) if is_renamed_from(kernel, found, port) => Ok(Resolved {
            found,
            rename_to: None,
        }),
        (None, Some(_)) => bail!("{dev} does not exist and {wanted} is not its renamed device"),
        (None, None) => bail!("{dev} does not exist"),
    }
}

/// A rerun finds the device already renamed. It is ours when sysfs says it is this backend's
/// netback device, or when its alias holds the kernel name (set by our rename).
fn is_renamed_from(kernel: &Snapshot, link: &Link, port: &XenPort) -> bool {
    let netback = format!("vif-{}-{}", port.vif.domid, port.vif.devid);
    kernel.device_of(link.name.as_str()) == Some(netback.as_str())
        || link.alias.as_deref() == Some(port.kernel_name.as_str())
}

/// The device a detach acts on: the kernel name while it still exists (an attach that failed
/// before its rename), else the final name if that device is ours, else nothing: netback has
/// usually freed it already.
pub fn resolve_detach<'k>(port: &XenPort, kernel: &'k Snapshot) -> Result<Option<&'k Link>> {
    if let Some(found) = kernel.link(port.kernel_name.as_str()) {
        return Ok(Some(found));
    }
    Ok(kernel
        .link(port.name.as_str())
        .filter(|found| port.type_if == TypeIf::Tap || is_renamed_from(kernel, found, port)))
}
