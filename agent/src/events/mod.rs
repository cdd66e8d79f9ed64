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
//! future (no thread of its own). Each accepted line is queued with
//! [`Store::try_submit`] on the executor; only when the store is at its in-flight bound
//! does it go to the worker pool for the blocking [`Store::submit`]. One wake per line
//! when the store's committer thread reports the commit. Memory per connection is
//! bounded by `max_message_bytes` plus [`MAX_IN_FLIGHT_PER_CONNECTION`] answers.
//! Nothing is polled: an idle server sleeps in `accept` and `read`.

pub mod emit;
pub mod parse;

use crate::config::EventsConfig;
use crate::local::buffer::{payload_event, Timestamp};
use assent_store::{Store, StoreError, TrySubmit};
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

/// Bytes read from a connection at once.
const READ_CHUNK: usize = 8192;

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
    /// Called after each committed event (wakes the uploader). Runs on the server's
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

/// One line's answer, in the order lines arrived.
enum Answer {
    Ready(String),
    /// Waiting for the store's commit: the seq, or the store's error.
    Committing(Receiver<Result<u64, StoreError>>),
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
    let (tx, rx) = smol::channel::bounded(MAX_IN_FLIGHT_PER_CONNECTION);
    let reader = read_lines(stream.clone(), tx, ctx);
    let writer = write_answers(stream, rx, ctx);
    smol::future::zip(reader, writer).await;
}

/// Reads lines and turns each into an answer; ends at end of stream, on a read error,
/// on shutdown, or when the writer gave up.
async fn read_lines(mut stream: UnixStream, tx: Sender<Answer>, ctx: &EventsContext) {
    let limits = Limits::from_config(&ctx.config);
    let mut bucket = TokenBucket::new(ctx.config.rate_per_second, ctx.config.burst);
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut line: Vec<u8> = Vec::new();
    // Skipping the rest of an oversized line, whose error was already answered.
    let mut skipping = false;
    let mut line_number: u64 = 0;
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
        let mut rest = chunk.get(..n).unwrap_or_default();
        while !rest.is_empty() {
            let (part, complete) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            rest = rest
                .get(part.len() + usize::from(complete)..)
                .unwrap_or_default();
            if !skipping {
                if line.len() + part.len() > limits.max_message_bytes {
                    // Answered now, counted as this line's answer; the rest is dropped.
                    line_number += 1;
                    line.clear();
                    skipping = !complete;
                    bump(&ctx.counters.rejected_too_large);
                    let answer = Answer::Ready(format!(
                        "error: message larger than {} bytes",
                        limits.max_message_bytes
                    ));
                    if tx.send(answer).await.is_err() {
                        return;
                    }
                    continue;
                }
                line.extend_from_slice(part);
            }
            if !complete {
                continue;
            }
            if skipping {
                skipping = false;
                continue;
            }
            line_number += 1;
            let answer = handle_line(&line, line_number, &limits, &mut bucket, ctx).await;
            line.clear();
            if tx.send(answer).await.is_err() {
                return;
            }
        }
        // A flooding client always has data ready; let other connections run.
        smol::future::yield_now().await;
    }
}

/// Checks one complete line and, if it passes, hands it to the store.
async fn handle_line(
    line: &[u8],
    line_number: u64,
    limits: &Limits,
    bucket: &mut TokenBucket,
    ctx: &EventsContext,
) -> Answer {
    let c = &ctx.counters;
    if ctx.stopping() {
        return Answer::Ready("error: the agent is shutting down".to_string());
    }
    if !bucket.take(Instant::now()) {
        bump(&c.rejected_rate);
        return Answer::Ready("error: rate limit exceeded".to_string());
    }
    if !ctx.app_events_active.load(Ordering::SeqCst) {
        bump(&c.rejected_consent);
        return Answer::Ready("error: app_events consent is not granted".to_string());
    }
    let event = match parse::parse_event_line(line, limits) {
        Ok(e) => e,
        Err(e) => {
            bump(&c.rejected_malformed);
            return Answer::Ready(format!("error: line {line_number}: {e}"));
        }
    };
    let kind = event.name.clone();
    let new_event = match payload_event(&Payload::AppEvent(event), &kind, Timestamp::now()) {
        Ok(e) => e,
        Err(e) => {
            bump(&c.rejected_store);
            return Answer::Ready(format!("error: cannot encode the event: {e}"));
        }
    };
    let (done_tx, done_rx) = smol::channel::bounded(1);
    let done = move |result: Result<u64, assent_store::StoreError>| {
        // Runs on the committer thread: only a non-blocking send.
        let _ = done_tx.try_send(result);
    };
    // Queued here unless the store is at its in-flight bound; only then does `submit`
    // block, so only then is it sent off the executor.
    let submitted = match ctx.store.try_submit(new_event, done) {
        Ok(TrySubmit::Queued) => Ok(()),
        Ok(TrySubmit::WouldBlock { event, done }) => {
            let store = Arc::clone(&ctx.store);
            crate::worker::run(move || store.submit(event, done)).await
        }
        Err(e) => Err(e),
    };
    match submitted {
        Ok(()) => Answer::Committing(done_rx),
        Err(e) => {
            bump(&c.rejected_store);
            Answer::Ready(format!("error: cannot store the event: {e}"))
        }
    }
}

/// Writes answers in order, batching those already known into one write. Ends when the
/// reader is done and every answer is written, or when the client stops reading.
async fn write_answers(mut stream: UnixStream, rx: Receiver<Answer>, ctx: &EventsContext) {
    let mut out: Vec<u8> = Vec::new();
    while let Ok(first) = rx.recv().await {
        let mut next = Some(first);
        let mut written = true;
        while let Some(answer) = next.take() {
            let line = match answer {
                Answer::Ready(line) => line,
                Answer::Committing(done) => {
                    let result = match done.try_recv() {
                        Ok(r) => Ok(r),
                        Err(_) => {
                            // Not committed yet: send what is known before waiting.
                            written = flush(&mut stream, &mut out, ctx).await;
                            done.recv().await
                        }
                    };
                    committed(result, ctx)
                }
            };
            if !written {
                break;
            }
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
            next = rx.try_recv().ok();
        }
        if !written || !flush(&mut stream, &mut out, ctx).await {
            // The client is gone or stuck: stop the reader too.
            let _ = stream.shutdown(std::net::Shutdown::Both);
            rx.close();
            // Let in-flight commits finish; their answers have nowhere to go.
            while let Ok(answer) = rx.recv().await {
                if let Answer::Committing(done) = answer {
                    committed(done.recv().await, ctx);
                }
            }
            return;
        }
    }
}

/// The answer for a commit's outcome, counting it.
fn committed(
    result: Result<Result<u64, StoreError>, smol::channel::RecvError>,
    ctx: &EventsContext,
) -> String {
    match result {
        Ok(Ok(seq)) => {
            bump(&ctx.counters.accepted);
            (ctx.on_accepted)();
            format!("ok {seq}")
        }
        Ok(Err(e)) => {
            bump(&ctx.counters.rejected_store);
            format!("error: cannot store the event: {e}")
        }
        Err(_) => {
            bump(&ctx.counters.rejected_store);
            "error: cannot store the event: the store closed".to_string()
        }
    }
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
