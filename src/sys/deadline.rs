//! The run's one deadline, which every blocking call draws from: a xenstore request, an
//! nfnetlink or OVSDB answer, a hook. The entry sets it once (`DEADLINE` from the start,
//! less the reserve its error report keeps); a call waits for at most what is left of it,
//! so no sum of per-call timeouts can carry a run past libxl's 40 s kill or keep qemu
//! waiting. Unset (unit tests, the lab's tools), calls keep their own bounds.

use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::poll::PollTimeout;

static RUN_DEADLINE: Mutex<Option<Instant>> = Mutex::new(None);

/// Sets the deadline of this run (the process).
pub fn set(deadline: Instant) {
    *RUN_DEADLINE.lock().unwrap_or_else(|e| e.into_inner()) = Some(deadline);
}

/// The deadline of this run, if the entry set one.
pub fn get() -> Option<Instant> {
    *RUN_DEADLINE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The earlier of `own` (a call's own bound from now) and the run's deadline.
pub fn bound(own: Duration) -> Instant {
    earlier(get(), Instant::now() + own)
}

fn earlier(run: Option<Instant>, own: Instant) -> Instant {
    run.map_or(own, |run| run.min(own))
}

/// What is left until `deadline`, or a TimedOut error naming `what` once it has passed.
pub fn left(deadline: Instant, what: &str) -> io::Result<Duration> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(left) if !left.is_zero() => Ok(left),
        _ => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what}: out of time (the run's deadline passed)"),
        )),
    }
}

/// `left` as poll(2)'s timeout, in whole milliseconds rounded up: stopping early would
/// report a timeout early.
pub fn poll_timeout(left: Duration) -> PollTimeout {
    let millis = left.as_nanos().div_ceil(1_000_000);
    PollTimeout::try_from(millis.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    // No test sets the process-wide deadline: it would bound every other test's calls.
    #[test]
    fn a_call_waits_no_longer_than_the_run() {
        let now = Instant::now();
        let (soon, late) = (
            now + Duration::from_secs(2),
            now + Duration::from_secs(3600),
        );
        assert_eq!(earlier(None, late), late);
        assert_eq!(earlier(Some(soon), late), soon);
        assert_eq!(earlier(Some(late), soon), soon);
        let err = left(now - Duration::from_secs(1), "read xenstore").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            err.to_string(),
            "read xenstore: out of time (the run's deadline passed)"
        );
        assert!(left(soon, "x").unwrap() <= Duration::from_secs(2));
    }

    #[test]
    fn a_poll_never_ends_before_what_is_left() {
        let ms = |left: Duration| i32::from(poll_timeout(left));
        assert_eq!(ms(Duration::ZERO), 0);
        assert_eq!(ms(Duration::from_micros(1)), 1);
        assert_eq!(ms(Duration::from_millis(250)), 250);
        assert_eq!(ms(Duration::from_micros(250_001)), 251);
        assert_eq!(ms(Duration::from_secs(u64::MAX)), i32::MAX);
    }
}
