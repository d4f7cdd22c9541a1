//! vifkit's own nftables tables: the only module that speaks nf_tables. Every change is one
//! atomic batch sent over netlink through libnftnl (no `nft` fork on the plug path).

mod antispoof;
mod exprs;
mod fields;
mod nat;
pub mod rules;

use std::io;

use nftnl::FinalizedBatch;

pub use antispoof::{port_filter_present, remove_port_filter, set_port_filter};
pub use nat::{Masquerade, nat_present, nat_table, remove_port_nat, set_port_nat};
pub use rules::PortFilter;

/// One nfnetlink socket, for a lookup and the batch that follows it: a plug pays for one
/// socket (and one close, which may wait for the kernel's cleanup), not two.
struct Nfnl(mnl::Socket);

impl Nfnl {
    fn open() -> io::Result<Nfnl> {
        mnl::Socket::new(mnl::Bus::Netfilter).map(Nfnl)
    }

    /// Sends the batch and returns the first error: the kernel applies all or nothing.
    fn send(&self, batch: &FinalizedBatch) -> io::Result<()> {
        self.0.send_all(batch)?;
        let answers = read_answers(&self.0)?;
        match answers.iter().find_map(|a| a.error) {
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            None if answers.is_empty() => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "nf_tables did not answer",
            )),
            None => Ok(()),
        }
    }

    /// Whether each chain exists, in one round trip of `NFT_MSG_GETCHAIN` requests (not
    /// dumps: the cost does not grow with the number of ports).
    fn chains_exist(&self, queries: &[exprs::ChainQuery]) -> io::Result<Vec<bool>> {
        let mut buffer = vec![0u8; 1024 * queries.len()];
        let mut used = 0;
        for (seq, query) in (1u32..).zip(queries) {
            used += query.write(&mut buffer[used..], seq);
        }
        self.0.send(&buffer[..used])?;
        let answers = read_answers(&self.0)?;
        let mut found = vec![false; queries.len()];
        for answer in answers {
            let Some(slot) = (answer.seq as usize)
                .checked_sub(1)
                .and_then(|i| found.get_mut(i))
            else {
                continue;
            };
            match answer.error {
                None if !answer.ack => *slot = true,
                Some(errno) if errno != nix::libc::ENOENT => {
                    return Err(io::Error::from_raw_os_error(errno));
                }
                _ => {}
            }
        }
        Ok(found)
    }
}

/// A batch on a socket of its own.
fn send(batch: &FinalizedBatch) -> io::Result<()> {
    Nfnl::open()?.send(batch)
}

struct Answer {
    seq: u32,
    /// An NLMSG_ERROR carrying 0.
    ack: bool,
    error: Option<i32>,
}

/// Reads until the socket is empty. nfnetlink handles a request inside `sendmsg`, so every
/// answer is queued when the send returns; reading them all (as `nft` does) works whether
/// a batch succeeded or not, where counting acknowledgements does not (a failed batch is
/// answered differently).
fn read_answers(socket: &mnl::Socket) -> io::Result<Vec<Answer>> {
    use std::os::fd::{AsRawFd, BorrowedFd};

    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

    const NLMSG_ERROR: u16 = 2;
    // SAFETY: the descriptor belongs to `socket`, which outlives every use below.
    let fd = unsafe { BorrowedFd::borrow_raw(socket.as_raw_fd()) };
    let mut buffer = vec![0; nftnl::nft_nlmsg_maxsize() as usize];
    let mut answers = vec![];
    loop {
        // A short wait for the first answer only, in case the kernel queues it late.
        let wait = if answers.is_empty() { 1000u16 } else { 0 };
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(wait))? == 0 {
            return Ok(answers);
        }
        for message in socket.recv(&mut buffer[..])? {
            let message = message?;
            if message.len() < 16 {
                continue;
            }
            let kind = u16::from_ne_bytes([message[4], message[5]]);
            let seq = u32::from_ne_bytes([message[8], message[9], message[10], message[11]]);
            let code = (kind == NLMSG_ERROR && message.len() >= 20)
                .then(|| i32::from_ne_bytes([message[16], message[17], message[18], message[19]]));
            answers.push(Answer {
                seq,
                ack: code == Some(0),
                error: code.filter(|c| *c < 0).map(|c| -c),
            });
        }
    }
}
