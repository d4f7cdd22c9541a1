//! Pure planning: a kernel snapshot and the parsed input in, a `Plan` (steps as data) out.

pub mod ensure;
pub mod guest_ip;
pub mod modes;
pub mod needs;
pub mod plan;
pub mod snapshot;
