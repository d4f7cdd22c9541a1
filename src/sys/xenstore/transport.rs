//! Where the client finds xenstored (CONTRACT 3.1) and how it moves bytes
//! with a deadline over a unix socket or the xenbus device.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::wire::{self, Message};

/// How to open one candidate path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CandidateKind {
    /// A unix socket if the path is one, else the xenbus device; this is
    /// how libxenstore treats `XENSTORED_PATH`.
    SocketOrDevice,
    Socket,
    Device,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub path: PathBuf,
    pub kind: CandidateKind,
}

impl Candidate {
    fn new(path: impl Into<PathBuf>, kind: CandidateKind) -> Candidate {
        Candidate {
            path: path.into(),
            kind,
        }
    }
}

/// The connection order of CONTRACT 3.1, given the values of
/// `XENSTORED_PATH` and `XENSTORED_RUNDIR` (empty counts as unset).
pub fn candidates(xenstored_path: Option<&OsStr>, rundir: Option<&OsStr>) -> Vec<Candidate> {
    let mut out = Vec::new();
    if let Some(p) = xenstored_path.filter(|p| !p.is_empty()) {
        out.push(Candidate::new(p, CandidateKind::SocketOrDevice));
    }
    if let Some(dir) = rundir.filter(|d| !d.is_empty()) {
        out.push(Candidate::new(
            Path::new(dir).join("socket"),
            CandidateKind::Socket,
        ));
    }
    for p in ["/var/run/xenstored/socket", "/run/xenstored/socket"] {
        out.push(Candidate::new(p, CandidateKind::Socket));
    }
    for p in ["/dev/xen/xenbus", "/proc/xen/xenbus"] {
        out.push(Candidate::new(p, CandidateKind::Device));
    }
    out
}

#[derive(Debug)]
pub(crate) enum Transport {
    Socket(Buffered),
    /// The kernel device takes one whole request per write() and has no
    /// socket timeouts, so reads wait in poll().
    Device(File),
}

/// A socket and the bytes read past the last message: the replies to pipelined requests
/// arrive together, and taking them in one read() spares two syscalls per reply (a timeout
/// and a read for the header, again for the payload).
#[derive(Debug)]
pub(crate) struct Buffered {
    stream: UnixStream,
    inbox: Vec<u8>,
    taken: usize,
}

impl Transport {
    pub(crate) fn socket(stream: UnixStream) -> Transport {
        Transport::Socket(Buffered {
            stream,
            inbox: Vec::new(),
            taken: 0,
        })
    }

    pub(crate) fn open(c: &Candidate) -> io::Result<Transport> {
        match c.kind {
            CandidateKind::Socket => Ok(Transport::socket(UnixStream::connect(&c.path)?)),
            CandidateKind::Device => open_device(&c.path),
            CandidateKind::SocketOrDevice => {
                if std::fs::metadata(&c.path)?.file_type().is_socket() {
                    Ok(Transport::socket(UnixStream::connect(&c.path)?))
                } else {
                    open_device(&c.path)
                }
            }
        }
    }

    pub(crate) fn send(&mut self, msg: &Message, deadline: Instant) -> io::Result<()> {
        let bytes = msg.encode()?;
        match self {
            Transport::Socket(s) => {
                s.stream.set_write_timeout(Some(remaining(deadline)?))?;
                s.stream.write_all(&bytes).map_err(timeout_text)
            }
            Transport::Device(f) => {
                let n = f.write(&bytes)?;
                if n != bytes.len() {
                    return Err(io::Error::other(format!(
                        "xenbus device took {n} of {} bytes",
                        bytes.len()
                    )));
                }
                Ok(())
            }
        }
    }

    /// Several encoded messages in one write (socket only: the device takes one per write).
    pub(crate) fn send_raw(&mut self, bytes: &[u8], deadline: Instant) -> io::Result<()> {
        match self {
            Transport::Socket(s) => {
                s.stream.set_write_timeout(Some(remaining(deadline)?))?;
                s.stream.write_all(bytes).map_err(timeout_text)
            }
            Transport::Device(_) => Err(io::Error::other(
                "the xenbus device takes one request per write",
            )),
        }
    }

    pub(crate) fn recv(&mut self, deadline: Instant) -> io::Result<Message> {
        wire::read_message(&mut Timed {
            transport: self,
            deadline,
        })
        .map_err(timeout_text)
    }
}

fn open_device(path: &Path) -> io::Result<Transport> {
    let f = OpenOptions::new().read(true).write(true).open(path)?;
    Ok(Transport::Device(f))
}

fn remaining(deadline: Instant) -> io::Result<Duration> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(io::Error::from(io::ErrorKind::TimedOut)),
    }
}

// A socket read timeout surfaces as EAGAIN, whose text ("Resource
// temporarily unavailable") would read like a xenstore EAGAIN.
fn timeout_text(e: io::Error) -> io::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            io::Error::new(io::ErrorKind::TimedOut, "no reply before the deadline")
        }
        _ => e,
    }
}

/// How much one read() of the socket may take: many replies, well under a page.
const INBOX: usize = 4096;

/// Applies the request deadline to every read() of one message.
struct Timed<'a> {
    transport: &'a mut Transport,
    deadline: Instant,
}

impl Read for Timed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.transport {
            Transport::Socket(s) => {
                if s.taken == s.inbox.len() {
                    s.inbox.clear();
                    s.taken = 0;
                    s.stream.set_read_timeout(Some(remaining(self.deadline)?))?;
                    s.inbox.resize(INBOX, 0);
                    match s.stream.read(&mut s.inbox) {
                        Ok(n) => s.inbox.truncate(n),
                        Err(e) => {
                            s.inbox.clear();
                            return Err(e);
                        }
                    }
                }
                let n = buf.len().min(s.inbox.len() - s.taken);
                buf[..n].copy_from_slice(&s.inbox[s.taken..s.taken + n]);
                s.taken += n;
                Ok(n)
            }
            Transport::Device(f) => {
                wait_readable(f, remaining(self.deadline)?)?;
                f.read(buf)
            }
        }
    }
}

fn wait_readable(f: &File, timeout: Duration) -> io::Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    // Round up: stopping a little early would report a timeout before the deadline.
    let ms = timeout
        .as_micros()
        .div_ceil(1000)
        .clamp(1, i32::MAX as u128) as i32;
    let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
    loop {
        let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::TimedOut)),
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_without_environment() {
        let c = candidates(None, None);
        let paths: Vec<_> = c.iter().map(|c| c.path.to_str().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "/var/run/xenstored/socket",
                "/run/xenstored/socket",
                "/dev/xen/xenbus",
                "/proc/xen/xenbus"
            ]
        );
        assert_eq!(c[1].kind, CandidateKind::Socket);
        assert_eq!(c[2].kind, CandidateKind::Device);
    }

    #[test]
    fn environment_comes_first() {
        let c = candidates(Some(OsStr::new("/x/sock")), Some(OsStr::new("/rd")));
        assert_eq!(
            c[0],
            Candidate::new("/x/sock", CandidateKind::SocketOrDevice)
        );
        assert_eq!(c[1], Candidate::new("/rd/socket", CandidateKind::Socket));
        assert_eq!(c.len(), 6);
        let c = candidates(Some(OsStr::new("")), Some(OsStr::new("")));
        assert_eq!(c.len(), 4);
    }

    #[test]
    fn device_read_times_out() {
        // A pipe never becomes readable: stands in for a silent xenbus.
        let (r, _w) = std::io::pipe().unwrap();
        let f = File::from(std::os::fd::OwnedFd::from(r));
        let mut t = Transport::Device(f);
        let start = Instant::now();
        let err = t.recv(start + Duration::from_millis(50)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn socket_replies_that_arrive_together_or_in_pieces_are_all_read() {
        use super::super::wire::MsgType;
        let (mine, mut peer) = UnixStream::pair().unwrap();
        let mut t = Transport::socket(mine);
        let deadline = Instant::now() + Duration::from_secs(5);
        let reply = |id: u32, text: &str| {
            Message::new(MsgType::Read, id, 0, text.as_bytes().to_vec())
                .encode()
                .unwrap()
        };
        // Three replies in one write: one read() serves them all.
        let together = [reply(1, "xenbr0"), reply(2, "1"), reply(3, "vif")].concat();
        peer.write_all(&together).unwrap();
        // A fourth split inside its header and again inside its payload.
        let split = reply(4, "00:16:3e:00:00:01");
        peer.write_all(&split[..7]).unwrap();
        for (id, text) in [(1, "xenbr0"), (2, "1"), (3, "vif")] {
            let m = t.recv(deadline).unwrap();
            assert_eq!((m.req_id, m.payload.as_slice()), (id, text.as_bytes()));
        }
        peer.write_all(&split[7..20]).unwrap();
        peer.write_all(&split[20..]).unwrap();
        let m = t.recv(deadline).unwrap();
        assert_eq!((m.req_id, m.payload), (4, b"00:16:3e:00:00:01".to_vec()));
        // Nothing more comes: the deadline, not a stale byte, ends the wait.
        let err = t
            .recv(Instant::now() + Duration::from_millis(50))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
