//! Where the client finds xenstored (CONTRACT 3.1) and how it moves bytes
//! with a deadline over a unix socket or the xenbus device.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
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

    /// Opens `c` if it is what its kind allows, waiting until `until` at most (a xenstored
    /// whose listen queue is full never accepts; a blocking connect would wait for ever).
    pub(crate) fn open(c: &Candidate, until: Instant) -> Result<Transport, OpenError> {
        let found = Found::of(&std::fs::metadata(&c.path)?, || on_xenfs(&c.path));
        match endpoint(c.kind, found)? {
            Endpoint::Socket => Ok(Transport::socket(connect_socket(&c.path, until)?)),
            Endpoint::Device => Ok(open_device(&c.path, c.kind)?),
        }
    }

    /// Ends the exchange for good (a client that gave up on a reply): a socket is shut
    /// down, so nothing the peer sends late is ever read. The kernel device has no such
    /// call; its file is simply never used again.
    pub(crate) fn shut_down(&self) {
        if let Transport::Socket(s) = self {
            let _ = s.stream.shutdown(std::net::Shutdown::Both);
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

/// Opens the xenbus device without blocking (a FIFO or a terminal put in its place would
/// block in open()), then checks that what it opened is still what `metadata` saw.
fn open_device(path: &Path, kind: CandidateKind) -> Result<Transport, OpenError> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use std::os::unix::fs::OpenOptionsExt;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
        .open(path)?;
    let found = Found::of(&f.metadata()?, || {
        nix::sys::statfs::fstatfs(&f).is_ok_and(|fs| is_xenfs(&fs))
    });
    if endpoint(kind, found)? != Endpoint::Device {
        return Err(OpenError::Refused(found.describe(), kind));
    }
    // Reads wait in poll(); the device itself is used blocking, as libxenstore does.
    fcntl(&f, FcntlArg::F_SETFL(OFlag::empty())).map_err(io::Error::from)?;
    Ok(Transport::Device(f))
}

/// Connects to the unix socket at `path` without blocking: a listener whose queue is full
/// answers a non-blocking connect with EAGAIN, so it is tried again (a little less often
/// each time) until `until`.
pub(crate) fn connect_socket(path: &Path, until: Instant) -> io::Result<UnixStream> {
    use nix::errno::Errno;
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
    use std::os::fd::AsRawFd;
    let addr = UnixAddr::new(path)?;
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match connect(fd.as_raw_fd(), &addr) {
            Ok(()) => break,
            Err(Errno::EINTR) => continue,
            // Not what AF_UNIX does today, but what a non-blocking connect may say.
            Err(Errno::EINPROGRESS) => {
                wait_for(fd.as_fd(), nix::poll::PollFlags::POLLOUT, remaining(until)?)?;
                let error =
                    nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::SocketError)?;
                if error != 0 {
                    return Err(io::Error::from_raw_os_error(error));
                }
                break;
            }
            Err(Errno::EAGAIN) => match until.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => {
                    std::thread::sleep(pause.min(left));
                    pause = (pause * 2).min(MAX_CONNECT_PAUSE);
                }
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "no connection accepted in {:.1} s (its listen queue is full)",
                            started.elapsed().as_secs_f64()
                        ),
                    ));
                }
            },
            Err(errno) => return Err(errno.into()),
        }
    }
    let stream = UnixStream::from(fd);
    // Requests wait with socket timeouts (SO_RCVTIMEO, SO_SNDTIMEO) on a blocking socket.
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// The longest pause between two connects to a full listen queue.
const MAX_CONNECT_PAUSE: Duration = Duration::from_millis(50);

/// What a candidate path turned out to be, as far as reaching xenstore goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    Socket,
    CharDevice,
    /// A regular file on xenfs: `/proc/xen/xenbus` of the kernels that still mount it.
    XenfsFile,
    Regular,
    Directory,
    Fifo,
    BlockDevice,
    Other,
}

impl Found {
    /// `xenfs` is asked only for a regular file (it is a statfs() call).
    pub fn of(meta: &std::fs::Metadata, xenfs: impl FnOnce() -> bool) -> Found {
        let t = meta.file_type();
        if t.is_socket() {
            Found::Socket
        } else if t.is_char_device() {
            Found::CharDevice
        } else if t.is_file() {
            match xenfs() {
                true => Found::XenfsFile,
                false => Found::Regular,
            }
        } else if t.is_dir() {
            Found::Directory
        } else if t.is_fifo() {
            Found::Fifo
        } else if t.is_block_device() {
            Found::BlockDevice
        } else {
            Found::Other
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Found::Socket => "a unix socket",
            Found::CharDevice => "a character device",
            Found::XenfsFile => "a file on xenfs",
            Found::Regular => "a regular file",
            Found::Directory => "a directory",
            Found::Fifo => "a FIFO",
            Found::BlockDevice => "a block device",
            Found::Other => "neither a file nor a socket",
        }
    }
}

/// How a candidate is reached once it is known what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Socket,
    Device,
}

/// What a candidate of `kind` may be: xenstored's unix socket, or the xenbus character
/// device (or xenfs's `/proc/xen/xenbus`). Anything else is refused before it is opened,
/// so a regular file is never written protocol bytes.
pub fn endpoint(kind: CandidateKind, found: Found) -> Result<Endpoint, OpenError> {
    use CandidateKind as K;
    match (kind, found) {
        (K::Socket | K::SocketOrDevice, Found::Socket) => Ok(Endpoint::Socket),
        (K::Device | K::SocketOrDevice, Found::CharDevice | Found::XenfsFile) => {
            Ok(Endpoint::Device)
        }
        (kind, found) => Err(OpenError::Refused(found.describe(), kind)),
    }
}

const XENFS_SUPER_MAGIC: u32 = 0xabba_1974;

fn is_xenfs(fs: &nix::sys::statfs::Statfs) -> bool {
    // The field is a long on some targets, an int on others; the magic fits 32 bits.
    fs.filesystem_type().0 as u32 == XENFS_SUPER_MAGIC
}

fn on_xenfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).is_ok_and(|fs| is_xenfs(&fs))
}

/// Why a candidate was not opened.
#[derive(Debug)]
pub enum OpenError {
    /// It is not what its kind allows (what it is, and the kind).
    Refused(&'static str, CandidateKind),
    Io(io::Error),
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> OpenError {
        OpenError::Io(e)
    }
}

impl From<nix::errno::Errno> for OpenError {
    fn from(e: nix::errno::Errno) -> OpenError {
        OpenError::Io(e.into())
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Refused(what, CandidateKind::Socket) => {
                write!(f, "{what}, not a unix socket")
            }
            OpenError::Refused(what, CandidateKind::Device) => {
                write!(f, "{what}, not the xenbus device")
            }
            OpenError::Refused(what, CandidateKind::SocketOrDevice) => {
                write!(f, "{what}, neither a unix socket nor a character device")
            }
            OpenError::Io(e) => write!(f, "{e}"),
        }
    }
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
    wait_for(f.as_fd(), nix::poll::PollFlags::POLLIN, timeout)
}

fn wait_for(fd: BorrowedFd<'_>, events: nix::poll::PollFlags, timeout: Duration) -> io::Result<()> {
    use nix::poll::{PollFd, PollTimeout, poll};
    // Round up: stopping a little early would report a timeout before the deadline.
    let ms = timeout
        .as_micros()
        .div_ceil(1000)
        .clamp(1, i32::MAX as u128) as i32;
    let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
    loop {
        let mut fds = [PollFd::new(fd, events)];
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
    use std::os::fd::AsRawFd;

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
    fn only_a_socket_or_the_xenbus_device_is_xenstore() {
        use CandidateKind as K;
        let allowed = |kind, found| endpoint(kind, found).ok();
        assert_eq!(
            allowed(K::SocketOrDevice, Found::Socket),
            Some(Endpoint::Socket)
        );
        assert_eq!(
            allowed(K::SocketOrDevice, Found::CharDevice),
            Some(Endpoint::Device)
        );
        assert_eq!(
            allowed(K::SocketOrDevice, Found::XenfsFile),
            Some(Endpoint::Device)
        );
        assert_eq!(allowed(K::Socket, Found::Socket), Some(Endpoint::Socket));
        assert_eq!(
            allowed(K::Device, Found::CharDevice),
            Some(Endpoint::Device)
        );
        assert_eq!(allowed(K::Device, Found::XenfsFile), Some(Endpoint::Device));
        for found in [
            Found::Regular,
            Found::Directory,
            Found::Fifo,
            Found::BlockDevice,
            Found::Other,
        ] {
            for kind in [K::SocketOrDevice, K::Socket, K::Device] {
                assert_eq!(allowed(kind, found), None, "{kind:?} {found:?}");
            }
        }
        assert_eq!(allowed(K::Socket, Found::CharDevice), None);
        assert_eq!(allowed(K::Device, Found::Socket), None);
        let said = |kind, found| endpoint(kind, found).unwrap_err().to_string();
        assert_eq!(
            said(K::SocketOrDevice, Found::Regular),
            "a regular file, neither a unix socket nor a character device"
        );
        assert_eq!(
            said(K::Socket, Found::Directory),
            "a directory, not a unix socket"
        );
        assert_eq!(
            said(K::Device, Found::Fifo),
            "a FIFO, not the xenbus device"
        );
    }

    #[test]
    fn what_a_path_is() {
        let dir = std::env::temp_dir().join(format!("vk-found-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("file");
        std::fs::write(&file, b"x").unwrap();
        let fifo = dir.join("fifo");
        let _ = std::fs::remove_file(&fifo);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let socket = dir.join("socket");
        let _ = std::fs::remove_file(&socket);
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let found = |p: &Path, xenfs: bool| Found::of(&std::fs::metadata(p).unwrap(), || xenfs);
        assert_eq!(found(&file, false), Found::Regular);
        assert_eq!(found(&file, true), Found::XenfsFile);
        assert_eq!(found(&dir, true), Found::Directory);
        assert_eq!(found(&fifo, true), Found::Fifo);
        assert_eq!(found(&socket, false), Found::Socket);
        assert_eq!(found(Path::new("/dev/null"), false), Found::CharDevice);
        assert!(!on_xenfs(&file));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_regular_file_is_never_opened_as_the_device() {
        let dir = std::env::temp_dir().join(format!("vk-regular-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("xenbus");
        std::fs::write(&file, b"precious").unwrap();
        for kind in [CandidateKind::SocketOrDevice, CandidateKind::Device] {
            let c = Candidate::new(&file, kind);
            let until = Instant::now() + Duration::from_secs(1);
            match Transport::open(&c, until) {
                Err(OpenError::Refused("a regular file", k)) => assert_eq!(k, kind),
                other => panic!("{kind:?}: {other:?}"),
            }
        }
        assert_eq!(std::fs::read(&file).unwrap(), b"precious");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_listener_that_never_accepts_ends_the_connect_at_its_deadline() {
        use nix::sys::socket::{AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
        use nix::sys::socket::{bind, listen, socket};
        let dir = std::env::temp_dir().join(format!("vk-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("socket");
        let _ = std::fs::remove_file(&path);
        let listener = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        bind(listener.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
        listen(&listener, Backlog::new(0).unwrap()).unwrap();
        // Fill its queue; nobody ever accepts.
        let mut queued = vec![];
        loop {
            let until = Instant::now() + Duration::from_millis(5);
            match connect_socket(&path, until) {
                Ok(s) => queued.push(s),
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
                    break;
                }
            }
            assert!(queued.len() < 100, "the listen queue never filled");
        }
        let started = Instant::now();
        let err = connect_socket(&path, started + Duration::from_millis(200)).unwrap_err();
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(200) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        assert!(
            err.to_string().starts_with("no connection accepted in 0."),
            "{err}"
        );
        assert!(
            err.to_string().ends_with(" s (its listen queue is full)"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
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
