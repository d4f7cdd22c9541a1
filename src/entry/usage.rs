//! `--help` and `--version` of the hotplug binaries, answered before a run touches anything
//! (no log file, syslog, xenstore or netlink). Only the one word alone counts: libxl passes
//! `online`/`offline`/`add`/`remove` and `name=value` words, udev's glue the same, qemu a
//! tap name, so none of them can be mistaken for a request for help.

use std::io::Write;
use std::process::ExitCode;

use super::qemu::TapDirection;
use super::xen::XenScript;

/// What a lone argument asks for instead of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Help,
    Version,
}

impl Request {
    /// `--help`/`-h` or `--version`/`-V` as the only argument; anything else is a run.
    pub fn of(args: &[String]) -> Option<Request> {
        match args {
            [word] => match word.as_str() {
                "--help" | "-h" => Some(Request::Help),
                "--version" | "-V" => Some(Request::Version),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Answers a request on stdout (exit 0), or None to go on with the run.
pub fn answer(args: &[String], tag: &str, help: impl FnOnce() -> String) -> Option<ExitCode> {
    let text = match Request::of(args)? {
        Request::Help => help(),
        Request::Version => version(tag),
    };
    // A closed stdout (`| head`) loses the text, nothing more.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Some(ExitCode::SUCCESS)
}

pub fn version(tag: &str) -> String {
    format!("{tag} {}\n", env!("CARGO_PKG_VERSION"))
}

/// What a vif script does, the backend keys it reads and its own variables.
struct XenUse {
    does: &'static str,
    keys: &'static str,
    env: &'static str,
}

fn xen_use(script: XenScript) -> XenUse {
    match script {
        XenScript::Bridge => XenUse {
            does: "Attaches a Xen guest's vif, or the tap of its emulated NIC, to a Linux bridge.",
            keys: "bridge, vlan, mac, mtu, ip, vifname",
            env: "bridge",
        },
        XenScript::Route => XenUse {
            does: "Routes a Xen guest's addresses (IPv4 and IPv6) to its vif, with proxy ARP/NDP\non the uplink.",
            keys: "ip, mac, mtu, vifname",
            env: "netdev, ip",
        },
        XenScript::RouteIfup => XenUse {
            does: "Configures a routed Xen vif from its files in /etc/sysconfig/network (ifcfg-VIFNAME,\nroutes, ifroute-VIFNAME, ifndp-proxy), as SUSE's ifup would.",
            keys: "vifname (required), ip, mac",
            env: "VIFKIT_SYSCONFIG_DIR, VIFKIT_IFUP",
        },
        XenScript::Nat => XenUse {
            does: "Gives a Xen guest private addresses: routes them to its vif and masquerades them\non the uplink.",
            keys: "ip, mtu, vifname",
            env: "netdev, ip",
        },
        XenScript::OpenVswitch => XenUse {
            does: "Adds a Xen guest's vif, or the tap of its emulated NIC, to an Open vSwitch bridge\n(bridge=BRIDGE[.TAG][:TRUNK...]) through OVSDB.",
            keys: "bridge, vlan, mac, mtu, vifname",
            env: "bridge, OVS_RUNDIR",
        },
    }
}

pub fn xen_help(script: XenScript, tag: &str) -> String {
    let XenUse { does, keys, env } = xen_use(script);
    format!(
        "Usage: {tag} online|offline [type_if=vif]
       {tag} add|remove type_if=tap
       {tag} --help | --version

{does}

libxl runs it as the vif's script= (udev's vif-setup on toolstacks without libxl), with
XENBUS_PATH=backend/vif/DOMID/DEVID and vif=vifDOMID.DEVID (INTERFACE=vifDOMID.DEVID-emu
for a tap) in its environment. It reads these keys of the backend in xenstore:
{keys}.

Not meant to be run by hand: VIFKIT_DRY_RUN=1 prints the plan instead of applying it,
and `vifkit plan VIF` prints it for a plugged vif. Needs root (CAP_NET_ADMIN).

{environment}

See {tag}(8).
",
        environment = environment(&[
            "XENBUS_PATH",
            "vif",
            "INTERFACE",
            env,
            "script",
            "UDEV_CALL",
            "XENSTORED_PATH",
            "VIFKIT_CONFIG",
            "VIFKIT_HOOK_DIR",
            "VIFKIT_LOG",
            "VIFKIT_DRY_RUN",
        ])
    )
}

/// `Environment: A, B, ...` filled to 88 columns.
fn environment(variables: &[&str]) -> String {
    let mut text = String::from("Environment:");
    let mut column = text.len();
    let words: Vec<&str> = variables.iter().flat_map(|v| v.split(", ")).collect();
    for (index, word) in words.iter().enumerate() {
        let end = if index + 1 == words.len() { "." } else { "," };
        if column + 1 + word.len() + 1 > 88 {
            text.push('\n');
            column = 0;
        } else {
            text.push(' ');
            column += 1;
        }
        text.push_str(word);
        text.push_str(end);
        column += word.len() + 1;
    }
    text
}

pub fn qemu_help(direction: TapDirection, tag: &str) -> String {
    let (does, runs_as) = match direction {
        TapDirection::Up => (
            "Attaches a qemu guest's tap IFNAME to a bridge before the guest starts: BRIDGE, else
VIFKIT_BRIDGE, else the tap's [port] rule in /etc/vifkit/vifkit.conf (which may also
route it), else the bridge of the default route. No bridge found is an error, so that
qemu refuses to start the guest rather than boot it without network.",
            "script",
        ),
        TapDirection::Down => (
            "Takes a qemu guest's tap IFNAME out of its bridge (or removes a routed tap's proxy
entries) and sets it down; a tap that is already gone is fine.",
            "downscript",
        ),
    };
    format!(
        "Usage: {tag} IFNAME [BRIDGE]
       {tag} --help | --version

{does}

qemu runs it as -netdev tap,{runs_as}=PATH with the tap's name; libvirt as the
<script path='...'/> of an <interface type='ethernet'>, with a cleared environment (name
the bridge in a [port] rule then). Needs CAP_NET_ADMIN, and no xenstore.

Environment: VIFKIT_BRIDGE, VIFKIT_CONFIG, VIFKIT_LOG, VIFKIT_DRY_RUN.

See {tag}(8).
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn only_the_word_alone_asks() {
        assert_eq!(Request::of(&args(&["--help"])), Some(Request::Help));
        assert_eq!(Request::of(&args(&["-h"])), Some(Request::Help));
        assert_eq!(Request::of(&args(&["--version"])), Some(Request::Version));
        assert_eq!(Request::of(&args(&["-V"])), Some(Request::Version));
        for run in [
            &[][..],
            &["online"],
            &["online", "type_if=vif"],
            &["--help", "online"],
            &["online", "--help"],
            &["tap0", "--version"],
            &["--HELP"],
            &["-help"],
            &["help"],
        ] {
            assert_eq!(Request::of(&args(run)), None, "{run:?}");
        }
    }

    #[test]
    fn the_environment_fills_its_lines() {
        assert_eq!(environment(&["A", "B, C"]), "Environment: A, B, C.");
        let long = ["VIFKIT_SYSCONFIG_DIR"; 6];
        assert_eq!(
            environment(&long),
            "Environment: VIFKIT_SYSCONFIG_DIR, VIFKIT_SYSCONFIG_DIR, VIFKIT_SYSCONFIG_DIR,\n\
             VIFKIT_SYSCONFIG_DIR, VIFKIT_SYSCONFIG_DIR, VIFKIT_SYSCONFIG_DIR."
        );
    }

    #[test]
    fn the_version_is_the_packages() {
        assert_eq!(
            version("vif-bridge"),
            format!("vif-bridge {}\n", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn help_says_who_runs_it_and_points_to_its_page() {
        let help = xen_help(XenScript::Bridge, "vif-bridge");
        assert!(help.starts_with("Usage: vif-bridge online|offline [type_if=vif]\n"));
        assert!(help.contains("XENBUS_PATH=backend/vif/DOMID/DEVID"));
        assert!(help.ends_with("\nSee vif-bridge(8).\n"));
        let help = qemu_help(TapDirection::Down, "qemu-ifdown");
        assert!(help.starts_with("Usage: qemu-ifdown IFNAME [BRIDGE]\n"));
        assert!(help.contains("-netdev tap,downscript=PATH"));
        assert!(help.ends_with("\nSee qemu-ifdown(8).\n"));
        for script in [
            XenScript::Bridge,
            XenScript::Route,
            XenScript::RouteIfup,
            XenScript::Nat,
            XenScript::OpenVswitch,
        ] {
            let help = xen_help(script, "vif-x");
            assert!(help.lines().all(|l| l.len() <= 90), "{help}");
            assert!(help.ends_with("\nSee vif-x(8).\n"), "{help}");
        }
    }
}
