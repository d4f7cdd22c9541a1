//! Pure planners, one per way of connecting a guest.

pub mod antispoof;
pub mod bridge;
pub mod nat;
pub mod openvswitch;
pub mod port_options;
pub mod qemu;
pub mod route_ifup;
pub mod routed;
pub mod xen_device;
