//! How libxl, `xl devd` and the legacy udev rules call a vif script: argv words and the
//! environment, parsed once into a typed `XenCall` (CONTRACT 1.1, 1.2, 4.1).

use std::fmt;

use anyhow::{Result, bail};

use crate::types::bridge_word::{BridgeOrigin, GivenBridge};
use crate::types::names::{IfName, VifId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Online,
    Offline,
    Add,
    Remove,
}

impl Command {
    /// `online` and `add` configure a device; their failure must be reported through xenstore.
    pub fn is_attach(self) -> bool {
        matches!(self, Command::Online | Command::Add)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Command::Online => "online",
            Command::Offline => "offline",
            Command::Add => "add",
            Command::Remove => "remove",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeIf {
    /// The netback device `vif<d>.<n>`.
    Vif,
    /// qemu's emulated NIC of an HVM guest, `vif<d>.<n>-emu`.
    Tap,
}

impl fmt::Display for TypeIf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TypeIf::Vif => "vif",
            TypeIf::Tap => "tap",
        })
    }
}

/// A setting given by the caller outside xenstore; argv beats the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// A `bridge=` word, else the `bridge` variable (`B/bridge` beats both).
    pub bridge: Option<GivenBridge>,
    pub netdev: Option<String>,
    pub ip: Option<String>,
    pub dhcp: Option<String>,
}

/// A validated vif script call that has work to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XenCall {
    pub command: Command,
    pub type_if: TypeIf,
    /// `XENBUS_PATH` as given (relative paths resolve against the caller's home domain).
    pub backend: String,
    pub vif: VifId,
    /// The name the kernel gave the device: `$vif` or `$INTERFACE`.
    pub dev: IfName,
    /// Set by the legacy udev rules: such runs honour `libxl/disable_udev`.
    pub udev: bool,
    pub script: Option<String>,
    pub overrides: Overrides,
}

impl XenCall {
    /// The names this call may give its device: libxl passes netback's `vif<d>.<n>` (or
    /// qemu's `vif<d>.<n>-emu` for a tap) of `XENBUS_PATH`, and netback's uevent the
    /// current name, which after our rename is `vifname` (`<vifname>-emu`). Anything else
    /// (`vif=eth0` from a hand-run or broken caller) would have the uplink flushed and
    /// enslaved, so it is refused before any change.
    ///
    /// `vifname` is `B/vifname` once xenstore has been read; before that only the kernel
    /// name is known to be this device's.
    pub fn check_dev(&self, vifname: Option<&IfName>) -> Result<()> {
        let (variable, what, suffix) = match self.type_if {
            TypeIf::Vif => ("vif", "device", ""),
            TypeIf::Tap => ("INTERFACE", "tap", "-emu"),
        };
        let mut expected = vec![format!("{}{suffix}", self.vif.kernel_name())];
        expected.extend(vifname.map(|name| format!("{name}{suffix}")));
        if expected.iter().any(|name| self.dev == name.as_str()) {
            return Ok(());
        }
        bail!(
            "{variable}={} is not the {what} of {}: expected {}",
            self.dev,
            self.backend,
            expected.join(" or ")
        )
    }
}

#[cfg(test)]
impl XenCall {
    /// For the planners' unit tests: `command` on netback's `vif<domid>.<devid>`, as libxl
    /// runs a script (no udev, no overrides).
    pub fn for_test(command: Command, domid: u32, devid: u32) -> XenCall {
        XenCall {
            command,
            type_if: TypeIf::Vif,
            backend: format!("backend/vif/{domid}/{devid}"),
            vif: VifId { domid, devid },
            dev: IfName::new(&format!("vif{domid}.{devid}")).unwrap(),
            udev: false,
            script: None,
            overrides: Overrides::default(),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(XenCall),
    /// A combination libxl sends to every script that this run must ignore (exit 0).
    Ignore(String),
}

/// The `name=value` words of argv that may override the environment.
#[derive(Default)]
struct Words {
    bridge: Option<String>,
    netdev: Option<String>,
    ip: Option<String>,
    dhcp: Option<String>,
}

/// Parses argv (without argv[0]) and the environment (looked up through `env`).
pub fn parse_xen_call(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<Parsed> {
    // Empty values count as unset: the shell scripts test with `[ -z ]`.
    let env = |key: &str| env(key).filter(|v| !v.is_empty());
    let mut command_word = None;
    let mut type_if = None;
    let mut argv = Words::default();
    for word in args {
        match word.split_once('=') {
            None if command_word.is_none() => command_word = Some(word.as_str()),
            None => log::debug!("ignoring extra argument {word:?}"),
            Some(("type_if", value)) => type_if = Some(value.to_owned()),
            Some(("bridge", value)) => argv.bridge = Some(value.to_owned()),
            Some(("netdev", value)) => argv.netdev = Some(value.to_owned()),
            Some(("ip", value)) => argv.ip = Some(value.to_owned()),
            Some(("dhcp", value)) => argv.dhcp = Some(value.to_owned()),
            Some((name, _)) => log::debug!("ignoring argument {name}="),
        }
    }
    let command = match command_word {
        Some("online") => Command::Online,
        Some("offline") => Command::Offline,
        Some("add") => Command::Add,
        Some("remove") => Command::Remove,
        Some(other) => {
            bail!("invalid command {other:?}: expected online, offline, add or remove")
        }
        None => bail!("no command given: expected online, offline, add or remove"),
    };
    let type_if = match type_if.as_deref().unwrap_or("vif") {
        "vif" => TypeIf::Vif,
        "tap" => TypeIf::Tap,
        other => bail!("invalid type_if={other:?}: expected vif or tap"),
    };
    let for_taps = matches!(command, Command::Add | Command::Remove);
    if for_taps != (type_if == TypeIf::Tap) {
        return Ok(Parsed::Ignore(format!(
            "{command} with type_if={type_if} needs no action"
        )));
    }
    let overrides = Overrides {
        bridge: argv
            .bridge
            .map(|text| GivenBridge::new(text, BridgeOrigin::XenArgument))
            .or_else(|| {
                env("bridge").map(|text| GivenBridge::new(text, BridgeOrigin::XenEnvironment))
            }),
        netdev: argv.netdev.or_else(|| env("netdev")),
        ip: argv.ip.or_else(|| env("ip")),
        dhcp: argv.dhcp.or_else(|| env("dhcp")),
    };
    let xenbus_path = env("XENBUS_PATH");
    let (dev_var, dev_value) = match type_if {
        TypeIf::Vif => ("vif", env("vif")),
        TypeIf::Tap => ("INTERFACE", env("INTERFACE")),
    };
    let mut missing = Vec::new();
    if type_if == TypeIf::Vif && xenbus_path.is_none() {
        missing.push("XENBUS_PATH");
    }
    if dev_value.is_none() {
        missing.push(dev_var);
    }
    if !missing.is_empty() {
        bail!(
            "missing environment variable{} {} (is this run by libxl?)",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        );
    }
    let dev = IfName::new(&dev_value.unwrap_or_default())
        .map_err(|e| anyhow::anyhow!("{dev_var}: {e}"))?;
    let (backend, vif) = match xenbus_path {
        Some(path) => {
            let vif = vif_from_backend_path(&path)?;
            (path, vif)
        }
        // The udev tap event carries no XENBUS_PATH: derive it as upstream does, which is
        // only right in dom0.
        None => {
            let vif = VifId::from_tap_name(&dev)?;
            (
                format!("/local/domain/0/{}", vif.relative_backend_path()),
                vif,
            )
        }
    };
    let call = XenCall {
        command,
        type_if,
        backend,
        vif,
        dev,
        udev: env("UDEV_CALL").as_deref() == Some("1"),
        script: env("script"),
        overrides,
    };
    // An attach checks its device against B/vifname too (`XenPort::new`), where a refusal
    // reaches hotplug-error. A detach may run without xenstore, acting on `dev` alone: libxl
    // names netback's device, so nothing else is taken down. Only netback's own uevent
    // (udev) names a renamed device; `XenPort::new` checks that one against B/vifname.
    if !command.is_attach() && !call.udev {
        call.check_dev(None)?;
    }
    Ok(Parsed::Run(call))
}

/// Where a failure to parse an attach's call is to be reported: `XENBUS_PATH`, when the
/// command word is `online` or `add` and the path is a vif backend's. None otherwise: an
/// invalid command writes nothing to xenstore (as upstream), a detach reports nothing, and
/// without a valid path there is no backend to report to.
pub fn report_path(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let command = args.iter().find(|word| !word.contains('='))?;
    if !matches!(command.as_str(), "online" | "add") {
        return None;
    }
    let path = env("XENBUS_PATH").filter(|path| !path.is_empty())?;
    vif_from_backend_path(&path).ok().map(|_| path)
}

/// The device a run is about, as its log lines name it: netback's `vif<d>.<n>` of
/// `XENBUS_PATH` (`vif<d>.<n>-emu` with `type_if=tap`), which is what libxl passes and xl's
/// log names; else (the udev tap event has no `XENBUS_PATH`) the device variable, when it is
/// an interface name. Read before the call is parsed, so that a refused call names it too.
pub fn log_subject(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let tap = args.iter().any(|word| word == "type_if=tap");
    let suffix = if tap { "-emu" } else { "" };
    let from_path = env("XENBUS_PATH")
        .and_then(|path| vif_from_backend_path(&path).ok())
        .map(|vif| format!("{}{suffix}", vif.kernel_name()));
    from_path.or_else(|| {
        let variable = if tap { "INTERFACE" } else { "vif" };
        env(variable)
            .and_then(|name| IfName::new(&name).ok())
            .map(|name| name.to_string())
    })
}

/// `backend/vif/<d>/<n>`, relative or under an absolute `/local/domain/<backend>/`.
pub fn vif_from_backend_path(path: &str) -> Result<VifId> {
    use crate::types::names::parse_decimal;
    let relative = match path.strip_prefix("/local/domain/") {
        Some(rest) => rest
            .split_once('/')
            .filter(|(home, _)| parse_decimal(home).is_some())
            .map(|(_, relative)| relative),
        None => Some(path),
    };
    let parts: Option<Vec<&str>> = relative.map(|r| r.split('/').collect());
    let ids = match parts.as_deref() {
        Some(["backend", "vif", d, n]) => parse_decimal(d).zip(parse_decimal(n)),
        _ => None,
    };
    match ids {
        Some((domid, devid)) => Ok(VifId { domid, devid }),
        None => bail!("invalid XENBUS_PATH {path:?}: expected backend/vif/<domid>/<devid>"),
    }
}

#[cfg(test)]
mod tests;
