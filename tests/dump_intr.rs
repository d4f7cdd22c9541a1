//! A real kernel interrupting a dump vifkit makes (`NLM_F_DUMP_INTR`), and vifkit asking
//! again and succeeding. Needs root.
//!
//! The dump is `vifkit reattach`'s link dump (every tun/tap link): the kernel marks a link
//! dump interrupted when a link is added or deleted between two of its messages. vifkit's
//! address dumps name one link, and a dump filtered so is never marked (the kernel leaves
//! its sequence unset), so they cannot serve here. A namespace of its own gets enough ifb
//! links (light: a namespace of bridges takes the kernel seconds to tear down) that the dump
//! spans many messages, and a churner adds and deletes one more there until vifkit logs
//! the retry; stopped then, a later try reads a quiet list.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// Enough links that the dump takes dozens of messages.
const LINKS: usize = 1500;
const RUNS: usize = 20;
const RETRY_LINE: &str = "(NLM_F_DUMP_INTR): try 1 of 3";

/// Adds and deletes an ifb link in `ns`, one `ip` each, until `stop`.
fn churn(ns: &str, stop: &AtomicBool) {
    for verb in ["add", "del"].into_iter().cycle() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        {
            let mut cmd = Command::new("ip");
            cmd.args(["-n", ns, "link", verb, "churn0"]);
            if verb == "add" {
                cmd.args(["type", "ifb"]);
            }
            let _ = run(&mut cmd);
        }
    }
}

#[test]
fn an_interrupted_link_dump_is_asked_again() {
    let ns = Netns::new("intr");
    let batch: String = (0..LINKS)
        .map(|i| format!("link add i{i} type ifb\n"))
        .collect();
    let mut ip = Command::new("ip")
        .args(["-n", &ns.name, "-batch", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut ip.stdin.take().unwrap(), batch.as_bytes()).unwrap();
    assert!(ip.wait().unwrap().success(), "ip -batch");
    let xs = Xenstore::start();

    let mut retried = 0;
    for attempt in 1..=RUNS {
        let stop = Arc::new(AtomicBool::new(false));
        let churner = {
            let (stop, name) = (stop.clone(), ns.name.clone());
            std::thread::spawn(move || churn(&name, &stop))
        };
        let started = Instant::now();
        let mut child = ns
            .exec()
            .arg("env")
            .arg(format!("XENSTORED_PATH={}", xs.socket.display()))
            .arg("VIFKIT_LOG=debug")
            .arg(binary("vifkit"))
            .args(["reattach", "lo"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut log = String::new();
        for line in BufReader::new(child.stderr.take().unwrap()).lines() {
            let line = line.unwrap();
            if line.contains(RETRY_LINE) {
                stop.store(true, Ordering::Relaxed);
            }
            log.push_str(&line);
            log.push('\n');
        }
        let out = child.wait_with_output().unwrap();
        let took = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        churner.join().unwrap();
        let _ = run(Command::new("ip").args(["-n", &ns.name, "link", "del", "churn0"]));

        assert!(
            out.status.success(),
            "run {attempt}: exit {:?}: {}{log}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "no port uses lo as its bridge or uplink\n"
        );
        assert!(took < Duration::from_secs(5), "run {attempt} took {took:?}");
        if log.contains(RETRY_LINE) {
            retried += 1;
            eprintln!("run {attempt}: retried in {took:?}:\n{log}");
            break;
        }
    }
    assert_eq!(retried, 1, "no run of {RUNS} saw its link dump interrupted");
}
