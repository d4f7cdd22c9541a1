//! vifkit's own nftables tables: the only module that speaks nf_tables. Every change is one
//! atomic batch sent over netlink through libnftnl (no `nft` fork on the plug path).

mod antispoof;
mod exprs;
mod fields;
mod nat;
pub mod rules;

use std::io;

use nftnl::FinalizedBatch;

pub use antispoof::{remove_port_filter, set_port_filter};
pub use nat::{Masquerade, nat_table, remove_port_nat, set_port_nat};
pub use rules::{Attachment, PortFilter};

/// Sends the batch and reads every acknowledgement: the kernel applies all or nothing and
/// returns the first error. nfnetlink handles a batch inside `sendmsg`, so every answer is
/// queued when the send returns; reading until the socket is empty (as `nft` does) works
/// whether the batch succeeded or not, where counting answers does not (a failed batch
/// is answered differently).
fn send(batch: &FinalizedBatch) -> io::Result<()> {
    use std::os::fd::{AsRawFd, BorrowedFd};

    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

    const NLMSG_ERROR: u16 = 2;
    let socket = mnl::Socket::new(mnl::Bus::Netfilter)?;
    socket.send_all(batch)?;
    // SAFETY: the descriptor belongs to `socket`, which outlives every use below.
    let fd = unsafe { BorrowedFd::borrow_raw(socket.as_raw_fd()) };
    let mut buffer = vec![0; nftnl::nft_nlmsg_maxsize() as usize];
    let mut first_error = None;
    let mut answered = false;
    loop {
        // A short wait for the first answer only, in case the kernel queues it late.
        let wait = if answered { 0u16 } else { 1000 };
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(wait))? == 0 {
            break;
        }
        for message in socket.recv(&mut buffer[..])? {
            let message = message?;
            answered = true;
            let kind = u16::from_ne_bytes([message[4], message[5]]);
            if kind == NLMSG_ERROR && message.len() >= 20 {
                let code = i32::from_ne_bytes([message[16], message[17], message[18], message[19]]);
                if code < 0 && first_error.is_none() {
                    first_error = Some(io::Error::from_raw_os_error(-code));
                }
            }
        }
    }
    match (first_error, answered) {
        (Some(err), _) => Err(err),
        (None, true) => Ok(()),
        (None, false) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "nf_tables did not answer",
        )),
    }
}
