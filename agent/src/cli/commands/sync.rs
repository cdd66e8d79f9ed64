//! `assent sync`: wake the daemon's uploader, or with `--once` drive the queue out in
//! the foreground through the same sync driver the daemon uses.

use super::load_config;
use crate::cli::args::SyncArgs;
use crate::cli::exit::{Exit, Failure};
use crate::control::{self, protocol::Request};
use crate::local::buffer;
use crate::sync;

pub(crate) fn sync(args: SyncArgs) -> Result<(), Failure> {
    let config = load_config(&args.config)?;
    if !args.once {
        control::request(&config, &Request::Sync).map_err(Failure::unavailable)?;
        out!("the daemon is syncing now; `assent status` shows the result");
        return Ok(());
    }
    let store = buffer::open(&config).map_err(Failure::cant_create)?;
    let mut uploader = sync::Uploader::new(&config, &store).map_err(Failure::config)?;
    uploader.allow_metered = args.allow_metered;
    uploader.set_batch_limits(
        args.batch_events,
        sync::DEFAULT_BATCH_BYTES.max(args.batch_events as u64 * 1024),
    );
    let mut backoff = sync::backoff::Backoff::new(
        std::time::Duration::from_secs(config.sync.backoff_base_seconds),
        std::time::Duration::from_secs(config.sync.backoff_max_seconds),
    );
    let mut once = SyncOnce {
        attempts: args.attempts.max(1),
        ..SyncOnce::default()
    };
    let end = smol::block_on(sync::driver::drive(&mut uploader, &mut backoff, &mut once));
    let SyncOnce {
        batches,
        events,
        bytes,
        erasures,
        acked,
        ..
    } = once;
    let outcome = match end {
        sync::driver::End::Idle | sync::driver::End::Stopped => Ok(()),
        sync::driver::End::Deferred(reason) => Err(format!("not sending: {reason}")),
        sync::driver::End::GaveUp(reason) => Err(reason),
    };
    let stats = store
        .stats()
        .map_err(|e| Failure::cant_create(buffer::store_error(e)))?;
    out!(
        "sent {events} events in {batches} batches ({bytes} bytes on the wire); erasure requests confirmed: {erasures}"
    );
    match acked {
        Some(seq) => out!("acked through seq {seq}"),
        None => out!("acked: nothing new"),
    }
    out!(
        "remaining: {} events, {} gap records",
        stats.count,
        stats.gaps
    );
    outcome.map_err(|reason| Failure {
        code: Exit::TempFail,
        message: format!("assent: sync stopped: {reason}"),
    })
}

/// `sync --once` as a [`sync::driver::Drive`]: totals for the report, a bounded number
/// of attempts, retries waited out here (at most 30 s each).
#[derive(Debug, Default)]
struct SyncOnce {
    attempts: u32,
    failures: u32,
    batches: u64,
    events: u64,
    bytes: u64,
    erasures: u64,
    acked: Option<u64>,
}

impl sync::driver::Drive for SyncOnce {
    fn observed(&mut self, step: &sync::Step) {
        match step {
            sync::Step::Sent {
                events,
                bytes,
                acked_through,
            } => {
                self.batches += 1;
                self.events += events;
                self.bytes += bytes;
                self.acked = Some(*acked_through);
                self.failures = 0;
            }
            sync::Step::Erased { device, events } => {
                log::info!("collector erased {events} events held for {device}");
                self.erasures += 1;
                self.failures = 0;
            }
            sync::Step::DeadLettered { path, reason } => {
                eprintln!("assent: {reason}; kept in {}", path.display());
            }
            sync::Step::Idle | sync::Step::Deferred(_) | sync::Step::Retry { .. } => {}
        }
    }

    async fn retry(&mut self, reason: &str, delay: std::time::Duration) -> sync::driver::Retry {
        self.failures += 1;
        if self.failures >= self.attempts {
            return sync::driver::Retry::Stop;
        }
        let delay = delay.min(std::time::Duration::from_secs(30));
        log::warn!("{reason}; retrying in {:.1} s", delay.as_secs_f64());
        smol::Timer::after(delay).await;
        sync::driver::Retry::Again
    }
}
