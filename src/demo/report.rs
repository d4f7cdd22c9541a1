//! The demo's report: one line per check on stdout, and the checks every plugged vif gets.

use std::fmt::Display;

use anyhow::Result;

use super::lab::{Guest, Lab, Netns};

const BACKEND_MAC: &str = "fe:ff:ff:ff:ff:ff";
/// A port that has just joined a bridge may miss the first echo; later failures are real.
const PING_ATTEMPTS: u32 = 3;

#[derive(Default)]
pub struct Report {
    pub passed: u32,
    pub failed: u32,
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

    pub fn hotplug(&mut self, lab: &Lab, guest: &Guest, command: &str) -> Result<()> {
        let run = lab.hotplug(guest, command)?;
        let what = format!(
            "vif-bridge {command} {} (bridge={}{}) took {} ms, incl. ip netns exec",
            guest.kernel_name(),
            guest.bridge,
            guest
                .vifname
                .map(|n| format!(", vifname={n}"))
                .unwrap_or_default(),
            run.took.as_millis()
        );
        let stderr: String = run
            .stderr
            .lines()
            .map(|l| format!("\n       {l}"))
            .collect();
        self.check(run.ok, what, format!(": exited non-zero{stderr}"));
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

    /// What libxl and netback wait for, and what `vif-bridge online` made of the port.
    pub fn attached(&mut self, lab: &Lab, guest: &Guest) -> Result<()> {
        let status_key = format!("{}/hotplug-status", guest.backend());
        let status = lab.read(&status_key)?;
        let found = format!(": found {status:?}");
        self.check(
            status.as_deref() == Some("connected"),
            format!("{status_key} = connected"),
            found,
        );
        let mtu_key = format!("{}/mtu", guest.frontend());
        let mtu = lab.read(&mtu_key)?;
        let found = format!(": found {mtu:?}");
        self.check(
            mtu.as_deref() == Some("1500"),
            format!("{mtu_key} = 1500, the MTU of {}", guest.bridge),
            found,
        );
        let port = guest.port_name();
        let link = lab.host.link(&port)?;
        let ok = link.as_ref().is_some_and(|l| {
            l.master() == Some(guest.bridge) && l.is_up() && l.mac() == Some(BACKEND_MAC)
        });
        let what = format!(
            "{port} is an up port of {} with MAC {BACKEND_MAC}",
            guest.bridge
        );
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

    /// libxl's detach, with the script run in the middle; the netdev must leave the bridge.
    pub fn detach(&mut self, lab: &Lab, guest: &Guest) -> Result<()> {
        lab.begin_detach(guest)?;
        self.hotplug(lab, guest, "offline")?;
        let port = guest.port_name();
        let master = lab
            .host
            .link(&port)?
            .and_then(|l| l.master().map(str::to_owned));
        let ok = master.as_deref() != Some(guest.bridge);
        self.check(
            ok,
            format!("{port} left {}", guest.bridge),
            ": still a port",
        );
        lab.forget(guest)
    }
}
