//! Hand-crafted Ethernet frames, sent and captured on raw `AF_PACKET` sockets inside test
//! namespaces (no forked tools): what the antispoofing tests use to show that legitimate
//! frames arrive and forged ones do not.
//!
//! Builders return whole frames without FCS, with correct IPv4 header, UDP and ICMPv6
//! checksums, so a real Linux stack accepts them. They are not padded to 60 bytes (veth and
//! bridges deliver them as they are). Capture on the receiving side: packet taps run before
//! the netfilter ingress and bridge hooks, so a capture on the sender's port would also see
//! frames a filter then drops.

use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::mem::zeroed;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use nix::libc;
use nix::sched::{CloneFlags, setns};

use super::Netns;

pub type Mac = [u8; 6];

pub const BROADCAST: Mac = [0xff; 6];
const ETH_IPV4: u16 = 0x0800;
const ETH_ARP: u16 = 0x0806;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const UDP: u8 = 17;
const ICMPV6: u8 = 58;

/// Parses "aa:bb:cc:dd:ee:ff".
pub fn mac(s: &str) -> Mac {
    let bytes: Vec<u8> = s
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap_or_else(|e| panic!("MAC {s:?}: {e}")))
        .collect();
    bytes
        .try_into()
        .unwrap_or_else(|_| panic!("MAC {s:?}: not 6 bytes"))
}

/// 16 bytes unique to this call (process-random hash of a counter, thread and time), to put
/// in a payload and look for in captures with [`contains`].
pub fn marker() -> [u8; 16] {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let seed = (
        COUNT.fetch_add(1, Ordering::Relaxed),
        std::thread::current().id(),
        SystemTime::now(),
    );
    let state = RandomState::new();
    let mut out = [0; 16];
    out[..8].copy_from_slice(&state.hash_one(seed).to_be_bytes());
    out[8..].copy_from_slice(&state.hash_one((seed, 1)).to_be_bytes());
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// An Ethernet frame from `src` to `dst`.
pub fn ethernet(src: Mac, dst: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    [&dst[..], &src, &ethertype.to_be_bytes(), payload].concat()
}

/// Inserts an 802.1Q tag (PCP 0) after the MAC addresses.
pub fn vlan_tagged(frame: &[u8], vid: u16) -> Vec<u8> {
    assert!(vid < 4096, "VLAN id {vid}");
    let tag = [ETH_VLAN.to_be_bytes(), vid.to_be_bytes()].concat();
    [&frame[..12], &tag, &frame[12..]].concat()
}

/// The Internet checksum over the concatenation of `parts`.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let bytes = parts.concat();
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn be16(n: usize) -> [u8; 2] {
    u16::try_from(n).expect("packet too long").to_be_bytes()
}

/// IPv4 header (id 0x1234, DF, TTL 64, checksummed) + `payload`.
fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let len = be16(20 + payload.len());
    let fixed = [
        0x45, 0, len[0], len[1], 0x12, 0x34, 0x40, 0, 64, proto, 0, 0,
    ];
    let mut h = [&fixed[..], &src.octets(), &dst.octets()].concat();
    let sum = checksum(&[&h]);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    [&h, payload].concat()
}

fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, next: u8, hop: u8, payload: &[u8]) -> Vec<u8> {
    let len = be16(payload.len());
    let fixed = [0x60, 0, 0, 0, len[0], len[1], next, hop];
    [&fixed[..], &src.octets(), &dst.octets(), payload].concat()
}

/// `segment` (UDP or ICMPv6) with its checksum, over `pseudo` + itself, stored at `at`.
fn with_checksum(pseudo: &[u8], mut segment: Vec<u8>, at: usize) -> Vec<u8> {
    let sum = match checksum(&[pseudo, &segment]) {
        0 => 0xffff,
        s => s,
    };
    segment[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    segment
}

fn udp(pseudo: impl Fn(usize) -> Vec<u8>, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let ports = [sport.to_be_bytes(), dport.to_be_bytes()].concat();
    let segment = [&ports, &be16(8 + payload.len())[..], &[0, 0], payload].concat();
    with_checksum(&pseudo(segment.len()), segment, 6)
}

fn pseudo4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> Vec<u8> {
    [&src.octets()[..], &dst.octets(), &[0, proto], &be16(len)].concat()
}

fn pseudo6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, len: usize) -> Vec<u8> {
    let len = (len as u32).to_be_bytes();
    [&src.octets()[..], &dst.octets(), &len, &[0, 0, 0, next]].concat()
}

pub fn ipv4_udp(
    src_mac: Mac,
    dst_mac: Mac,
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let pseudo = |len| pseudo4(src_ip, dst_ip, UDP, len);
    let ip = ipv4_packet(src_ip, dst_ip, UDP, &udp(pseudo, sport, dport, payload));
    ethernet(src_mac, dst_mac, ETH_IPV4, &ip)
}

pub fn ipv6_udp(
    src_mac: Mac,
    dst_mac: Mac,
    src_ip: Ipv6Addr,
    dst_ip: Ipv6Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let pseudo = |len| pseudo6(src_ip, dst_ip, UDP, len);
    let ip = ipv6_packet(src_ip, dst_ip, UDP, 64, &udp(pseudo, sport, dport, payload));
    ethernet(src_mac, dst_mac, ETH_IPV6, &ip)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpOp {
    Request = 1,
    Reply = 2,
}

/// An ARP packet for IPv4 over Ethernet; `src_mac`/`dst_mac` are the Ethernet header's.
pub fn arp(
    op: ArpOp,
    src_mac: Mac,
    dst_mac: Mac,
    sha: Mac,
    spa: Ipv4Addr,
    tha: Mac,
    tpa: Ipv4Addr,
) -> Vec<u8> {
    let fixed = [0, 1, 8, 0, 6, 4, 0, op as u8];
    let body = [&fixed[..], &sha, &spa.octets(), &tha, &tpa.octets()].concat();
    ethernet(src_mac, dst_mac, ETH_ARP, &body)
}

/// An ICMPv6 message (`body` after type, code and checksum) in an IPv6 frame, hop limit 255.
pub fn icmpv6(
    src_mac: Mac,
    dst_mac: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    kind: u8,
    body: &[u8],
) -> Vec<u8> {
    let msg = [&[kind, 0, 0, 0][..], body].concat();
    let msg = with_checksum(&pseudo6(src, dst, ICMPV6, msg.len()), msg, 2);
    let ip = ipv6_packet(src, dst, ICMPV6, 255, &msg);
    ethernet(src_mac, dst_mac, ETH_IPV6, &ip)
}

/// A router advertisement from `src_ip` (link-local) to ff02::1: router lifetime 1800 s,
/// a source link-layer option and an on-link, autonomous `prefix`/64 option (valid 1 day,
/// preferred 4 h).
pub fn router_advertisement(src_mac: Mac, src_ip: Ipv6Addr, prefix: Ipv6Addr) -> Vec<u8> {
    let head = [64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0]; // hop limit, lifetime 1800
    let pio = [
        3, 4, 64, 0xc0, 0, 1, 0x51, 0x80, 0, 0, 0x38, 0x40, 0, 0, 0, 0,
    ];
    let body = [&head[..], &[1, 1], &src_mac, &pio, &prefix.octets()].concat();
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let dst_mac = [0x33, 0x33, 0, 0, 0, 1];
    icmpv6(src_mac, dst_mac, src_ip, all_nodes, 134, &body)
}

/// An unsolicited neighbour advertisement for `target` with a target link-layer option
/// carrying `src_mac`, the override flag as asked.
pub fn neighbour_advertisement(
    src_mac: Mac,
    dst_mac: Mac,
    src_ip: Ipv6Addr,
    dst_ip: Ipv6Addr,
    target: Ipv6Addr,
    override_flag: bool,
) -> Vec<u8> {
    let flags = [if override_flag { 0x20 } else { 0 }, 0, 0, 0];
    let body = [&flags[..], &target.octets(), &[2, 1], &src_mac].concat();
    icmpv6(src_mac, dst_mac, src_ip, dst_ip, 136, &body)
}

/// A broadcast DHCPOFFER of `yiaddr` from server `src_ip` (UDP 67 to 68, broadcast flag,
/// xid = yiaddr, chaddr zero), padded to BOOTP's 300 bytes.
pub fn dhcp_offer(src_mac: Mac, src_ip: Ipv4Addr, yiaddr: Ipv4Addr) -> Vec<u8> {
    let (yi, si) = (yiaddr.octets(), src_ip.octets());
    // op BOOTREPLY, Ethernet, hlen 6, hops; xid; secs, flags; ciaddr, yiaddr, siaddr, giaddr
    let head = [
        2, 1, 6, 0, yi[0], yi[1], yi[2], yi[3], 0, 0, 0x80, 0, 0, 0, 0, 0,
    ];
    let mut b = [&head[..], &yi, &si, &[0; 4]].concat();
    b.resize(b.len() + 16 + 64 + 128, 0); // chaddr, sname, file
    // magic cookie, message type OFFER, server identifier, end
    b.extend_from_slice(&[&[99, 130, 83, 99, 53, 1, 2, 54, 4][..], &si, &[255]].concat());
    b.resize(300, 0);
    ipv4_udp(src_mac, BROADCAST, src_ip, Ipv4Addr::BROADCAST, 67, 68, &b)
}

/// The part of `frame` that neither a bridge nor a router rewrites, to recognise it in a
/// capture: a UDP payload, another IP payload, an ARP body (VLAN tags skipped); the whole
/// frame when that would be empty.
pub fn signature(frame: &[u8]) -> &[u8] {
    let mut at = 12;
    let kind = |at: usize| {
        frame
            .get(at..at + 2)
            .map(|k| u16::from_be_bytes([k[0], k[1]]))
    };
    while matches!(kind(at), Some(ETH_VLAN | ETH_QINQ)) {
        at += 4;
    }
    let Some(l3) = frame.get(at + 2..) else {
        return frame;
    };
    let skip = match kind(at).unwrap_or(0) {
        ETH_IPV4 if !l3.is_empty() => {
            let ihl = usize::from(l3[0] & 0xf) * 4;
            ihl + if l3.get(9) == Some(&UDP) { 8 } else { 0 }
        }
        ETH_IPV6 => 40 + if l3.get(6) == Some(&UDP) { 8 } else { 0 },
        _ => 0,
    };
    l3.get(skip..)
        .filter(|rest| !rest.is_empty())
        .unwrap_or(frame)
}

/// Runs `f` on a thread that has entered `ns`'s network namespace (sockets it creates stay
/// there when handed back).
pub fn in_netns<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{}", ns.name);
    std::thread::scope(|s| {
        let thread = s.spawn(|| {
            let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
            f()
        });
        thread
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// Waits (up to 5 s) until `ifname` in `ns` has a usable IPv6 link-local address. Before
/// linkwatch reports the carrier (up to a second after `link set up`) the kernel has no
/// ff00::/8 route there, so IPv6 multicast (RA, NA) is dropped as "no route"; while the
/// address is tentative the kernel sends no neighbour solicitation for forwarded packets.
/// Setting `net.ipv6.conf.{all,default}.accept_dad=0` before creating links makes this quick.
pub fn wait_ipv6_ready(ns: &Netns, ifname: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let ready = || {
        let v = ns.ip_json(&["-6", "addr", "show", "dev", ifname]);
        v[0]["addr_info"].as_array().is_some_and(|a| {
            a.iter().any(|a| {
                a["local"].as_str().is_some_and(|l| l.starts_with("fe80:"))
                    && a.get("tentative").is_none()
            })
        })
    };
    while !ready() {
        assert!(Instant::now() < deadline, "{ifname}: no IPv6 link-local");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const SLL_LEN: libc::socklen_t = size_of::<libc::sockaddr_ll>() as _;

fn sys(what: &str, ret: libc::c_int) -> libc::c_int {
    assert!(ret >= 0, "{what}: {}", std::io::Error::last_os_error());
    ret
}

/// A packet socket on `ifname` in the calling thread's namespace, bound for receiving
/// `protocol` (0: send only).
fn packet_socket(ifname: &str, protocol: u16, auxdata: bool) -> (OwnedFd, libc::sockaddr_ll) {
    let index =
        nix::net::if_::if_nametoindex(ifname).unwrap_or_else(|e| panic!("interface {ifname}: {e}"));
    let fd = sys("socket", unsafe {
        libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)
    });
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    if auxdata {
        let one: libc::c_int = 1;
        sys("PACKET_AUXDATA", unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_AUXDATA,
                (&raw const one).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        });
    }
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = index as i32;
    sys("bind", unsafe {
        libc::bind(fd.as_raw_fd(), (&raw const sll).cast(), SLL_LEN)
    });
    (fd, sll)
}

/// Sends `frame` as it is out of `ifname` in `ns`.
pub fn send(ns: &Netns, ifname: &str, frame: &[u8]) {
    in_netns(ns, || {
        let (fd, mut sll) = packet_socket(ifname, 0, false);
        sll.sll_protocol = u16::from_be_bytes([frame[12], frame[13]]).to_be();
        let sent = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const sll).cast(),
                SLL_LEN,
            )
        };
        let error = std::io::Error::last_os_error();
        assert_eq!(sent, frame.len() as isize, "send on {ifname}: {error}");
    })
}

/// Frames arriving on an interface (not its own sends), from `start` on.
pub struct Capture {
    fd: OwnedFd,
}

impl Capture {
    /// Bound and receiving when this returns.
    pub fn start(ns: &Netns, ifname: &str) -> Capture {
        let (fd, _) = in_netns(ns, || packet_socket(ifname, libc::ETH_P_ALL as u16, true));
        Capture { fd }
    }

    /// The next incoming frame before `deadline`, with a VLAN tag the kernel took off
    /// (into the skb's metadata) put back in.
    pub fn next(&self, deadline: Instant) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        let mut control = [0u64; 16];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            match unsafe { libc::poll(&mut pfd, 1, ms) } {
                0 => return None,
                -1 if nix::errno::Errno::last() == nix::errno::Errno::EINTR => continue,
                ret => sys("poll", ret),
            };
            let mut from: libc::sockaddr_ll = unsafe { zeroed() };
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            let mut msg: libc::msghdr = unsafe { zeroed() };
            msg.msg_name = (&raw mut from).cast();
            msg.msg_namelen = SLL_LEN;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = size_of_val(&control);
            let n = sys("recvmsg", unsafe {
                libc::recvmsg(self.fd.as_raw_fd(), &mut msg, 0) as i32
            });
            if from.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            let mut frame = buf[..n as usize].to_vec();
            let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
            while let Some(c) = unsafe { cmsg.as_ref() } {
                if c.cmsg_level == libc::SOL_PACKET && c.cmsg_type == libc::PACKET_AUXDATA {
                    let aux: libc::tpacket_auxdata =
                        unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(c).cast()) };
                    if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 && frame.len() >= 12 {
                        let tpid = match aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID {
                            0 => ETH_VLAN,
                            _ => aux.tp_vlan_tpid,
                        };
                        let tag = [tpid.to_be_bytes(), aux.tp_vlan_tci.to_be_bytes()].concat();
                        frame.splice(12..12, tag);
                    }
                }
                cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
            }
            return Some(frame);
        }
    }

    /// The first incoming frame matching `pred` within `wait`.
    pub fn wait_for(&self, wait: Duration, pred: impl Fn(&[u8]) -> bool) -> Option<Vec<u8>> {
        let deadline = Instant::now() + wait;
        std::iter::from_fn(|| self.next(deadline)).find(|f| pred(f))
    }

    /// Everything arriving until `wait` from now.
    pub fn finish(self, wait: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + wait;
        std::iter::from_fn(|| self.next(deadline)).collect()
    }
}

/// Sends `frame` from `from` and returns the first frame arriving at `to` within `wait`
/// that `pred` accepts.
pub fn arrival(
    from: (&Netns, &str),
    to: (&Netns, &str),
    frame: &[u8],
    wait: Duration,
    pred: impl Fn(&[u8]) -> bool,
) -> Option<Vec<u8>> {
    let capture = Capture::start(to.0, to.1);
    send(from.0, from.1, frame);
    capture.wait_for(wait, pred)
}

/// Whether `frame` sent from `from` shows up at `to` within `wait`, recognised by its
/// [`signature`] (so it may have been bridged or routed): give UDP frames a [`marker`].
pub fn arrives(from: (&Netns, &str), to: (&Netns, &str), frame: &[u8], wait: Duration) -> bool {
    let sig = signature(frame);
    arrival(from, to, frame, wait, |f| contains(f, sig)).is_some()
}
