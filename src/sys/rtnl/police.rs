//! A qemu tap's rate limit on what its guest sends: an `ingress` qdisc on the tap and, at
//! pref 1, a `matchall` filter whose `police` action drops what exceeds the rate. The
//! messages are those of `tc qdisc add dev TAP ingress` and `tc filter add dev TAP ingress
//! pref 1 handle 1 protocol all matchall action police rate R burst B mtu 64k conform-exceed
//! drop`. netlink-packet-route has matchall and actions but no police, so `struct tc_police`
//! and its rate table are written here with tc's own arithmetic; the unit tests compare
//! whole messages with what tc 6.1 sent. A kernel without `cls_matchall` or `act_police`
//! answers ENOENT (EOPNOTSUPP for an unsupported combination): that is
//! `IngressLimit::Unsupported`, and the tap is left as it was found.

use std::io;

use anyhow::{Context, Result};
use rtnetlink::packet_core::{DefaultNla, NLM_F_CREATE, NLM_F_EXCL, Nla};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::tc::{
    TcAction, TcActionAttribute, TcActionOption, TcAttribute, TcFilterMatchAllOption, TcHandle,
    TcMessage, TcOption,
};

use super::Netlink;
use super::rate::ratespec;

const TCA_POLICE_TBF: u16 = 1;
const TCA_POLICE_RATE: u16 = 2;
const TCA_POLICE_AVRATE: u16 = 4;
const TCA_POLICE_RESULT: u16 = 5;
const TCA_POLICE_RATE64: u16 = 8;
/// `TC_ACT_SHOT`: what exceeds the rate is dropped (`conform-exceed drop`); what conforms
/// passes (no `TCA_POLICE_RESULT`).
const TC_ACT_SHOT: i32 = 2;
const ETH_P_ALL: u16 = 0x0003;
/// The filter's place on the tap's ingress (chain 0).
const PREF: u16 = 1;
const HANDLE: u32 = 1;
/// The longest frame a guest hands the tap, a 64 KiB TSO frame: the policer's mtu, and the
/// least burst, since a frame larger than the bucket could never pass.
const MAX_FRAME: u32 = 64 * 1024;
/// `struct tc_police`: index, action, limit, burst, mtu, two `tc_ratespec`, three counters.
const TC_POLICE_LEN: usize = 56;
/// psched ticks per microsecond: 1000/64, as `/proc/net/psched` tells tc (64 ns ticks).
const TICKS_PER_US: f64 = 1000.0 / 64.0;
/// tc's `ingress` as a filter's parent (`ffff:fff2`); the qdisc itself sits at `ffff:fff1`.
const INGRESS_FILTERS: TcHandle = TcHandle {
    major: 0xffff,
    minor: TcHandle::MIN_INGRESS,
};

/// A token bucket on what the guest sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Policer {
    /// Bytes per second.
    rate: u64,
    /// Bytes the bucket holds: 20 ms of traffic, at least one largest frame.
    burst: u32,
}

impl Policer {
    fn new(bits_per_second: u64) -> Policer {
        let rate = (bits_per_second / 8).max(1);
        let burst = (rate / 50).clamp(u64::from(MAX_FRAME), u64::from(u32::MAX / 2));
        Policer {
            rate,
            burst: burst as u32,
        }
    }

    /// Ticks to send `size` bytes, truncated twice as tc_calc_xmittime does.
    fn ticks(&self, size: u32) -> u32 {
        let us = (1_000_000.0 * (f64::from(size) / self.rate as f64)) as u32;
        (f64::from(us) * TICKS_PER_US) as u32
    }

    /// The rate table's cell size: the smallest that spans the mtu in 256 cells, as tc picks.
    fn cell_log() -> u8 {
        let mut cell_log = 0;
        while (MAX_FRAME >> cell_log) > 255 {
            cell_log += 1;
        }
        cell_log
    }

    /// `struct tc_police`.
    fn parms(&self) -> Vec<u8> {
        let mut parms = Vec::with_capacity(TC_POLICE_LEN);
        parms.extend_from_slice(&0u32.to_ne_bytes()); // index: the kernel picks one
        parms.extend_from_slice(&TC_ACT_SHOT.to_ne_bytes());
        parms.extend_from_slice(&0u32.to_ne_bytes()); // limit (unused by the policer)
        parms.extend_from_slice(&self.ticks(self.burst).to_ne_bytes());
        parms.extend_from_slice(&MAX_FRAME.to_ne_bytes());
        parms.extend(ratespec(Self::cell_log(), self.rate));
        parms.extend([0; 12]); // no peak rate
        parms.extend([0; 12]); // refcnt, bindcnt, capab
        parms
    }

    /// The rate table: the kernel requires one, though it computes the rate itself.
    fn rate_table(&self) -> Vec<u8> {
        (1..=256u32)
            .flat_map(|cell| self.ticks(cell << Self::cell_log()).to_ne_bytes())
            .collect()
    }

    fn action(&self) -> TcAction {
        let mut options = vec![
            TcActionOption::Other(DefaultNla::new(TCA_POLICE_TBF, self.parms())),
            TcActionOption::Other(DefaultNla::new(TCA_POLICE_RATE, self.rate_table())),
        ];
        if self.rate > u64::from(u32::MAX) {
            let rate64 = self.rate.to_ne_bytes().to_vec();
            options.push(TcActionOption::Other(DefaultNla::new(
                TCA_POLICE_RATE64,
                rate64,
            )));
        }
        let mut action = TcAction::default(); // the first action of the filter
        action.attributes = vec![
            TcActionAttribute::Kind("police".into()),
            TcActionAttribute::Options(options),
        ];
        action
    }

    /// Whether a police action's options, as the kernel dumps them, are this policer.
    fn is(&self, options: &[TcActionOption]) -> bool {
        let value = |kind: u16| {
            options.iter().find(|o| o.kind() == kind).map(|o| {
                let mut buf = vec![0; o.value_len()];
                o.emit_value(&mut buf);
                buf
            })
        };
        let Some(parms) = value(TCA_POLICE_TBF).filter(|p| p.len() >= TC_POLICE_LEN) else {
            return false;
        };
        let word = |at: usize| u32::from_ne_bytes(parms[at..at + 4].try_into().unwrap());
        let rate = match value(TCA_POLICE_RATE64) {
            Some(rate64) if rate64.len() == 8 => u64::from_ne_bytes(rate64.try_into().unwrap()),
            _ => u64::from(word(28)),
        };
        let unset = |kind: u16| value(kind).is_none_or(|v| v.iter().all(|b| *b == 0));
        word(4) as i32 == TC_ACT_SHOT
            && word(12) == self.ticks(self.burst)
            && word(16) == MAX_FRAME
            && rate == self.rate
            && word(40) == 0 // peak rate
            && unset(TCA_POLICE_RESULT)
            && unset(TCA_POLICE_AVRATE)
    }
}

/// `tc qdisc add dev TAP ingress`.
fn ingress_qdisc(index: u32) -> TcMessage {
    let mut qdisc = TcMessage::with_index(index as i32);
    qdisc.header.parent = TcHandle::INGRESS;
    qdisc.header.handle = TcHandle {
        major: 0xffff,
        minor: 0,
    };
    qdisc.attributes.push(TcAttribute::Kind("ingress".into()));
    qdisc
}

/// `tc qdisc del dev TAP parent ffff:fff1`: whichever qdisc holds the ingress. With no
/// handle and no kind the kernel answers ENOENT when there is none.
fn ingress_parent(index: u32) -> TcMessage {
    let mut qdisc = TcMessage::with_index(index as i32);
    qdisc.header.parent = TcHandle::INGRESS;
    qdisc
}

/// `tc filter del dev TAP ingress pref 1` (and the dump of that pref), any protocol.
fn filters_at_pref(index: u32) -> TcMessage {
    let mut filter = TcMessage::with_index(index as i32);
    filter.header.parent = INGRESS_FILTERS;
    filter.header.info = u32::from(PREF) << 16;
    filter
}

/// `tc filter add dev TAP ingress pref 1 handle 1 protocol all matchall action police ...`.
fn police_filter(index: u32, policer: &Policer) -> TcMessage {
    let mut filter = filters_at_pref(index);
    filter.header.handle = TcHandle::from(HANDLE);
    filter.header.info |= u32::from(ETH_P_ALL.to_be());
    filter.attributes.push(TcAttribute::Kind("matchall".into()));
    let action = TcFilterMatchAllOption::Action(vec![policer.action()]);
    filter
        .attributes
        .push(TcAttribute::Options(vec![TcOption::MatchAll(action)]));
    filter
}

#[derive(Debug, PartialEq, Eq)]
enum AtPref {
    Nothing,
    /// Exactly the policer wanted.
    This,
    /// Something else: another rate, classifier or action.
    Other,
}

/// What a dump of pref 1 on the tap's ingress holds. The kernel lists a classifier once
/// without options, then each of its filters.
fn at_pref(dump: &[TcMessage], policer: &Policer) -> AtPref {
    let chain = |f: &TcMessage| {
        f.attributes.iter().find_map(|a| match a {
            TcAttribute::Chain(chain) => Some(*chain),
            _ => None,
        })
    };
    let ours: Vec<&TcMessage> = dump
        .iter()
        .filter(|f| f.header.info >> 16 == u32::from(PREF) && chain(f).unwrap_or(0) == 0)
        .collect();
    if ours.is_empty() {
        return AtPref::Nothing;
    }
    let matchall = ours.iter().all(|f| {
        f.header.info & 0xffff == u32::from(ETH_P_ALL.to_be())
            && f.attributes.contains(&TcAttribute::Kind("matchall".into()))
    });
    let filters: Vec<(&TcMessage, &[TcOption])> = ours
        .iter()
        .filter_map(|f| Some((*f, options_of(f)?)))
        .collect();
    let policed = match filters[..] {
        [(filter, options)] => {
            filter.header.handle == TcHandle::from(HANDLE)
                && police_options(options).is_some_and(|o| policer.is(o))
        }
        _ => false,
    };
    if matchall && policed {
        AtPref::This
    } else {
        AtPref::Other
    }
}

fn options_of(filter: &TcMessage) -> Option<&[TcOption]> {
    filter.attributes.iter().find_map(|a| match a {
        TcAttribute::Options(options) => Some(options.as_slice()),
        _ => None,
    })
}

/// The options of the one action of a matchall filter, if it is a police action.
fn police_options(options: &[TcOption]) -> Option<&[TcActionOption]> {
    let mut actions = options.iter().filter_map(|o| match o {
        TcOption::MatchAll(TcFilterMatchAllOption::Action(actions)) => Some(actions),
        _ => None,
    });
    let ([action], None) = (actions.next()?.as_slice(), actions.next()) else {
        return None;
    };
    let police = TcActionAttribute::Kind("police".into());
    if !action.attributes.contains(&police) {
        return None;
    }
    action.attributes.iter().find_map(|a| match a {
        TcActionAttribute::Options(options) => Some(options.as_slice()),
        _ => None,
    })
}

fn errno(err: &anyhow::Error) -> Option<i32> {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<io::Error>())
        .and_then(io::Error::raw_os_error)
}

/// What `set_ingress_limit` found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngressLimit {
    /// The policer was added, or replaced another filter at its place.
    Set,
    /// The same policer was in place.
    Unchanged,
    /// The kernel has no `cls_matchall` or no `act_police`; the tap is as it was found.
    Unsupported,
}

impl Netlink {
    /// Holds what the guest sends the tap (the tap's ingress) to `bits_per_second`. An
    /// ensure: the same policer in place is left alone, anything else at pref 1 replaced.
    pub async fn set_ingress_limit(
        &self,
        index: u32,
        bits_per_second: u64,
    ) -> Result<IngressLimit> {
        let policer = Policer::new(bits_per_second);
        let qdisc = RouteNetlinkMessage::NewQueueDiscipline(ingress_qdisc(index));
        // An ingress (or clsact) qdisc already there takes the filter just as well.
        let created = match self.tc(qdisc, NLM_F_CREATE | NLM_F_EXCL).await {
            Ok(()) => true,
            Err(err) if errno(&err) == Some(nix::libc::EEXIST) => false,
            Err(err) => return Err(err.context("add an ingress qdisc")),
        };
        let outcome = self.ensure_policer(index, &policer).await;
        if created && !matches!(outcome, Ok(IngressLimit::Set | IngressLimit::Unchanged)) {
            // Nothing half-done stays on the tap.
            if let Err(err) = self.remove_ingress_limit(index).await {
                log::warn!("delete the ingress qdisc just added: {err:#}");
            }
        }
        outcome
    }

    async fn ensure_policer(&self, index: u32, policer: &Policer) -> Result<IngressLimit> {
        let dump = self
            .dump_filters(index)
            .await
            .context("list ingress filters")?;
        match at_pref(&dump, policer) {
            AtPref::This => return Ok(IngressLimit::Unchanged),
            AtPref::Other => self.delete_pref(index).await?,
            AtPref::Nothing => {}
        }
        let add = || {
            let filter = police_filter(index, policer);
            let message = RouteNetlinkMessage::NewTrafficFilter(filter);
            self.tc(message, NLM_F_CREATE | NLM_F_EXCL)
        };
        let added = match add().await {
            // A filter the dump did not show (one that did not decode) is replaced too.
            Err(err) if errno(&err) == Some(nix::libc::EEXIST) => {
                self.delete_pref(index).await?;
                add().await
            }
            other => other,
        };
        match added {
            Ok(()) => Ok(IngressLimit::Set),
            Err(err) if matches!(errno(&err), Some(nix::libc::ENOENT | nix::libc::EOPNOTSUPP)) => {
                log::debug!("add a matchall filter with a police action: {err:#}");
                Ok(IngressLimit::Unsupported)
            }
            Err(err) => Err(err.context("add a matchall filter with a police action")),
        }
    }

    /// Deletes the tap's ingress qdisc, the policer with it; ENOENT when there is none.
    pub async fn remove_ingress_limit(&self, index: u32) -> Result<()> {
        let qdisc = RouteNetlinkMessage::DelQueueDiscipline(ingress_parent(index));
        self.tc(qdisc, 0).await
    }

    async fn delete_pref(&self, index: u32) -> Result<()> {
        let filter = RouteNetlinkMessage::DelTrafficFilter(filters_at_pref(index));
        self.tc(filter, 0)
            .await
            .with_context(|| format!("delete ingress filter pref {PREF}"))
    }

    async fn dump_filters(&self, index: u32) -> Result<Vec<TcMessage>> {
        let filter = RouteNetlinkMessage::GetTrafficFilter(filters_at_pref(index));
        let messages = self.dump(filter).await?;
        Ok(messages
            .into_iter()
            .filter_map(|message| match message {
                RouteNetlinkMessage::NewTrafficFilter(f) => Some(f),
                _ => None,
            })
            .collect())
    }
}

#[cfg(test)]
#[path = "police_tests.rs"]
mod tests;
