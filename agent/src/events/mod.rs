//! The events socket: local programs report their own events (the `app_events`
//! category) as newline-delimited JSON, `{"name": "...", "attrs": {...}}`, and each line
//! is answered with one line, in order: `ok <seq>` once the event is durably committed to
//! the buffer, or `error: <reason>`.
//!
//! Checks, in order: the peer's credentials once per connection ([`socket::PeerPolicy`]),
//! then per line the size (`error: message larger than N bytes`, the rest of the line is
//! skipped without being buffered), the connection's token bucket
//! (`error: rate limit exceeded`), `app_events` consent
//! (`error: app_events consent is not granted`), and the message format
//! (`error: line N: <what is wrong>`, see [`parse::parse_event_line`]). A refused line
//! never closes the connection.
//!
//! Threads and costs: [`serve`] runs its connections on a local executor inside its own
//! future (the daemon gives it a thread, `assent-events`, so that the uploader's work
//! on the daemon's executor cannot hold up the socket). The accepted lines of one read
//! are queued together with [`Store::try_submit_many`] on the executor; only when the
//! store is at its in-flight bound do they go to the worker pool for the blocking
//! [`Store::submit_many`]. One wake per batch when the store's committer thread reports
//! the commit. Memory per connection is bounded by `max_message_bytes` plus
//! [`MAX_IN_FLIGHT_PER_CONNECTION`] lines (their events and answers).
//! Nothing is polled: an idle server sleeps in `accept` and `read`.

pub mod emit;
pub mod parse;
pub mod plain;

use crate::config::EventsConfig;
use crate::local::buffer::{payload_event, Timestamp};
use assent_store::{NewEvent, Store, StoreError, TrySubmitMany};
use assent_wire::Payload;
use serde::{Deserialize, Serialize};
use smol::channel::{Receiver, Sender};
use smol::future::FutureExt;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::unix::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::unix::socket::{self, PeerPolicy, Server, SocketError};
use parse::Limits;

/// Answers one connection may have outstanding (lines read but not yet answered); the
/// reader waits beyond it, so a pipelining client cannot grow the agent's memory.
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 64;

/// How long writing one batch of answers may take before the client is considered
/// stuck (not reading) and disconnected.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long answers may still take to write once shutdown is asked.
const SHUTDOWN_WRITE_GRACE: Duration = Duration::from_millis(500);

/// How long, and how many bytes, a refused connection is drained before it is closed.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;

/// Bytes read from a connection at once: a whole window of answered-and-refilled lines
/// ([`MAX_IN_FLIGHT_PER_CONNECTION`] lines of ~200 bytes) in one read and one submit.
const READ_CHUNK: usize = 16384;

/// A bound events socket, ready for [`serve`].
pub type EventsListener = Server;

/// Why the events socket could not be bound: the config key whose group failed to
/// resolve, or the socket itself.
#[derive(Debug)]
pub enum BindError {
    Group(&'static str, SocketError),
    Socket(SocketError),
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindError::Group(key, e) => write!(f, "{key}: {e}"),
            BindError::Socket(e) => std::fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for BindError {}

/// Creates the events socket (see [`socket::bind_unix_socket`]) with `socket_mode` and
/// `socket_group`, and resolves the allowed groups (`socket_group` counts as one).
pub fn bind(config: &EventsConfig) -> Result<EventsListener, BindError> {
    let mut groups: Vec<&str> = config.allowed_groups.iter().map(String::as_str).collect();
    let gid = match &config.socket_group {
        Some(g) => {
            groups.push(g);
            Some(socket::group_id(g).map_err(|e| BindError::Group("events.socket_group", e))?)
        }
        None => None,
    };
    let policy = PeerPolicy::new(&config.allowed_uids, &groups)
        .map_err(|e| BindError::Group("events.allowed_groups", e))?;
    Server::bind(&config.socket, config.socket_mode, gid, policy).map_err(BindError::Socket)
}

/// What [`serve`] needs from the daemon.
pub struct EventsContext {
    pub store: Arc<Store>,
    /// Whether `app_events` consent is active now; kept current by the daemon from the
    /// consent watcher and read for every line.
    pub app_events_active: Arc<AtomicBool>,
    pub config: EventsConfig,
    /// Called after each commit that stored events (wakes the uploader). Runs on the server's
    /// executor: keep it short and non-blocking.
    pub on_accepted: Box<dyn Fn() + Send + Sync>,
    /// Set by [`EventsContext::shut_down`].
    pub shutting_down: Arc<AtomicBool>,
    /// Closed on shutdown, which wakes every waiting `recv`.
    stop_tx: Sender<()>,
    stop_rx: Receiver<()>,
    counters: Counters,
}

impl std::fmt::Debug for EventsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsContext")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl EventsContext {
    /// A context; `shutting_down` may be shared with the rest of the daemon, but setting
    /// it alone does not wake [`serve`]: call [`EventsContext::shut_down`].
    pub fn new(
        store: Arc<Store>,
        app_events_active: Arc<AtomicBool>,
        config: EventsConfig,
        on_accepted: Box<dyn Fn() + Send + Sync>,
        shutting_down: Arc<AtomicBool>,
    ) -> EventsContext {
        let (stop_tx, stop_rx) = smol::channel::bounded(1);
        EventsContext {
            store,
            app_events_active,
            config,
            on_accepted,
            shutting_down,
            stop_tx,
            stop_rx,
            counters: Counters::default(),
        }
    }

    /// Stops [`serve`]: no new connection or line is taken, the lines in flight are
    /// committed and answered, then `serve` returns. Safe to call more than once.
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.stop_tx.close();
    }

    /// The counters so far, for `assent status`.
    pub fn stats(&self) -> EventsStats {
        self.counters.snapshot()
    }

    fn stopping(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Resolves when shutdown is asked.
    async fn stopped(&self) {
        // `recv` fails once the channel is closed; nothing is ever sent on it.
        let _ = self.stop_rx.recv().await;
    }
}

/// Counters of the events socket since the daemon started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsStats {
    /// Connections served now.
    pub connections_open: u64,
    /// Connections refused because the peer is not allowed.
    pub connections_refused_peer: u64,
    /// Connections refused because `max_connections` were open.
    pub connections_refused_limit: u64,
    /// Events committed and answered `ok`.
    pub accepted: u64,
    pub rejected_too_large: u64,
    pub rejected_rate: u64,
    pub rejected_consent: u64,
    pub rejected_malformed: u64,
    /// Events the store failed to commit.
    pub rejected_store: u64,
}

#[derive(Debug, Default)]
struct Counters {
    connections_open: AtomicUsize,
    connections_refused_peer: AtomicU64,
    connections_refused_limit: AtomicU64,
    accepted: AtomicU64,
    rejected_too_large: AtomicU64,
    rejected_rate: AtomicU64,
    rejected_consent: AtomicU64,
    rejected_malformed: AtomicU64,
    rejected_store: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> EventsStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EventsStats {
            connections_open: self.connections_open.load(Ordering::Relaxed) as u64,
            connections_refused_peer: get(&self.connections_refused_peer),
            connections_refused_limit: get(&self.connections_refused_limit),
            accepted: get(&self.accepted),
            rejected_too_large: get(&self.rejected_too_large),
            rejected_rate: get(&self.rejected_rate),
            rejected_consent: get(&self.rejected_consent),
            rejected_malformed: get(&self.rejected_malformed),
            rejected_store: get(&self.rejected_store),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Serves the events socket until [`EventsContext::shut_down`]; then finishes and
/// answers what is in flight on every connection before returning.
pub async fn serve(listener: EventsListener, ctx: Arc<EventsContext>) {
    let ex = smol::Executor::new();
    ex.run(accept_loop(&ex, listener, ctx)).await;
}

async fn accept_loop(ex: &smol::Executor<'_>, listener: EventsListener, ctx: Arc<EventsContext>) {
    let policy = Arc::new(listener.policy().clone());
    let mut tasks: Vec<smol::Task<()>> = Vec::new();
    let max_connections = usize::try_from(ctx.config.max_connections).unwrap_or(usize::MAX);
    while !ctx.stopping() {
        let accepted = async { Some(listener.accept().await) }
            .or(async {
                ctx.stopped().await;
                None
            })
            .await;
        let Some(stream) = accepted else { break };
        tasks.retain(|t| !t.is_finished());
        if ctx.counters.connections_open.load(Ordering::SeqCst) >= max_connections {
            bump(&ctx.counters.connections_refused_limit);
            let line = format!("error: too many connections (limit {max_connections})\n");
            tasks.push(ex.spawn(refuse(stream, line)));
            continue;
        }
        ctx.counters.connections_open.fetch_add(1, Ordering::SeqCst);
        let open = OpenConnection(Arc::clone(&ctx));
        tasks.push(ex.spawn(connection(stream, open, Arc::clone(&policy))));
    }
    // Closing the listener now makes new connects fail at once instead of hanging.
    drop(listener);
    for task in tasks {
        task.await;
    }
}

/// Counts an open connection until dropped.
struct OpenConnection(Arc<EventsContext>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0
            .counters
            .connections_open
            .fetch_sub(1, Ordering::SeqCst);
    }
}

/// Answers one error line and closes.
///
/// Closing a Unix socket with unread data makes the peer's next read fail with
/// `ECONNRESET`, which can hide the error line from it. So the write side is shut first
/// (the peer reads the line, then end of stream) and what the peer sent is read and
/// dropped until it closes too, for at most [`LINGER`] and [`LINGER_BYTES`].
async fn refuse(mut stream: UnixStream, line: String) {
    let written = stream
        .write_all(line.as_bytes())
        .or(async {
            smol::Timer::after(WRITE_TIMEOUT).await;
            Err(std::io::ErrorKind::TimedOut.into())
        })
        .await;
    if written.is_ok() && stream.shutdown(std::net::Shutdown::Write).is_ok() {
        let drain = async {
            let mut sink = [0u8; 4096];
            let mut total = 0;
            while total < LINGER_BYTES {
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
        };
        drain
            .or(async {
                smol::Timer::after(LINGER).await;
            })
            .await;
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Answers in the order lines arrived: one entry per refused line, one per group of
/// accepted lines handed to the store together.
enum Answer {
    /// A refused line's error.
    Ready(String),
    /// `events` lines submitted in one request: the seqs once committed, or the store's
    /// error (one answer per line either way).
    Committing {
        events: usize,
        done: Receiver<Result<Vec<u64>, StoreError>>,
    },
    /// `events` lines the store refused at once, all for `reason`.
    Failed { events: usize, reason: String },
}

impl Answer {
    /// Lines this entry answers.
    fn lines(&self) -> usize {
        match self {
            Answer::Ready(_) => 1,
            Answer::Committing { events, .. } | Answer::Failed { events, .. } => *events,
        }
    }
}

/// Lines read and not yet answered on one connection, shared by its reader and writer
/// (both run inside the connection's one future; atomic only because that future must
/// be `Send`). The writer signals `room` when it answered some, which is what a reader
/// at the bound waits for.
struct InFlight {
    lines: AtomicUsize,
    room_tx: Sender<()>,
    room_rx: Receiver<()>,
}

impl InFlight {
    fn new() -> InFlight {
        let (room_tx, room_rx) = smol::channel::bounded(1);
        InFlight {
            lines: AtomicUsize::new(0),
            room_tx,
            room_rx,
        }
    }

    fn get(&self) -> usize {
        self.lines.load(Ordering::Relaxed)
    }

    fn add(&self, n: usize) {
        self.lines.fetch_add(n, Ordering::Relaxed);
    }

    fn answered(&self, n: usize) {
        self.lines.fetch_sub(n.min(self.get()), Ordering::Relaxed);
        let _ = self.room_tx.try_send(());
    }

    /// Waits until fewer than [`MAX_IN_FLIGHT_PER_CONNECTION`] lines are unanswered;
    /// false when the writer is gone.
    async fn room(&self) -> bool {
        while self.get() >= MAX_IN_FLIGHT_PER_CONNECTION {
            if self.room_rx.recv().await.is_err() {
                return false;
            }
        }
        true
    }
}

async fn connection(stream: UnixStream, open: OpenConnection, policy: Arc<PeerPolicy>) {
    let ctx = &open.0;
    let peer = match socket::peer_of(&stream) {
        Ok(p) => p,
        Err(e) => {
            log::warn!("events socket: {e}");
            return;
        }
    };
    if !policy.allows(&peer) {
        bump(&ctx.counters.connections_refused_peer);
        log::warn!(
            "events socket: refused uid {} (pid {}): not allowed to send events",
            peer.uid,
            peer.pid
        );
        let line = format!("error: uid {} is not allowed to send events\n", peer.uid);
        refuse(stream, line).await;
        return;
    }
    // Never full: every entry answers at least one line, and `in_flight` bounds the lines.
    let (tx, rx) = smol::channel::bounded(MAX_IN_FLIGHT_PER_CONNECTION);
    let in_flight = InFlight::new();
    let reader = read_lines(stream.clone(), tx, &in_flight, ctx);
    let writer = write_answers(stream, rx, &in_flight, ctx);
    smol::future::zip(reader, writer).await;
}

/// The lines of one connection being read: the accepted ones not yet handed to the
/// store, and where the answers go.
struct Lines<'a> {
    ctx: &'a EventsContext,
    tx: Sender<Answer>,
    in_flight: &'a InFlight,
    limits: Limits,
    bucket: TokenBucket,
    line_number: u64,
    /// Accepted lines' events, handed to the store together at the end of a read (or
    /// before a refused line's answer, which must come after theirs).
    batch: Vec<NewEvent>,
}

impl Lines<'_> {
    /// Queues an answer; false when the writer is gone.
    async fn answer(&mut self, answer: Answer) -> bool {
        self.in_flight.add(answer.lines());
        self.tx.send(answer).await.is_ok()
    }

    /// Hands the batch to the store and queues its answer; false when the writer is gone.
    async fn submit(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let events = std::mem::take(&mut self.batch);
        let answer = submit(events, self.ctx).await;
        self.answer(answer).await
    }

    /// One complete line (without its newline); false when the writer is gone.
    async fn line(&mut self, line: &[u8], now: Instant, at: Timestamp) -> bool {
        self.line_number += 1;
        if self.in_flight.get() + self.batch.len() >= MAX_IN_FLIGHT_PER_CONNECTION
            && !(self.submit().await && self.in_flight.room().await)
        {
            return false;
        }
        match check_line(line, self.line_number, now, at, self) {
            Ok(event) => {
                self.batch.push(event);
                true
            }
            Err(refused) => {
                self.submit().await && self.answer(Answer::Ready(refused.to_string())).await
            }
        }
    }

    /// A line over `max_message_bytes`, answered without being read whole.
    async fn too_large(&mut self) -> bool {
        self.line_number += 1;
        bump(&self.ctx.counters.rejected_too_large);
        let refused = format!(
            "error: message larger than {} bytes",
            self.limits.max_message_bytes
        );
        self.submit().await
            && self.in_flight.room().await
            && self.answer(Answer::Ready(refused)).await
    }
}

/// Reads lines and answers each; ends at end of stream, on a read error, on shutdown,
/// or when the writer gave up. Complete lines are parsed straight from the read buffer;
/// only a line cut by the end of a read is copied.
async fn read_lines(
    mut stream: UnixStream,
    tx: Sender<Answer>,
    in_flight: &InFlight,
    ctx: &EventsContext,
) {
    let limits = Limits::from_config(&ctx.config);
    let max_message_bytes = limits.max_message_bytes;
    let mut lines = Lines {
        ctx,
        tx,
        in_flight,
        limits,
        bucket: TokenBucket::new(ctx.config.rate_per_second, ctx.config.burst),
        line_number: 0,
        batch: Vec::new(),
    };
    let mut chunk = vec![0u8; READ_CHUNK];
    // The start of a line cut by the end of the last read.
    let mut partial: Vec<u8> = Vec::new();
    // Skipping the rest of an oversized line, whose error was already answered.
    let mut skipping = false;
    loop {
        let read = async { Some(stream.read(&mut chunk).await) }
            .or(async {
                ctx.stopped().await;
                None
            })
            .await;
        let n = match read {
            Some(Ok(0)) | Some(Err(_)) | None => break,
            Some(Ok(n)) => n,
        };
        let now = Instant::now();
        // The lines of one read arrived together: one time for all of them.
        let at = Timestamp::now();
        let mut rest = chunk.get(..n).unwrap_or_default();
        while !rest.is_empty() {
            let (part, complete) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            rest = rest
                .get(part.len() + usize::from(complete)..)
                .unwrap_or_default();
            if skipping {
                skipping = !complete;
                continue;
            }
            if partial.len() + part.len() > max_message_bytes {
                // Answered now, counted as this line's answer; the rest is dropped.
                partial.clear();
                skipping = !complete;
                if !lines.too_large().await {
                    return;
                }
                continue;
            }
            if !complete {
                partial.extend_from_slice(part);
                continue;
            }
            let whole = if partial.is_empty() {
                lines.line(part, now, at).await
            } else {
                partial.extend_from_slice(part);
                let line = std::mem::take(&mut partial);
                let ok = lines.line(&line, now, at).await;
                partial = line;
                partial.clear();
                ok
            };
            if !whole {
                return;
            }
        }
        if !lines.submit().await {
            return;
        }
        // A flooding client always has data ready; let other connections run.
        smol::future::yield_now().await;
    }
    let _ = lines.submit().await;
}

/// Why one line was refused; its `Display` is the answer line sent back.
enum Refusal {
    ShuttingDown,
    RateLimited,
    NoConsent,
    Malformed {
        line_number: u64,
        error: parse::LineError,
    },
    Encode(crate::local::buffer::BufferError),
    Store(StoreError),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::ShuttingDown => f.write_str("error: the agent is shutting down"),
            Refusal::RateLimited => f.write_str("error: rate limit exceeded"),
            Refusal::NoConsent => f.write_str("error: app_events consent is not granted"),
            Refusal::Malformed { line_number, error } => {
                write!(f, "error: line {line_number}: {error}")
            }
            Refusal::Encode(e) => write!(f, "error: cannot encode the event: {e}"),
            Refusal::Store(e) => write!(f, "error: cannot store the event: {e}"),
        }
    }
}

/// Checks one complete line: the event to store, or why it is refused.
fn check_line(
    line: &[u8],
    line_number: u64,
    now: Instant,
    at: Timestamp,
    lines: &mut Lines<'_>,
) -> Result<NewEvent, Refusal> {
    let ctx = lines.ctx;
    let c = &ctx.counters;
    if ctx.stopping() {
        return Err(Refusal::ShuttingDown);
    }
    if !lines.bucket.take(now) {
        bump(&c.rejected_rate);
        return Err(Refusal::RateLimited);
    }
    if !ctx.app_events_active.load(Ordering::SeqCst) {
        bump(&c.rejected_consent);
        return Err(Refusal::NoConsent);
    }
    let event = parse::parse_event_line(line, &lines.limits).map_err(|error| {
        bump(&c.rejected_malformed);
        Refusal::Malformed { line_number, error }
    })?;
    let payload = Payload::AppEvent(event);
    let kind = match &payload {
        Payload::AppEvent(event) => event.name.as_str(),
        _ => "",
    };
    let new_event = payload_event(&payload, kind, at).map_err(|e| {
        bump(&c.rejected_store);
        Refusal::Encode(e)
    })?;
    // Refused here, one line at a time, so one event too large never fails its batch.
    ctx.store.check_event(&new_event).map_err(|e| {
        bump(&c.rejected_store);
        Refusal::Store(e)
    })?;
    Ok(new_event)
}

/// Hands accepted lines' events to the store in one request. Queued on the executor
/// unless the store is at its in-flight bound; only then does `submit_many` block, so
/// only then is it sent off the executor.
async fn submit(events: Vec<NewEvent>, ctx: &EventsContext) -> Answer {
    let n = events.len();
    let (done_tx, done_rx) = smol::channel::bounded(1);
    let done = move |result: Result<Vec<u64>, assent_store::StoreError>| {
        // Runs on the committer thread: only a non-blocking send.
        let _ = done_tx.try_send(result);
    };
    let submitted = match ctx.store.try_submit_many(events, done) {
        Ok(TrySubmitMany::Queued) => Ok(()),
        Ok(TrySubmitMany::WouldBlock { events, done }) => {
            let store = Arc::clone(&ctx.store);
            crate::worker::run(move || store.submit_many(events, done)).await
        }
        Err(e) => Err(e),
    };
    match submitted {
        Ok(()) => Answer::Committing {
            events: n,
            done: done_rx,
        },
        Err(e) => Answer::Failed {
            events: n,
            reason: e.to_string(),
        },
    }
}

/// Writes answers in order, batching those already known into one write. Ends when the
/// reader is done and every answer is written, or when the client stops reading.
async fn write_answers(
    mut stream: UnixStream,
    rx: Receiver<Answer>,
    in_flight: &InFlight,
    ctx: &EventsContext,
) {
    let mut out: Vec<u8> = Vec::new();
    while let Ok(first) = rx.recv().await {
        let mut next = Some(first);
        let mut written = true;
        while let Some(answer) = next.take() {
            let lines = answer.lines();
            match answer {
                Answer::Ready(line) => {
                    out.extend_from_slice(line.as_bytes());
                    out.push(b'\n');
                }
                Answer::Failed { events, reason } => store_failed(events, &reason, &mut out, ctx),
                Answer::Committing { events, done } => {
                    let result = match done.try_recv() {
                        Ok(r) => Ok(r),
                        Err(_) => {
                            // Not committed yet: send what is known before waiting.
                            written = flush(&mut stream, &mut out, ctx).await;
                            done.recv().await
                        }
                    };
                    committed(result, events, &mut out, ctx);
                }
            }
            in_flight.answered(lines);
            if !written {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !written || !flush(&mut stream, &mut out, ctx).await {
            // The client is gone or stuck: stop the reader too.
            let _ = stream.shutdown(std::net::Shutdown::Both);
            rx.close();
            in_flight.room_rx.close();
            // Let in-flight commits finish; their answers have nowhere to go.
            while let Ok(answer) = rx.recv().await {
                if let Answer::Committing { events, done } = answer {
                    committed(done.recv().await, events, &mut out, ctx);
                    out.clear();
                }
            }
            return;
        }
    }
}

/// Appends the answers for a commit's outcome to `out`, counting them.
fn committed(
    result: Result<Result<Vec<u64>, StoreError>, smol::channel::RecvError>,
    events: usize,
    out: &mut Vec<u8>,
    ctx: &EventsContext,
) {
    use std::io::Write;
    match result {
        Ok(Ok(seqs)) => {
            for seq in seqs.iter().take(events) {
                // Writing to a `Vec` cannot fail.
                let _ = writeln!(out, "ok {seq}");
            }
            let answered = seqs.len().min(events);
            ctx.counters
                .accepted
                .fetch_add(answered as u64, Ordering::Relaxed);
            if answered > 0 {
                (ctx.on_accepted)();
            }
            // The store reports one seq per event; an answer for every line regardless.
            store_failed(
                events - answered,
                "the commit returned fewer seqs than events",
                out,
                ctx,
            );
        }
        Ok(Err(e)) => store_failed(events, &e.to_string(), out, ctx),
        Err(_) => store_failed(events, "the store closed", out, ctx),
    }
}

/// Appends `events` answers saying the store did not take them, counting them.
fn store_failed(events: usize, reason: &str, out: &mut Vec<u8>, ctx: &EventsContext) {
    use std::io::Write;
    for _ in 0..events {
        let _ = writeln!(out, "error: cannot store the event: {reason}");
    }
    ctx.counters
        .rejected_store
        .fetch_add(events as u64, Ordering::Relaxed);
}

/// Writes `out` and clears it; false when the client is gone or does not read (for
/// [`WRITE_TIMEOUT`], or [`SHUTDOWN_WRITE_GRACE`] once shutdown is asked, so a client
/// that does not read cannot hold up the daemon's exit).
async fn flush(stream: &mut UnixStream, out: &mut Vec<u8>, ctx: &EventsContext) -> bool {
    if out.is_empty() {
        return true;
    }
    let written = stream
        .write_all(out)
        .or(async {
            smol::Timer::after(WRITE_TIMEOUT).await;
            Err(std::io::ErrorKind::TimedOut.into())
        })
        .or(async {
            ctx.stopped().await;
            smol::Timer::after(SHUTDOWN_WRITE_GRACE).await;
            Err(std::io::ErrorKind::TimedOut.into())
        })
        .await;
    out.clear();
    written.is_ok()
}

/// A token bucket: `burst` messages at once, refilled at `rate` per second.
#[derive(Debug)]
struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate_per_second: u64, burst: u64) -> TokenBucket {
        TokenBucket {
            tokens: burst as f64,
            rate: rate_per_second as f64,
            burst: burst as f64,
            last: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
