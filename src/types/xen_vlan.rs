//! Xen's `vlan=` (xl-network-configuration(5), Xen 4.19 and later), which libxl writes to
//! `B/vlan`: terms separated by `/`, each one of
//!
//! - `VID`, `VIDp` (the PVID: untagged frames belong to it, and it leaves untagged) or
//!   `VIDu` (untagged on the way out);
//! - `FIRST-LAST` or `FIRST-LASTu`, a range;
//! - `START+STEPxCOUNT` or `…u`, COUNT VLANs from START, STEP apart (`100+10x4` is 100, 110,
//!   120 and 130).
//!
//! Exactly one VLAN is the PVID; a spec of a single VLAN (`vlan=10`) needs no `p`. This
//! follows the reading in Xen's proposed `xen-network-common.sh` patches (whether they were
//! merged is unconfirmed), and also refuses what that one lets through (step 0, a range
//! given a `p`).

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Result, bail};

use crate::types::names::parse_decimal;
use crate::types::vlan::{Vid, Vlans};

/// A port's VLANs as `vlan=` gives them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XenVlan {
    text: String,
    /// Untagged frames from the guest belong to it; it leaves the port untagged.
    pub pvid: Vid,
    /// Members whose frames leave tagged, sorted.
    pub tagged: Vec<Vid>,
    /// Members besides the PVID whose frames leave untagged (`20u`), sorted.
    pub untagged: Vec<Vid>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    Tagged,
    Untagged,
    Pvid,
}

const GRAMMAR: &str = "expected VID, VIDp, VIDu, FIRST-LAST[u] or START+STEPxCOUNT[u]";

impl XenVlan {
    pub fn parse(text: &str) -> Result<XenVlan> {
        let mut members = BTreeMap::new();
        let mut pvid = None;
        for term in text.split('/') {
            if term.is_empty() {
                bail!("empty term in {text:?}: terms are separated by single slashes");
            }
            let (vids, mark) = read_term(term)?;
            for vid in vids {
                if members.insert(vid, mark).is_some() {
                    bail!("VLAN {vid} appears twice in {text:?}");
                }
                if mark == Mark::Pvid
                    && let Some(first) = pvid.replace(vid)
                {
                    bail!("two PVIDs in {text:?} ({first} and {vid}): mark only one VLAN with p");
                }
            }
        }
        let pvid = match (pvid, members.len()) {
            (Some(pvid), _) => pvid,
            // One VLAN alone is the PVID whatever its mark, as in Xen's script.
            (None, 1) => *members.keys().next().expect("one member"),
            (None, _) => bail!("no PVID in {text:?}: mark one VLAN with p, as in 10p/20"),
        };
        let with = |wanted| {
            members
                .iter()
                .filter(|&(&vid, &mark)| mark == wanted && vid != pvid)
                .map(|(&vid, _)| vid)
                .collect()
        };
        Ok(XenVlan {
            text: text.to_owned(),
            pvid,
            tagged: with(Mark::Tagged),
            untagged: with(Mark::Untagged),
        })
    }

    /// The spec as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The VLANs a bridge port gets: the PVID as its access VLAN.
    pub fn vlans(&self) -> Vlans {
        Vlans {
            access: Some(self.pvid),
            trunks: self.tagged.clone(),
            untagged: self.untagged.clone(),
        }
    }
}

impl fmt::Display for XenVlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One term: its VLANs, in order, and how they leave the port.
fn read_term(term: &str) -> Result<(Vec<Vid>, Mark)> {
    let (body, mark) = match term.as_bytes().last() {
        Some(b'p') => (&term[..term.len() - 1], Mark::Pvid),
        Some(b'u') => (&term[..term.len() - 1], Mark::Untagged),
        _ => (term, Mark::Tagged),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let vid = Vid::parse;
    if digits(body) {
        return Ok((vec![vid(body)?], mark));
    }
    let range = body.split_once('-').filter(|(a, b)| digits(a) && digits(b));
    let steps = body
        .split_once('+')
        .and_then(|(start, rest)| Some((start, rest.split_once('x')?)))
        .filter(|(start, (step, count))| digits(start) && digits(step) && digits(count));
    if (range.is_some() || steps.is_some()) && mark == Mark::Pvid {
        bail!("{term:?} is a series of VLANs: only a single VLAN can be the PVID");
    }
    if let Some((first, last)) = range {
        let (first, last) = (vid(first)?, vid(last)?);
        if first > last {
            bail!("range {term:?} runs backwards: {first} is above {last}");
        }
        let vids = (first.get()..=last.get()).filter_map(Vid::new);
        return Ok((vids.collect(), mark));
    }
    let Some((start, (step, count))) = steps else {
        bail!("{term:?} is no VLAN term: {GRAMMAR}");
    };
    let start = vid(start)?;
    let number = |s: &str| match parse_decimal(s) {
        Some(n) => Ok(u64::from(n)),
        None => bail!("{term:?} is no VLAN term: {GRAMMAR}"),
    };
    let (step, count) = (number(step)?, number(count)?);
    if step == 0 {
        bail!("{term:?} has step 0: the step must be at least 1");
    }
    if count == 0 {
        bail!("{term:?} has count 0: the count must be at least 1");
    }
    let last = u64::from(start.get()) + step * (count - 1);
    if last > 4094 {
        bail!("{term:?} goes past VLAN 4094 (its last would be {last})");
    }
    let vids = (0..count).map(|i| u64::from(start.get()) + step * i);
    let vids = vids.filter_map(|n| Vid::new(u16::try_from(n).ok()?));
    Ok((vids.collect(), mark))
}

#[cfg(test)]
#[path = "xen_vlan_tests.rs"]
mod tests;
