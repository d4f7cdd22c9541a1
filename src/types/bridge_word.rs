//! The bridge word of Xen's vif scripts and of qemu-ifup: `bridge[.TAG][:TRUNK...]`, as in
//! `xenbr0`, `br0.10`, `br0:20:30` or `ovsbr0.10:20:30`. Parsed once wherever it is read
//! (`B/bridge` and the `bridge=` word, qemu-ifup's argument, `VIFKIT_BRIDGE`, `bridge =` in
//! a `[port]` section), so they cannot disagree.
//!
//! A word without trunks may also be a link's own name: a Linux bridge may be called
//! `br0.10`. Which reading holds is for the kernel snapshot to say, so the word keeps both.

use std::fmt;
use std::path::PathBuf;

use crate::types::names::IfName;
use crate::types::vlan::{Vid, Vlans, parse_vids};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeWord {
    text: String,
    /// The whole word as one link name; None for a word with trunks.
    name: Option<IfName>,
    /// The word as a bridge with VLANs; a plain name is a bridge without any.
    tagged: Result<Tagged, BadWord>,
}

/// A bridge and the VLANs the word gives its port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tagged {
    pub bridge: IfName,
    pub vlans: Vlans,
}

/// Why a word is no bridge word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadWord {
    word: String,
    /// Why it is no `bridge[.tag][:trunk...]`.
    why: String,
    /// For a word without trunks, the error that says why it is no link name either.
    not_a_name: Option<String>,
}

impl BridgeWord {
    /// Refuses a word only when neither reading holds.
    pub fn parse(text: &str) -> Result<BridgeWord, BadWord> {
        let tagged = read_tagged(text).map_err(|why| BadWord {
            word: text.to_owned(),
            why,
            not_a_name: None,
        });
        let name = match text.contains(':') {
            true => Ok(None),
            false => IfName::new(text).map(Some),
        };
        match (name, tagged) {
            (Ok(None), Err(bad)) => Err(bad),
            (Err(not_a_name), Err(bad)) => Err(BadWord {
                not_a_name: Some(not_a_name.to_string()),
                ..bad
            }),
            (name, tagged) => Ok(BridgeWord {
                text: text.to_owned(),
                name: name.ok().flatten(),
                tagged,
            }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The whole word as a link name (`br0`, `br0.10`); None when it has trunks.
    pub fn name(&self) -> Option<&IfName> {
        self.name.as_ref()
    }

    /// The word as `bridge[.tag][:trunk...]`: `br0.5000` is a fine link name but no such.
    pub fn tagged(&self) -> Result<&Tagged, &BadWord> {
        self.tagged.as_ref()
    }

    /// The word as a bridge with at least one VLAN (`br0.10`, `br0:20`), when it reads so.
    pub fn with_vlans(&self) -> Option<&Tagged> {
        self.tagged.as_ref().ok().filter(|t| !t.vlans.is_empty())
    }

    /// The link to look for first: the whole word, else the bridge before its VLANs.
    pub fn link_name(&self) -> &IfName {
        match (&self.name, &self.tagged) {
            (Some(name), _) | (None, Ok(Tagged { bridge: name, .. })) => name,
            (None, Err(_)) => unreachable!("parse keeps only words with a reading"),
        }
    }
}

impl fmt::Display for BridgeWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl BadWord {
    pub fn word(&self) -> &str {
        &self.word
    }

    /// Why the word is no `bridge[.tag][:trunk...]`.
    pub fn why(&self) -> &str {
        &self.why
    }
}

impl fmt::Display for BadWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.not_a_name {
            Some(message) => f.write_str(message),
            None => write!(f, "invalid bridge {:?}: {}", self.word, self.why),
        }
    }
}

impl std::error::Error for BadWord {}

/// Where a bridge word was given, so that a message about the bridge can send the admin to
/// the place that named it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BridgeOrigin {
    /// A backend key, `B/bridge`: libxl writes the vif configuration's `bridge=` there.
    Xenstore(String),
    /// A `bridge=` word on a vif script's command line (the legacy udev rules, a hand run).
    XenArgument,
    /// A vif script's `bridge` environment variable.
    XenEnvironment,
    /// qemu-ifup's second argument, as Xen's qemu-dm passed it.
    TapArgument,
    /// `VIFKIT_BRIDGE` in qemu's environment.
    TapEnvironment,
    /// `bridge =` in a `[port]` section of vifkit.conf.
    Config { path: PathBuf, line: usize },
    /// qemu-ifup's last resort: the bridge an IPv4 or IPv6 default route goes through.
    DefaultRoute,
}

impl fmt::Display for BridgeOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BridgeOrigin::Xenstore(key) => write!(f, "{key}, the vif configuration's bridge="),
            BridgeOrigin::XenArgument => f.write_str("the script's bridge= argument"),
            BridgeOrigin::XenEnvironment => f.write_str("the bridge environment variable"),
            BridgeOrigin::TapArgument => f.write_str("the bridge argument"),
            BridgeOrigin::TapEnvironment => f.write_str("VIFKIT_BRIDGE"),
            BridgeOrigin::Config { path, line } => write!(f, "{}:{line}", path.display()),
            BridgeOrigin::DefaultRoute => f.write_str("the default route"),
        }
    }
}

/// A bridge word as given (not yet parsed: a bad one fails only the modes that use it),
/// with where it was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GivenBridge {
    pub text: String,
    pub origin: BridgeOrigin,
}

impl GivenBridge {
    pub fn new(text: impl Into<String>, origin: BridgeOrigin) -> GivenBridge {
        GivenBridge {
            text: text.into(),
            origin,
        }
    }

    pub fn word(&self) -> Result<BridgeWord, BadWord> {
        BridgeWord::parse(&self.text)
    }
}

/// Left to right: the bridge, its tag after the last dot, its trunks after colons.
fn read_tagged(text: &str) -> Result<Tagged, String> {
    let mut parts = text.split(':');
    let head = parts.next().unwrap_or_default();
    let (bridge, tag) = match head.rsplit_once('.') {
        Some((bridge, tag)) => (bridge, Some(tag)),
        None => (head, None),
    };
    if let Some(why) = IfName::why_invalid(bridge) {
        return Err(format!("the bridge name {why}"));
    }
    let vid = |text| Vid::parse(text).map_err(|err| err.to_string());
    let vlans = Vlans {
        access: tag.map(vid).transpose()?,
        trunks: parse_vids(parts).map_err(|err| err.to_string())?,
        untagged: vec![],
    };
    let bridge = IfName::new(bridge).map_err(|err| err.to_string())?;
    Ok(Tagged { bridge, vlans })
}

#[cfg(test)]
#[path = "bridge_word_tests.rs"]
mod tests;
