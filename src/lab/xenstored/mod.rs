//! A small xenstored that speaks the wire protocol over a Unix socket, standing in for the
//! real one where no Xen hypervisor runs.

pub mod server;
mod store;
mod tree;

pub use server::{Server, run};
