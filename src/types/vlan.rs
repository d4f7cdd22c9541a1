//! 802.1Q VLANs as a port carries them: a VLAN id, and a port's access VLAN with its
//! trunks. Written in the config (`vlan = 10`, `trunks = 20,30`), in the bridge word
//! (`br0.10:20:30`) and in Xen's `vlan=` (`10p/20/30u`, see `xen_vlan`).

use std::fmt;

use anyhow::{Result, bail};

/// An 802.1Q VLAN id, 1 to 4094.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vid(u16);

impl Vid {
    pub fn parse(text: &str) -> Result<Vid> {
        match crate::types::names::parse_decimal(text) {
            Some(vid @ 1..=4094) => Ok(Vid(vid as u16)),
            _ => bail!("VLAN {text:?} is not a number from 1 to 4094"),
        }
    }

    /// The id `vid`, when it is one (1 to 4094).
    pub fn new(vid: u16) -> Option<Vid> {
        (1..=4094).contains(&vid).then_some(Vid(vid))
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Vid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// VLAN ids (the config's `trunks = a,b,c`, the bridge word's `:a:b`), sorted, without
/// repeats.
pub fn parse_vids<'a>(pieces: impl IntoIterator<Item = &'a str>) -> Result<Vec<Vid>> {
    let mut vids = pieces
        .into_iter()
        .map(Vid::parse)
        .collect::<Result<Vec<_>>>()?;
    vids.sort();
    vids.dedup();
    Ok(vids)
}

/// A port's VLANs: the one its untagged frames belong to, those it carries tagged, and
/// (Xen's `vlan=` only: `20u`) others it sends untagged too.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vlans {
    pub access: Option<Vid>,
    pub trunks: Vec<Vid>,
    /// Members besides `access` whose frames leave the port untagged; a Linux bridge can
    /// do that, an Open vSwitch access or trunk port cannot.
    pub untagged: Vec<Vid>,
}

impl Vlans {
    pub fn is_empty(&self) -> bool {
        self.access.is_none() && self.trunks.is_empty() && self.untagged.is_empty()
    }
}

impl fmt::Display for Vlans {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = vec![];
        if let Some(vid) = self.access {
            parts.push(format!("vlan {vid} untagged"));
        }
        if !self.trunks.is_empty() {
            let list: Vec<String> = self.trunks.iter().map(Vid::to_string).collect();
            parts.push(format!("trunks {}", list.join(",")));
        }
        if !self.untagged.is_empty() {
            let list: Vec<String> = self.untagged.iter().map(Vid::to_string).collect();
            parts.push(format!("untagged {}", list.join(",")));
        }
        write!(f, "{}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vids_are_1_to_4094_and_lists_are_sorted_without_repeats() {
        assert_eq!(Vid::parse("4094").unwrap().get(), 4094);
        for bad in ["0", "4095", "010", "", "ten", "-1"] {
            assert_eq!(
                Vid::parse(bad).unwrap_err().to_string(),
                format!("VLAN {bad:?} is not a number from 1 to 4094")
            );
        }
        let vids: Vec<u16> = parse_vids("30, 10,30".split(',').map(str::trim))
            .unwrap()
            .into_iter()
            .map(Vid::get)
            .collect();
        assert_eq!(vids, [10, 30]);
    }
}
