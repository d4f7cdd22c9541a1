//! Netfilter netlink (`NETLINK_NETFILTER`): one socket type and the message splitting that
//! nf_tables (`firewall`) and conntrack (`conntrack`) share, without libmnl.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, poll};

use crate::sys::deadline::{self, poll_timeout};
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, sendto,
    socket,
};

const NLMSG_HDRLEN: usize = 16;
const NLM_F_REQUEST: u16 = 0x1;

/// Starts a request in `buf`: struct nlmsghdr (NLM_F_REQUEST added to `flags`, port id 0)
/// and struct nfgenmsg (version 0, `res_id` big-endian). `end_message` fills in the length
/// once the attributes follow. Returns where the message starts.
pub fn begin_message(
    buf: &mut Vec<u8>,
    kind: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&[family, 0]);
    buf.extend_from_slice(&res_id.to_be_bytes());
    start
}

/// Sets the length of the message that `begin_message` started at `start`.
pub fn end_message(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

/// A bound `NETLINK_NETFILTER` socket; the kernel picks its port id.
pub struct Socket(OwnedFd);

impl Socket {
    pub fn open() -> io::Result<Socket> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        Ok(Socket(fd))
    }

    /// Sends one datagram (a request, or a whole batch) to the kernel.
    pub fn send(&self, data: &[u8]) -> io::Result<()> {
        let sent = sendto(
            self.0.as_raw_fd(),
            data,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        match sent == data.len() {
            true => Ok(()),
            false => Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short netlink send",
            )),
        }
    }

    /// Receives one datagram into `buffer`, waiting for it until `until` at most (see
    /// [`expired`] for the error; `nothing` says what did not come).
    pub fn recv_by(&self, buffer: &mut [u8], until: Instant, nothing: &str) -> io::Result<usize> {
        if !self.readable_by(until)? {
            return Err(expired(until, nothing));
        }
        Ok(recv(self.0.as_raw_fd(), buffer, MsgFlags::empty())?)
    }

    /// Whether a datagram is there by `until`; once `until` has passed, whether one is
    /// queued already (the kernel answers most requests inside the send).
    pub fn readable_by(&self, until: Instant) -> io::Result<bool> {
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, poll_timeout(left)) {
                Ok(ready) => return Ok(ready > 0),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(errno) => return Err(errno.into()),
            }
        }
    }
}

/// The error of a wait that ended at `until`, which `sys::deadline::bound` made: the run's
/// deadline, or else the call's own bound (then `nothing` says what did not come).
pub fn expired(until: Instant, nothing: &str) -> io::Error {
    let text = match deadline::get() {
        Some(run) if run <= until => "out of time (the run's deadline passed)",
        _ => nothing,
    };
    io::Error::new(io::ErrorKind::TimedOut, text)
}

/// One netlink message of a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

impl Message<'_> {
    /// The errno of an NLMSG_ERROR or of an NLMSG_DONE that ended a failed dump; 0 for an ack.
    pub fn errno(&self) -> i32 {
        ne_u32(self.payload, 0).map_or(0, |code| (code as i32).wrapping_neg())
    }
}

/// Splits a datagram into netlink messages; unaligned buffers are fine.
pub fn messages(buf: &[u8]) -> impl Iterator<Item = io::Result<Message<'_>>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let len = ne_u32(rest, 0).map_or(0, |len| len as usize);
        if !(NLMSG_HDRLEN..=rest.len()).contains(&len) {
            rest = &[];
            let err = io::Error::new(io::ErrorKind::InvalidData, "truncated netlink message");
            return Some(Err(err));
        }
        let message = Message {
            kind: ne_u16(rest, 4)?,
            flags: ne_u16(rest, 6)?,
            seq: ne_u32(rest, 8)?,
            payload: &rest[NLMSG_HDRLEN..len],
        };
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
        Some(Ok(message))
    })
}

/// The value of the first attribute of `kind` among `attrs`; None past a malformed one.
pub fn attribute(attrs: &[u8], kind: u16) -> Option<&[u8]> {
    // Nested and byte-order flags (NLA_F_NESTED, NLA_F_NET_BYTEORDER) are not the type.
    const NLA_TYPE_MASK: u16 = 0x3fff;
    let mut rest = attrs;
    while rest.len() >= 4 {
        let len = usize::from(ne_u16(rest, 0)?);
        let value = rest.get(4..len)?;
        if ne_u16(rest, 2)? & NLA_TYPE_MASK == kind {
            return Some(value);
        }
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    None
}

pub fn ne_u16(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(buf.get(at..at + 2)?.try_into().ok()?))
}

pub fn ne_u32(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}
