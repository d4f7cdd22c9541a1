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

// ---------------------------------------------------------------------------------------
// More kinds of frames, for the antispoofing allow-list tests (tests/antispoof_frames*.rs):
// link-layer protocols a guest must not speak to its host's network, ARP of other shapes,
// DHCP messages, NDP messages with chosen options, MLD reports, fragments.

/// 20 bits of a fresh [`marker`] for an IPv6 flow label: what makes a frame unique that
/// has no payload of its own to carry a marker (an NDP message without options).
pub fn flow_label() -> u32 {
    let m = marker();
    u32::from_be_bytes([0, m[0] & 0x0f, m[1], m[2]])
}

/// An 802.3 frame: a length where the ether type would be, then an 802.2 LLC header
/// (`sap`: DSAP, SSAP, control) and `payload`.
pub fn llc_frame(src: Mac, dst: Mac, sap: [u8; 3], payload: &[u8]) -> Vec<u8> {
    let body = [&sap[..], payload].concat();
    [&dst[..], &src, &be16(body.len()), &body].concat()
}

/// An 802.3 frame with an LLC/SNAP header: organisation `oui`, protocol `pid`.
pub fn snap_frame(src: Mac, dst: Mac, oui: [u8; 3], pid: u16, payload: &[u8]) -> Vec<u8> {
    let snap = [&oui[..], &pid.to_be_bytes(), payload].concat();
    llc_frame(src, dst, [0xaa, 0xaa, 0x03], &snap)
}

/// An 802.1D configuration BPDU claiming the root bridge with priority 0 and the sender's
/// MAC, with `trailer` after its 35 bytes (receivers read no further).
pub fn stp_bpdu(src: Mac, trailer: &[u8]) -> Vec<u8> {
    let id = [&[0, 0][..], &src].concat(); // priority 0: the best root there is
    let head = [0, 0, 0, 0, 0]; // protocol 0, version 0, configuration BPDU, flags
    let times = [0x80, 0x01, 0, 0, 0x14, 0, 0x02, 0, 0x0f, 0]; // port, ages, hello, delay
    [&head[..], &id, &[0; 4], &id, &times, trailer].concat()
}

/// A Cisco PVST+ BPDU (SNAP 00:00:0c/0x010b to 01:00:0c:cc:cc:cd) for VLAN 1.
pub fn pvst_bpdu(src: Mac, trailer: &[u8]) -> Vec<u8> {
    let bpdu = stp_bpdu(src, &[]);
    let vlan = [0, 0, 0, 2, 0, 1];
    let dst = [0x01, 0x00, 0x0c, 0xcc, 0xcc, 0xcd];
    snap_frame(
        src,
        dst,
        [0, 0, 0x0c],
        0x010b,
        &[&bpdu, &vlan[..], trailer].concat(),
    )
}

/// An LLDP frame (0x88cc to 01:80:c2:00:00:0e): chassis (the MAC), port "eth0", TTL 120,
/// system name `name`, end.
pub fn lldp(src: Mac, name: &[u8]) -> Vec<u8> {
    let tlv = |kind: u16, value: &[u8]| {
        let head = (kind << 9) | u16::try_from(value.len()).unwrap();
        [&head.to_be_bytes()[..], value].concat()
    };
    let body = [
        tlv(1, &[&[4][..], &src].concat()),
        tlv(2, b"\x05eth0"),
        tlv(3, &[0, 120]),
        tlv(5, name),
        tlv(0, &[]),
    ]
    .concat();
    ethernet(src, [0x01, 0x80, 0xc2, 0, 0, 0x0e], 0x88cc, &body)
}

/// An 802.1X EAPOL frame (0x888e to the PAE group 01:80:c2:00:00:03) carrying an EAP
/// Response/Identity of `identity`.
pub fn eapol_identity(src: Mac, identity: &[u8]) -> Vec<u8> {
    let eap = [&[2, 1][..], &be16(5 + identity.len()), &[1], identity].concat();
    let body = [&[2, 0][..], &be16(eap.len()), &eap].concat();
    ethernet(src, [0x01, 0x80, 0xc2, 0, 0, 0x03], 0x888e, &body)
}

/// An 802.3ad LACPDU (slow protocols 0x8809 to 01:80:c2:00:00:02): actor (the MAC, key
/// 1, active, aggregatable), an empty partner, collector, terminator whose reserved bytes
/// start with `reserved`.
pub fn lacpdu(src: Mac, reserved: &[u8; 16]) -> Vec<u8> {
    let actor = [
        &[1, 20, 0x80, 0][..],
        &src,
        &[0, 1, 0x80, 0, 0, 1, 0x3d, 0, 0, 0],
    ]
    .concat();
    let partner = [&[2, 20][..], &[0; 18]].concat();
    let collector = [&[3, 16][..], &[0; 14]].concat();
    let terminator = [&[0, 0][..], reserved, &[0; 34]].concat();
    let body = [&[1, 1][..], &actor, &partner, &collector, &terminator].concat();
    ethernet(src, [0x01, 0x80, 0xc2, 0, 0, 0x02], 0x8809, &body)
}

pub const PADI: u8 = 0x09;
pub const PADO: u8 = 0x07;

/// A PPPoE discovery packet (0x8863) of `code` with tags Service-Name (any), AC-Name
/// "vifkit" for a PADO, and Host-Uniq `host_uniq`.
pub fn pppoe_discovery(src: Mac, dst: Mac, code: u8, host_uniq: &[u8]) -> Vec<u8> {
    let tag =
        |kind: u16, value: &[u8]| [&kind.to_be_bytes()[..], &be16(value.len()), value].concat();
    let mut tags = tag(0x0101, b"");
    if code == PADO {
        tags.extend(tag(0x0102, b"vifkit"));
    }
    tags.extend(tag(0x0103, host_uniq));
    let body = [&[0x11, code, 0, 0][..], &be16(tags.len()), &tags].concat();
    ethernet(src, dst, 0x8863, &body)
}

/// A PPPoE session packet (0x8864, session 1) carrying PPP protocol `protocol`.
pub fn pppoe_session(src: Mac, dst: Mac, protocol: u16, payload: &[u8]) -> Vec<u8> {
    let ppp = [&protocol.to_be_bytes()[..], payload].concat();
    let body = [&[0x11, 0, 0, 1][..], &be16(ppp.len()), &ppp].concat();
    ethernet(src, dst, 0x8864, &body)
}

/// An MPLS unicast frame (0x8847) with one label (bottom of stack, TTL 64).
pub fn mpls(src: Mac, dst: Mac, label: u32, payload: &[u8]) -> Vec<u8> {
    let entry = (label << 12) | 0x100 | 64;
    ethernet(
        src,
        dst,
        0x8847,
        &[&entry.to_be_bytes()[..], payload].concat(),
    )
}

/// An IPX packet (no checksum) from node `src` to node `dst` on network 0, sockets 0x4000,
/// carrying `payload`.
pub fn ipx_packet(src: Mac, dst: Mac, payload: &[u8]) -> Vec<u8> {
    let len = be16(30 + payload.len());
    let end = |node: &Mac| [&[0, 0, 0, 0][..], node, &[0x40, 0]].concat();
    [
        &[0xff, 0xff][..],
        &len,
        &[0, 4],
        &end(&dst),
        &end(&src),
        payload,
    ]
    .concat()
}

/// The tags of 802.1ad: an S-tag (0x88a8) `svid` outside an 802.1Q C-tag `cvid`.
pub fn qinq_tagged(frame: &[u8], svid: u16, cvid: u16) -> Vec<u8> {
    let inner = vlan_tagged(frame, cvid);
    let tag = [ETH_QINQ.to_be_bytes(), svid.to_be_bytes()].concat();
    [&inner[..12], &tag, &inner[12..]].concat()
}

/// An ARP-format body of any shape: hardware type, protocol type, their lengths, operation,
/// then the addresses as given; `trailer` is Ethernet padding after it.
#[allow(clippy::too_many_arguments)]
pub fn arp_shaped(
    src_mac: Mac,
    dst_mac: Mac,
    ethertype: u16,
    shape: [u8; 6],
    op: u16,
    addresses: &[&[u8]],
    trailer: &[u8],
) -> Vec<u8> {
    let body = [&shape[..], &op.to_be_bytes(), &addresses.concat(), trailer].concat();
    ethernet(src_mac, dst_mac, ethertype, &body)
}

pub const DHCPDISCOVER: u8 = 1;
pub const DHCPOFFER: u8 = 2;
pub const DHCPREQUEST: u8 = 3;
pub const DHCPACK: u8 = 5;

/// A DHCP message of `kind` (BOOTREQUEST for discover and request, with `ciaddr` the
/// sender's address; else BOOTREPLY) for client `chaddr` offering `yiaddr`, with
/// `client_id` as option 61, padded to BOOTP's 300 bytes; `from` and `to` are (MAC,
/// address, port).
pub fn dhcp(
    from: (Mac, Ipv4Addr, u16),
    to: (Mac, Ipv4Addr, u16),
    kind: u8,
    chaddr: Mac,
    yiaddr: Ipv4Addr,
    client_id: &[u8],
) -> Vec<u8> {
    let request = matches!(kind, DHCPDISCOVER | DHCPREQUEST);
    let ciaddr = if request {
        from.1
    } else {
        Ipv4Addr::UNSPECIFIED
    };
    let head = [
        if request { 1 } else { 2 },
        1,
        6,
        0,
        0x56,
        0x4b,
        0x49,
        0x54,
        0,
        0,
        0x80,
        0,
    ];
    let mut b = [
        &head[..],
        &ciaddr.octets(),
        &yiaddr.octets(),
        &[0; 8],
        &chaddr,
    ]
    .concat();
    b.resize(b.len() + 10 + 64 + 128, 0); // chaddr's padding, sname, file
    let id = [
        &[61][..],
        &[u8::try_from(client_id.len() + 1).unwrap(), 0],
        client_id,
    ]
    .concat();
    b.extend_from_slice(&[&[99, 130, 83, 99, 53, 1, kind][..], &id, &[255]].concat());
    b.resize(300, 0);
    ipv4_udp(from.0, to.0, from.1, to.1, from.2, to.2, &b)
}

/// An ICMP echo request carrying `payload`.
pub fn icmp_echo(
    src_mac: Mac,
    dst_mac: Mac,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    payload: &[u8],
) -> Vec<u8> {
    let msg = [&[8, 0, 0, 0, 0x12, 0x34, 0, 1][..], payload].concat();
    let msg = with_checksum(&[], msg, 2);
    ethernet(src_mac, dst_mac, ETH_IPV4, &ipv4_packet(src, dst, 1, &msg))
}

/// An IPv4 frame (20-byte header) cut into two fragments, the first with the first
/// `first_len` bytes (a multiple of 8) of its payload; both with a fresh identification.
pub fn ipv4_fragments(frame: &[u8], first_len: usize) -> [Vec<u8>; 2] {
    assert!(
        first_len.is_multiple_of(8) && frame[14] == 0x45,
        "fragment at {first_len}"
    );
    let id = &marker()[..2];
    let (eth, header, payload) = (&frame[..14], &frame[14..34], &frame[34..]);
    let piece = |offset: usize, more: bool, data: &[u8]| {
        let mut h = header.to_vec();
        h[2..4].copy_from_slice(&be16(20 + data.len()));
        h[4..6].copy_from_slice(id);
        let field = u16::try_from(offset / 8).unwrap() | if more { 0x2000 } else { 0 };
        h[6..8].copy_from_slice(&field.to_be_bytes());
        h[10..12].copy_from_slice(&[0, 0]);
        let sum = checksum(&[&h]);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        [eth, &h, data].concat()
    };
    [
        piece(0, true, &payload[..first_len]),
        piece(first_len, false, &payload[first_len..]),
    ]
}

/// Who an IPv6 frame is from and to, on Ethernet and in IPv6.
#[derive(Clone, Copy, Debug)]
pub struct Path6 {
    pub src_mac: Mac,
    pub dst_mac: Mac,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
}

/// An IPv6 frame with a fresh flow label, `next` the first header after the fixed one,
/// `payload` as given (extension headers and upper layer).
pub fn ipv6_frame(p: Path6, hop: u8, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut ip = ipv6_packet(p.src, p.dst, next, hop, payload);
    ip[1..4].copy_from_slice(&flow_label().to_be_bytes()[1..]);
    ethernet(p.src_mac, p.dst_mac, ETH_IPV6, &ip)
}

/// An ICMPv6 message (type, code, checksum over `p`'s pseudo-header, then `body`).
pub fn icmpv6_message(p: Path6, kind: u8, code: u8, body: &[u8]) -> Vec<u8> {
    let msg = [&[kind, code, 0, 0][..], body].concat();
    with_checksum(&pseudo6(p.src, p.dst, ICMPV6, msg.len()), msg, 2)
}

/// An ICMPv6 message in an IPv6 frame with hop limit 255 and a fresh flow label.
pub fn icmpv6_frame(p: Path6, kind: u8, body: &[u8]) -> Vec<u8> {
    ipv6_frame(p, 255, ICMPV6, &icmpv6_message(p, kind, 0, body))
}

/// A source (1) or target (2) link-layer address option.
pub fn ll_option(kind: u8, mac: Mac) -> Vec<u8> {
    [&[kind, 1][..], &mac].concat()
}

/// A DAD nonce option (RFC 7527).
pub fn nonce_option(nonce: &[u8; 6]) -> Vec<u8> {
    [&[14, 1][..], nonce].concat()
}

pub fn neighbour_solicitation(p: Path6, target: Ipv6Addr, options: &[u8]) -> Vec<u8> {
    let body = [&[0; 4][..], &target.octets(), options].concat();
    icmpv6_frame(p, 135, &body)
}

/// A neighbour advertisement with `flags` (0x80 router, 0x40 solicited, 0x20 override).
pub fn neighbour_advert(p: Path6, flags: u8, target: Ipv6Addr, options: &[u8]) -> Vec<u8> {
    let body = [&[flags, 0, 0, 0][..], &target.octets(), options].concat();
    icmpv6_frame(p, 136, &body)
}

pub fn router_solicitation(p: Path6, options: &[u8]) -> Vec<u8> {
    icmpv6_frame(p, 133, &[&[0; 4][..], options].concat())
}

/// A redirect: the better first hop for `destination` is `target` (at `target_mac`).
pub fn redirect(p: Path6, target: Ipv6Addr, destination: Ipv6Addr, target_mac: Mac) -> Vec<u8> {
    let body = [
        &[0; 4][..],
        &target.octets(),
        &destination.octets(),
        &ll_option(2, target_mac),
    ]
    .concat();
    icmpv6_frame(p, 137, &body)
}

/// An ICMPv6 echo request (identifier 0x1234, sequence 1) carrying `payload`.
pub fn echo_request6(p: Path6, payload: &[u8]) -> Vec<u8> {
    icmpv6_frame(p, 128, &[&[0x12, 0x34, 0, 1][..], payload].concat())
}

/// An MLD report with a hop-by-hop header holding the router alert option, hop limit 1,
/// as Linux sends it: version 1 (type 131) for `group`, or version 2 (type 143) with one
/// record changing `group` to exclude mode (a join).
pub fn mld_report(p: Path6, version: u8, group: Ipv6Addr) -> Vec<u8> {
    let (kind, body) = match version {
        1 => (131, [&[0; 4][..], &group.octets()].concat()),
        _ => (
            143,
            [&[0, 0, 0, 1, 4, 0, 0, 0][..], &group.octets()].concat(),
        ),
    };
    let hop_by_hop = [ICMPV6, 0, 5, 2, 0, 0, 1, 0]; // router alert (MLD), PadN
    let msg = icmpv6_message(p, kind, 0, &body);
    ipv6_frame(p, 1, 0, &[&hop_by_hop[..], &msg].concat())
}

/// A DHCPv6 message of `kind` (1 solicit, 2 advertise, 7 reply) with `duid` as a
/// DUID-UUID client identifier, in UDP from `sport` to `dport`.
pub fn dhcpv6(p: Path6, (sport, dport): (u16, u16), kind: u8, duid: &[u8; 16]) -> Vec<u8> {
    let body = [&[kind, 0x56, 0x4b, 0x54][..], &[0, 1, 0, 18, 0, 4], duid].concat();
    ipv6_udp(p.src_mac, p.dst_mac, p.src, p.dst, sport, dport, &body)
}

/// The upper-layer part of a frame [`ipv6_frame`] or [`ipv6_udp`] built without
/// extension headers: what [`ipv6_fragments`] cuts.
pub fn ipv6_upper(frame: &[u8]) -> (u8, u8, &[u8]) {
    (frame[14 + 6], frame[14 + 7], &frame[14 + 40..])
}

/// `frame` (an IPv6 frame without extension headers) cut into two fragments behind
/// fragment headers with a fresh identification, the first holding `first_len` bytes (a
/// multiple of 8) of the upper layer.
pub fn ipv6_fragments(p: Path6, frame: &[u8], first_len: usize) -> [Vec<u8>; 2] {
    assert!(first_len.is_multiple_of(8), "fragment at {first_len}");
    let (next, hop, upper) = ipv6_upper(frame);
    let id = &marker()[..4];
    let piece = |offset: usize, more: bool, data: &[u8]| {
        let field = u16::try_from(offset).unwrap() | u16::from(more);
        let header = [&[next, 0][..], &field.to_be_bytes(), id].concat();
        ipv6_frame(p, hop, 44, &[&header, data].concat())
    };
    [
        piece(0, true, &upper[..first_len]),
        piece(first_len, false, &upper[first_len..]),
    ]
}

/// Whether `check` becomes true within `within`, polled every 50 ms.
pub fn poll_for(within: Duration, check: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A UDP frame from the guest MAC the antispoofing tests use (00:16:3e:10:10:10) with
/// source `src`, to [`super::bridge_with_peer`]'s peer (192.0.2.242).
pub fn udp_to_peer(src: &str) -> Vec<u8> {
    ipv4_udp(
        mac("00:16:3e:10:10:10"),
        mac("00:16:3e:20:20:20"),
        src.parse().unwrap(),
        "192.0.2.242".parse().unwrap(),
        4000,
        5000,
        &marker(),
    )
}
