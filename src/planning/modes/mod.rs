//! Pure planners, one per way of connecting a guest. Each Xen mode is one type that says
//! what it needs from the kernel and plans attach and detach from a snapshot of it.

pub mod antispoof;
pub mod bridge;
pub mod nat;
pub mod openvswitch;
pub mod port_options;
pub mod qemu;
pub mod route_ifup;
pub mod route_lines;
pub mod routed;
pub mod xen_device;

use anyhow::Result;

use crate::input::xen_port::XenPort;
use crate::planning::needs::Needs;
use crate::planning::plan::Plan;
use crate::planning::snapshot::Snapshot;
use crate::types::prefix::Prefix;

pub trait Mode {
    /// What the mode's planner reads from the kernel for this port (attach or detach).
    fn own_needs(&self, port: &XenPort) -> Result<Needs>;
    /// What a run reads: the mode's needs and, on every attach, the port's antispoofing
    /// chain, which `antispoof::add_to_attach` replaces, keeps, or removes when the port
    /// stays unfiltered (an earlier guest's chain of the same name hooks on this port).
    fn needs(&self, port: &XenPort) -> Result<Needs> {
        let mut needs = self.own_needs(port)?;
        if port.is_attach() {
            needs.port_filter = Some(port.name.clone());
        }
        Ok(needs)
    }
    /// `online` / `add`: the plan, and the guest's own addresses (what antispoofing allows).
    fn attach(&self, port: &XenPort, kernel: &Snapshot) -> Result<Attach>;
    /// `offline` / `remove`.
    fn detach(&self, port: &XenPort, kernel: &Snapshot) -> Result<Plan>;
}

pub struct Attach {
    pub plan: Plan,
    pub guest_addresses: Vec<Prefix>,
}
