//! Purges the conntrack entries of a guest's addresses over ctnetlink, as vif-route-qubes does
//! with `conntrack -D -s ADDR` and `-d ADDR`, without forking the `conntrack` tool: a stale entry
//! would keep steering a reused address's traffic by the old guest's NAT and state.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::libc;

use crate::sys::deadline;
use crate::sys::nfnl::{self, messages, ne_u16};
use crate::types::prefix::Prefix;
use filter::Listing;

// include/uapi/linux/netfilter/nfnetlink_conntrack.h; libc does not carry these.
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_ZONE: u16 = 18;
const CTA_TUPLE_IP: u16 = 1;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;

const NLMSG_ERROR: u16 = libc::NLMSG_ERROR as u16;
const NLMSG_DONE: u16 = libc::NLMSG_DONE as u16;
const NLM_F_ACK: u16 = libc::NLM_F_ACK as u16;
const NLM_F_DUMP: u16 = libc::NLM_F_DUMP as u16;
const NLM_F_DUMP_INTR: u16 = libc::NLM_F_DUMP_INTR as u16;
const NLA_TYPE_MASK: u16 = libc::NLA_TYPE_MASK as u16;

const NLMSG_HDRLEN: usize = 16;
const NFGENMSG_LEN: usize = 4;
const NLA_HDRLEN: usize = 4;
/// The kernel sizes dump datagrams by the largest buffer we ever passed, capped at 32 KiB, so
/// this never truncates one.
const RECV_BUFFER: usize = 32 * 1024;
/// As the CNI plugins do for dumps the kernel marks inconsistent.
const DUMP_ATTEMPTS: usize = 5;
/// How long one read waits for ctnetlink, short of the run's deadline: the kernel fills
/// each datagram of a dump as it is read, and answers a delete inside the send.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// Deletes every conntrack entry (IPv4 and IPv6, all zones) whose original-direction source or
/// destination address lies in one of `prefixes`. Returns how many were deleted.
pub fn purge(prefixes: &[Prefix]) -> Result<usize> {
    if prefixes.is_empty() || tracks_nothing() {
        return Ok(0);
    }
    let mut ct = match Ctnetlink::open() {
        Err(err) if is_absent(&err) => return Ok(0),
        other => other.context("open ctnetlink socket")?,
    };
    let mut deleted = 0;
    let mut failure = None;
    for (family, v4) in [(libc::AF_INET as u8, true), (libc::AF_INET6 as u8, false)] {
        let listings = filter::listings(prefixes, v4);
        if listings.is_empty() {
            continue;
        }
        let doomed = match ct.find(family, &listings, prefixes) {
            Err(err) if is_absent(&err) => {
                log::debug!("no conntrack to purge: {err}");
                continue;
            }
            other => other.context("dump conntrack table")?,
        };
        // Deletes wait for the dump to end: one socket cannot answer both at once.
        for Doomed { name, attributes } in doomed {
            match ct.delete(family, &attributes) {
                Ok(true) => {
                    log::debug!("deleted conntrack entry {name}");
                    deleted += 1;
                }
                Ok(false) => log::debug!("conntrack entry {name}: already gone"),
                Err(err) => {
                    let err =
                        anyhow::Error::new(err).context(format!("delete conntrack entry {name}"));
                    log::warn!("{err:#}");
                    failure.get_or_insert(err);
                }
            }
        }
    }
    if deleted > 0 {
        log::info!("deleted {deleted} conntrack entries");
    }
    // Teardown keeps going past a failed delete; the first failure is the one reported.
    failure.map_or(Ok(deleted), Err)
}

/// A dump walks the kernel's whole hash table (about 10 ms per family on a large host) even
/// when this namespace tracks no flow; the namespace's own count says whether to bother.
fn tracks_nothing() -> bool {
    tracked_flows() == Some(0)
}

/// How many flows this network namespace tracks (`nf_conntrack_count`); None without
/// conntrack. One read of a counter: it costs the same however many there are.
pub fn tracked_flows() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The errnos of a kernel that knows no CTA_FILTER, or not this use of it.
fn is_refused(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL))
}

/// The errnos that mean the kernel has no conntrack to purge.
fn is_absent(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::EPROTONOSUPPORT | libc::ENOENT)
    )
}

/// One conntrack entry as dumped, borrowing from the receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The whole CTA_TUPLE_ORIG attribute, header included: the delete sends it back untouched,
    /// so protocols and ports need no parsing.
    pub tuple: &'a [u8],
    /// The whole CTA_ZONE attribute; the kernel omits it for the default zone.
    pub zone: Option<&'a [u8]>,
}

impl Entry<'_> {
    pub fn matches(&self, prefixes: &[Prefix]) -> bool {
        prefixes
            .iter()
            .any(|prefix| prefix.contains(self.src) || prefix.contains(self.dst))
    }

    /// The attributes of the delete request, each padded to 4 bytes.
    pub fn delete_attributes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for attr in [Some(self.tuple), self.zone].into_iter().flatten() {
            out.extend_from_slice(attr);
            out.resize(out.len().next_multiple_of(4), 0);
        }
        out
    }
}

impl fmt::Display for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.src, self.dst)?;
        if let Some(&[_, _, _, _, hi, lo, ..]) = self.zone {
            write!(f, " zone {}", u16::from_be_bytes([hi, lo]))?;
        }
        Ok(())
    }
}

/// Parses the payload (after struct nlmsghdr) of one dumped conntrack message; None when it
/// lacks an original tuple with both addresses.
pub(crate) fn parse_entry(payload: &[u8]) -> Option<Entry<'_>> {
    let attrs = payload.get(NFGENMSG_LEN..)?;
    let (tuple, tuple_value) = find(attrs, CTA_TUPLE_ORIG)?;
    let (_, ip) = find(tuple_value, CTA_TUPLE_IP)?;
    let addr = |v4, v6| match find(ip, v4).or_else(|| find(ip, v6))?.1 {
        &[a, b, c, d] => Some(IpAddr::from([a, b, c, d])),
        v6 => Some(IpAddr::from(<[u8; 16]>::try_from(v6).ok()?)),
    };
    Some(Entry {
        src: addr(CTA_IP_V4_SRC, CTA_IP_V6_SRC)?,
        dst: addr(CTA_IP_V4_DST, CTA_IP_V6_DST)?,
        tuple,
        zone: find(attrs, CTA_ZONE).map(|(raw, _)| raw),
    })
}

/// The first attribute of `kind` in `buf`, as (whole attribute, value); stops at a malformed one.
pub(crate) fn find(buf: &[u8], kind: u16) -> Option<(&[u8], &[u8])> {
    let mut rest = buf;
    while rest.len() >= NLA_HDRLEN {
        let len = usize::from(ne_u16(rest, 0)?);
        if len < NLA_HDRLEN || len > rest.len() {
            return None;
        }
        if ne_u16(rest, 2)? & NLA_TYPE_MASK == kind {
            return Some((&rest[..len], &rest[NLA_HDRLEN..len]));
        }
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    None
}

/// The nlmsg_type of ctnetlink message `msg`; dumped entries arrive as IPCTNL_MSG_CT_NEW.
pub(crate) fn ctnetlink_type(msg: u16) -> u16 {
    (libc::NFNL_SUBSYS_CTNETLINK as u16) << 8 | msg
}

/// struct nlmsghdr + struct nfgenmsg (version 0, resource id 0) + `attributes`.
pub(crate) fn request(msg: u16, flags: u16, family: u8, seq: u32, attributes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(NLMSG_HDRLEN + NFGENMSG_LEN + attributes.len());
    let start = nfnl::begin_message(&mut out, ctnetlink_type(msg), flags, seq, family, 0);
    out.extend_from_slice(attributes);
    nfnl::end_message(&mut out, start);
    out
}

pub(crate) fn dump_request(family: u8, seq: u32) -> Vec<u8> {
    request(IPCTNL_MSG_CT_GET, NLM_F_DUMP, family, seq, &[])
}

pub(crate) fn delete_request(family: u8, seq: u32, attributes: &[u8]) -> Vec<u8> {
    request(IPCTNL_MSG_CT_DELETE, NLM_F_ACK, family, seq, attributes)
}

/// A matching entry, kept past the receive buffer it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Doomed {
    pub name: String,
    pub attributes: Vec<u8>,
}

/// The state of one dump, fed a datagram at a time.
#[derive(Debug, Default)]
pub(crate) struct Dump {
    /// What was asked for; the entries kept are those matching the prefixes either way.
    pub listing: Listing,
    pub doomed: Vec<Doomed>,
    /// An entry outside `listing` arrived: the kernel ignored or misread the filter.
    pub unselected: bool,
    pub interrupted: bool,
    pub done: bool,
}

impl Dump {
    /// Takes in one datagram of the dump answering `seq`, keeping the entries that match.
    pub fn absorb(&mut self, buf: &[u8], seq: u32, prefixes: &[Prefix]) -> io::Result<()> {
        for message in messages(buf) {
            let message = message?;
            if message.seq != seq || self.done {
                continue;
            }
            self.interrupted |= message.flags & NLM_F_DUMP_INTR != 0;
            match message.kind {
                NLMSG_DONE | NLMSG_ERROR if message.errno() != 0 => {
                    return Err(io::Error::from_raw_os_error(message.errno()));
                }
                NLMSG_DONE | NLMSG_ERROR => self.done = true,
                kind if kind == ctnetlink_type(IPCTNL_MSG_CT_NEW) => {
                    let Some(entry) = parse_entry(message.payload) else {
                        continue;
                    };
                    self.unselected |= !self.listing.selects(entry.src, entry.dst);
                    if entry.matches(prefixes) {
                        self.doomed.push(Doomed {
                            name: entry.to_string(),
                            attributes: entry.delete_attributes(),
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The datagram buffer; netlink headers want 4-byte alignment.
#[repr(C, align(4))]
struct RecvBuffer([u8; RECV_BUFFER]);

struct Ctnetlink {
    socket: nfnl::Socket,
    seq: u32,
    buffer: Box<RecvBuffer>,
}

impl Ctnetlink {
    fn open() -> io::Result<Ctnetlink> {
        Ok(Ctnetlink {
            socket: nfnl::Socket::open()?,
            seq: 0,
            buffer: Box::new(RecvBuffer([0; RECV_BUFFER])),
        })
    }

    fn send(&mut self, build: impl FnOnce(u32) -> Vec<u8>) -> io::Result<u32> {
        self.seq += 1;
        let message = build(self.seq);
        log::trace!("ctnetlink request {message:02x?}");
        self.socket.send(&message)?;
        Ok(self.seq)
    }

    /// The entries of `family` that match `prefixes`, found by `listings`. A kernel that
    /// refuses the filter, or answers with entries it did not select, gets asked for the
    /// whole table instead.
    fn find(
        &mut self,
        family: u8,
        listings: &[Listing],
        prefixes: &[Prefix],
    ) -> io::Result<Vec<Doomed>> {
        let mut doomed: Vec<Doomed> = Vec::new();
        for listing in listings {
            let dump = match self.dump(family, listing, prefixes) {
                Err(err) if *listing != Listing::Whole && is_refused(&err) => {
                    log::debug!("conntrack listing by {listing} refused ({err}), listing all");
                    return Ok(self.dump(family, &Listing::Whole, prefixes)?.doomed);
                }
                other => other?,
            };
            // An entry in two listings (source and destination both the guest's) once.
            for entry in dump.doomed {
                if !doomed.contains(&entry) {
                    doomed.push(entry);
                }
            }
            if dump.unselected {
                log::debug!("conntrack listing by {listing} got other entries, listing all");
                return Ok(self.dump(family, &Listing::Whole, prefixes)?.doomed);
            }
        }
        Ok(doomed)
    }

    /// One listing; a dump the kernel marks interrupted may have skipped entries, so it is
    /// taken again.
    fn dump(&mut self, family: u8, listing: &Listing, prefixes: &[Prefix]) -> io::Result<Dump> {
        for attempt in 1..=DUMP_ATTEMPTS {
            let seq = self.send(|seq| filter::listing_request(family, seq, listing))?;
            let mut dump = Dump {
                listing: *listing,
                ..Dump::default()
            };
            while !dump.done {
                let n = self.receive("conntrack did not finish the listing")?;
                dump.absorb(&self.buffer.0[..n], seq, prefixes)?;
            }
            if !dump.interrupted {
                return Ok(dump);
            }
            log::debug!("conntrack dump interrupted (attempt {attempt} of {DUMP_ATTEMPTS})");
        }
        Err(io::Error::new(
            io::ErrorKind::Interrupted,
            format!("interrupted {DUMP_ATTEMPTS} times by concurrent changes"),
        ))
    }

    /// One datagram into the buffer, within [`ANSWER_WAIT`] and the run's deadline.
    fn receive(&mut self, nothing: &str) -> io::Result<usize> {
        let until = deadline::bound(ANSWER_WAIT);
        self.socket.recv_by(&mut self.buffer.0, until, nothing)
    }

    /// Ok(false) when the entry vanished since the dump.
    fn delete(&mut self, family: u8, attributes: &[u8]) -> io::Result<bool> {
        let seq = self.send(|seq| delete_request(family, seq, attributes))?;
        loop {
            let n = self.receive("conntrack did not answer")?;
            for message in messages(&self.buffer.0[..n]) {
                let message = message?;
                if message.seq != seq || message.kind != NLMSG_ERROR {
                    continue;
                }
                return match message.errno() {
                    0 => Ok(true),
                    libc::ENOENT => Ok(false),
                    errno => Err(io::Error::from_raw_os_error(errno)),
                };
            }
        }
    }
}

#[path = "conntrack_filter.rs"]
mod filter;

#[cfg(test)]
#[path = "conntrack_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "conntrack_filter_tests.rs"]
mod filter_tests;
