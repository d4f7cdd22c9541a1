//! Interface names and Xen vif identities, validated once at the boundary.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};

/// The kernel's IFNAMSIZ less the terminating NUL.
pub const IFNAME_MAX: usize = 15;

/// A Linux network interface name the kernel will accept.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfName(String);

impl IfName {
    pub fn new(name: &str) -> Result<Self> {
        match IfName::why_invalid(name) {
            Some(why) => bail!("invalid interface name {name:?}: it {why}"),
            None => Ok(IfName(name.to_owned())),
        }
    }

    /// Why the kernel would refuse `name` ("is empty", "contains '/'"), or None.
    pub fn why_invalid(name: &str) -> Option<&'static str> {
        if name.is_empty() {
            Some("is empty")
        } else if name.len() > IFNAME_MAX {
            Some("is longer than 15 bytes")
        } else if name == "." || name == ".." {
            Some("is a path component")
        } else if name.contains('/') {
            Some("contains '/'")
        } else if name.contains(':') {
            Some("contains ':'")
        } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("contains whitespace or a control character")
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the emulated (tap) twin libxl gives an HVM NIC.
    pub fn emu(&self) -> Result<IfName> {
        IfName::new(&format!("{}-emu", self.0))
    }
}

impl PartialEq<str> for IfName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for IfName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for IfName {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        IfName::new(s)
    }
}

/// A Xen network device: guest (frontend) domid and device id (`handle`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VifId {
    pub domid: u32,
    pub devid: u32,
}

impl VifId {
    /// The name netback gives the device: `vif<d>.<n>`.
    pub fn kernel_name(&self) -> IfName {
        IfName(format!("vif{}.{}", self.domid, self.devid))
    }

    /// The vif a netback (`vif<d>.<n>`) or libxl tap (`vif<d>.<n>-emu`) name belongs to.
    pub fn from_kernel_name(name: &IfName) -> Option<VifId> {
        let rest = name.as_str().strip_prefix("vif")?;
        let ids = rest.strip_suffix("-emu").unwrap_or(rest);
        let (d, n) = ids.split_once('.')?;
        Some(VifId {
            domid: parse_decimal(d)?,
            devid: parse_decimal(n)?,
        })
    }

    /// Parses libxl's default tap name `vif<d>.<n>-emu` (the udev tap path has no XENBUS_PATH).
    pub fn from_tap_name(name: &IfName) -> Result<VifId> {
        let parsed = name
            .as_str()
            .strip_prefix("vif")
            .and_then(|rest| rest.strip_suffix("-emu"))
            .and_then(|ids| ids.split_once('.'))
            .and_then(|(d, n)| Some((parse_decimal(d)?, parse_decimal(n)?)));
        match parsed {
            Some((domid, devid)) => Ok(VifId { domid, devid }),
            None => bail!(
                "cannot derive the Xen device from tap name {name}: expected vif<domid>.<devid>-emu"
            ),
        }
    }

    /// The backend directory under the backend domain's home, as libxl passes it.
    pub fn relative_backend_path(&self) -> String {
        format!("backend/vif/{}/{}", self.domid, self.devid)
    }
}

impl fmt::Display for VifId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vif{}.{}", self.domid, self.devid)
    }
}

/// Plain decimal without sign, leading `+` or surrounding blanks: xenstore ids are written that way.
pub fn parse_decimal(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(name: &str) -> String {
        IfName::new(name).unwrap_err().to_string()
    }

    #[test]
    fn fifteen_bytes_accepted_sixteen_rejected() {
        assert!(IfName::new("a23456789012345").is_ok());
        assert_eq!(
            err("a234567890123456"),
            "invalid interface name \"a234567890123456\": it is longer than 15 bytes"
        );
    }

    #[test]
    fn rejects_what_the_kernel_rejects() {
        assert_eq!(err(""), "invalid interface name \"\": it is empty");
        assert_eq!(
            err("."),
            "invalid interface name \".\": it is a path component"
        );
        assert_eq!(
            err(".."),
            "invalid interface name \"..\": it is a path component"
        );
        assert_eq!(
            err("a/b"),
            "invalid interface name \"a/b\": it contains '/'"
        );
        assert_eq!(
            err("eth0:1"),
            "invalid interface name \"eth0:1\": it contains ':'"
        );
        assert_eq!(
            err("a b"),
            "invalid interface name \"a b\": it contains whitespace or a control character"
        );
        assert_eq!(
            err("a\tb"),
            "invalid interface name \"a\\tb\": it contains whitespace or a control character"
        );
        assert!(IfName::new("...").is_ok());
        assert!(IfName::new("vif3.0").is_ok());
        assert!(IfName::new("xen1.0-emu").is_ok());
    }

    #[test]
    fn utf8_length_counts_bytes() {
        // 8 two-byte characters = 16 bytes.
        assert!(IfName::new("éééééééé").is_err());
        assert!(IfName::new("ééééééé").is_ok());
    }

    #[test]
    fn emu_name_respects_the_limit() {
        assert_eq!(
            IfName::new("xen1.0").unwrap().emu().unwrap().as_str(),
            "xen1.0-emu"
        );
        assert!(IfName::new("a2345678901").unwrap().emu().is_ok());
        assert!(IfName::new("a23456789012").unwrap().emu().is_err());
    }

    #[test]
    fn vif_id_from_kernel_names_of_vifs_and_taps_only() {
        let id = |n: &str| VifId::from_kernel_name(&IfName::new(n).unwrap());
        assert_eq!(id("vif3.0"), Some(VifId { domid: 3, devid: 0 }));
        assert_eq!(
            id("vif12.1-emu"),
            Some(VifId {
                domid: 12,
                devid: 1
            })
        );
        assert_eq!(id("vif3"), None);
        assert_eq!(id("vif3.x"), None);
        assert_eq!(id("tap0"), None);
        assert_eq!(id("web"), None);
    }

    #[test]
    fn vif_id_from_tap_name() {
        let tap = IfName::new("vif12.3-emu").unwrap();
        assert_eq!(
            VifId::from_tap_name(&tap).unwrap(),
            VifId {
                domid: 12,
                devid: 3
            }
        );
        for bad in [
            "vif12.3",
            "tap0",
            "vif.3-emu",
            "vif1.-emu",
            "vif-1.0-emu",
            "vif01.0-emu",
        ] {
            let tap = IfName::new(bad).unwrap();
            assert_eq!(
                VifId::from_tap_name(&tap).unwrap_err().to_string(),
                format!(
                    "cannot derive the Xen device from tap name {bad}: expected vif<domid>.<devid>-emu"
                )
            );
        }
    }

    #[test]
    fn decimal_is_strict() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("4294967295"), Some(u32::MAX));
        assert_eq!(parse_decimal("4294967296"), None);
        for bad in ["", "+1", "-1", " 1", "07", "1a"] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }
}
