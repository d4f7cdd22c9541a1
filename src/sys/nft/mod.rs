//! vifkit's own nftables tables, and a read of other programs' forward chains: the only
//! module that speaks nf_tables. Every change is one atomic batch sent over netlink,
//! encoded by `wire` (no `nft` fork, no libnftnl).

mod antispoof;
mod chains;
mod fields;
pub(super) mod hold;
mod nat;
mod readback;
pub mod rules;
mod wire;

use std::io;
use std::time::Duration;

pub use antispoof::{
    installed_port_filter, port_filter_present, read_port_filter, remove_port_filter,
    set_port_filter,
};
pub use chains::{ForwardChain, IpFamily, forward_chains};
pub use hold::{hold_comment, hold_port, release_port};
pub use nat::{
    Masquerade, installed_nat, nat_fingerprint, nat_present, nat_table, remove_port_nat,
    set_port_nat,
};
pub use readback::InstalledFilter;
pub use rules::PortFilter;

use crate::sys::deadline;
use crate::sys::nfnl::{self, messages};
use wire::NfFamily;

/// How long one read waits for nf_tables, short of the run's deadline. nfnetlink answers
/// inside the send, so this is a guard, not a wait.
const ANSWER_WAIT: Duration = Duration::from_secs(1);

/// The messages of a dump: (type, payload after the nlmsghdr).
type Dumped = Vec<(u16, Vec<u8>)>;

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
            None => Ok(()),
        }
    }

    /// Whether the chain exists: one `NFT_MSG_GETCHAIN` request, not a dump, so the cost
    /// does not grow with the number of ports.
    fn chain_exists(&self, family: NfFamily, table: &str, chain: &str) -> io::Result<bool> {
        Ok(self.chain(family, table, chain)?.is_some())
    }

    /// The chain as the kernel describes it (the message after its nlmsghdr); None when it,
    /// or its table, is not there.
    fn chain(&self, family: NfFamily, table: &str, chain: &str) -> io::Result<Option<Vec<u8>>> {
        self.get(&wire::get_chain(family, table, chain, 1))
    }

    /// The table as the kernel describes it; None when it is not there.
    fn table(&self, family: NfFamily, table: &str) -> io::Result<Option<Vec<u8>>> {
        self.get(&wire::get_table(family, table, 1))
    }

    /// The messages of the dump `request` numbered `seq`, up to its NLMSG_DONE: (type,
    /// payload after the nlmsghdr). Asked again when the kernel says what it listed changed
    /// meanwhile (NLM_F_DUMP_INTR), as `nft` does.
    fn dump(&self, request: &[u8], seq: u32) -> io::Result<Dumped> {
        for _ in 0..3 {
            if let Some(messages) = self.dump_once(request, seq)? {
                return Ok(messages);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::Interrupted,
            "nf_tables kept changing while it was listed",
        ))
    }

    /// None when the dump was interrupted.
    fn dump_once(&self, request: &[u8], seq: u32) -> io::Result<Option<Dumped>> {
        const NLMSG_DONE: u16 = nix::libc::NLMSG_DONE as u16;
        const NLMSG_ERROR: u16 = nix::libc::NLMSG_ERROR as u16;
        const NLM_F_DUMP_INTR: u16 = 0x10;
        self.0.send(request)?;
        let mut found = vec![];
        let mut interrupted = false;
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let until = deadline::bound(ANSWER_WAIT);
            let n = self
                .0
                .recv_by(&mut buffer, until, "nf_tables did not finish the listing")?;
            for message in messages(&buffer[..n]) {
                let message = message?;
                if message.seq != seq {
                    continue;
                }
                interrupted |= message.flags & NLM_F_DUMP_INTR != 0;
                match message.kind {
                    NLMSG_DONE | NLMSG_ERROR => match message.errno() {
                        0 if message.kind == NLMSG_DONE => {
                            return Ok((!interrupted).then_some(found));
                        }
                        0 => {}
                        errno => return Err(io::Error::from_raw_os_error(errno)),
                    },
                    kind => found.push((kind, message.payload.to_vec())),
                }
            }
        }
    }

    /// The answer to a lookup numbered 1; None for ENOENT.
    fn get(&self, request: &[u8]) -> io::Result<Option<Vec<u8>>> {
        self.0.send(request)?;
        let mut found = None;
        for answer in read_answers(&self.0)?.into_iter().filter(|a| a.seq == 1) {
            match answer.error {
                None if !answer.ack => found = Some(answer.payload),
                Some(errno) if errno != nix::libc::ENOENT => {
                    return Err(io::Error::from_raw_os_error(errno));
                }
                _ => {}
            }
        }
        Ok(found)
    }
}

/// What a fingerprint starts with; the number changes if what is hashed ever does.
const FINGERPRINT_TAG: &str = "vifkit1:";

/// The fingerprint of what `batch` installs: the tag and a 64-bit FNV-1a of its bytes, as
/// 16 hex digits. Stored as the comment of what it installed, it tells a later run whether
/// what is there is exactly what it would install, addresses, MAC, uplink and rule layout
/// included, without reading the rules back.
fn fingerprint(batch: &[u8]) -> String {
    format!("{FINGERPRINT_TAG}{:016x}", fnv1a64(batch))
}

/// 64-bit FNV-1a: stable across releases and platforms, unlike std's hasher.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |hash: u64, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
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
    /// The message after its nlmsghdr (empty for acknowledgements and errors).
    payload: Vec<u8>,
}

/// Reads until the socket is empty. nfnetlink handles a request inside `sendmsg`, so every
/// answer is queued when the send returns; reading them all (as `nft` does) works whether
/// a batch succeeded or not, where counting acknowledgements does not (a failed batch is
/// answered differently). Every request vifkit sends is answered: none is an error.
fn read_answers(socket: &nfnl::Socket) -> io::Result<Vec<Answer>> {
    const NLMSG_ERROR: u16 = nix::libc::NLMSG_ERROR as u16;
    let mut buffer = vec![0; 64 * 1024];
    let mut answers = vec![];
    // A short wait for the first answer only, in case the kernel queues it late.
    let first = deadline::bound(ANSWER_WAIT);
    loop {
        let until = if answers.is_empty() {
            first
        } else {
            std::time::Instant::now()
        };
        if !socket.readable_by(until)? {
            if answers.is_empty() {
                return Err(nfnl::expired(until, "nf_tables did not answer"));
            }
            return Ok(answers);
        }
        let n = socket.recv_by(&mut buffer, until, "nf_tables did not answer")?;
        for message in messages(&buffer[..n]) {
            let message = message?;
            let code = (message.kind == NLMSG_ERROR).then(|| message.errno());
            answers.push(Answer {
                seq: message.seq,
                ack: code == Some(0),
                error: code.filter(|c| *c != 0),
                payload: match code {
                    None => message.payload.to_vec(),
                    Some(_) => vec![],
                },
            });
        }
    }
}

#[cfg(test)]
#[path = "golden_tests.rs"]
mod golden_tests;

#[cfg(test)]
#[path = "fingerprint_tests.rs"]
mod fingerprint_tests;
