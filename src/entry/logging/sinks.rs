//! The three places a record goes, each written so that it cannot hold a run up: a syslog
//! socket that is never waited for, a log file opened and written without waiting, and
//! stderr with a small patience for the whole run. What a sink does not take is counted in
//! its [`Drops`].

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// The most a pipe or FIFO takes in one piece: a write of up to this many bytes is never
/// mixed with another writer's, and once `poll` says there is room it does not wait.
pub const PIPE_BUF: usize = nix::libc::PIPE_BUF;

/// How long stderr may keep a run waiting, in all: libxl's stderr is a file and never
/// waits, but qemu's may be a pipe to a log daemon that has stopped reading.
pub const STDERR_PATIENCE: Duration = Duration::from_secs(1);

/// Records a sink did not take since the last [`Drops::take`], and why the last one was not.
#[derive(Default)]
pub struct Drops(Mutex<(u32, Option<io::Error>)>);

impl Drops {
    pub fn note(&self, why: io::Error) {
        if let Ok(mut drops) = self.0.lock() {
            drops.0 += 1;
            drops.1 = Some(why);
        }
    }

    /// How many records were dropped since the last call, and why the last one was.
    pub fn take(&self) -> Option<(u32, io::Error)> {
        let mut drops = self.0.lock().ok()?;
        let (count, why) = std::mem::take(&mut *drops);
        Some((count, why?))
    }
}

/// A datagram socket connected to syslog, non-blocking from before it connects.
pub struct Syslog {
    socket: UnixDatagram,
    pub path: &'static str,
    pub drops: Drops,
}

impl Syslog {
    /// Connecting a datagram socket waits for nobody, and fails at once when `path` is not a
    /// datagram socket (nothing else is opened).
    pub fn connect(path: &'static str) -> io::Result<Syslog> {
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        socket.connect(path)?;
        Ok(Syslog {
            socket,
            path,
            drops: Drops::default(),
        })
    }

    /// Sends `datagram` if the reader has room for it now; otherwise (`EAGAIN`: it is not
    /// reading, or a reader that went away) the record is dropped and counted.
    pub fn send(&self, datagram: &[u8]) {
        if let Err(err) = self.socket.send(datagram) {
            self.drops.note(err);
        }
    }
}

/// A log file appended to without waiting: a regular file (opened `O_APPEND`, so each
/// record's one `write` lands whole after every other writer's), or a FIFO that has a reader
/// when the run starts (records cut to [`PIPE_BUF`], so each is one atomic write).
pub struct LogFile {
    file: File,
    fifo: bool,
    pub path: PathBuf,
    pub drops: Drops,
}

impl LogFile {
    /// Opens (or creates) `path`, following symlinks as the shell's `2>>` of upstream's
    /// scripts does. A device, socket or directory is never opened; a FIFO without a reader
    /// fails at once (`ENXIO`) instead of waiting for one.
    pub fn open(path: &Path) -> io::Result<LogFile> {
        match std::fs::metadata(path) {
            Ok(meta) => check_type(meta.file_type())?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
            .open(path)
            .map_err(|err| match err.raw_os_error() {
                Some(nix::libc::ENXIO) => io::Error::other("a FIFO without a reader"),
                _ => err,
            })?;
        // What was opened may not be what was looked at: check again, on the open file.
        let kind = file.metadata()?.file_type();
        check_type(kind)?;
        Ok(LogFile {
            file,
            fifo: kind.is_fifo(),
            path: path.to_owned(),
            drops: Drops::default(),
        })
    }

    /// One `write` of the whole line; what a full FIFO or disk does not take is counted.
    pub fn write(&self, line: &str) {
        let line = if self.fifo {
            cut(line, PIPE_BUF)
        } else {
            line.into()
        };
        match (&self.file).write(line.as_bytes()) {
            Ok(written) if written == line.len() => {}
            Ok(written) => self.drops.note(io::Error::other(format!(
                "wrote {written} of {} bytes",
                line.len()
            ))),
            Err(err) => self.drops.note(err),
        }
    }
}

fn check_type(kind: std::fs::FileType) -> io::Result<()> {
    if kind.is_file() || kind.is_fifo() {
        Ok(())
    } else {
        Err(io::Error::other("neither a regular file nor a FIFO"))
    }
}

/// `line` if it fits in `max` bytes, else its start (whole characters) ending in `…\n`.
pub fn cut(line: &str, max: usize) -> std::borrow::Cow<'_, str> {
    const MARK: &str = "…\n";
    if line.len() <= max {
        return line.into();
    }
    let mut end = max - MARK.len();
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &line[..end]).into()
}

/// Standard error, written in pieces of at most [`PIPE_BUF`] bytes (so a line of any usual
/// length is one `write`), each once `poll` says there is room, waiting no longer than
/// what is left of [`STDERR_PATIENCE`] for the whole run.
pub struct Stderr {
    patience: Mutex<Duration>,
    pub drops: Drops,
}

impl Stderr {
    pub fn new() -> Stderr {
        Stderr {
            patience: Mutex::new(STDERR_PATIENCE),
            drops: Drops::default(),
        }
    }

    pub fn write(&self, line: &[u8]) {
        // The lock also keeps one record's pieces together within this process.
        let Ok(mut patience) = self.patience.lock() else {
            return;
        };
        let stderr = io::stderr();
        let fd = stderr.as_fd();
        let mut rest = line;
        while !rest.is_empty() {
            if let Err(err) = wait_for_room(fd, &mut patience) {
                self.drops.note(err.into());
                return;
            }
            match nix::unistd::write(fd, &rest[..rest.len().min(PIPE_BUF)]) {
                Ok(written) => rest = &rest[written..],
                // Someone else's non-blocking stderr: poll again.
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(err) => {
                    self.drops.note(err.into());
                    return;
                }
            }
        }
    }
}

/// Waits until `fd` has room, for no longer than `patience`, which shrinks by the wait.
fn wait_for_room(fd: BorrowedFd<'_>, patience: &mut Duration) -> Result<(), Errno> {
    loop {
        let started = Instant::now();
        let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
        let timeout = PollTimeout::try_from(*patience).unwrap_or(PollTimeout::MAX);
        let ready = poll(&mut fds, timeout);
        *patience = patience.saturating_sub(started.elapsed());
        match ready {
            Ok(0) => return Err(Errno::EAGAIN),
            Ok(_)
                if fds[0]
                    .revents()
                    .is_some_and(|r| r.contains(PollFlags::POLLNVAL)) =>
            {
                return Err(Errno::EBADF);
            }
            // Room, or an error or hang-up that the write reports.
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) if !patience.is_zero() => {}
            Err(Errno::EINTR) => return Err(Errno::EAGAIN),
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_too_long_for_a_fifo_is_cut_on_a_character() {
        assert_eq!(cut("short\n", 6), "short\n");
        assert_eq!(cut("abcdefgh\n", 8), "abcd…\n");
        // "é" is 2 bytes: bytes 3..5; the cut would split it at 4.
        assert_eq!(cut("abcéfgh\n", 8), "abc…\n");
        let long = "x".repeat(5000) + "\n";
        let cut_long = cut(&long, PIPE_BUF);
        assert_eq!(cut_long.len(), PIPE_BUF);
        assert!(cut_long.ends_with("x…\n"));
    }

    #[test]
    fn drops_are_counted_until_taken() {
        let drops = Drops::default();
        assert!(drops.take().is_none());
        drops.note(Errno::EAGAIN.into());
        drops.note(Errno::ECONNREFUSED.into());
        let (count, why) = drops.take().unwrap();
        assert_eq!(count, 2);
        assert_eq!(why.raw_os_error(), Some(nix::libc::ECONNREFUSED));
        assert!(drops.take().is_none());
    }
}
