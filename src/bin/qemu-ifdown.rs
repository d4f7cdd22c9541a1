//! Drop-in for Debian's `/etc/qemu-ifdown`, run by qemu's `-netdev tap,downscript=` or libvirt.

use std::process::ExitCode;

use vifkit::entry::{TapDirection, qemu_main};

fn main() -> ExitCode {
    qemu_main(TapDirection::Down, "qemu-ifdown")
}
