//! A change to the host as data: planners produce `Step`s, `apply` runs them. `Display`
//! gives the words that both the logs and a dry run print.

use std::fmt;
use std::path::PathBuf;

use std::net::IpAddr;

use crate::sys::nft::{Masquerade, PortFilter, nat_table};
use crate::sys::ovsdb::OvsPort;
use crate::sys::sysctl::Key;
use crate::types::hook::HookRun;
use crate::types::link::LinkRef;
use crate::types::mac::MacAddr;
use crate::types::names::IfName;
use crate::types::port::{PortOptions, Rate};
use crate::types::prefix::Prefix;
use crate::types::route::Route;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// `was_up` lets the undo restore the link as it was found.
    SetDown {
        link: LinkRef,
        was_up: bool,
    },
    SetUp {
        link: LinkRef,
        was_up: bool,
    },
    /// The alias records the kernel name so a rerun can recognise its own renamed device:
    /// the name and the alias change in one request, so no kill can part them.
    Rename {
        link: LinkRef,
        to: IfName,
    },
    /// The undo of a rename: back to the kernel name, the alias cleared, in one request.
    RenameBack {
        link: LinkRef,
        to: IfName,
    },
    SetMac {
        link: LinkRef,
        mac: MacAddr,
        previous: Option<MacAddr>,
    },
    SetMtu {
        link: LinkRef,
        mtu: u32,
        previous: u32,
    },
    WriteXenstore {
        path: String,
        value: String,
    },
    /// `previous` is the bridge the port is moved away from, if any.
    Attach {
        link: LinkRef,
        bridge: LinkRef,
        previous: Option<LinkRef>,
    },
    Detach {
        link: LinkRef,
    },
    AddAddress {
        link: LinkRef,
        address: Prefix,
    },
    DelAddress {
        link: LinkRef,
        address: Prefix,
    },
    AddRoute(Route),
    DelRoute(Route),
    /// A proxy ARP (IPv4) or NDP (IPv6) entry: `link` answers for `address`.
    AddProxy {
        link: LinkRef,
        address: IpAddr,
    },
    DelProxy {
        link: LinkRef,
        address: IpAddr,
    },
    /// Planned only when the value differs from `previous`, which the undo restores.
    SetSysctl {
        key: Key,
        value: String,
        previous: String,
    },
    /// The port's masquerade rules, in its own nft table (replaced whole).
    SetNat {
        key: String,
        rules: Vec<Masquerade>,
    },
    RemoveNat {
        key: String,
    },
    /// VLANs, isolation, pinned MAC and hairpin of a bridge port, after it joins the bridge.
    /// No undo: leaving the bridge (the undo of Attach) drops them all.
    SetPortOptions {
        link: LinkRef,
        options: PortOptions,
    },
    /// A tap's rate limit towards the guest (tc tbf); no undo: the tap goes with qemu, and a
    /// rerun replaces it.
    SetRateLimit {
        link: LinkRef,
        rate: Rate,
    },
    /// The same limit on what the guest sends the tap (tc police on its ingress qdisc).
    SetIngressLimit {
        link: LinkRef,
        rate: Rate,
    },
    /// The tap's ingress qdisc, its policer with it; none is success.
    RemoveIngressLimit {
        link: LinkRef,
    },
    /// An Open vSwitch port, replacing any port of that name (vif-openvswitch).
    OvsAddPort {
        link: LinkRef,
        bridge: String,
        port: OvsPort,
    },
    /// The Open vSwitch port of that name, on whichever bridge; none is success.
    OvsDelPort {
        name: IfName,
    },
    /// The port's antispoofing chains, replaced whole before the link goes up.
    SetPortFilter(PortFilter),
    /// Every antispoofing rule of the port, whatever addresses it was installed with.
    RemovePortFilter {
        port: IfName,
    },
    /// Flows of these addresses from an earlier guest must not carry over to this one.
    PurgeConntrack {
        addresses: Vec<Prefix>,
        /// The filtered port whose frames are held while the purge finishes in the
        /// background (`apply::purge`); None: inline.
        hold: Option<IfName>,
    },
    /// An external program the admin asked for (the system's `ifup`/`ifdown`).
    Exec {
        program: PathBuf,
        args: Vec<String>,
    },
    RunHooks(HookRun),
}

impl Step {
    /// On detach, whether "no such object" means this step is done. A missing device,
    /// route or table is; a missing program (the system's `ifdown`, a hook's interpreter)
    /// is a failure to report.
    pub fn absent_means_done(&self) -> bool {
        !matches!(self, Step::Exec { .. } | Step::RunHooks(_))
    }

    /// The step that reverts this one, from the state captured when it was planned. None
    /// where nothing can or need be restored (addresses of a fresh vif, xenstore keys that
    /// libxl deletes with the failed device, hooks).
    pub fn undo(&self) -> Option<Step> {
        match self {
            Step::SetDown { link, was_up: true } => Some(Step::SetUp {
                link: link.clone(),
                was_up: false,
            }),
            Step::SetUp {
                link,
                was_up: false,
            } => Some(Step::SetDown {
                link: link.clone(),
                was_up: true,
            }),
            Step::Rename { link, to } => Some(Step::RenameBack {
                link: LinkRef {
                    index: link.index,
                    name: to.clone(),
                },
                to: link.name.clone(),
            }),
            Step::SetMac {
                link,
                mac,
                previous: Some(previous),
            } if previous != mac => Some(Step::SetMac {
                link: link.clone(),
                mac: *previous,
                previous: Some(*mac),
            }),
            Step::SetMtu {
                link,
                mtu,
                previous,
            } if previous != mtu => Some(Step::SetMtu {
                link: link.clone(),
                mtu: *previous,
                previous: *mtu,
            }),
            Step::Attach {
                link,
                bridge,
                previous: Some(previous),
            } => Some(Step::Attach {
                link: link.clone(),
                bridge: previous.clone(),
                previous: Some(bridge.clone()),
            }),
            Step::Attach {
                link,
                previous: None,
                ..
            } => Some(Step::Detach { link: link.clone() }),
            Step::AddAddress { link, address } => Some(Step::DelAddress {
                link: link.clone(),
                address: *address,
            }),
            Step::AddRoute(route) => Some(Step::DelRoute(route.clone())),
            // A failed online leaves no NAT behind; an older table it replaced is not restored
            // (the guest it served is the one being plugged).
            Step::SetNat { key, .. } => Some(Step::RemoveNat { key: key.clone() }),
            Step::OvsAddPort { link, .. } => Some(Step::OvsDelPort {
                name: link.name.clone(),
            }),
            Step::SetIngressLimit { link, .. } => {
                Some(Step::RemoveIngressLimit { link: link.clone() })
            }
            Step::SetPortFilter(filter) => Some(Step::RemovePortFilter {
                port: filter.port.clone(),
            }),
            Step::AddProxy { link, address } => Some(Step::DelProxy {
                link: link.clone(),
                address: *address,
            }),
            Step::SetSysctl {
                key,
                value,
                previous,
            } => Some(Step::SetSysctl {
                key: key.clone(),
                value: previous.clone(),
                previous: value.clone(),
            }),
            _ => None,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::SetDown { link, .. } => write!(f, "set {link} down"),
            Step::SetUp { link, .. } => write!(f, "set {link} up"),
            Step::Rename { link, to } => write!(f, "rename {link} to {to}"),
            Step::RenameBack { link, to } => write!(f, "rename {link} back to {to}"),
            Step::SetMac { link, mac, .. } => write!(f, "set {link} address {mac}"),
            Step::SetMtu { link, mtu, .. } => write!(f, "set {link} mtu {mtu}"),
            Step::WriteXenstore { path, value } => write!(f, "write {path} = {value}"),
            Step::Attach { link, bridge, .. } => write!(f, "attach {link} to bridge {bridge}"),
            Step::Detach { link } => write!(f, "detach {link} from its bridge"),
            Step::AddAddress { link, address } => write!(f, "add address {address} to {link}"),
            Step::DelAddress { link, address } => {
                write!(f, "delete address {address} from {link}")
            }
            Step::AddRoute(route) => write!(f, "add route {route}"),
            Step::DelRoute(route) => write!(f, "delete route {route}"),
            Step::AddProxy { link, address } => {
                write!(f, "add proxy neighbour {address} on {link}")
            }
            Step::DelProxy { link, address } => {
                write!(f, "delete proxy neighbour {address} on {link}")
            }
            Step::SetSysctl { key, value, .. } => write!(f, "set sysctl {key} = {value}"),
            Step::SetNat { key, rules } => {
                let rules: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
                write!(
                    f,
                    "masquerade {} (nft table inet {})",
                    rules.join(", "),
                    nat_table(key)
                )
            }
            Step::RemoveNat { key } => write!(f, "delete nft table inet {}", nat_table(key)),
            Step::SetPortOptions { link, options } => {
                write!(f, "set {link} bridge port: {options}")
            }
            Step::OvsAddPort { link, bridge, port } => {
                write!(f, "add {link} to Open vSwitch bridge {bridge}")?;
                if let Some(tag) = port.tag {
                    write!(f, " tag {tag}")?;
                }
                if !port.trunks.is_empty() {
                    let list: Vec<String> = port.trunks.iter().map(u16::to_string).collect();
                    write!(f, " trunks {}", list.join(","))?;
                }
                Ok(())
            }
            Step::OvsDelPort { name } => write!(f, "remove Open vSwitch port {name}"),
            Step::SetRateLimit { link, rate } => {
                write!(f, "limit what {link} sends its guest to {rate}")
            }
            Step::SetIngressLimit { link, rate } => {
                write!(f, "limit what {link} takes from its guest to {rate}")
            }
            Step::RemoveIngressLimit { link } => {
                write!(f, "delete the ingress qdisc of {link} and its rate limit")
            }
            Step::SetPortFilter(filter) => write!(f, "filter {filter}"),
            Step::RemovePortFilter { port } => write!(f, "delete the antispoofing rules of {port}"),
            Step::PurgeConntrack { addresses, hold } => {
                let list: Vec<String> = addresses
                    .iter()
                    .map(|prefix| prefix.network().compact().to_string())
                    .collect();
                write!(f, "purge conntrack entries of {}", list.join(" "))?;
                match hold {
                    Some(port) => write!(f, " (in the background, {port} held meanwhile)"),
                    None => Ok(()),
                }
            }
            Step::Exec { program, args } => {
                write!(f, "run {} {}", program.display(), args.join(" "))
            }
            Step::RunHooks(hooks) => write!(f, "run hooks in {}", hooks.dir.display()),
        }
    }
}

/// When a step runs, relative to the moment the guest's port comes up. A plan runs its
/// phases in this order, so "the filter is in place before the guest's first frame" is a
/// property of the plan, whatever order its steps were planned in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// The port made ready (rename, MAC, MTU, bridge or switch membership); on detach,
    /// the port taken down and apart.
    Prepare,
    /// What must hold before the guest can send: port options, antispoofing, rate limits.
    BeforeLinkUp,
    /// The port comes up (or the system's `ifup` brings it up).
    LinkUp,
    /// What needs the port up, or outlives it: routes, proxy entries, NAT, sysctls.
    After,
    /// Upstream runs the hooks after everything else (CONTRACT 4.7).
    Hooks,
}

const PHASES: [Phase; 5] = [
    Phase::Prepare,
    Phase::BeforeLinkUp,
    Phase::LinkUp,
    Phase::After,
    Phase::Hooks,
];

/// What a run will do: the steps by phase, plus the decisions worth a line in the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    phases: [Vec<Step>; 5],
    /// Decisions worth a line in the log (at debug level).
    pub notes: Vec<String>,
    /// Decisions the admin is to hear of on every run, such as a port left unfiltered
    /// (logged at info level).
    pub infos: Vec<String>,
    /// Host settings that look wrong but are the admin's to change (logged as warnings).
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn push(&mut self, phase: Phase, step: Step) {
        self.phases[phase as usize].push(step);
    }

    pub fn extend(&mut self, phase: Phase, steps: impl IntoIterator<Item = Step>) {
        self.phases[phase as usize].extend(steps);
    }

    /// The steps of one phase so far.
    pub fn phase(&self, phase: Phase) -> &[Step] {
        &self.phases[phase as usize]
    }

    /// One phase's list, for helpers that only ever add to one phase.
    pub fn phase_mut(&mut self, phase: Phase) -> &mut Vec<Step> {
        &mut self.phases[phase as usize]
    }

    /// Every step, in the order they run.
    pub fn iter(&self) -> impl Iterator<Item = &Step> {
        PHASES.iter().flat_map(|p| self.phase(*p))
    }

    /// Every step, in the order they run (a copy, for tests and reports).
    pub fn steps(&self) -> Vec<Step> {
        self.iter().cloned().collect()
    }

    /// Drops the steps `keep` refuses, in every phase.
    pub fn retain(&mut self, mut keep: impl FnMut(&Step) -> bool) {
        for phase in &mut self.phases {
            phase.retain(&mut keep);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.phases.iter().all(Vec::is_empty)
    }

    /// A plan of these steps, in this order (tests of what runs them).
    #[cfg(test)]
    pub fn of(steps: Vec<Step>) -> Plan {
        let mut plan = Plan::default();
        plan.extend(Phase::Prepare, steps);
        plan
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.infos.iter().chain(&self.notes) {
            writeln!(f, "# {line}")?;
        }
        for warning in &self.warnings {
            writeln!(f, "# warning: {warning}")?;
        }
        if self.is_empty() {
            writeln!(f, "# nothing to do")?;
        }
        for step in self.iter() {
            writeln!(f, "{step}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
