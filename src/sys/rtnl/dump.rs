//! Every rtnetlink dump vifkit makes (links, addresses, routes, proxy neighbours, qdiscs,
//! filters) goes through [`Netlink::dump`]: when the kernel marks an answer
//! `NLM_F_DUMP_INTR` (what it listed changed while it was listed, so entries may be missing
//! or listed twice), the dump is asked again, as the CNI plugins do, a bounded number of
//! times and each within the run's deadline.

use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures::StreamExt;
use rtnetlink::packet_core::{
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::RouteNetlinkMessage;

use super::{Netlink, os_error};
use crate::sys::deadline;

/// How many times a dump is asked before the run gives up on a kernel that keeps changing.
pub(super) const DUMP_ATTEMPTS: usize = 3;

/// What one dump may take at most, short of the run's deadline: the kernel answers a dump
/// of a few thousand objects in milliseconds.
const DUMP_TIMEOUT: Duration = Duration::from_secs(10);

/// One answer to a dump, taken in a message at a time.
#[derive(Debug, Default)]
pub(super) struct Answer {
    messages: Vec<RouteNetlinkMessage>,
    interrupted: bool,
}

impl Answer {
    /// Takes in one message of the answer; an error from the kernel ends the dump. The flag
    /// is read on every message, NLMSG_DONE included: a change during the dump's last turn
    /// marks the NLMSG_DONE alone.
    pub(super) fn absorb(&mut self, message: NetlinkMessage<RouteNetlinkMessage>) -> Result<()> {
        self.interrupted |= message.header.flags & NLM_F_DUMP_INTR != 0;
        match message.payload {
            NetlinkPayload::InnerMessage(inner) => self.messages.push(inner),
            NetlinkPayload::Error(err) if err.code.is_some() => {
                return Err(os_error(rtnetlink::Error::NetlinkError(err)));
            }
            NetlinkPayload::Done(done) if done.code < 0 => {
                return Err(io::Error::from_raw_os_error(-done.code).into());
            }
            _ => {}
        }
        Ok(())
    }

    /// The messages, or None when the kernel marked the answer interrupted.
    pub(super) fn whole(self) -> Option<Vec<RouteNetlinkMessage>> {
        (!self.interrupted).then_some(self.messages)
    }
}

/// Takes answers from `ask` until one is whole, at most [`DUMP_ATTEMPTS`] times.
pub(super) async fn retried<F, Fut>(mut ask: F) -> Result<Vec<RouteNetlinkMessage>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Answer>>,
{
    for attempt in 1..=DUMP_ATTEMPTS {
        match ask().await?.whole() {
            Some(messages) => return Ok(messages),
            None => log::debug!(
                "the kernel changed what it listed meanwhile (NLM_F_DUMP_INTR): try {attempt} of {DUMP_ATTEMPTS}"
            ),
        }
    }
    bail!("the kernel's list kept changing while it was read ({DUMP_ATTEMPTS} tries)")
}

impl Netlink {
    /// The messages the kernel answers the dump `request` with, whole (see [`retried`]).
    pub(super) async fn dump(
        &self,
        request: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        retried(|| self.dump_once(request.clone())).await
    }

    async fn dump_once(&self, request: RouteNetlinkMessage) -> Result<Answer> {
        let until = deadline::bound(DUMP_TIMEOUT);
        let mut message = NetlinkMessage::from(request);
        message.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        let mut response = self.handle.clone().request(message).map_err(os_error)?;
        let take = async {
            let mut answer = Answer::default();
            while let Some(message) = response.next().await {
                answer.absorb(message)?;
            }
            Ok(answer)
        };
        match tokio::time::timeout_at(until.into(), take).await {
            Ok(answer) => answer,
            Err(_) => Err(expired(until, "netlink dump", DUMP_TIMEOUT).into()),
        }
    }
}

/// Why a wait bounded by `until` ended: the run's deadline, or the call's own `own` bound.
fn expired(until: Instant, what: &str, own: Duration) -> io::Error {
    match deadline::get().filter(|run| *run <= until) {
        Some(run) => deadline::left(run, what).err(),
        None => None,
    }
    .unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what}: no answer within {} s", own.as_secs()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_core::{DoneMessage, ErrorMessage, NetlinkHeader};
    use rtnetlink::packet_route::link::LinkMessage;
    use std::cell::Cell;
    use std::num::NonZeroI32;

    fn link(flags: u16) -> NetlinkMessage<RouteNetlinkMessage> {
        let mut message =
            NetlinkMessage::from(RouteNetlinkMessage::NewLink(LinkMessage::default()));
        message.header.flags = flags;
        message
    }

    fn done(flags: u16, code: i32) -> NetlinkMessage<RouteNetlinkMessage> {
        let mut done = DoneMessage::default();
        done.code = code;
        let mut message = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::Done(done));
        message.header.flags = flags;
        message
    }

    const MULTI: u16 = 0x2; // NLM_F_MULTI, on every message of a dump

    fn answer(messages: Vec<NetlinkMessage<RouteNetlinkMessage>>) -> Result<Answer> {
        let mut answer = Answer::default();
        for message in messages {
            answer.absorb(message)?;
        }
        Ok(answer)
    }

    #[test]
    fn an_answer_is_whole_unless_a_message_is_marked_interrupted() {
        let clean = answer(vec![link(MULTI), link(MULTI), done(MULTI, 0)]).unwrap();
        assert_eq!(clean.whole().map(|m| m.len()), Some(2));
        let marked = answer(vec![
            link(MULTI),
            link(MULTI | NLM_F_DUMP_INTR),
            done(MULTI, 0),
        ]);
        assert!(marked.unwrap().whole().is_none());
        // A change during the last turn of the dump marks only the NLMSG_DONE.
        let last = answer(vec![link(MULTI), done(MULTI | NLM_F_DUMP_INTR, 0)]);
        assert!(last.unwrap().whole().is_none());
        // NLM_F_DUMP_FILTERED (0x20) is no interruption.
        let filtered = answer(vec![link(MULTI | 0x20), done(MULTI | 0x20, 0)]);
        assert_eq!(filtered.unwrap().whole().map(|m| m.len()), Some(1));
        assert_eq!(answer(vec![done(MULTI, 0)]).unwrap().whole(), Some(vec![]));
    }

    #[test]
    fn the_kernels_error_ends_a_dump_with_its_errno() {
        let mut error = ErrorMessage::default();
        error.code = NonZeroI32::new(-nix::libc::EOPNOTSUPP);
        let err = answer(vec![
            link(MULTI),
            NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::Error(error)),
        ])
        .unwrap_err();
        assert_eq!(
            err.downcast_ref::<io::Error>()
                .and_then(io::Error::raw_os_error),
            Some(nix::libc::EOPNOTSUPP)
        );
        let err = answer(vec![link(MULTI), done(MULTI, -nix::libc::EINVAL)]).unwrap_err();
        assert_eq!(err.to_string(), "Invalid argument (os error 22)");
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Answers interrupted `interrupted` times, then whole; counts the asks.
    fn kernel(
        interrupted: usize,
        asked: &Cell<usize>,
    ) -> impl FnMut() -> std::future::Ready<Result<Answer>> {
        move || {
            asked.set(asked.get() + 1);
            let flags = if asked.get() <= interrupted {
                MULTI | NLM_F_DUMP_INTR
            } else {
                MULTI
            };
            std::future::ready(answer(vec![link(MULTI), link(flags), done(MULTI, 0)]))
        }
    }

    #[test]
    fn an_interrupted_dump_is_asked_again_up_to_three_times() {
        for interrupted in 0..DUMP_ATTEMPTS {
            let asked = Cell::new(0);
            let messages = block_on(retried(kernel(interrupted, &asked))).unwrap();
            assert_eq!(messages.len(), 2);
            assert_eq!(asked.get(), interrupted + 1);
        }
        let asked = Cell::new(0);
        let err = block_on(retried(kernel(DUMP_ATTEMPTS, &asked))).unwrap_err();
        assert_eq!(asked.get(), DUMP_ATTEMPTS);
        assert_eq!(
            err.to_string(),
            "the kernel's list kept changing while it was read (3 tries)"
        );
    }

    #[test]
    fn an_error_is_not_asked_again() {
        let asked = Cell::new(0);
        let err = block_on(retried(|| {
            asked.set(asked.get() + 1);
            std::future::ready(answer(vec![done(MULTI, -nix::libc::EPERM)]))
        }))
        .unwrap_err();
        assert_eq!(asked.get(), 1);
        assert_eq!(err.to_string(), "Operation not permitted (os error 1)");
    }
}
