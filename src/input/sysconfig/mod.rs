//! SUSE `/etc/sysconfig/network/` files (CONTRACT 5): `ifcfg-<if>`, `routes`,
//! `ifroute-<if>`, `ifndp-proxy` and `ifndp-proxy-<if>`.
//!
//! The parsers are pure and name `<path>:<line>` in every error. Only [`load`]
//! touches the file system.

use std::fmt::Display;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, Error, Result, anyhow};

use crate::types::names::IfName;

pub mod ifcfg;
pub mod ndp_proxy;
mod route_destination;
mod route_kinds;
mod route_line;
mod route_options;
mod route_select;
pub mod routes;

pub use crate::types::prefix::Family;
pub use ifcfg::{Ifcfg, IfcfgAddress, StartMode, parse_ifcfg};
pub use ndp_proxy::{ProxyLine, parse_ndp_proxy};
pub use routes::{
    Destination, NexthopLine, RouteKind, RouteLine, RouteMetric, RouteMetricKind, RoutesFile,
    parse_routes, routes_for_device,
};

pub const DEFAULT_DIR: &str = "/etc/sysconfig/network";

/// Backup and package-manager leftovers that sysconfig and wicked never read.
const IGNORED_SUFFIXES: [&str; 8] = [
    "~",
    ".old",
    ".bak",
    ".orig",
    ".scpmbackup",
    ".rpmnew",
    ".rpmsave",
    ".rpmorig",
];

/// What vif-route-ifup needs from the directory for one device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sysconfig {
    pub ifcfg: Option<Ifcfg>,
    /// Already selected for the device with [`routes_for_device`].
    pub routes: Vec<RouteLine>,
    /// `ifndp-proxy` first, then every `ifndp-proxy-<if>` in byte order of the file name.
    pub proxies: Vec<ProxyLine>,
    /// The other devices the route lines name that no `ifcfg-<device>` describes.
    pub unconfigured: Vec<NamedDevice>,
}

/// A device a `routes` or `ifroute-<if>` line names besides the vif, when the directory has
/// no `ifcfg-<device>` for it: nothing here brings such a device up, so when it does not
/// exist either (a typo such as `xen1.O`), the line's route is never added. The planner
/// looks for it in the kernel and warns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedDevice {
    pub path: PathBuf,
    pub line: usize,
    pub device: IfName,
    pub destination: Destination,
}

impl NamedDevice {
    /// The warning for a device that does not exist.
    pub fn missing(&self) -> String {
        format!(
            "{}:{}: route to {} names {}, which does not exist and has no ifcfg-{}: no interface gets this route",
            self.path.display(),
            self.line,
            self.destination,
            self.device,
            self.device
        )
    }
}

/// `VIFKIT_SYSCONFIG_DIR` when set and not empty, else [`DEFAULT_DIR`].
pub fn dir_from_env() -> PathBuf {
    match std::env::var_os("VIFKIT_SYSCONFIG_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(DEFAULT_DIR),
    }
}

/// Reads the files that concern `dev`. A missing file (or directory) is simply absent.
pub fn load(dir: &Path, dev: &IfName) -> Result<Sysconfig> {
    let ifcfg_path = dir.join(format!("ifcfg-{dev}"));
    let ifcfg = read_optional(&ifcfg_path)?
        .map(|text| parse_ifcfg(&ifcfg_path, &text))
        .transpose()?;

    let routes_path = dir.join("routes");
    let routes = match read_optional(&routes_path)? {
        Some(text) => parse_routes(&routes_path, &text, RoutesFile::Global)?,
        None => vec![],
    };
    let ifroute_path = dir.join(format!("ifroute-{dev}"));
    let ifroute = match read_optional(&ifroute_path)? {
        Some(text) => parse_routes(&ifroute_path, &text, RoutesFile::Interface(dev.clone()))?,
        None => vec![],
    };
    let files = [(&routes_path, &routes), (&ifroute_path, &ifroute)];
    let unconfigured = named_devices(dev, &files)
        .into_iter()
        .filter(|named| !dir.join(format!("ifcfg-{}", named.device)).exists())
        .collect();
    let routes = routes_for_device(dev, ifcfg.as_ref(), &routes, &ifroute);

    let mut proxies = Vec::new();
    let global_path = dir.join("ifndp-proxy");
    if let Some(text) = read_optional(&global_path)? {
        proxies.extend(parse_ndp_proxy(&global_path, &text, None)?);
    }
    for (path, iface) in per_interface_proxy_files(dir)? {
        if let Some(text) = read_optional(&path)? {
            proxies.extend(parse_ndp_proxy(&path, &text, Some(&iface))?);
        }
    }

    Ok(Sysconfig {
        ifcfg,
        routes,
        proxies,
        unconfigured,
    })
}

/// The devices other than `dev` that the lines name, as their interface or a nexthop's.
fn named_devices(dev: &IfName, files: &[(&PathBuf, &Vec<RouteLine>)]) -> Vec<NamedDevice> {
    let mut named: Vec<NamedDevice> = Vec::new();
    for (path, lines) in files {
        for line in lines.iter() {
            let hops = line.nexthops.iter().filter_map(|hop| hop.dev.as_ref());
            for device in line.interface.iter().chain(hops) {
                let seen = named
                    .iter()
                    .any(|n| &n.device == device && n.line == line.line && &n.path == *path);
                if device != dev && !seen {
                    named.push(NamedDevice {
                        path: path.to_path_buf(),
                        line: line.line,
                        device: device.clone(),
                        destination: line.destination,
                    });
                }
            }
        }
    }
    named
}

/// `<path>:<line>: <msg>`, the one shape of every parse error here.
pub(crate) fn at(path: &Path, line: usize, msg: impl Display) -> Error {
    anyhow!("{}:{line}: {msg}", path.display())
}

fn is_ignored_name(name: &str) -> bool {
    IGNORED_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
}

/// The text of `path`, or `None` when it does not exist or carries a backup suffix.
/// Invalid UTF-8 (a Latin-1 `NAME=` comment, say) is replaced, not fatal.
fn read_optional(path: &Path) -> Result<Option<String>> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    if is_ignored_name(&name) {
        return Ok(None);
    }
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("read {}", path.display())),
    }
}

fn per_interface_proxy_files(dir: &Path) -> Result<Vec<(PathBuf, IfName)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(vec![]),
        Err(err) => return Err(err).with_context(|| format!("read {}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("read {}", dir.display()))?;
        let name = entry.file_name();
        let Some(iface) = name.to_str().and_then(|n| n.strip_prefix("ifndp-proxy-")) else {
            continue;
        };
        if is_ignored_name(iface) {
            continue;
        }
        // A stray file must not break every vif: it is reported and left out.
        match IfName::new(iface) {
            Ok(iface) => files.push((entry.path(), iface)),
            Err(err) => log::warn!("{}: ignored: {err}", entry.path().display()),
        }
    }
    files.sort_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
    Ok(files)
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
