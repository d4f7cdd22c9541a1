//! The demo's report: one line per check on stdout, and the checks every plugged vif gets.

use std::fmt::Display;

use anyhow::Result;

use super::lab::{BACKEND_MAC, Dom0, Guest};
use super::netns::Netns;

/// A port that has just joined a bridge may miss the first echo; later failures are real.
const PING_ATTEMPTS: u32 = 3;

#[derive(Default)]
pub struct Report {
    pub passed: u32,
    pub failed: u32,
    pub skipped: u32,
}

impl Report {
    pub fn heading(&self, text: &str) {
        println!("\n{text}");
    }

    /// `detail` is printed only on failure, to say what was found instead.
    pub fn check(&mut self, ok: bool, what: impl Display, detail: impl Display) {
        if ok {
            self.passed += 1;
            println!("ok   {what}");
        } else {
            self.failed += 1;
            println!("FAIL {what}{detail}");
        }
    }

    /// Not run, and not a failure either: `why` says what is missing.
    pub fn skip(&mut self, why: impl Display) {
        self.skipped += 1;
        println!("skip {why}");
    }

    pub fn hotplug(&mut self, dom0: &Dom0, guest: &Guest, command: &str) -> Result<()> {
        let run = dom0.hotplug(guest, command)?;
        let options: Vec<String> = [
            guest.bridge().map(|b| format!("bridge={b}")),
            guest.vifname.map(|n| format!("vifname={n}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let what = format!(
            "{} {command} {} ({}) took {} ms, incl. ip netns exec",
            guest.script.binary(),
            guest.kernel_name(),
            options.join(", "),
            run.took.as_millis()
        );
        self.check(
            run.ok,
            what,
            format!(": exited non-zero{}", indent(&run.stderr)),
        );
        Ok(())
    }

    pub fn ping(
        &mut self,
        from: &Netns,
        who: &str,
        to: &str,
        address: &str,
        path: &str,
    ) -> Result<()> {
        let family = if address.contains(':') {
            "IPv6"
        } else {
            "IPv4"
        };
        let ok = from.ping(address, PING_ATTEMPTS)?;
        self.check(
            ok,
            format!("{who} -> {to} {address} ({family}) {path}"),
            ": no reply",
        );
        Ok(())
    }

    /// The other half of host-only: one attempt is enough, since a reply would be the failure.
    pub fn no_ping(
        &mut self,
        from: &Netns,
        who: &str,
        to: &str,
        address: &str,
        why: &str,
    ) -> Result<()> {
        let ok = !from.ping(address, 1)?;
        self.check(
            ok,
            format!("{who} does not reach {to} {address} ({why})"),
            ": it replied",
        );
        Ok(())
    }

    /// What libxl and netback wait for, and what the script's `online` made of the netdev.
    pub fn attached(&mut self, dom0: &Dom0, guest: &Guest) -> Result<()> {
        let status_key = format!("{}/hotplug-status", guest.backend());
        let status = dom0.lab.read(&status_key)?;
        let found = format!(": found {status:?}");
        self.check(
            status.as_deref() == Some("connected"),
            format!("{status_key} = connected"),
            found,
        );
        let Some(bridge) = guest.bridge() else {
            return self.routed_up(dom0, guest);
        };
        let mtu_key = format!("{}/mtu", guest.frontend());
        let mtu = dom0.lab.read(&mtu_key)?;
        let found = format!(": found {mtu:?}");
        self.check(
            mtu.as_deref() == Some("1500"),
            format!("{mtu_key} = 1500, the MTU of {bridge}"),
            found,
        );
        let port = guest.port_name();
        let link = dom0.link(&port)?;
        let ok = link.as_ref().is_some_and(|l| {
            l.master() == Some(bridge) && l.is_up() && l.mac() == Some(BACKEND_MAC)
        });
        let what = format!("{port} is an up port of {bridge} with MAC {BACKEND_MAC}");
        let found = match &link {
            Some(l) => format!(
                ": master {:?}, up {}, MAC {:?}",
                l.master(),
                l.is_up(),
                l.mac()
            ),
            None => format!(": no link {port}"),
        };
        self.check(ok, what, found);
        Ok(())
    }

    /// A routed vif: renamed if asked, up, netback's MAC kept, and no bridge.
    fn routed_up(&mut self, dom0: &Dom0, guest: &Guest) -> Result<()> {
        let port = guest.port_name();
        if port != guest.kernel_name() {
            let renamed = dom0.link(&guest.kernel_name())?.is_none();
            let what = format!("{} was renamed: only {port} is left", guest.kernel_name());
            self.check(renamed, what, ": it still exists");
        }
        let link = dom0.link(&port)?;
        let ok = link
            .as_ref()
            .is_some_and(|l| l.master().is_none() && l.is_up() && l.mac() == Some(BACKEND_MAC));
        let found = match &link {
            Some(l) => format!(
                ": up {}, MAC {:?}, master {:?}",
                l.is_up(),
                l.mac(),
                l.master()
            ),
            None => format!(": no link {port}"),
        };
        self.check(
            ok,
            format!("{port} is up, no bridge port, MAC {BACKEND_MAC} kept"),
            found,
        );
        Ok(())
    }

    /// libxl's detach, with the script run in the middle; the netdev must leave the bridge
    /// (a routed one must go down).
    pub fn detach(&mut self, dom0: &Dom0, guest: &Guest) -> Result<()> {
        dom0.begin_detach(guest)?;
        self.hotplug(dom0, guest, "offline")?;
        let port = guest.port_name();
        let link = dom0.link(&port)?;
        match guest.bridge() {
            Some(bridge) => {
                let ok = link.is_none_or(|l| l.master() != Some(bridge));
                self.check(ok, format!("{port} left {bridge}"), ": still a port");
            }
            None => {
                let ok = link.is_none_or(|l| !l.is_up());
                self.check(ok, format!("{port} is down"), ": still up");
            }
        }
        dom0.forget(guest)
    }
}

/// A child's stderr under a FAIL line, indented past the `FAIL ` column.
pub fn indent(text: &str) -> String {
    text.lines().map(|l| format!("\n       {l}")).collect()
}
