//! The on-device queue of events waiting to be sent: one SQLite file, `buffer.db`, in
//! the state directory.
//!
//! It knows nothing of the network or of consent rules: it is told what to append, what
//! was acknowledged and what to purge. It is synchronous; `Store` is `Send + Sync` and is
//! shared with an `Arc`.
//!
//! Invariants:
//! - `append` returns, and a [`Store::submit`] callback is told the seq, only after the
//!   event's transaction committed (with [`Durability::Full`], after the WAL was
//!   fsync'd).
//! - seqs are never reused, not after a full drain nor after a reopen.
//! - the files stay within `max_bytes`: when full, the oldest events of optional
//!   categories are evicted first, then the oldest of any, and every deletion of unsent
//!   events leaves a [`GapRecord`] that is sent like an event.
//! - a corrupt or unreadable file never stops `open`: it is moved aside and a fresh
//!   buffer starts with a "buffer reset" gap.
//!
//! Threads and costs: `open` spawns one committer thread (`assent-store-commit`) that
//! runs group commits: appends from many producers arriving within
//! `group_commit_window` share one transaction and one fsync, and `submit` callbacks run
//! on it. At most `max_in_flight_events` events wait for it; producers block beyond
//! that. It exits when the `Store` is dropped, after committing what is queued. Every other call runs on the caller's
//! thread under one mutex around the single SQLite connection. `open` runs
//! `PRAGMA quick_check`, which reads the whole file.

mod db;
mod error;
mod types;

pub use db::MIN_MAX_BYTES;
pub use error::StoreError;
pub use types::{
    Batch, CategoryStats, Durability, GapReason, GapRecord, NewEvent, OpenReport, Record, Stats,
    StoreOptions, StoredEvent,
};

use db::{Db, OpenFailure, Paths};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How many quarantined files are kept.
const QUARANTINE_KEEP: usize = 2;

/// `Db::append` returns one seq per event; this reports a breach of that instead of
/// panicking.
fn missing_seq() -> StoreError {
    StoreError::Sqlite {
        context: "appending events",
        code: None,
        message: "the commit returned fewer seqs than events".to_owned(),
    }
}

/// What the committer calls with the outcome of one request: one seq per event, or the
/// error that failed the transaction.
type Done = Box<dyn FnOnce(Result<Vec<u64>, StoreError>) + Send>;

/// What [`Store::try_submit`] did.
#[derive(Debug)]
pub enum TrySubmit<F> {
    /// Queued; `done` will be called as for [`Store::submit`].
    Queued,
    /// The in-flight bound is reached: nothing was queued, here are both back.
    WouldBlock { event: NewEvent, done: F },
}

/// What [`Store::try_submit_many`] did.
#[derive(Debug)]
pub enum TrySubmitMany<F> {
    /// Queued; `done` will be called as for [`Store::submit_many`].
    Queued,
    /// The in-flight bound is reached: nothing was queued, here are both back.
    WouldBlock { events: Vec<NewEvent>, done: F },
}

/// One producer's request waiting for the committer.
struct Request {
    events: Vec<NewEvent>,
    bytes: u64,
    done: Done,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<Request>,
    /// Events in `pending` (what the committer may still take).
    pending_events: usize,
    /// Events submitted whose `done` has not returned yet (queued, being committed, or
    /// being reported): what `max_in_flight_events` bounds.
    in_flight_events: usize,
    /// The committer is waiting on `wake`: only then does a producer notify it (a
    /// notify is a syscall, and a busy committer looks at the queue anyway when its
    /// commit ends).
    committer_waiting: bool,
    shutdown: bool,
}

struct Shared {
    db: Mutex<Db>,
    queue: Mutex<Queue>,
    /// Wakes the committer when a request is queued or the store shuts down.
    wake: Condvar,
    /// Wakes submitters blocked on `max_in_flight_events` when requests were reported.
    room: Condvar,
    options: StoreOptions,
    group_max_bytes: u64,
}

/// The durable event buffer. See the crate documentation.
pub struct Store {
    shared: Arc<Shared>,
    committer: Option<JoinHandle<()>>,
    /// The committer's id, to refuse calls that would wait for the committer from inside
    /// one of its callbacks.
    committer_id: ThreadId,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

/// A poisoned lock only means another thread panicked while holding it; the connection
/// itself is still consistent (SQLite rolls back an unfinished transaction).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The largest single event a buffer of `max_bytes` accepts (one group commit's share of
/// the WAL budget), or `None` when `max_bytes` is below the minimum.
pub fn max_event_bytes(max_bytes: u64) -> Option<u64> {
    db::Limits::new(max_bytes).ok().map(|l| l.group_max_bytes)
}

impl Store {
    /// Opens (or creates) `buffer.db` in `dir`, quarantining a corrupt file.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<(Self, OpenReport), StoreError> {
        if options.group_commit_max_events == 0 {
            return Err(StoreError::InvalidOptions(
                "group_commit_max_events must be at least 1",
            ));
        }
        if options.max_in_flight_events == 0 {
            return Err(StoreError::InvalidOptions(
                "max_in_flight_events must be at least 1",
            ));
        }
        let limits = db::Limits::new(options.max_bytes)?;
        std::fs::create_dir_all(dir).map_err(error::io("creating the state directory"))?;
        let paths = Paths::new(dir);
        let mut report = OpenReport::default();
        let db = match open_or_quarantine(&paths, &options, limits, &mut report)? {
            Some(db) => db,
            None => {
                let (last, acked, held) = report
                    .quarantined
                    .as_deref()
                    .map_or((None, None, None), db::salvage);
                let reset = report.quarantined.is_some().then(|| db::ResetGap {
                    first_seq: acked.map_or(0, |a| a + 1),
                    last_seq: last.unwrap_or(0),
                    count: held.unwrap_or(0),
                });
                let (db, reset_gap_seq) =
                    Db::create(&paths, &options, limits, last.unwrap_or(0), reset)?;
                report.reset_gap_seq = reset_gap_seq;
                db
            }
        };
        report.removed_quarantines = db::prune_quarantine(dir, QUARANTINE_KEEP);
        let shared = Arc::new(Shared {
            group_max_bytes: db.limits().group_max_bytes,
            db: Mutex::new(db),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            room: Condvar::new(),
            options,
        });
        let for_thread = Arc::clone(&shared);
        let committer = std::thread::Builder::new()
            .name("assent-store-commit".to_owned())
            .spawn(move || committer(&for_thread))
            .map_err(error::io("spawning the committer thread"))?;
        Ok((
            Self {
                shared,
                committer_id: committer.thread().id(),
                committer: Some(committer),
            },
            report,
        ))
    }

    /// Appends one event; returns its seq once its transaction is committed. The same as
    /// [`Store::submit`] followed by waiting for the outcome.
    pub fn append(&self, event: NewEvent) -> Result<u64, StoreError> {
        let seqs = self.append_many(vec![event])?;
        seqs.first().copied().ok_or_else(missing_seq)
    }

    /// Appends events in order; returns their seqs once committed. Events that fit one
    /// group commit are committed together; a larger list is split into several
    /// transactions, and on error the earlier ones may already be stored.
    pub fn append_many(&self, events: Vec<NewEvent>) -> Result<Vec<u64>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = sync_channel(1);
        self.enqueue(
            events,
            Box::new(move |result| {
                // The receiver is gone only if the caller itself is gone.
                let _ = reply.send(result);
            }),
        )?;
        // `done` is always called unless the committer thread died, which it is built
        // never to do.
        answer.recv().map_err(|_| StoreError::Closed)?
    }

    /// Queues one event without waiting for its commit; `done` is called with its seq once
    /// its transaction committed (with [`Durability::Full`], after the WAL was fsync'd),
    /// or with the error that failed that transaction. This lets one producer have many
    /// events in flight, so they share commits.
    ///
    /// `done` runs on the committer thread, after the database lock is released, and
    /// before the next group is committed: keep it short (send on a channel, write a
    /// reply). Callbacks of one producer's submissions run in submission order, and
    /// across producers in the order `submit` took them. A panic in `done` is caught and
    /// ignored (with `panic = "abort"` it aborts the process, like any panic). Calling
    /// `submit`, `append` or `append_many` from inside `done` would wait for the committer
    /// itself and is refused with [`StoreError::CalledFromCallback`]; every other method
    /// may be called there.
    ///
    /// When `max_in_flight_events` events are in flight (submitted, `done` not yet
    /// returned), `submit` blocks until a commit reports some of them: back-pressure that
    /// lasts about one commit. On `Err` (event too large, store closed, called from a
    /// callback), nothing was queued and `done` is dropped without being called.
    pub fn submit<F>(&self, event: NewEvent, done: F) -> Result<(), StoreError>
    where
        F: FnOnce(Result<u64, StoreError>) + Send + 'static,
    {
        self.enqueue(
            vec![event],
            Box::new(move |result| {
                done(result.and_then(|seqs| seqs.first().copied().ok_or_else(missing_seq)));
            }),
        )
    }

    /// [`Store::submit`] that never blocks: when `max_in_flight_events` events are in
    /// flight, the event and `done` are handed back ([`TrySubmit::WouldBlock`]) instead
    /// of waiting, so an async caller can queue on its own thread and go to a blocking
    /// thread only when the store is busy. Errors as for `submit`.
    pub fn try_submit<F>(&self, event: NewEvent, done: F) -> Result<TrySubmit<F>, StoreError>
    where
        F: FnOnce(Result<u64, StoreError>) + Send + 'static,
    {
        if std::thread::current().id() == self.committer_id {
            return Err(StoreError::CalledFromCallback);
        }
        let bytes = self.checked_bytes(std::slice::from_ref(&event))?;
        let wake = {
            let mut q = lock(&self.shared.queue);
            if q.shutdown {
                return Err(StoreError::Closed);
            }
            if q.in_flight_events >= self.shared.options.max_in_flight_events {
                return Ok(TrySubmit::WouldBlock { event, done });
            }
            q.pending_events += 1;
            q.in_flight_events += 1;
            q.pending.push_back(Request {
                events: vec![event],
                bytes,
                done: Box::new(move |result| {
                    done(result.and_then(|seqs| seqs.first().copied().ok_or_else(missing_seq)));
                }),
            });
            q.committer_waiting
        };
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(TrySubmit::Queued)
    }

    /// [`Store::submit`] for several events at once, with one callback for all of them:
    /// `done` gets one seq per event, in order. Events that fit one group commit are
    /// committed in one transaction (a larger list is split, as by
    /// [`Store::append_many`], and on error the earlier parts may be stored). One request,
    /// one wake-up of the committer and one callback for the whole list is what lets a
    /// producer with many events at hand (a socket read holding many lines) keep up with
    /// the committer. Blocks, errors and panics as for `submit`; an empty list calls
    /// `done` at once with no seqs.
    pub fn submit_many<F>(&self, events: Vec<NewEvent>, done: F) -> Result<(), StoreError>
    where
        F: FnOnce(Result<Vec<u64>, StoreError>) + Send + 'static,
    {
        if events.is_empty() {
            done(Ok(Vec::new()));
            return Ok(());
        }
        self.enqueue(events, Box::new(done))
    }

    /// [`Store::submit_many`] that never blocks: when `max_in_flight_events` events are
    /// in flight, the events and `done` are handed back ([`TrySubmitMany::WouldBlock`]).
    /// Admitted while below the bound, so it may go over it by the list's length (as an
    /// `append_many` may).
    pub fn try_submit_many<F>(
        &self,
        events: Vec<NewEvent>,
        done: F,
    ) -> Result<TrySubmitMany<F>, StoreError>
    where
        F: FnOnce(Result<Vec<u64>, StoreError>) + Send + 'static,
    {
        if std::thread::current().id() == self.committer_id {
            return Err(StoreError::CalledFromCallback);
        }
        if events.is_empty() {
            done(Ok(Vec::new()));
            return Ok(TrySubmitMany::Queued);
        }
        let bytes = self.checked_bytes(&events)?;
        let wake = {
            let mut q = lock(&self.shared.queue);
            if q.shutdown {
                return Err(StoreError::Closed);
            }
            if q.in_flight_events >= self.shared.options.max_in_flight_events {
                return Ok(TrySubmitMany::WouldBlock { events, done });
            }
            q.pending_events += events.len();
            q.in_flight_events += events.len();
            q.pending.push_back(Request {
                events,
                bytes,
                done: Box::new(done),
            });
            q.committer_waiting
        };
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(TrySubmitMany::Queued)
    }

    /// Whether `submit` would take `event`: refused ([`StoreError::EventTooLarge`]) when
    /// it is larger than one group commit may hold. Lets a producer that submits many
    /// events together refuse one without failing the rest.
    pub fn check_event(&self, event: &NewEvent) -> Result<(), StoreError> {
        self.checked_bytes(std::slice::from_ref(event)).map(|_| ())
    }

    /// The events' counted size, refusing any larger than one group commit may hold.
    fn checked_bytes(&self, events: &[NewEvent]) -> Result<u64, StoreError> {
        let limit = self.shared.group_max_bytes;
        let mut bytes = 0u64;
        for e in events {
            let size = db::event_size(e);
            if size > limit {
                return Err(StoreError::EventTooLarge {
                    bytes: size,
                    limit_bytes: limit,
                });
            }
            bytes += size;
        }
        Ok(bytes)
    }

    /// Events submitted whose outcome has not been reported yet.
    pub fn in_flight_events(&self) -> usize {
        lock(&self.shared.queue).in_flight_events
    }

    /// Checks and queues one request; blocks while the in-flight bound is reached.
    fn enqueue(&self, events: Vec<NewEvent>, done: Done) -> Result<(), StoreError> {
        if std::thread::current().id() == self.committer_id {
            return Err(StoreError::CalledFromCallback);
        }
        let bytes = self.checked_bytes(&events)?;
        let n = events.len();
        let max = self.shared.options.max_in_flight_events;
        let wake = {
            let mut q = lock(&self.shared.queue);
            // Admitted while below the bound, so an `append_many` may go over it by its
            // own length: waiting for room for all of it could starve it behind
            // single-event submitters (or forever, when it is larger than the bound).
            while !q.shutdown && q.in_flight_events >= max {
                q = self
                    .shared
                    .room
                    .wait(q)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if q.shutdown {
                return Err(StoreError::Closed);
            }
            q.pending_events += n;
            q.in_flight_events += n;
            q.pending.push_back(Request {
                events,
                bytes,
                done,
            });
            q.committer_waiting
        };
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// The records from the first seq after the last ack: at most `max_events`, and at
    /// most `max_bytes` of record sizes (but always at least one record). `None` when
    /// nothing is waiting. Calling it again without an ack returns the same range.
    pub fn next_batch(
        &self,
        max_events: usize,
        max_bytes: u64,
    ) -> Result<Option<Batch>, StoreError> {
        lock(&self.shared.db).next_batch(max_events, max_bytes)
    }

    /// Deletes every record at or below `through_seq` in one transaction.
    pub fn ack(&self, through_seq: u64) -> Result<(), StoreError> {
        lock(&self.shared.db).ack(through_seq)
    }

    /// Deletes every held event of `category` in one transaction and records a
    /// [`GapReason::Purged`] gap; returns how many were deleted.
    pub fn purge_category(&self, category: &str) -> Result<u64, StoreError> {
        lock(&self.shared.db).purge_category(category)
    }

    /// Deletes events whose wall time is older than `retention_days` before
    /// `now_wall_ms`, recording [`GapReason::Expired`] gaps; returns how many.
    ///
    /// Wall times before 2020 (a clock not yet set) never expire, and neither does
    /// anything when `now_wall_ms` itself is before 2020. Events stamped in the future
    /// stay until `now` passes them by the retention period.
    pub fn expire(&self, now_wall_ms: i64) -> Result<u64, StoreError> {
        lock(&self.shared.db).expire(now_wall_ms)
    }

    /// Counts, sizes and marks of what is held.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        lock(&self.shared.db).stats()
    }

    /// Everything held, acknowledged or not yet sent, in seq order.
    pub fn export(&self) -> Result<Vec<Record>, StoreError> {
        lock(&self.shared.db).export()
    }

    /// The random id of this buffer file, chosen when it was created. A buffer that
    /// replaces a corrupt one gets a new id, so a receiver keys seqs by (device, buffer).
    pub fn buffer_id(&self) -> Result<u64, StoreError> {
        let bytes = self.get_meta(db::BUFFER_ID_KEY)?.unwrap_or_default();
        let array: [u8; 8] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt("buffer id missing from meta".to_string()))?;
        Ok(u64::from_be_bytes(array))
    }

    /// Whether each of `seqs` is acknowledged or still held as an event: none was
    /// evicted, expired or purged unsent (the agent's test for a delta's base).
    pub fn seqs_intact(&self, seqs: &[u64]) -> Result<bool, StoreError> {
        lock(&self.shared.db).seqs_intact(seqs)
    }

    /// Reads a value from the key-value table.
    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        lock(&self.shared.db).get_meta(key)
    }

    /// Writes a value to the key-value table (durably, like an append).
    pub fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        lock(&self.shared.db).set_meta(key, value)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        lock(&self.shared.queue).shutdown = true;
        self.shared.wake.notify_all();
        self.shared.room.notify_all();
        if std::thread::current().id() == self.committer_id {
            // The last handle was dropped inside a callback: the committer cannot join
            // itself; it sees `shutdown`, commits what is queued and exits on its own.
            return;
        }
        if let Some(handle) = self.committer.take() {
            // The committer never panics by design; nothing useful to do if it did.
            let _ = handle.join();
        }
    }
}

/// Opens the existing file, or quarantines it and returns `None` so a fresh one is made.
fn open_or_quarantine(
    paths: &Paths,
    options: &StoreOptions,
    limits: db::Limits,
    report: &mut OpenReport,
) -> Result<Option<Db>, StoreError> {
    match std::fs::metadata(&paths.db) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(error::io("inspecting buffer.db")(e)),
    }
    match Db::open_existing(paths, options, limits) {
        Ok(db) => Ok(Some(db)),
        // Created but never initialised (a crash right after creating the file, or a
        // power cut before anything in it was synced): nothing was ever stored in it.
        Err(OpenFailure::Empty) => {
            for p in [&paths.db, &paths.wal, &paths.shm] {
                let _ = std::fs::remove_file(p);
            }
            Ok(None)
        }
        Err(OpenFailure::Other(e)) => Err(e),
        Err(OpenFailure::Corrupt(why)) => {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            report.quarantined = Some(db::quarantine(paths, now_ms)?);
            report.corruption = Some(why);
            Ok(None)
        }
    }
}

/// The committer thread: takes what producers queued, commits it in one transaction,
/// then reports the outcome to every request in it.
///
/// It waits for as many events as the previous commit had (producers that were just
/// answered usually come straight back), so a lone producer never waits and many
/// producers share commits. The wait is at most `group_commit_window` and at most half
/// as long as the previous commit took: producers whose answers travel further (a
/// socket client's round trip) then commit in two alternating groups, one being
/// committed while the other is refilled, instead of the committer idling until all
/// of them are back.
fn committer(shared: &Shared) {
    let opts = &shared.options;
    let mut expected = 1usize;
    let mut last_commit = Duration::ZERO;
    loop {
        let group = {
            let mut q = lock(&shared.queue);
            while q.pending.is_empty() && !q.shutdown {
                q.committer_waiting = true;
                q = shared
                    .wake
                    .wait(q)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                q.committer_waiting = false;
            }
            if q.pending.is_empty() {
                return;
            }
            let want = expected.min(opts.group_commit_max_events);
            let deadline = Instant::now() + opts.group_commit_window.min(last_commit / 2);
            while q.pending_events < want && !q.shutdown {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                q.committer_waiting = true;
                let (guard, timeout) = shared
                    .wake
                    .wait_timeout(q, deadline - now)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                q = guard;
                q.committer_waiting = false;
                if timeout.timed_out() {
                    break;
                }
            }
            take_group(&mut q, opts.group_commit_max_events, shared.group_max_bytes)
        };
        let events: usize = group.iter().map(|r| r.events.len()).sum();
        expected = events.max(1);
        let started = Instant::now();
        let outcomes = commit_group(shared, group);
        last_commit = started.elapsed();
        for (done, result) in outcomes {
            // A panicking callback must not take the committer (and every later producer)
            // down with it; its own request was already committed or failed.
            let _ = catch_unwind(AssertUnwindSafe(move || done(result)));
        }
        {
            let mut q = lock(&shared.queue);
            q.in_flight_events = q.in_flight_events.saturating_sub(events);
        }
        shared.room.notify_all();
    }
}

/// Takes whole requests up to the event and byte limits (always at least one).
fn take_group(q: &mut Queue, max_events: usize, max_bytes: u64) -> Vec<Request> {
    let mut group: Vec<Request> = Vec::new();
    let (mut events, mut bytes) = (0usize, 0u64);
    while let Some(next) = q.pending.front() {
        let fits = events + next.events.len() <= max_events && bytes + next.bytes <= max_bytes;
        if !group.is_empty() && !fits {
            break;
        }
        events += next.events.len();
        bytes += next.bytes;
        if let Some(r) = q.pending.pop_front() {
            q.pending_events -= r.events.len();
            group.push(r);
        }
    }
    group
}

/// Commits a group under the database lock and returns each request's outcome, to be
/// reported after the lock is released.
fn commit_group(shared: &Shared, group: Vec<Request>) -> Vec<(Done, Result<Vec<u64>, StoreError>)> {
    let max_events = shared.options.group_commit_max_events;
    let max_bytes = shared.group_max_bytes;
    let mut db = lock(&shared.db);
    if group.len() == 1 {
        // A single request may be larger than one transaction may be: split it.
        return group
            .into_iter()
            .map(|r| {
                let result = append_split(&mut db, &r.events, max_events, max_bytes);
                (r.done, result)
            })
            .collect();
    }
    let all: Vec<&NewEvent> = group.iter().flat_map(|r| r.events.iter()).collect();
    let result = db.append(&all);
    drop(db);
    match result {
        Ok(seqs) => {
            let mut rest = seqs.as_slice();
            group
                .into_iter()
                .map(|r| {
                    let (mine, tail) = rest.split_at(r.events.len().min(rest.len()));
                    rest = tail;
                    (r.done, Ok(mine.to_vec()))
                })
                .collect()
        }
        Err(e) => group
            .into_iter()
            .map(|r| (r.done, Err(e.clone())))
            .collect(),
    }
}
fn append_split(
    db: &mut Db,
    events: &[NewEvent],
    max_events: usize,
    max_bytes: u64,
) -> Result<Vec<u64>, StoreError> {
    let mut seqs = Vec::with_capacity(events.len());
    let mut start = 0;
    while start < events.len() {
        let mut end = start;
        let mut bytes = 0u64;
        while end < events.len() && end - start < max_events {
            let size = events.get(end).map_or(0, db::event_size);
            if end > start && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            end += 1;
        }
        let chunk: Vec<&NewEvent> = events.get(start..end).unwrap_or(&[]).iter().collect();
        seqs.extend(db.append(&chunk)?);
        start = end;
    }
    Ok(seqs)
}
