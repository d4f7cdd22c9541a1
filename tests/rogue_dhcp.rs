//! A filtered Xen guest cannot act as a rogue DHCP server, shown end to end with a real DHCP
//! client: the neighbour behind vif4.0 runs `busybox udhcpc`, and the guest behind vif3.0
//! answers its DHCPDISCOVER and DHCPREQUEST with a well-formed DHCPOFFER and DHCPACK (from
//! its own MAC and IPv4 address, so only the DHCP rules can stop them). Each variant first
//! runs with antispoofing off, where the client must take the rogue lease (the attack works
//! and the test can fail), then with it on, where the client must get no lease and no rogue
//! reply may reach the neighbour. The variant answering from UDP port 6767 can only be
//! stopped by "no UDP to port 68 from a guest, whatever the source port".
//!
//! No DHCPv6 variant: this busybox has no `udhcpc6` applet, and no other DHCPv6 client is
//! assumed. Needs root.

mod antispoof;
mod common;

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use antispoof::*;
use common::frames::*;
use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const GUEST_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 241);
const ROGUE_LEASE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 77);
const NETMASK: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 0);
const LEASE_SECONDS: u32 = 3600;
/// udhcpc's own bound: 3 discovers 1 s apart, then it gives up (`-n`).
const UDHCPC_ARGS: [&str; 12] = [
    "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "3", "-T", "1", "-s",
];
/// Ours, above udhcpc's, for the `timeout` wrapper and the wait here.
const CLIENT_DEADLINE: Duration = Duration::from_secs(15);

const DHCPDISCOVER: u8 = 1;
const DHCPOFFER: u8 = 2;
const DHCPREQUEST: u8 = 3;
const DHCPACK: u8 = 5;
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

/// The bridged frame rig, its peer behind vif4.0 without addresses: the DHCP client.
fn rig(tag: &str) -> FrameRig {
    let rig = FrameRig::new(tag);
    rig.peer.ip(&["addr", "flush", "dev", "eth0"]);
    rig
}

/// A DHCP client request seen on the guest's eth0.
#[derive(Debug, Clone, Copy)]
struct Request {
    kind: u8,
    xid: [u8; 4],
    flags: [u8; 2],
    chaddr: Mac,
}

/// A DHCP server reply seen at the neighbour: its source (MAC, address and UDP port), its
/// message type and the address it gives.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reply {
    from: String,
    kind: &'static str,
    yiaddr: Ipv4Addr,
}

fn source(src_mac: Mac, src_ip: Ipv4Addr, sport: u16) -> String {
    let m = src_mac.map(|b| format!("{b:02x}")).join(":");
    format!("{m} {src_ip}:{sport}")
}

/// The UDP header and payload of an IPv4 UDP frame (untagged).
fn udp_of(frame: &[u8]) -> Option<(Ipv4Addr, &[u8])> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    let ihl = usize::from(ip.first()? & 0xf) * 4;
    if *ip.get(9)? != 17 {
        return None;
    }
    let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
    Some((Ipv4Addr::from(src), ip.get(ihl..)?))
}

/// The BOOTP message of a UDP segment and its DHCP message type (option 53).
fn dhcp_of(udp: &[u8]) -> Option<(&[u8], u8)> {
    let bootp = udp.get(8..)?;
    if bootp.get(236..240)? != MAGIC_COOKIE {
        return None;
    }
    let mut at = 240;
    loop {
        match *bootp.get(at)? {
            0 => at += 1,
            255 => return None,
            53 => return Some((bootp, *bootp.get(at + 2)?)),
            _ => at += 2 + usize::from(*bootp.get(at + 1)?),
        }
    }
}

fn port(udp: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(udp.get(at..at + 2)?.try_into().ok()?))
}

/// A DHCPDISCOVER or DHCPREQUEST (BOOTREQUEST to udp/67).
fn parse_request(frame: &[u8]) -> Option<Request> {
    let (_, udp) = udp_of(frame)?;
    if port(udp, 2)? != 67 {
        return None;
    }
    let (bootp, kind) = dhcp_of(udp)?;
    if bootp[0] != 1 || bootp[2] != 6 || !matches!(kind, DHCPDISCOVER | DHCPREQUEST) {
        return None;
    }
    Some(Request {
        kind,
        xid: bootp[4..8].try_into().unwrap(),
        flags: bootp[10..12].try_into().unwrap(),
        chaddr: bootp[28..34].try_into().unwrap(),
    })
}

/// A BOOTREPLY to udp/68, whatever its source port.
fn parse_reply(frame: &[u8]) -> Option<Reply> {
    let (src_ip, udp) = udp_of(frame)?;
    if port(udp, 2)? != 68 {
        return None;
    }
    let (bootp, kind) = dhcp_of(udp)?;
    if bootp[0] != 2 {
        return None;
    }
    let yiaddr: [u8; 4] = bootp[16..20].try_into().unwrap();
    Some(Reply {
        from: source(frame[6..12].try_into().unwrap(), src_ip, port(udp, 0)?),
        kind: name(kind),
        yiaddr: Ipv4Addr::from(yiaddr),
    })
}

/// The rogue answer to `request`: a DHCPOFFER to a discover, a DHCPACK to a request, of
/// 192.0.2.77/24 with the guest as server, router and DNS server, broadcast from the
/// guest's own MAC and address, UDP `sport` to 68, padded to BOOTP's 300 bytes.
fn rogue_reply(request: &Request, sport: u16) -> Vec<u8> {
    let kind = if request.kind == DHCPDISCOVER {
        DHCPOFFER
    } else {
        DHCPACK
    };
    let server = GUEST_IP.octets();
    // op BOOTREPLY, Ethernet, hlen 6, hops 0
    let mut b = vec![2, 1, 6, 0];
    b.extend_from_slice(&request.xid);
    b.extend_from_slice(&[0, 0]); // secs
    b.extend_from_slice(&request.flags);
    b.extend_from_slice(&[0; 4]); // ciaddr
    b.extend_from_slice(&ROGUE_LEASE.octets()); // yiaddr
    b.extend_from_slice(&server); // siaddr
    b.extend_from_slice(&[0; 4]); // giaddr
    b.extend_from_slice(&request.chaddr);
    b.resize(b.len() + 10 + 64 + 128, 0); // rest of chaddr, sname, file
    b.extend_from_slice(&MAGIC_COOKIE);
    b.extend_from_slice(&[53, 1, kind]);
    b.extend_from_slice(&[54, 4]);
    b.extend_from_slice(&server);
    b.extend_from_slice(&[51, 4]);
    b.extend_from_slice(&LEASE_SECONDS.to_be_bytes());
    b.extend_from_slice(&[1, 4]);
    b.extend_from_slice(&NETMASK.octets());
    b.extend_from_slice(&[3, 4]);
    b.extend_from_slice(&server);
    b.extend_from_slice(&[6, 4]);
    b.extend_from_slice(&server);
    b.push(255);
    b.resize(300, 0);
    ipv4_udp(
        mac(GUEST_MAC),
        BROADCAST,
        GUEST_IP,
        Ipv4Addr::BROADCAST,
        sport,
        68,
        &b,
    )
}

/// The rogue server on the guest's eth0 until `stop`: answers every DHCPDISCOVER and
/// DHCPREQUEST it sees; returns what it saw and what it sent, in order.
fn rogue_server(guest: &Netns, capture: Capture, sport: u16, stop: &AtomicBool) -> Vec<String> {
    let mut log = vec![];
    while !stop.load(Ordering::Relaxed) {
        let deadline = Instant::now() + Duration::from_millis(50);
        while let Some(frame) = capture.next(deadline) {
            if let Some(request) = parse_request(&frame) {
                let reply = rogue_reply(&request, sport);
                send(guest, "eth0", &reply);
                let sent = parse_reply(&reply).expect("a rogue reply parses");
                log.push(format!(
                    "{} xid {:02x?} -> {} of {} from {}",
                    name(request.kind),
                    request.xid,
                    sent.kind,
                    sent.yiaddr,
                    sent.from
                ));
            }
        }
    }
    log
}

fn name(kind: u8) -> &'static str {
    match kind {
        DHCPDISCOVER => "DHCPDISCOVER",
        DHCPOFFER => "DHCPOFFER",
        DHCPREQUEST => "DHCPREQUEST",
        DHCPACK => "DHCPACK",
        _ => "other",
    }
}

/// `timeout … busybox udhcpc` in a namespace, stopped (SIGTERM to `timeout`, which passes
/// it on to udhcpc, then SIGKILL) and reaped on drop, also when the test panics.
struct Client {
    child: Child,
}

impl Client {
    /// Waits up to [`CLIENT_DEADLINE`] for the client to end on its own.
    fn wait(&mut self) -> Option<ExitStatus> {
        let deadline = Instant::now() + CLIENT_DEADLINE + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let pid = Pid::from_raw(self.child.id() as i32);
            let _ = kill(pid, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// What one udhcpc run came to.
#[derive(Debug)]
struct Outcome {
    /// udhcpc's exit status (None: it had to be killed).
    status: Option<ExitStatus>,
    /// udhcpc's stdout and stderr.
    output: String,
    /// The script's record of a `bound` lease, if any.
    lease: Option<String>,
    /// The script events, in order.
    events: String,
    /// What the rogue server saw and sent.
    rogue: Vec<String>,
    /// DHCP replies that reached the neighbour's eth0.
    replies: Vec<Reply>,
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A udhcpc script that records its events and, on `bound`, the lease it was given.
fn write_script(dir: &Path) -> PathBuf {
    let script = dir.join("script");
    let text = format!(
        "#!/bin/sh\n\
         echo \"$1\" >> {dir}/events\n\
         case \"$1\" in bound|renew)\n\
         \techo \"ip=$ip subnet=$subnet router=$router dns=$dns serverid=$serverid lease=$lease\" > {dir}/lease.tmp\n\
         \tmv {dir}/lease.tmp {dir}/lease\n\
         esac\n\
         exit 0\n",
        dir = dir.display()
    );
    std::fs::write(&script, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// One DHCP exchange: the rogue server answers from `sport` while udhcpc asks for a lease
/// in the neighbour namespace.
fn exchange(rig: &FrameRig, sport: u16) -> Outcome {
    let dir = scratch("udhcpc");
    let script = write_script(&dir);
    let log = File::create(dir.join("output")).unwrap();
    let stop = AtomicBool::new(false);
    let server_capture = Capture::start(&rig.guest, "eth0");
    let neighbour_capture = Capture::start(&rig.peer, "eth0");
    let (status, rogue) = std::thread::scope(|s| {
        let server = s.spawn(|| rogue_server(&rig.guest, server_capture, sport, &stop));
        let status = {
            let mut cmd = rig.peer.exec();
            cmd.args(["timeout", "-k", "2", &CLIENT_DEADLINE.as_secs().to_string()])
                .args(UDHCPC_ARGS)
                .arg(&script)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            let mut client = Client {
                child: cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}")),
            };
            client.wait()
        };
        stop.store(true, Ordering::Relaxed);
        (status, server.join().unwrap())
    });
    let replies = neighbour_capture
        .finish(Duration::from_millis(300))
        .iter()
        .filter_map(|f| parse_reply(f))
        .collect();
    Outcome {
        status,
        lease: std::fs::read_to_string(dir.join("lease")).ok(),
        events: read(&dir.join("events")),
        output: read(&dir.join("output")),
        rogue,
        replies,
    }
}

/// The rogue lease as the script records it.
fn rogue_lease() -> String {
    format!(
        "ip={ROGUE_LEASE} subnet={NETMASK} router={GUEST_IP} dns={GUEST_IP} serverid={GUEST_IP} lease={LEASE_SECONDS}\n"
    )
}

/// The control run (antispoofing off: the client takes the rogue lease), then the filtered
/// one (no lease, no rogue reply at the neighbour, the guest's other traffic still flows).
fn rogue_server_is_stopped(tag: &str, sport: u16) {
    let rig = rig(tag);
    let rogue = |kind| Reply {
        from: source(mac(GUEST_MAC), GUEST_IP, sport),
        kind: name(kind),
        yiaddr: ROGUE_LEASE,
    };

    assert_ok(&online(&rig.host, &rig.xs, &rig.vif, false));
    let control = exchange(&rig, sport);
    eprintln!("control (antispoofing off, replies from port {sport}): {control:#?}");
    assert!(
        control.status.is_some_and(|s| s.success()),
        "without antispoofing udhcpc must take the rogue lease:\n{}{control:#?}",
        control.output
    );
    assert_eq!(
        control.lease.as_deref(),
        Some(rogue_lease().as_str()),
        "{control:#?}"
    );
    assert!(
        control.replies.contains(&rogue(DHCPOFFER)) && control.replies.contains(&rogue(DHCPACK)),
        "the rogue offer and ack reach the neighbour unfiltered: {control:#?}"
    );

    let out = online(&rig.host, &rig.xs, &rig.vif, true);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("filter vif3.0 (netdev vifkit-antispoof-"),
        "{}",
        stderr(&out)
    );
    let filtered = exchange(&rig, sport);
    eprintln!("filtered (antispoofing on, replies from port {sport}): {filtered:#?}");
    assert!(
        filtered.rogue.iter().any(|l| l.contains("-> DHCPOFFER")),
        "the rogue server saw no discover to answer: {filtered:#?}"
    );
    assert!(
        filtered.status.is_some_and(|s| !s.success()) && filtered.lease.is_none(),
        "with antispoofing udhcpc must get no lease:\n{}{filtered:#?}",
        filtered.output
    );
    assert!(
        !filtered.events.contains("bound"),
        "with antispoofing: {filtered:#?}"
    );
    assert!(
        filtered.replies.is_empty(),
        "with antispoofing no rogue reply may reach the neighbour: {filtered:#?}"
    );
    // The port is filtered, not dead: the guest's own broadcasts still arrive.
    let legit = ipv4_udp(
        mac(GUEST_MAC),
        BROADCAST,
        GUEST_IP,
        Ipv4Addr::BROADCAST,
        4000,
        5000,
        &marker(),
    );
    assert!(
        arrives((&rig.guest, "eth0"), (&rig.peer, "eth0"), &legit, WAIT * 5),
        "with antispoofing the guest's ordinary broadcast no longer arrives"
    );
}

#[test]
fn rogue_dhcp_server_on_a_non_standard_source_port_is_stopped() {
    rogue_server_is_stopped("rdx", 6767);
}

#[test]
fn rogue_dhcp_server_on_port_67_is_stopped() {
    rogue_server_is_stopped("rd67", 67);
}
