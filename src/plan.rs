//! A change to the host as data: planners produce `Step`s, `apply` runs them. `Display`
//! gives the words that both the logs and a dry run print.

use std::fmt;
use std::path::PathBuf;

use std::net::IpAddr;

use crate::firewall::{Masquerade, nat_table};
use crate::mac::MacAddr;
use crate::names::IfName;
use crate::route::Route;
use crate::sysctl::Key;

/// A link as a step addresses it: by index (stable across a rename), shown by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRef {
    pub index: u32,
    pub name: IfName,
}

impl fmt::Display for LinkRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.name.fmt(f)
    }
}

/// What hook scripts see (CONTRACT 4.7): exported to each hook as environment variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookRun {
    pub dir: PathBuf,
    pub vars: Vec<(&'static str, String)>,
}

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
    /// The alias records the kernel name so a rerun can recognise its own renamed device.
    Rename {
        link: LinkRef,
        to: IfName,
    },
    SetMac {
        link: LinkRef,
        mac: MacAddr,
        previous: Option<MacAddr>,
    },
    FlushAddresses {
        link: LinkRef,
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
        address: IpAddr,
        prefix_len: u8,
    },
    DelAddress {
        link: LinkRef,
        address: IpAddr,
        prefix_len: u8,
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
    /// An external program the admin asked for (the system's `ifup`/`ifdown`).
    Exec {
        program: PathBuf,
        args: Vec<String>,
    },
    RunHooks(HookRun),
}

impl Step {
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
            Step::Rename { link, to } => Some(Step::Rename {
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
            Step::AddAddress {
                link,
                address,
                prefix_len,
            } => Some(Step::DelAddress {
                link: link.clone(),
                address: *address,
                prefix_len: *prefix_len,
            }),
            Step::AddRoute(route) => Some(Step::DelRoute(route.clone())),
            // A failed online leaves no NAT behind; an older table it replaced is not restored
            // (the guest it served is the one being plugged).
            Step::SetNat { key, .. } => Some(Step::RemoveNat { key: key.clone() }),
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
            Step::SetMac { link, mac, .. } => write!(f, "set {link} address {mac}"),
            Step::FlushAddresses { link } => write!(f, "flush addresses of {link}"),
            Step::SetMtu { link, mtu, .. } => write!(f, "set {link} mtu {mtu}"),
            Step::WriteXenstore { path, value } => write!(f, "write {path} = {value}"),
            Step::Attach { link, bridge, .. } => write!(f, "attach {link} to bridge {bridge}"),
            Step::Detach { link } => write!(f, "detach {link} from its bridge"),
            Step::AddAddress {
                link,
                address,
                prefix_len,
            } => {
                write!(f, "add address {address}/{prefix_len} to {link}")
            }
            Step::DelAddress {
                link,
                address,
                prefix_len,
            } => {
                write!(f, "delete address {address}/{prefix_len} from {link}")
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
            Step::Exec { program, args } => {
                write!(f, "run {} {}", program.display(), args.join(" "))
            }
            Step::RunHooks(hooks) => write!(f, "run hooks in {}", hooks.dir.display()),
        }
    }
}

/// What a run will do: the steps, plus the decisions worth a line in the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub notes: Vec<String>,
    /// Host settings that look wrong but are the admin's to change (logged as warnings).
    pub warnings: Vec<String>,
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for note in &self.notes {
            writeln!(f, "# {note}")?;
        }
        for warning in &self.warnings {
            writeln!(f, "# warning: {warning}")?;
        }
        if self.steps.is_empty() {
            writeln!(f, "# nothing to do")?;
        }
        for step in &self.steps {
            writeln!(f, "{step}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str) -> LinkRef {
        LinkRef {
            index,
            name: IfName::new(name).unwrap(),
        }
    }

    #[test]
    fn display_names_object_and_verb() {
        let vif = link(7, "vif3.0");
        let br = link(2, "xenbr0");
        assert_eq!(
            Step::Attach {
                link: vif.clone(),
                bridge: br,
                previous: None
            }
            .to_string(),
            "attach vif3.0 to bridge xenbr0"
        );
        assert_eq!(
            Step::SetMtu {
                link: vif.clone(),
                mtu: 9000,
                previous: 1500
            }
            .to_string(),
            "set vif3.0 mtu 9000"
        );
        assert_eq!(
            Step::SetMac {
                link: vif,
                mac: MacAddr::BACKEND_PORT,
                previous: None
            }
            .to_string(),
            "set vif3.0 address fe:ff:ff:ff:ff:ff"
        );
    }

    #[test]
    fn undo_restores_what_was_found() {
        let vif = link(7, "vif3.0");
        let br = link(2, "xenbr0");
        assert_eq!(
            Step::Attach {
                link: vif.clone(),
                bridge: br.clone(),
                previous: None
            }
            .undo(),
            Some(Step::Detach { link: vif.clone() })
        );
        let other = link(3, "xenbr1");
        assert_eq!(
            Step::Attach {
                link: vif.clone(),
                bridge: br.clone(),
                previous: Some(other.clone())
            }
            .undo(),
            Some(Step::Attach {
                link: vif.clone(),
                bridge: other,
                previous: Some(br)
            })
        );
        assert_eq!(
            Step::SetMtu {
                link: vif.clone(),
                mtu: 9000,
                previous: 1500
            }
            .undo(),
            Some(Step::SetMtu {
                link: vif.clone(),
                mtu: 1500,
                previous: 9000
            })
        );
        assert_eq!(
            Step::SetMtu {
                link: vif.clone(),
                mtu: 1500,
                previous: 1500
            }
            .undo(),
            None
        );
        assert_eq!(
            Step::SetUp {
                link: vif.clone(),
                was_up: true
            }
            .undo(),
            None
        );
        assert_eq!(
            Step::SetUp {
                link: vif.clone(),
                was_up: false
            }
            .undo(),
            Some(Step::SetDown {
                link: vif.clone(),
                was_up: true
            })
        );
        assert_eq!(
            Step::SetDown {
                link: vif.clone(),
                was_up: false
            }
            .undo(),
            None
        );
        assert_eq!(
            Step::Rename {
                link: vif.clone(),
                to: IfName::new("xen1.0").unwrap()
            }
            .undo(),
            Some(Step::Rename {
                link: link(7, "xen1.0"),
                to: IfName::new("vif3.0").unwrap()
            })
        );
        assert_eq!(Step::FlushAddresses { link: vif }.undo(), None);
    }
}
