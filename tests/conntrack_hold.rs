//! A filtered plug where conntrack tracks flows (here 6,000): the purge of the guest's old
//! flows finishes after the plug has returned, in a process of its own, while a hold at
//! the head of the port's chain drops whatever the guest sends; the hold goes when the
//! purge is done, and lapses by itself if nobody removes it. Under udev, which kills what a
//! run leaves behind, the purge stays inline, and so it does when the purge process cannot
//! start. Needs root.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::frames::{arrives, in_netns, udp_to_peer};
use common::*;
use vifkit::sys::nft;
use vifkit::types::names::IfName;

/// Flows besides the guest's: the listings walk them all.
const OTHER_FLOWS: usize = 6_000;

/// Bridge xenbr0 in a host namespace with a peer (192.0.2.242 behind vif9.0) and a guest
/// (vif3.0, B/ip 192.0.2.241 2001:db8::241) whose end sits in a namespace of its own.
struct Rig {
    host: Netns,
    peer: Netns,
    guest: Netns,
    xs: Xenstore,
    vif: Vif,
}

fn rig(tag: &str) -> Rig {
    let (host, peer, xs) = bridge_with_peer(tag);
    let guest = Netns::new(&format!("{tag}g"));
    let vif = Vif::new(3, 0);
    host.netback_vif(&vif, &guest);
    xs.write_vif(&vif);
    xs.write(
        &format!("{}/ip", vif.backend()),
        "192.0.2.241 2001:db8::241",
    );
    Rig {
        host,
        peer,
        guest,
        xs,
        vif,
    }
}

impl Rig {
    /// Whether a UDP frame from the guest's MAC with source `src` reaches the peer.
    fn passes(&self, src: &str) -> bool {
        let frame = udp_to_peer(src);
        let wait = Duration::from_millis(400);
        arrives((&self.guest, "eth0"), (&self.peer, "eth0"), &frame, wait)
    }

    fn online(&self, env: &[(&str, &str)]) -> Output {
        let out = hotplug(
            &self.host,
            &self.xs,
            &self.vif,
            &["online", "type_if=vif"],
            env,
        );
        assert_ok(&out);
        out
    }

    /// `online` as libxl runs it, with `log_dir` mounted over `/var/log/xen` in its private
    /// mount namespace, which the background purge it starts shares.
    fn online_logging_to(&self, log_dir: &Path) -> Output {
        let base = self.vif.command(
            &self.host.name,
            &binary(self.vif.script_name()),
            &["online", "type_if=vif"],
            &self.xs.socket,
        );
        let mut cmd = Command::new(base.get_program());
        cmd.args(["netns", "exec", &self.host.name, "sh", "-c"])
            .arg(
                "mount -t tmpfs vk-log /var/log && mkdir /var/log/xen && \
                 mount --bind \"$1\" /var/log/xen && shift && exec \"$@\"",
            )
            .arg("sh")
            .arg(log_dir)
            // `netns exec NS` is the base's first three arguments.
            .args(base.get_args().skip(3))
            .env_clear();
        for (key, value) in base.get_envs() {
            if let Some(value) = value {
                cmd.env(key, value);
            }
        }
        let out = run(&mut cmd);
        assert_ok(&out);
        out
    }

    /// `OTHER_FLOWS` flows between other addresses, then 3 of the guest's (IPv4 both ways,
    /// IPv6) and one of its neighbour's, loaded with `conntrack -R`.
    fn load_flows(&self, dir: &Path) {
        let mut lines: Vec<String> = (0..OTHER_FLOWS)
            .map(|i| {
                format!(
                    "-I -p udp -s 10.1.{}.{} -d 198.18.0.1 --sport {} --dport 53 -t 600",
                    i >> 8,
                    i & 255,
                    1024 + i
                )
            })
            .collect();
        for (src, dst) in [
            ("192.0.2.241", "198.51.100.9"),
            ("198.51.100.9", "192.0.2.241"),
            ("192.0.2.243", "198.51.100.9"),
            ("2001:db8::241", "2001:db8::99"),
        ] {
            lines.push(format!(
                "-I -p udp -s {src} -d {dst} --sport 1000 --dport 53 -t 600"
            ));
        }
        let file = dir.join("flows");
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        must(self.host.exec().arg("conntrack").arg("-R").arg(&file));
        assert_eq!(self.flows().len(), OTHER_FLOWS + 4);
    }

    /// Every tracked flow of the host namespace, one line each.
    fn flows(&self) -> Vec<String> {
        ["ipv4", "ipv6"]
            .iter()
            .flat_map(|family| {
                let out = must(self.host.exec().args(["conntrack", "-L", "-f", family]));
                out.lines().map(str::to_owned).collect::<Vec<_>>()
            })
            .collect()
    }

    fn chain(&self) -> String {
        let table = nft::rules::netdev_table(&IfName::new("vif3.0").unwrap());
        must(
            self.host
                .exec()
                .args(["nft", "list", "chain", "netdev", &table, "vif3.0"]),
        )
    }

    fn check(&self) -> Output {
        let mut cmd = self.host.exec();
        cmd.arg("env")
            .arg(format!("XENSTORED_PATH={}", self.xs.socket.display()));
        run(cmd.arg(binary("vifkit")).args(["check", "vif3.0"]))
    }
}

/// The guest's flows left: any with one of its addresses at either end.
fn guests(flows: &[String]) -> Vec<&String> {
    flows
        .iter()
        .filter(|flow| flow.contains("=192.0.2.241 ") || flow.contains("=2001:db8::241 "))
        .collect()
}

#[test]
fn a_busy_tables_purge_ends_after_the_plug_and_releases_the_port() {
    let rig = rig("cth");
    let dir = scratch("cth");
    rig.load_flows(&dir);
    let log_dir = dir.join("xen");
    std::fs::create_dir(&log_dir).unwrap();
    let out = rig.online_logging_to(&log_dir);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let said = "flows are tracked: vif3.0 is held while process ";
    let at = log.find(said).unwrap_or_else(|| panic!("{log}"));
    let rest = &log[at + said.len()..];
    let (pid, tail) = rest.split_once(' ').unwrap();
    // Held 10 s past the run's deadline at most (26 s from its start).
    let seconds = tail
        .strip_prefix("purges those of 192.0.2.241 2001:db8::241 (at most ")
        .and_then(|rest| rest.split_once(" s)"))
        .and_then(|(seconds, _)| seconds.parse::<u64>().ok());
    assert!(seconds.is_some_and(|s| (30..=36).contains(&s)), "{log}");
    let pid: u32 = pid.parse().unwrap();
    // The purge runs on its own (no plug waits for it) and ends well inside the hold.
    let started = Instant::now();
    while vifkit::sys::process::running(pid) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "purge {pid} still running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let logged = std::fs::read_to_string(log_dir.join("xen-hotplug.log")).unwrap();
    let released = "vif3.0: released vif3.0 after ";
    let line = logged.lines().find(|line| line.contains(released));
    let (_, said) = line
        .and_then(|l| l.split_once(released))
        .unwrap_or_else(|| panic!("{logged}"));
    assert!(
        said.ends_with(" ms, the old flows of 192.0.2.241 2001:db8::241 purged (3 deleted)"),
        "{logged}"
    );
    let flows = rig.flows();
    assert_eq!(guests(&flows), Vec::<&String>::new());
    assert_eq!(flows.len(), OTHER_FLOWS + 1, "only the guest's 3 went");
    assert!(flows.iter().any(|flow| flow.contains("src=192.0.2.243 ")));
    // Released: no hold left, the chain as online leaves it, the guest's frames through.
    assert!(!rig.chain().contains("vifkit-hold"), "{}", rig.chain());
    let check = rig.check();
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        "vif3.0: in place, as online leaves it\n"
    );
    assert!(rig.passes("192.0.2.241"));
    assert!(!rig.passes("192.0.2.99"));
    // A second online finds everything in place: no purge, no hold.
    let again = rig.online(&[]);
    assert!(!String::from_utf8_lossy(&again.stderr).contains("held"));
}

#[test]
fn under_udev_the_purge_of_a_busy_table_stays_inline() {
    let rig = rig("ctu");
    let dir = scratch("ctu");
    rig.load_flows(&dir);
    let out = rig.online(&[("UDEV_CALL", "1")]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("is held"), "{log}");
    assert!(log.contains("deleted 3 conntrack entries"), "{log}");
    assert_eq!(guests(&rig.flows()), Vec::<&String>::new());
    assert!(!rig.chain().contains("vifkit-hold"));
}

/// The plug falls back to purging itself when it cannot start the purge process: here a
/// hook deletes the copy of the script that runs, so the plug cannot exec itself again.
#[test]
fn a_purge_that_cannot_start_is_done_by_the_plug_which_releases_the_port() {
    let rig = rig("ctf");
    let dir = scratch("ctf");
    rig.load_flows(&dir);
    let copy = dir.join("vif-bridge");
    std::fs::copy(binary("vif-bridge"), &copy).unwrap();
    let hooks = hook_dir(
        "ctf-hooks",
        "delete-the-script.hook",
        &format!("rm -f '{}'\n", copy.display()),
    );
    let mut online = rig.vif.command(
        &rig.host.name,
        &copy,
        &["online", "type_if=vif"],
        &rig.xs.socket,
    );
    online.env("VIFKIT_HOOK_DIR", &*hooks);
    let out = run(&mut online);
    assert_ok(&out);
    assert!(!copy.exists(), "the hook ran");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("could not start the background purge (")
            && log.contains("); purging the old flows of vif3.0 now"),
        "{log}"
    );
    assert!(log.contains("deleted 3 conntrack entries"), "{log}");
    assert!(!log.contains("is held while"), "{log}");
    assert_eq!(guests(&rig.flows()), Vec::<&String>::new());
    assert_eq!(
        rig.flows().len(),
        OTHER_FLOWS + 1,
        "only the guest's 3 went"
    );
    assert!(!rig.chain().contains("vifkit-hold"), "{}", rig.chain());
    assert!(rig.passes("192.0.2.241"));
}

fn wall_clock_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[test]
fn a_hold_drops_the_guests_frames_until_released_or_lapsed() {
    let rig = rig("cthd");
    rig.online(&[]);
    assert!(rig.passes("192.0.2.241"));
    let port = IfName::new("vif3.0").unwrap();

    // Released by the purge that set it: only its own hold, once.
    let until = wall_clock_ns() + 60_000_000_000;
    let comment = nft::hold_comment(until, 1);
    in_netns(&rig.host, || nft::hold_port(&port, until, &comment)).unwrap();
    assert!(!rig.passes("192.0.2.241"), "held");
    // vifkit check reads the filter, not the hold.
    assert_eq!(
        String::from_utf8_lossy(&rig.check().stdout),
        "vif3.0: in place, as online leaves it\n"
    );
    let other = nft::hold_comment(until, 2);
    assert!(!in_netns(&rig.host, || nft::release_port(&port, &other)).unwrap());
    assert!(!rig.passes("192.0.2.241"), "still held");
    assert!(in_netns(&rig.host, || nft::release_port(&port, &comment)).unwrap());
    assert!(rig.passes("192.0.2.241"), "released");
    assert!(!in_netns(&rig.host, || nft::release_port(&port, &comment)).unwrap());

    // Nobody releases this one (a purge killed): it lapses at its time by itself.
    let until = wall_clock_ns() + 1_500_000_000;
    let comment = nft::hold_comment(until, 3);
    in_netns(&rig.host, || nft::hold_port(&port, until, &comment)).unwrap();
    assert!(!rig.passes("192.0.2.241"), "held");
    let lapse = Duration::from_nanos(until.saturating_sub(wall_clock_ns()));
    std::thread::sleep(lapse + Duration::from_millis(100));
    assert!(rig.chain().contains(&comment), "{}", rig.chain());
    assert!(rig.passes("192.0.2.241"), "lapsed");
    assert!(
        !rig.passes("192.0.2.99"),
        "the filter still works behind it"
    );

    // Offline takes the chain, hold and all.
    let out = hotplug(
        &rig.host,
        &rig.xs,
        &rig.vif,
        &["offline", "type_if=vif"],
        &[],
    );
    assert_ok(&out);
    assert!(!must(rig.host.exec().args(["nft", "list", "ruleset"])).contains("vif3.0"));
}
