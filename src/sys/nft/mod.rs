//! vifkit's own nftables tables: the only module that speaks nf_tables. Every change is one
//! atomic batch sent over netlink, encoded by `wire` (no `nft` fork, no libnftnl).

mod antispoof;
mod fields;
mod nat;
pub mod rules;
mod wire;

use std::io;

pub use antispoof::{port_filter_present, remove_port_filter, set_port_filter};
pub use nat::{Masquerade, nat_present, nat_table, remove_port_nat, set_port_nat};
pub use rules::PortFilter;

use crate::sys::nfnl::{self, messages};
use wire::NfFamily;

/// One nfnetlink socket, for a lookup and the batch that follows it: a plug pays for one
/// socket (and one close, which may wait for the kernel's cleanup), not two.
struct Nfnl(nfnl::Socket);

impl Nfnl {
    fn open() -> io::Result<Nfnl> {
        nfnl::Socket::open().map(Nfnl)
    }

    /// Sends the batch and returns the first error: the kernel applies all or nothing.
    fn send(&self, batch: &[u8]) -> io::Result<()> {
        self.0.send(batch)?;
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

    /// Whether the chain exists: one `NFT_MSG_GETCHAIN` request, not a dump, so the cost
    /// does not grow with the number of ports.
    fn chain_exists(&self, family: NfFamily, table: &str, chain: &str) -> io::Result<bool> {
        self.0.send(&wire::get_chain(family, table, chain, 1))?;
        let mut found = false;
        for answer in read_answers(&self.0)?.into_iter().filter(|a| a.seq == 1) {
            match answer.error {
                None if !answer.ack => found = true,
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
fn send(batch: &[u8]) -> io::Result<()> {
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
fn read_answers(socket: &nfnl::Socket) -> io::Result<Vec<Answer>> {
    const NLMSG_ERROR: u16 = nix::libc::NLMSG_ERROR as u16;
    let mut buffer = vec![0; 64 * 1024];
    let mut answers = vec![];
    loop {
        // A short wait for the first answer only, in case the kernel queues it late.
        let wait = if answers.is_empty() { 1000 } else { 0 };
        if !socket.readable(wait)? {
            return Ok(answers);
        }
        let n = socket.recv(&mut buffer)?;
        for message in messages(&buffer[..n]) {
            let message = message?;
            let code = (message.kind == NLMSG_ERROR).then(|| message.errno());
            answers.push(Answer {
                seq: message.seq,
                ack: code == Some(0),
                error: code.filter(|c| *c != 0),
            });
        }
    }
}

#[cfg(test)]
#[path = "golden_tests.rs"]
mod golden_tests;
