//! What `vifkit watch` makes of the kernel's notifications: which ports may need a repair,
//! and why. Pure: the watcher feeds it events and asks it when to repair.
//!
//! Only what the link notifications alone cannot say is remembered (which links are
//! bridges, which are up), so that "a bridge appeared" and "a link came up" are told from
//! the many notifications that only restate a link's state.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::sys::events::Event;
use crate::sys::rtnl::Link;

/// A burst of notifications is answered once it has been quiet this long...
pub const QUIET: Duration = Duration::from_millis(50);
/// ...or this long after its first notification, whichever comes first.
pub const AT_MOST: Duration = Duration::from_millis(250);

/// The prefix of every nf_tables table vifkit owns.
const TABLE_PREFIX: &str = "vifkit-";

/// The ports a change may have broken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Every port vifkit plugged: its nft tables went, or notifications were lost.
    All(String),
    /// The routed and NAT ports: an uplink came up, a default route or a proxy entry changed.
    Routed(String),
    /// The ports of a bridge that appeared.
    Bridge(String),
    /// One port (its antispoofing chain or one of its rules was deleted).
    Port(String, String),
}

/// The links the watcher has seen, by index.
#[derive(Default)]
pub struct Links {
    bridges: HashMap<u32, String>,
    up: HashMap<u32, bool>,
}

impl Links {
    /// Starts over from a dump of every link (at start, and after an overflow).
    pub fn reset(&mut self, links: &[Link]) {
        self.bridges = links
            .iter()
            .filter(|l| l.is_bridge())
            .map(|l| (l.index, l.name.to_string()))
            .collect();
        self.up = links.iter().map(|l| (l.index, l.up)).collect();
    }

    /// The trigger an event is, if any.
    pub fn classify(&mut self, event: Event) -> Option<Trigger> {
        match event {
            Event::Link { index, gone, .. } if gone => {
                self.bridges.remove(&index);
                self.up.remove(&index);
                None
            }
            Event::Link {
                index,
                name,
                bridge,
                up,
                master,
                ..
            } => {
                let was_up = self.up.insert(index, up).unwrap_or(false);
                if bridge {
                    let known = self.bridges.insert(index, name.clone()).is_some();
                    return (!known).then_some(Trigger::Bridge(name));
                }
                // A port's own state is its plug's business; an uplink coming up is not.
                (up && !was_up && master.is_none())
                    .then(|| Trigger::Routed(format!("{name} came up")))
            }
            Event::DefaultRoute => Some(Trigger::Routed("a default route changed".into())),
            Event::ProxyNeighbourGone => Some(Trigger::Routed(
                "a proxy neighbour entry was deleted".into(),
            )),
            Event::NftDeleted {
                table,
                chain,
                whole_table,
            } => {
                if !table.starts_with(TABLE_PREFIX) {
                    return None;
                }
                match (whole_table, chain) {
                    (false, Some(chain)) => Some(Trigger::Port(
                        chain.clone(),
                        format!("nft chain {chain} of table {table} changed"),
                    )),
                    _ => Some(Trigger::All(format!("nft table {table} was deleted"))),
                }
            }
        }
    }
}

/// The repairs due, gathered over a burst.
#[derive(Default, Debug)]
pub struct Pending {
    pub all: bool,
    pub routed: bool,
    pub bridges: BTreeSet<String>,
    pub ports: BTreeSet<String>,
    /// Why, each reason once, in the order they came.
    pub reasons: Vec<String>,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Pending {
    pub fn add(&mut self, trigger: Trigger, now: Instant) {
        let reason = match trigger {
            Trigger::All(why) => {
                self.all = true;
                why
            }
            Trigger::Routed(why) => {
                self.routed = true;
                why
            }
            Trigger::Bridge(name) => {
                let why = format!("bridge {name} appeared");
                self.bridges.insert(name);
                why
            }
            Trigger::Port(name, why) => {
                self.ports.insert(name);
                why
            }
        };
        if !self.reasons.contains(&reason) {
            self.reasons.push(reason);
        }
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// When the burst is to be answered; None when nothing is pending.
    pub fn due(&self) -> Option<Instant> {
        Some((self.last? + QUIET).min(self.first? + AT_MOST))
    }

    /// Why, in one phrase.
    pub fn why(&self) -> String {
        self.reasons.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::names::IfName;

    fn link(index: u32, name: &str, bridge: bool, up: bool) -> Event {
        Event::Link {
            index,
            name: name.into(),
            bridge,
            up,
            master: None,
            gone: false,
        }
    }

    fn seeded() -> Links {
        let mut links = Links::default();
        let uplink = Link {
            up: true,
            ..Link::veth(2, "eth0")
        };
        links.reset(&[uplink, Link::bridge(3, "xenbr0")]);
        links
    }

    #[test]
    fn a_bridge_triggers_once_when_it_appears_not_when_it_changes() {
        let mut links = seeded();
        assert_eq!(links.classify(link(3, "xenbr0", true, true)), None);
        let gone = Event::Link {
            index: 3,
            name: "xenbr0".into(),
            bridge: true,
            up: false,
            master: None,
            gone: true,
        };
        assert_eq!(links.classify(gone), None);
        assert_eq!(
            links.classify(link(7, "xenbr0", true, false)),
            Some(Trigger::Bridge("xenbr0".into()))
        );
        assert_eq!(links.classify(link(7, "xenbr0", true, true)), None);
    }

    #[test]
    fn an_uplink_triggers_when_it_comes_up_and_a_port_never() {
        let mut links = seeded();
        assert_eq!(links.classify(link(2, "eth0", false, true)), None);
        assert_eq!(links.classify(link(2, "eth0", false, false)), None);
        assert_eq!(
            links.classify(link(2, "eth0", false, true)),
            Some(Trigger::Routed("eth0 came up".into()))
        );
        let port = Event::Link {
            index: 9,
            name: "vif3.0".into(),
            bridge: false,
            up: true,
            master: Some(3),
            gone: false,
        };
        assert_eq!(links.classify(port), None);
    }

    #[test]
    fn only_deletions_in_vifkits_tables_trigger() {
        let mut links = seeded();
        let deleted = |table: &str, chain: Option<&str>, whole_table| Event::NftDeleted {
            table: table.into(),
            chain: chain.map(str::to_owned),
            whole_table,
        };
        assert_eq!(links.classify(deleted("filter", None, true)), None);
        assert_eq!(
            links.classify(deleted("vifkit-nat-1-0", None, true)),
            Some(Trigger::All("nft table vifkit-nat-1-0 was deleted".into()))
        );
        assert_eq!(
            links.classify(deleted("vifkit-antispoof-085", Some("vif3.0"), false)),
            Some(Trigger::Port(
                "vif3.0".into(),
                "nft chain vif3.0 of table vifkit-antispoof-085 changed".into()
            ))
        );
    }

    #[test]
    fn a_burst_is_answered_when_quiet_or_at_the_latest_after_its_first_event() {
        let start = Instant::now();
        let mut pending = Pending::default();
        assert_eq!(pending.due(), None);
        pending.add(Trigger::Bridge("xenbr0".into()), start);
        assert_eq!(pending.due(), Some(start + QUIET));
        for ms in (10..400).step_by(10) {
            let now = start + Duration::from_millis(ms);
            pending.add(Trigger::Routed("eth0 came up".into()), now);
        }
        assert_eq!(pending.due(), Some(start + AT_MOST));
        assert!(pending.routed && !pending.all);
        assert_eq!(pending.why(), "bridge xenbr0 appeared; eth0 came up");
        assert_eq!(
            pending.bridges.iter().collect::<Vec<_>>(),
            [&IfName::new("xenbr0").unwrap().to_string()]
        );
    }
}
