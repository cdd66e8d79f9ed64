//! The one sync driver, used by the daemon's uploader task and by `assent sync --once`:
//! it steps the [`Uploader`] until nothing is left, sending is deferred, or the caller
//! stops it, and applies the backoff between failed attempts. What differs between the
//! two callers (how long a retry may wait, what is reported, when to give up) is the
//! [`Drive`] they pass in.
//!
//! Holds no thread or timer of its own; waiting is the caller's `retry`.

use super::backoff::Backoff;
use super::{Step, Uploader};
use std::future::Future;
use std::time::Duration;

/// What the caller decides while the driver runs.
pub trait Drive {
    /// Called after every step, before the driver acts on it (status, logs, totals).
    fn observed(&mut self, step: &Step);

    /// After a transient failure: wait before the next attempt (at most `delay`, or
    /// less if woken), and say how to go on.
    fn retry(&mut self, reason: &str, delay: Duration) -> impl Future<Output = Retry> + Send;

    /// Checked before each step: `true` stops the drive (shutdown).
    fn stopping(&self) -> bool {
        false
    }
}

/// How to go on after a failed attempt's wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again; the backoff keeps growing.
    Again,
    /// Try again with the backoff reset: what failed has changed (the link came back).
    AgainFresh,
    /// Stop the drive ([`End::GaveUp`]).
    Stop,
}

/// Why a drive ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Everything queued was sent.
    Idle,
    /// Sending is not allowed now (metered link, no collector).
    Deferred(String),
    /// The caller stopped after this failure.
    GaveUp(String),
    /// The caller asked to stop before a step.
    Stopped,
}

/// Steps `uploader` until it is idle, deferred or stopped. A batch sent or an erasure
/// confirmed resets the backoff.
pub async fn drive(
    uploader: &mut Uploader<'_>,
    backoff: &mut Backoff,
    caller: &mut impl Drive,
) -> End {
    loop {
        if caller.stopping() {
            return End::Stopped;
        }
        let step = uploader.step().await;
        caller.observed(&step);
        match step {
            Step::Idle => return End::Idle,
            Step::Sent { .. } | Step::Erased { .. } => backoff.reset(),
            Step::DeadLettered { .. } => {}
            Step::Deferred(reason) => return End::Deferred(reason),
            Step::Retry {
                reason,
                retry_after,
            } => {
                let delay = backoff.next_delay(retry_after);
                match caller.retry(&reason, delay).await {
                    Retry::Again => {}
                    Retry::AgainFresh => backoff.reset(),
                    Retry::Stop => return End::GaveUp(reason),
                }
            }
        }
    }
}
