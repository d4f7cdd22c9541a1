//! Drop-in for Debian's `/etc/qemu-ifup`, run by qemu's `-netdev tap,script=` or libvirt.

use std::process::ExitCode;

use vifkit::entry::{TapDirection, qemu_main};

fn main() -> ExitCode {
    qemu_main(TapDirection::Up, "qemu-ifup")
}
