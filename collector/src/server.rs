//! The HTTPS server: accept loop, TLS, HTTP/1.1 (hyper), request handling, the database
//! writer thread, the retention sweep and graceful shutdown.
//!
//! Threads: an async executor on `min(available cores, 8)` threads (the caller's
//! included) runs every connection; writer threads (one for SQLite, `database_writers`
//! for PostgreSQL), each owning a [`Storage`], take batches, erasures and sweeps from one
//! bounded queue. A writer stores the batches waiting together as one group (one
//! transaction on PostgreSQL) and answers each after the commit. When the queue is full
//! the client gets 429, so a slow disk turns into back-pressure, never memory growth.
//!
//! Costs per connection are bounded by the config: `max_connections` connections, a
//! header buffer of at most [`MAX_HEADER_BUFFER_BYTES`], and bodies of at most
//! `max_body_bytes` for at most `max_requests_in_flight` requests at once.

use crate::auth::{Principal, Tokens};
use crate::config::{Config, Database};
use crate::console::queries::ConsoleQueries;
use crate::metrics;
use crate::pg::PgStorage;
use crate::sqlite::SqliteStorage;
use crate::storage::{IngestOutcome, Storage, StorageError};
use assent_confcheck::Diagnostics;
use assent_wire::{
    decode_batch, decode_erasure, decode_erasure_any, encode, Batch, BatchAck, DecodeError,
    Encoding, Erasure, ErasureAck, ErasureRequest, ErrorBody, PATH_BATCHES, PATH_ERASURE,
    PROTOCOL_VERSION, PROTOCOL_VERSION_FENCED_ERASURE,
};
use futures_rustls::TlsAcceptor;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use smol::channel::{Receiver, Sender, TrySendError};
use smol::future;
use smol::net::{TcpListener, TcpStream};
use smol::stream::StreamExt;
use smol::{Executor, Timer};
use smol_hyper::rt::{FuturesIo, SmolTimer};
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The largest buffer hyper keeps for one connection's request head.
pub const MAX_HEADER_BUFFER_BYTES: usize = 64 * 1024;

/// Why the server could not start or stopped with an error.
#[derive(Debug)]
pub enum ServerError {
    /// Certificates, keys or the tokens file are unusable.
    Config(Diagnostics),
    /// The database could not be opened.
    Storage(StorageError),
    /// The listening socket or a thread could not be set up.
    Io(String),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Config(d) => d.fmt(f),
            ServerError::Storage(e) => e.fmt(f),
            ServerError::Io(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ServerError {}

/// Work for the writer thread; each carries where to send the result.
#[derive(Debug)]
enum Job {
    Ingest(Batch, Sender<Result<IngestOutcome, StorageError>>),
    Erase(Erasure, Sender<Result<u64, StorageError>>),
    Sweep(i64),
    /// An erasure asked for by a console operator, logged under their name.
    OperatorErase(ErasureRequest, String, Sender<Result<u64, StorageError>>),
}

/// Hands erasures from the console to the writer, through the same queue and
/// [`Storage::erase_by_operator`].
#[derive(Clone, Debug)]
pub struct Eraser {
    jobs: Sender<Job>,
}

impl Eraser {
    /// Erases and commits; returns the number of events deleted.
    pub async fn erase(&self, request: ErasureRequest, operator: String) -> Result<u64, String> {
        let (reply, answer) = smol::channel::bounded(1);
        self.jobs
            .send(Job::OperatorErase(request, operator, reply))
            .await
            .map_err(|_| "the database writer stopped".to_string())?;
        match answer.recv().await {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("the database writer stopped".to_string()),
        }
    }
}

/// Everything a request handler reads, shared by all connections.
struct State {
    config: Config,
    tls: Option<TlsAcceptor>,
    tokens: Option<Tokens>,
    client_certs: bool,
    jobs: Sender<Job>,
    shutting_down: AtomicBool,
    /// Closed (never sent on) when shutdown starts: every connection wakes up.
    shutdown: Receiver<()>,
    in_flight: AtomicUsize,
    connections: AtomicUsize,
}

/// Wall-clock milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Loads everything the server needs from `config` without serving: what `check-config`
/// runs after the config itself is valid.
pub fn check_files(config: &Config) -> Result<(), Diagnostics> {
    let mut all = Diagnostics::default();
    if config.tls.enabled {
        if let Err(d) = crate::tls::server_config(&config.tls) {
            all.extend(d);
        }
    }
    if let Some(path) = &config.auth.tokens_file {
        if let Err(d) = Tokens::load(path) {
            all.extend(d);
        }
    }
    all.extend(crate::console::check_files(config));
    if all.is_empty() {
        Ok(())
    } else {
        Err(all)
    }
}

/// Serves until SIGTERM or SIGINT, then finishes requests in flight and returns.
pub fn run(config: Config) -> Result<(), ServerError> {
    let tls = if config.tls.enabled {
        Some(TlsAcceptor::from(
            crate::tls::server_config(&config.tls).map_err(ServerError::Config)?,
        ))
    } else {
        None
    };
    let tokens = match &config.auth.tokens_file {
        Some(path) => Some(Tokens::load(path).map_err(ServerError::Config)?),
        None => None,
    };
    let writers = open_writers(&config.database)?;
    let console: Option<Box<dyn ConsoleQueries>> =
        match (&config.operator.console, &config.database) {
            (None, _) => None,
            (Some(_), Database::Sqlite(path)) => Some(Box::new(
                crate::console::sqlite::SqliteConsoleQueries::open(path)
                    .map_err(ServerError::Storage)?,
            )),
            (Some(_), Database::Postgres(target)) => Some(Box::new(
                crate::console::pg::PgConsoleQueries::open(target).map_err(ServerError::Storage)?,
            )),
        };
    serve_with_console(config, tls, tokens, writers, console)
}

/// One storage per writer thread: one for SQLite, `database_writers` for PostgreSQL.
fn open_writers(database: &Database) -> Result<Vec<Box<dyn Storage>>, ServerError> {
    match database {
        Database::Sqlite(path) => Ok(vec![Box::new(
            SqliteStorage::open(path).map_err(ServerError::Storage)?,
        )]),
        Database::Postgres(target) => {
            let mut writers: Vec<Box<dyn Storage>> = Vec::new();
            for _ in 0..target.writers {
                writers.push(Box::new(
                    PgStorage::open(target).map_err(ServerError::Storage)?,
                ));
            }
            log::info!(
                "database {} ({} writers, events by {}, schema version {})",
                target.url,
                target.writers,
                target.write_method.name(),
                crate::pg::SCHEMA_VERSION
            );
            Ok(writers)
        }
    }
}

/// Serves with given storage backends, one writer thread each, all taking jobs from one
/// queue: the seam where a backend plugs in.
pub fn serve(
    config: Config,
    tls: Option<TlsAcceptor>,
    tokens: Option<Tokens>,
    storages: Vec<Box<dyn Storage>>,
) -> Result<(), ServerError> {
    serve_with_console(config, tls, tokens, storages, None)
}

/// [`serve`] with the backend's console queries, needed when `[console]` is configured.
pub fn serve_with_console(
    config: Config,
    tls: Option<TlsAcceptor>,
    tokens: Option<Tokens>,
    storages: Vec<Box<dyn Storage>>,
    console: Option<Box<dyn ConsoleQueries>>,
) -> Result<(), ServerError> {
    let operator = crate::console::OperatorListeners::load(&config, console)?;
    let queue = usize::try_from(config.limits.ingest_queue_length).unwrap_or(usize::MAX);
    let (jobs, job_rx) = smol::channel::bounded::<Job>(queue);
    let queued = job_rx.clone();
    metrics::global().set_queue_depth(Box::new(move || queued.len()));
    metrics::global().writer_threads.store(
        i64::try_from(storages.len()).unwrap_or(i64::MAX),
        Ordering::Relaxed,
    );
    let mut writers = Vec::new();
    for (i, storage) in storages.into_iter().enumerate() {
        let job_rx = job_rx.clone();
        let writer = std::thread::Builder::new()
            .name(format!("db-writer-{i}"))
            .spawn(move || writer_loop(storage, job_rx))
            .map_err(|e| ServerError::Io(format!("cannot start a writer thread: {e}")))?;
        writers.push(writer);
    }
    drop(job_rx);

    let (shutdown_tx, shutdown_rx) = smol::channel::bounded::<()>(1);
    let client_certs = config.tls.enabled && config.tls.client_ca_file.is_some();
    let state = Arc::new(State {
        config,
        tls,
        tokens,
        client_certs,
        jobs,
        shutting_down: AtomicBool::new(false),
        shutdown: shutdown_rx,
        in_flight: AtomicUsize::new(0),
        connections: AtomicUsize::new(0),
    });

    let ex: Arc<Executor<'static>> = Arc::new(Executor::new());
    let (stop_workers, workers_stop) = smol::channel::bounded::<()>(1);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let mut workers = Vec::new();
    for i in 1..threads {
        let ex = ex.clone();
        let stop = workers_stop.clone();
        let handle = std::thread::Builder::new()
            .name(format!("http-{i}"))
            .spawn(move || smol::block_on(ex.run(stop.recv())))
            .map_err(|e| ServerError::Io(format!("cannot start a worker thread: {e}")))?;
        workers.push(handle);
    }

    let eraser = Eraser {
        jobs: state.jobs.clone(),
    };
    let result = smol::block_on(ex.run(async {
        operator.spawn(&ex, eraser).await?;
        main_loop(ex.clone(), state.clone(), shutdown_tx).await
    }));

    drop(stop_workers);
    for w in workers {
        let _ = w.join();
    }
    // Dropping the executor drops its remaining tasks and their `State` handles; with
    // the last `Sender<Job>` gone the writers finish the queue and stop.
    drop(ex);
    drop(state);
    for writer in writers {
        if writer.join().is_err() {
            log::error!("a database writer thread failed");
        }
    }
    result
}

async fn main_loop(
    ex: Arc<Executor<'static>>,
    state: Arc<State>,
    shutdown_tx: Sender<()>,
) -> Result<(), ServerError> {
    let listen = state.config.listen;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| ServerError::Io(format!("cannot listen on {listen}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| ServerError::Io(format!("cannot listen on {listen}: {e}")))?;
    let mut signals =
        async_signal::Signals::new([async_signal::Signal::Term, async_signal::Signal::Int])
            .map_err(|e| ServerError::Io(format!("cannot handle signals: {e}")))?;
    log::info!(
        "listening on {local} ({}, protocol v{})",
        if state.tls.is_some() {
            "https"
        } else {
            "plain http behind a proxy"
        },
        if state.config.max_protocol < PROTOCOL_VERSION_FENCED_ERASURE {
            "1 only (max_protocol = 1)"
        } else {
            "1 and v2"
        }
    );

    ex.spawn(retention_loop(state.clone())).detach();

    let accept = accept_loop(ex.clone(), state.clone(), listener);
    let signal = async {
        let name = match signals.next().await {
            Some(Ok(async_signal::Signal::Int)) => "SIGINT",
            Some(Ok(_)) => "SIGTERM",
            Some(Err(_)) | None => "a signal",
        };
        log::info!("{name} received: shutting down");
    };
    future::or(accept, signal).await;
    // The listener is dropped here: new connections are refused from now on.

    state.shutting_down.store(true, Ordering::SeqCst);
    drop(shutdown_tx);
    let deadline =
        Instant::now() + Duration::from_secs(state.config.limits.shutdown_timeout_seconds);
    while state.connections.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        Timer::after(Duration::from_millis(20)).await;
    }
    let left = state.connections.load(Ordering::SeqCst);
    if left > 0 {
        log::warn!("{left} connections still open at the shutdown deadline; closing them");
    }
    log::info!("stopped");
    Ok(())
}

/// Counts a live connection or request; the count drops with the guard.
struct CountGuard<'a>(&'a AtomicUsize);

impl Drop for CountGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn accept_loop(ex: Arc<Executor<'static>>, state: Arc<State>, listener: TcpListener) {
    let max = usize::try_from(state.config.limits.max_connections).unwrap_or(usize::MAX);
    let slots = Arc::new(smol::lock::Semaphore::new(max));
    loop {
        // At the limit, stop accepting: further clients wait in the kernel's backlog
        // instead of costing memory here.
        let permit = slots.acquire_arc().await;
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                log::warn!("accept failed: {e}");
                Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = state.clone();
        state.connections.fetch_add(1, Ordering::SeqCst);
        ex.spawn(async move {
            let _count = CountGuard(&state.connections);
            let open = &metrics::global().connections_open;
            open.fetch_add(1, Ordering::Relaxed);
            connection(&state, stream, peer).await;
            open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        })
        .detach();
    }
}

async fn with_timeout<T>(duration: Duration, f: impl std::future::Future<Output = T>) -> Option<T> {
    future::or(async { Some(f.await) }, async {
        Timer::after(duration).await;
        None
    })
    .await
}

async fn connection(state: &Arc<State>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let header_timeout = Duration::from_secs(state.config.limits.header_timeout_seconds);
    match &state.tls {
        Some(acceptor) => {
            let tls = match with_timeout(header_timeout, acceptor.accept(stream)).await {
                Some(Ok(tls)) => tls,
                Some(Err(e)) => {
                    log::debug!("{peer}: tls handshake failed: {e}");
                    return;
                }
                None => {
                    log::debug!("{peer}: tls handshake timed out");
                    return;
                }
            };
            let has_cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty());
            http(state, FuturesIo::new(tls), peer, has_cert).await;
        }
        None => http(state, FuturesIo::new(stream), peer, false).await,
    }
}

async fn http<I>(state: &Arc<State>, io: I, peer: SocketAddr, has_cert: bool)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let limits = &state.config.limits;
    let service_state = state.clone();
    let service = hyper::service::service_fn(move |req| {
        let state = service_state.clone();
        async move { Ok::<_, Infallible>(handle(&state, req, peer, has_cert).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(SmolTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_timeout_seconds))
        .keep_alive(true)
        .max_buf_size(MAX_HEADER_BUFFER_BYTES);
    let mut conn = pin!(builder.serve_connection(io, service));
    let shutdown = state.shutdown.clone();
    let finished = future::or(async { Some(conn.as_mut().await) }, async {
        let _ = shutdown.recv().await;
        None
    })
    .await;
    let result = match finished {
        Some(result) => result,
        None => {
            // Finish the request in flight, if any, then close.
            conn.as_mut().graceful_shutdown();
            let grace = Duration::from_secs(limits.shutdown_timeout_seconds);
            match with_timeout(grace, conn.as_mut()).await {
                Some(result) => result,
                None => return,
            }
        }
    };
    if let Err(e) = result {
        log::debug!("{peer}: connection ended: {e}");
    }
}

/// An answer before or instead of the normal one.
struct Refusal {
    status: StatusCode,
    reason: String,
    /// The request body was not read, so the connection cannot be reused.
    close: bool,
}

fn refuse(status: StatusCode, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
        close: false,
    }
}

fn refuse_close(status: StatusCode, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
        close: true,
    }
}

enum Endpoint {
    Batches,
    Erasure,
}

async fn handle(
    state: &State,
    req: Request<Incoming>,
    peer: SocketAddr,
    has_cert: bool,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let endpoint = match req.uri().path() {
        PATH_BATCHES => metrics::Endpoint::Batches,
        PATH_ERASURE => metrics::Endpoint::Erasure,
        _ => metrics::Endpoint::Other,
    };
    let response = answer(state, req, peer, has_cert).await;
    metrics::global().request(endpoint, response.status().as_u16(), started.elapsed());
    response
}

async fn answer(
    state: &State,
    req: Request<Incoming>,
    peer: SocketAddr,
    has_cert: bool,
) -> Response<Full<Bytes>> {
    let encoding = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Encoding::from_content_type);
    match respond(state, req, peer, has_cert, encoding).await {
        Ok((status, body)) => {
            let content_type = encoding.unwrap_or(Encoding::Json).content_type();
            build(status, body, content_type, &[])
        }
        Err(refusal) => {
            log::debug!("{peer}: {} {}", refusal.status.as_u16(), refusal.reason);
            error_response(state, refusal, encoding.unwrap_or(Encoding::Json))
        }
    }
}

fn build(
    status: StatusCode,
    body: Vec<u8>,
    content_type: &'static str,
    extra: &[(header::HeaderName, HeaderValue)],
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in extra {
        headers.insert(name.clone(), value.clone());
    }
    response
}

fn error_response(state: &State, refusal: Refusal, encoding: Encoding) -> Response<Full<Bytes>> {
    let body = encode(
        &ErrorBody {
            error: refusal.reason,
        },
        encoding,
    )
    .unwrap_or_default();
    let mut extra = Vec::new();
    if refusal.close || refusal.status == StatusCode::SERVICE_UNAVAILABLE {
        extra.push((header::CONNECTION, HeaderValue::from_static("close")));
    }
    if matches!(
        refusal.status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        extra.push((
            header::RETRY_AFTER,
            HeaderValue::from(state.config.limits.retry_after_seconds),
        ));
    }
    if refusal.status == StatusCode::UNAUTHORIZED {
        extra.push((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
    }
    if refusal.status == StatusCode::METHOD_NOT_ALLOWED {
        extra.push((header::ALLOW, HeaderValue::from_static("POST")));
    }
    build(refusal.status, body, encoding.content_type(), &extra)
}

fn authenticate(state: &State, req: &Request<Incoming>, has_cert: bool) -> Option<Principal> {
    if let Some(tokens) = &state.tokens {
        // With both configured, the certificate was required by TLS and the token is
        // checked here: both must be valid.
        let value = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        return tokens.check(value);
    }
    (state.client_certs && has_cert).then(|| Principal::Fleet("client-certificate".into()))
}

async fn respond(
    state: &State,
    req: Request<Incoming>,
    peer: SocketAddr,
    has_cert: bool,
    encoding: Option<Encoding>,
) -> Result<(StatusCode, Vec<u8>), Refusal> {
    if state.shutting_down.load(Ordering::SeqCst) {
        return Err(refuse_close(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down",
        ));
    }
    let endpoint = match (req.method(), req.uri().path()) {
        (&Method::POST, PATH_BATCHES) => Endpoint::Batches,
        (&Method::POST, PATH_ERASURE) => Endpoint::Erasure,
        (_, PATH_BATCHES | PATH_ERASURE) => {
            return Err(refuse_close(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not allowed here; use POST", req.method()),
            ))
        }
        (_, path) => {
            return Err(refuse_close(
                StatusCode::NOT_FOUND,
                format!("no such endpoint `{}`", path.escape_debug()),
            ))
        }
    };
    let Some(principal) = authenticate(state, &req, has_cert) else {
        return Err(refuse_close(
            StatusCode::UNAUTHORIZED,
            "missing or invalid credentials",
        ));
    };
    let Some(encoding) = encoding else {
        return Err(refuse_close(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content type must be `{}` or `{}`",
                assent_wire::CONTENT_TYPE_POSTCARD,
                assent_wire::CONTENT_TYPE_JSON
            ),
        ));
    };
    let limits = &state.config.limits;
    let max = usize::try_from(state.config.limits.max_requests_in_flight).unwrap_or(usize::MAX);
    let _in_flight = CountGuard(&state.in_flight);
    if state.in_flight.fetch_add(1, Ordering::SeqCst) >= max {
        return Err(refuse_close(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests",
        ));
    }
    let max_body = usize::try_from(limits.max_body_bytes).unwrap_or(usize::MAX);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes) {
        return Err(refuse_close(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {} bytes", limits.max_body_bytes),
        ));
    }
    let gzipped = match req
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("").trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("identity") => false,
        Some("gzip") => true,
        Some(other) => {
            return Err(refuse_close(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "content encoding `{}` not supported; use gzip or none",
                    other.escape_debug()
                ),
            ))
        }
    };
    let body = read_body(
        req.into_body(),
        max_body,
        declared,
        Duration::from_secs(limits.body_timeout_seconds),
    )
    .await?;
    let body = if gzipped {
        gunzip(&body, max_body)?
    } else {
        body
    };
    let bad = |e: DecodeError| refuse(StatusCode::BAD_REQUEST, e.0);
    let max_records = usize::try_from(limits.max_batch_events).unwrap_or(usize::MAX);
    match endpoint {
        Endpoint::Batches => {
            // Too many records is "too large", not "malformed": the client halves its
            // batch on 413, while a 400 would make it set the batch aside.
            let batch =
                decode_batch(&body, encoding, assent_wire::MAX_BATCH_RECORDS).map_err(bad)?;
            if batch.records.len() > max_records {
                return Err(refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "{} records, more than the limit of {max_records}",
                        batch.records.len()
                    ),
                ));
            }
            if !principal.may_act_for(&batch.device) {
                return Err(refuse(
                    StatusCode::FORBIDDEN,
                    format!("these credentials may not send for device {}", batch.device),
                ));
            }
            let (reply, answer) = smol::channel::bounded(1);
            let device = batch.device.clone();
            submit(state, Job::Ingest(batch, reply))?;
            let outcome = wait(answer).await?;
            if outcome.hole {
                log::info!(
                    "{peer}: device {device}: batch beyond the high-water {}; asked to resend",
                    outcome.acked_through
                );
            } else {
                log::debug!(
                    "{peer}: device {device}: {} records stored, acked through {}",
                    outcome.stored_records,
                    outcome.acked_through
                );
            }
            let ack = BatchAck {
                version: PROTOCOL_VERSION,
                acked_through: outcome.acked_through,
            };
            Ok((StatusCode::OK, encode(&ack, encoding).map_err(internal)?))
        }
        Endpoint::Erasure => {
            // `max_protocol = 1` answers a v2 body as a collector that predates it.
            let request = if state.config.max_protocol < PROTOCOL_VERSION_FENCED_ERASURE {
                decode_erasure(&body, encoding).map(Erasure::from)
            } else {
                decode_erasure_any(&body, encoding)
            }
            .map_err(bad)?;
            if !principal.may_act_for(&request.device) {
                return Err(refuse(
                    StatusCode::FORBIDDEN,
                    format!(
                        "these credentials may not erase for device {}",
                        request.device
                    ),
                ));
            }
            let (reply, answer) = smol::channel::bounded(1);
            let device = request.device.clone();
            submit(state, Job::Erase(request, reply))?;
            let erased = wait(answer).await?;
            log::info!("{peer}: device {device}: erasure of {erased} events committed");
            let ack = ErasureAck {
                version: PROTOCOL_VERSION,
                erased_events: erased,
            };
            Ok((StatusCode::OK, encode(&ack, encoding).map_err(internal)?))
        }
    }
}

fn internal(e: impl fmt::Display) -> Refusal {
    log::error!("internal error: {e}");
    refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

fn submit(state: &State, job: Job) -> Result<(), Refusal> {
    match state.jobs.try_send(job) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(_)) => {
            Err(refuse(StatusCode::TOO_MANY_REQUESTS, "ingest queue full"))
        }
        Err(TrySendError::Closed(_)) => {
            Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "shutting down"))
        }
    }
}

async fn wait<T>(answer: Receiver<Result<T, StorageError>>) -> Result<T, Refusal> {
    match answer.recv().await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(StorageError::Rejected(reason))) => Err(refuse(StatusCode::BAD_REQUEST, reason)),
        Ok(Err(e)) => Err(internal(e)),
        Err(_) => Err(internal("the database writer stopped")),
    }
}

/// Reads a body of at most `limit` bytes within `timeout`, stopping as soon as the limit
/// is passed.
async fn read_body(
    mut body: Incoming,
    limit: usize,
    declared: Option<u64>,
    timeout: Duration,
) -> Result<Vec<u8>, Refusal> {
    let capacity = declared
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
        .min(limit);
    let read = async {
        let mut bytes = Vec::with_capacity(capacity);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                refuse_close(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body: {e}"),
                )
            })?;
            if let Ok(data) = frame.into_data() {
                if bytes.len().saturating_add(data.len()) > limit {
                    return Err(refuse_close(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("body larger than {limit} bytes"),
                    ));
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(bytes)
    };
    match with_timeout(timeout, read).await {
        Some(result) => result,
        None => Err(refuse_close(
            StatusCode::REQUEST_TIMEOUT,
            format!("body not received within {} seconds", timeout.as_secs()),
        )),
    }
}

/// Inflates a gzip body, refusing it once it passes `limit` bytes: the limit applies to
/// what is decoded too, so a small bomb cannot become a large allocation.
fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, Refusal> {
    use std::io::Read;
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::GzDecoder::new(body)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("invalid gzip body: {e}")))?;
    if out.len() > limit {
        return Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {limit} bytes once decompressed"),
        ));
    }
    Ok(out)
}

/// Takes jobs until the queue closes. Batches waiting together are stored as one group
/// (one transaction on PostgreSQL), each answered after its commit; a job of another kind
/// met while gathering runs right after the group.
fn writer_loop(mut storage: Box<dyn Storage>, jobs: Receiver<Job>) {
    let m = metrics::global();
    let mut held: Option<Job> = None;
    loop {
        let job = match held.take() {
            Some(job) => job,
            None => match jobs.recv_blocking() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let _busy = metrics::Busy::start();
        match job {
            Job::Ingest(batch, reply) => {
                let mut group = vec![(batch, reply)];
                while group.len() < crate::pg::MAX_GROUP {
                    match jobs.try_recv() {
                        Ok(Job::Ingest(b, r)) => group.push((b, r)),
                        Ok(other) => {
                            held = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let batches: Vec<&Batch> = group.iter().map(|(b, _)| b).collect();
                let started = Instant::now();
                let results = storage.ingest_group(&batches, now_ms());
                // Each batch of a group waited for the group's commit.
                let elapsed = started.elapsed();
                for ((batch, reply), result) in group.iter().zip(results) {
                    m.ingest_latency(elapsed);
                    match &result {
                        Ok(o) if o.hole => {
                            m.holes_refused.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(o) => m.stored(&batch.records, o.stored_records),
                        Err(StorageError::Database(e)) => {
                            m.database_errors.fetch_add(1, Ordering::Relaxed);
                            log::error!("storing a batch of {}: {e}", batch.device);
                        }
                        Err(_) => {}
                    }
                    let _ = reply.try_send(result);
                }
            }
            Job::Erase(request, reply) => {
                let result = storage.erase(&request, now_ms());
                count_erasure(&result);
                if let Err(e) = &result {
                    log::error!("erasing for {}: {e}", request.device);
                }
                let _ = reply.try_send(result);
            }
            Job::OperatorErase(request, operator, reply) => {
                let result = storage.erase_by_operator(&request, now_ms(), &operator);
                count_erasure(&result);
                match &result {
                    Ok(n) => {
                        m.erasures_by_operator.fetch_add(1, Ordering::Relaxed);
                        log::info!(
                            "console: operator {operator} erased {n} events of device {}",
                            request.device
                        );
                    }
                    Err(e) => {
                        log::error!("erasing for {} (operator {operator}): {e}", request.device)
                    }
                }
                let _ = reply.try_send(result);
            }
            Job::Sweep(cutoff) => match storage.sweep_retention(cutoff) {
                Ok(0) => {}
                Ok(n) => {
                    m.retention_rows_dropped.fetch_add(n, Ordering::Relaxed);
                    log::info!("retention: deleted {n} events and gaps");
                }
                Err(e) => {
                    m.database_errors.fetch_add(1, Ordering::Relaxed);
                    log::error!("retention sweep: {e}");
                }
            },
        }
    }
}

fn count_erasure(result: &Result<u64, StorageError>) {
    let m = metrics::global();
    match result {
        Ok(n) => {
            m.erasures.fetch_add(1, Ordering::Relaxed);
            m.events_erased.fetch_add(*n, Ordering::Relaxed);
        }
        Err(StorageError::Database(_)) => {
            m.database_errors.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => {}
    }
}

async fn retention_loop(state: Arc<State>) {
    let interval = Duration::from_secs(state.config.retention_sweep_interval_seconds);
    let keep_ms = i64::try_from(state.config.retention_days)
        .unwrap_or(i64::MAX)
        .saturating_mul(86_400_000);
    loop {
        let cutoff = now_ms().saturating_sub(keep_ms);
        // Waiting for room (not try_send): a sweep may be late, never lost.
        if state.jobs.send(Job::Sweep(cutoff)).await.is_err() {
            return;
        }
        Timer::after(interval).await;
    }
}
