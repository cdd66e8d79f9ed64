//! `assent run`: the daemon. Its tasks run on one smol executor driven by the main
//! thread; blocking work goes to the two `worker` threads, the consent watcher has a
//! thread of its own, and so has the events server (`assent-events`, its connections
//! on a local executor). The parts:
//!
//! - the consent watcher (a thread on inotify) feeds consent changes in: collection
//!   starts and stops within a second, withdrawn categories are purged at once and an
//!   erasure request is queued;
//! - the scheduler collects each active category at its interval; inventory categories
//!   emit only when their facts changed (a digest of the last snapshot is kept in the
//!   buffer, so a restart does not resend), plus a heartbeat;
//! - the connectivity watcher (NETLINK_ROUTE) decides whether sending is possible and
//!   triggers a network collection when the network changes;
//! - the uploader sends when there is something to send and a link to send it on; with
//!   nothing queued it sleeps without periodic wakeups;
//! - signals: SIGTERM/SIGINT stop (finish the current commit, close the database),
//!   SIGHUP reloads the config (keeping the last good one on error), SIGUSR1 syncs now.

use crate::collect::identity::{Identity, LoadError};
use crate::collect::{self, inventory, PlatformReaders};
use crate::config::Config;
use crate::consent::{self, watch::ConsentWatcher, ConsentView};
use crate::local::buffer::{self, BufferError, Timestamp};
use crate::sync::connectivity::{Connectivity, RouteWatcher};
use crate::sync::driver::{drive, Drive, End, Retry};
use crate::sync::{backoff::Backoff, Step, Uploader};
use crate::unix::notify;
use crate::unix::socket::SocketError;
use assent_platform::{Category, Root};
use assent_store::Store;
use serde::Serialize;
use smol::channel::{Receiver, Sender};
use smol::future::FutureExt;
use smol::stream::StreamExt;
use smol::{Executor, Timer};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// An inventory snapshot is re-sent at least this often even when nothing changed.
pub const HEARTBEAT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Categories whose events are snapshots of slowly changing facts.
const INVENTORY: [Category; 5] = [
    Category::DeviceId,
    Category::Hardware,
    Category::Os,
    Category::Network,
    Category::Software,
];

/// What `assent status` shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub started_at: String,
    pub active_categories: Vec<Category>,
    pub consent_problem: Option<String>,
    pub connectivity: Option<Connectivity>,
    pub last_sync: Option<String>,
    pub last_sync_result: Option<String>,
    pub next_attempt_in_seconds: Option<f64>,
    pub backoff_ceiling_seconds: Option<f64>,
    /// Queued records, consent records included.
    pub queued_events: u64,
    /// Of `queued_events`, the consent records.
    pub queued_consent_records: u64,
    pub queued_gaps: u64,
    pub buffer_file_bytes: u64,
    pub sent_batches: u64,
    pub local_events: Option<crate::events::EventsStats>,
}

/// Everything the daemon's tasks share.
pub struct Daemon {
    pub config: RwLock<Config>,
    pub store: Arc<Store>,
    pub view: Mutex<ConsentView>,
    pub app_events_active: Arc<AtomicBool>,
    pub status: Mutex<Status>,
    pub shutting_down: Arc<AtomicBool>,
    /// The events server, once it runs (for its counters in `status`).
    pub events: Mutex<Option<Arc<crate::events::EventsContext>>>,
    sync_now: Sender<SyncReason>,
    sync_rx: Receiver<SyncReason>,
    schedule_now: Sender<Option<Category>>,
    schedule_rx: Receiver<Option<Category>>,
    /// Set by a wake-up that must not wait for the sync interval (a request, consent,
    /// the link back): the channel holds one reason, so a pending `NewData` may have
    /// taken its place.
    wake_is_urgent: AtomicBool,
    /// Set by the first new data since the uploader last looked at the buffer; later
    /// data sends no wake-up until it looks again (the events socket commits thousands
    /// of times a second, and each wake-up would cost the uploader a context switch).
    new_data_pending: Arc<AtomicBool>,
    online: AtomicBool,
}

/// What the control socket may ask of the running daemon.
impl crate::control::Target for Daemon {
    fn config(&self) -> Config {
        self.config_snapshot()
    }

    fn store(&self) -> &Store {
        &self.store
    }

    fn status(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self.status_now())
    }

    fn sync_now(&self, consent_changed: bool) {
        self.wake_sync(if consent_changed {
            SyncReason::Consent
        } else {
            SyncReason::Requested
        });
    }
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon").finish_non_exhaustive()
    }
}

/// Wakes the uploader for new data unless a wake-up for new data is already pending.
fn wake_for_new_data(pending: &AtomicBool, sync_now: &Sender<SyncReason>) {
    if !pending.swap(true, Ordering::SeqCst) {
        let _ = sync_now.try_send(SyncReason::NewData);
    }
}

/// Why the uploader was woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncReason {
    NewData,
    Requested,
    ConnectivityReturned,
    Consent,
}

impl Daemon {
    /// A copy of the current configuration (SIGHUP may replace it).
    pub fn config_snapshot(&self) -> Config {
        self.config
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Wakes the uploader (never blocks; a pending wake is enough).
    pub fn wake_sync(&self, reason: SyncReason) {
        if reason == SyncReason::NewData {
            wake_for_new_data(&self.new_data_pending, &self.sync_now);
            return;
        }
        self.wake_is_urgent.store(true, Ordering::SeqCst);
        let _ = self.sync_now.try_send(reason);
    }

    fn view(&self) -> ConsentView {
        self.view
            .lock()
            .map(|v| v.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    fn with_status(&self, f: impl FnOnce(&mut Status)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    /// The status with fresh queue figures.
    pub fn status_now(&self) -> Status {
        let mut status = self.status.lock().map(|s| s.clone()).unwrap_or_default();
        if let Ok(stats) = self.store.stats() {
            status.queued_events = stats.count;
            status.queued_consent_records = stats
                .per_category
                .get(buffer::CONSENT_CATEGORY)
                .map_or(0, |c| c.count);
            status.queued_gaps = stats.gaps;
            status.buffer_file_bytes = stats.file_bytes;
        }
        status.sent_batches = crate::local::outbox::sent_log(&self.store)
            .map(|l| l.len() as u64)
            .unwrap_or(0);
        status.local_events = self
            .events
            .lock()
            .ok()
            .and_then(|e| e.as_ref().map(|e| e.stats()));
        status
    }
}

/// Why the daemon could not start.
#[derive(Debug)]
pub enum DaemonError {
    /// The buffer could not be opened.
    Buffer(BufferError),
    /// The device identity could not be loaded or created.
    Identity(LoadError),
    /// Signal handlers could not be installed.
    Signals(std::io::Error),
    /// The consent watcher could not start.
    ConsentWatcher(std::io::Error),
    /// The control socket could not be bound.
    ControlSocket(SocketError),
    /// The events socket could not be bound.
    EventsSocket(crate::events::BindError),
    /// The events socket's thread could not be started.
    EventsThread(std::io::Error),
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaemonError::Buffer(e) => std::fmt::Display::fmt(e, f),
            DaemonError::EventsSocket(e) => std::fmt::Display::fmt(e, f),
            DaemonError::Identity(e) => std::fmt::Display::fmt(e, f),
            DaemonError::Signals(e) => write!(f, "cannot handle signals: {e}"),
            DaemonError::ConsentWatcher(e) => write!(f, "consent watcher: {e}"),
            DaemonError::ControlSocket(e) => write!(f, "control socket: {e}"),
            DaemonError::EventsThread(e) => write!(f, "cannot start the events thread: {e}"),
        }
    }
}

impl std::error::Error for DaemonError {}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(config: Config) -> Result<(), DaemonError> {
    let store = Arc::new(buffer::open(&config).map_err(DaemonError::Buffer)?);
    // Created once here, before any task needs it, so tasks never race to create it.
    Identity::load(&config).map_err(DaemonError::Identity)?;
    let (sync_now, sync_rx) = smol::channel::bounded(1);
    let (schedule_now, schedule_rx) = smol::channel::unbounded();
    let (_, view) = consent::load(&config);
    let daemon = Arc::new(Daemon {
        app_events_active: Arc::new(AtomicBool::new(view.is_active(Category::AppEvents))),
        view: Mutex::new(view),
        config: RwLock::new(config.clone()),
        store,
        status: Mutex::new(Status {
            started_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            ..Status::default()
        }),
        shutting_down: Arc::new(AtomicBool::new(false)),
        events: Mutex::new(None),
        sync_now,
        sync_rx,
        schedule_now,
        schedule_rx,
        wake_is_urgent: AtomicBool::new(false),
        new_data_pending: Arc::new(AtomicBool::new(false)),
        online: AtomicBool::new(false),
    });
    let ex = Arc::new(Executor::new());
    let result = smol::block_on(ex.run(main_loop(ex.clone(), daemon.clone())));
    daemon.shutting_down.store(true, Ordering::SeqCst);
    drop(ex);
    // The last handle closes the database after the committer finished its group.
    drop(daemon);
    result
}

async fn main_loop(ex: Arc<Executor<'static>>, daemon: Arc<Daemon>) -> Result<(), DaemonError> {
    use async_signal::{Signal, Signals};
    let mut signals = Signals::new([Signal::Term, Signal::Int, Signal::Hup, Signal::Usr1])
        .map_err(DaemonError::Signals)?;

    // Consent: the watcher thread sends every new view; the task applies it.
    let (consent_tx, consent_rx) = smol::channel::unbounded();
    let watcher = ConsentWatcher::spawn(daemon.config_snapshot(), move |view| {
        let _ = consent_tx.send_blocking(view);
    })
    .map_err(DaemonError::ConsentWatcher)?;
    ex.spawn(consent_task(daemon.clone(), consent_rx)).detach();
    ex.spawn(connectivity_task(daemon.clone())).detach();
    ex.spawn(scheduler_task(daemon.clone())).detach();
    ex.spawn(uploader_task(daemon.clone())).detach();
    ex.spawn(retention_task(daemon.clone())).detach();
    if let Some(period) = notify::watchdog_period() {
        ex.spawn(async move {
            loop {
                Timer::after(period).await;
                notify::send("WATCHDOG=1");
            }
        })
        .detach();
    }
    let control =
        crate::control::bind(&daemon.config_snapshot()).map_err(DaemonError::ControlSocket)?;
    ex.spawn(crate::control::serve(control, daemon.clone(), ex.clone()))
        .detach();
    let events_listener =
        crate::events::bind(&daemon.config_snapshot().events).map_err(DaemonError::EventsSocket)?;
    // The sender alone, not the daemon: the daemon holds this context (no cycle, so the
    // store closes at shutdown).
    let waker = daemon.sync_now.clone();
    let new_data_pending = Arc::clone(&daemon.new_data_pending);
    let events = Arc::new(crate::events::EventsContext::new(
        daemon.store.clone(),
        daemon.app_events_active.clone(),
        daemon.config_snapshot().events,
        Box::new(move || wake_for_new_data(&new_data_pending, &waker)),
        daemon.shutting_down.clone(),
    ));
    if let Ok(mut slot) = daemon.events.lock() {
        *slot = Some(events.clone());
    }
    // On a thread of its own: the uploader's CPU bursts on this executor (reading,
    // encoding and gzipping batches while programs emit) would otherwise hold up the
    // socket's reads and answers (docs/performance.md).
    let (served_tx, served_rx) = smol::channel::bounded::<()>(1);
    let serving = events.clone();
    std::thread::Builder::new()
        .name("assent-events".to_string())
        .spawn(move || {
            smol::block_on(crate::events::serve(events_listener, serving));
            let _ = served_tx.send_blocking(());
        })
        .map_err(DaemonError::EventsThread)?;

    log::info!(
        "running (state in {}, consent file {})",
        daemon.config_snapshot().state_dir.display(),
        daemon.config_snapshot().consent_file.display()
    );
    notify::send("READY=1\nSTATUS=running");
    while let Some(signal) = signals.next().await {
        match signal {
            Ok(Signal::Term | Signal::Int) => {
                log::info!("stopping");
                notify::send("STOPPING=1");
                daemon.shutting_down.store(true, Ordering::SeqCst);
                // Stop accepting events and answer those whose commit is in flight.
                events.shut_down();
                break;
            }
            Ok(Signal::Hup) => reload(&daemon),
            Ok(Signal::Usr1) => {
                log::info!("SIGUSR1: syncing now");
                daemon.wake_sync(SyncReason::Requested);
            }
            Ok(other) => log::debug!("ignoring {other:?}"),
            Err(e) => log::warn!("signal: {e}"),
        }
    }
    drop(watcher);
    async {
        // Closed without a send only if the thread ended early; either way it is done.
        let _ = served_rx.recv().await;
    }
    .or(async {
        Timer::after(Duration::from_millis(1500)).await;
        log::warn!("events still in flight at the shutdown deadline");
    })
    .await;
    Ok(())
}

/// SIGHUP: reads the config again; on any error keeps the running one.
fn reload(daemon: &Daemon) {
    let path = daemon.config_snapshot().path;
    match Config::load(&path) {
        Ok(new) => {
            if new.state_dir != daemon.config_snapshot().state_dir {
                log::warn!("SIGHUP: state_dir changes only on restart; keeping the current one");
            }
            if let Ok(mut c) = daemon.config.write() {
                *c = new;
            }
            crate::unix::logger::set_level(daemon.config_snapshot().log_level);
            log::info!("SIGHUP: configuration reloaded from {}", path.display());
            let _ = daemon.schedule_now.try_send(None);
        }
        Err(errors) => {
            log::error!(
                "SIGHUP: {}: invalid, keeping the running configuration:\n{errors}",
                path.display()
            );
        }
    }
}

async fn consent_task(daemon: Arc<Daemon>, views: Receiver<ConsentView>) {
    while let Ok(view) = views.recv().await {
        let config = daemon.config_snapshot();
        if let Some(problem) = &view.problem {
            log::warn!("{problem}");
        }
        // Under the decision lock, so a decision being made by `assent consent` is
        // fully queued before the upload this wakes looks at the buffer.
        let applied = {
            let (daemon, view) = (daemon.clone(), view.clone());
            crate::worker::run(move || {
                let lock = consent::DecisionLock::acquire(&config.state_dir);
                if let Err(e) = &lock {
                    log::warn!("consent: {e}; applying without the lock");
                }
                buffer::apply_consent(&config, &daemon.store, &view)
            })
            .await
        };
        match applied {
            Ok(applied) => {
                for (category, count) in &applied.purged {
                    log::info!("{category} withdrawn: deleted {count} unsent events");
                }
                // Woken for every new view, not only for changes applied here: a
                // decision made by `assent consent` was applied (its records and
                // erasure queued) by the CLI itself, and must not wait for the next
                // interval. The watcher sends a view only when the file changed.
                daemon.wake_sync(SyncReason::Consent);
            }
            Err(e) => log::error!("applying consent: {e}"),
        }
        daemon
            .app_events_active
            .store(view.is_active(Category::AppEvents), Ordering::SeqCst);
        let active: Vec<Category> = view.active().into_iter().collect();
        daemon.with_status(|s| {
            s.active_categories = active.clone();
            s.consent_problem = view.problem.clone();
        });
        notify::send(&format!(
            "STATUS=active categories: {}",
            if active.is_empty() {
                "none".to_string()
            } else {
                active
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
        if let Ok(mut v) = daemon.view.lock() {
            *v = view;
        }
        let _ = daemon.schedule_now.try_send(None);
    }
}

async fn connectivity_task(daemon: Arc<Daemon>) {
    let mut watcher = match RouteWatcher::open() {
        Ok(w) => Some(w),
        Err(e) => {
            log::error!("{e}: connectivity changes will not be noticed; assuming online");
            None
        }
    };
    let mut previous: Option<Connectivity> = None;
    loop {
        let config = daemon.config_snapshot();
        let now = crate::worker::run(move || Connectivity::read(&Root::live(), &config)).await;
        if previous.as_ref() != Some(&now) {
            log::info!(
                "connectivity: {}",
                match (&now.route_interface, now.metered) {
                    (Some(i), true) => format!("online via {i} (metered)"),
                    (Some(i), false) => format!("online via {i}"),
                    (None, _) => "offline (no interface up with a default route)".to_string(),
                }
            );
            let was_online = previous.as_ref().is_some_and(|p| p.online);
            daemon.online.store(now.online, Ordering::SeqCst);
            if now.online && !was_online {
                daemon.wake_sync(SyncReason::ConnectivityReturned);
            }
            if previous.is_some() {
                // The network changed: collect it at once.
                let _ = daemon.schedule_now.try_send(Some(Category::Network));
            }
            daemon.with_status(|s| s.connectivity = Some(now.clone()));
            previous = Some(now);
        }
        let Some(w) = watcher.as_mut() else {
            daemon.online.store(true, Ordering::SeqCst);
            return;
        };
        if let Err(e) = w.changed().await {
            log::error!("{e}");
            Timer::after(Duration::from_secs(1)).await;
        }
    }
}

async fn uploader_task(daemon: Arc<Daemon>) {
    let config = daemon.config_snapshot();
    if config.collector.is_none() {
        log::warn!("no [collector] configured: events are kept in the buffer, never sent");
        return;
    }
    let mut backoff = Backoff::new(
        Duration::from_secs(config.sync.backoff_base_seconds.max(1)),
        Duration::from_secs(config.sync.backoff_max_seconds.max(1)),
    );
    let mut last_sent: Option<Instant> = None;
    // Anything left from before a restart is sent without waiting for new data.
    daemon.wake_sync(SyncReason::NewData);
    loop {
        let Ok(mut reason) = daemon.sync_rx.recv().await else {
            return;
        };
        // Data from now on wakes the uploader again (once), whatever this wake-up leads to.
        daemon.new_data_pending.store(false, Ordering::SeqCst);
        let urgent = daemon.wake_is_urgent.swap(false, Ordering::SeqCst);
        // Gather new data into fewer, larger batches: at most one sync per interval,
        // unless asked explicitly.
        if reason == SyncReason::NewData && !urgent {
            let interval = Duration::from_secs(daemon.config_snapshot().sync.interval_seconds);
            if let Some(due) = last_sent.map(|t| t + interval) {
                reason = wait_until_due(&daemon, due).await;
            }
        }
        if reason == SyncReason::ConnectivityReturned {
            backoff.reset();
        }
        if !daemon.online.load(Ordering::SeqCst) {
            log::debug!("offline: not syncing until connectivity returns");
            continue;
        }
        let config = daemon.config_snapshot();
        let mut uploader = match Uploader::new(&config, &daemon.store) {
            Ok(u) => u,
            Err(e) => {
                log::error!("{e}");
                continue;
            }
        };
        if reason == SyncReason::Requested {
            backoff.reset();
        }
        let mut task = UploaderTask {
            daemon: &daemon,
            last_sent: &mut last_sent,
        };
        // Before the first read of the buffer: data committed after that read must wake
        // the uploader for the next sync.
        daemon.new_data_pending.store(false, Ordering::SeqCst);
        match drive(&mut uploader, &mut backoff, &mut task).await {
            End::Stopped => return,
            End::Idle => daemon.with_status(|s| s.next_attempt_in_seconds = None),
            End::Deferred(reason) => {
                log::info!("not sending: {reason}");
                daemon.with_status(|s| s.last_sync_result = Some(format!("deferred: {reason}")));
            }
            // Offline after a failure: connectivity's return wakes the task again.
            End::GaveUp(_) => {}
        }
    }
}

/// The daemon's side of the sync driver: status and logs after each step; a retry
/// sleeps until its delay passes or something wakes the uploader, and gives up when
/// the link is gone.
struct UploaderTask<'a> {
    daemon: &'a Daemon,
    last_sent: &'a mut Option<Instant>,
}

impl Drive for UploaderTask<'_> {
    fn observed(&mut self, step: &Step) {
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        match step {
            Step::Idle | Step::Deferred(_) | Step::Retry { .. } => {}
            Step::Sent {
                events,
                acked_through,
                ..
            } => {
                // The first sync of this run at info, so a foreground log shows data
                // flowing; the rest at debug (`assent status` has the latest).
                if self.last_sent.is_none() {
                    log::info!(
                        "first sync of this run: sent {events} events, acked through \
                         {acked_through}; `assent status` shows later ones"
                    );
                } else {
                    log::debug!("sent {events} events, acked through {acked_through}");
                }
                *self.last_sent = Some(Instant::now());
                self.daemon.with_status(|s| {
                    s.last_sync = Some(now);
                    s.last_sync_result = Some(format!(
                        "sent {events} events, acked through {acked_through}"
                    ));
                    s.backoff_ceiling_seconds = None;
                });
            }
            Step::Erased { device, events } => {
                self.daemon.with_status(|s| {
                    s.last_sync_result =
                        Some(format!("collector erased {events} events of {device}"));
                });
            }
            Step::DeadLettered { reason, .. } => {
                self.daemon
                    .with_status(|s| s.last_sync_result = Some(reason.clone()));
            }
        }
    }

    async fn retry(&mut self, reason: &str, delay: Duration) -> Retry {
        log::warn!(
            "sync: {reason}; next attempt in {:.1} s",
            delay.as_secs_f64()
        );
        self.daemon.with_status(|s| {
            s.last_sync_result = Some(reason.to_string());
            s.next_attempt_in_seconds = Some(delay.as_secs_f64());
            s.backoff_ceiling_seconds = Some(delay.as_secs_f64());
        });
        // A wake-up (new data, a request, connectivity back) ends the wait early.
        let woken = sleep_or_woken(self.daemon, delay).await;
        if !self.daemon.online.load(Ordering::SeqCst) {
            Retry::Stop
        } else if woken == Some(SyncReason::ConnectivityReturned) {
            Retry::AgainFresh
        } else {
            Retry::Again
        }
    }

    fn stopping(&self) -> bool {
        self.daemon.shutting_down.load(Ordering::SeqCst)
    }
}

/// How often the daemon applies the retention limit (also done at every open).
const RETENTION_PERIOD: Duration = Duration::from_secs(3600);

/// Expires old unsent events hourly. The period runs on the monotonic clock (smol's
/// timers use `Instant`), so a wall clock jump neither stalls nor hurries it.
async fn retention_task(daemon: Arc<Daemon>) {
    loop {
        Timer::after(RETENTION_PERIOD).await;
        if daemon.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        let store = daemon.store.clone();
        crate::worker::run(move || buffer::expire(&store)).await;
    }
}

/// Waits until `due`, the end of the sync interval. More new data is what the wait is
/// for, so only an urgent wake-up (a request, consent, the link back) ends it early;
/// returns why the sync goes ahead.
async fn wait_until_due(daemon: &Daemon, due: Instant) -> SyncReason {
    loop {
        let wait = due.saturating_duration_since(Instant::now());
        if wait.is_zero() || daemon.shutting_down.load(Ordering::SeqCst) {
            return SyncReason::NewData;
        }
        daemon.with_status(|s| s.next_attempt_in_seconds = Some(wait.as_secs_f64()));
        match sleep_or_woken(daemon, wait).await {
            None => return SyncReason::NewData,
            Some(woken) if daemon.wake_is_urgent.swap(false, Ordering::SeqCst) => return woken,
            Some(_) => {}
        }
    }
}

/// Sleeps for `delay` unless the uploader is woken first (returns why).
async fn sleep_or_woken(daemon: &Daemon, delay: Duration) -> Option<SyncReason> {
    async {
        Timer::after(delay).await;
        None
    }
    .or(async { daemon.sync_rx.recv().await.ok() })
    .await
}

async fn scheduler_task(daemon: Arc<Daemon>) {
    let mut due: BTreeMap<Category, Instant> = BTreeMap::new();
    loop {
        let view = daemon.view();
        let config = daemon.config_snapshot();
        let now = Instant::now();
        // Newly active categories are due now; inactive ones are forgotten.
        due.retain(|c, _| view.is_active(*c));
        for category in Category::READABLE {
            if view.is_active(category) {
                due.entry(category).or_insert(now);
            }
        }
        let ready: Vec<Category> = due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(c, _)| *c)
            .collect();
        if !ready.is_empty() {
            let collected = collect_now(&daemon, &ready).await;
            if collected > 0 {
                daemon.wake_sync(SyncReason::NewData);
            }
            for category in ready {
                let interval = config
                    .categories
                    .get(&category)
                    .and_then(|p| p.interval_seconds)
                    .unwrap_or(86_400);
                due.insert(category, Instant::now() + Duration::from_secs(interval));
            }
        }
        let next = due.values().min().copied();
        let woken = match next {
            Some(at) => {
                async {
                    Timer::at(at).await;
                    None
                }
                .or(async { daemon.schedule_rx.recv().await.ok() })
                .await
            }
            None => daemon.schedule_rx.recv().await.ok(),
        };
        if let Some(Some(category)) = woken {
            due.insert(category, Instant::now());
        }
        if daemon.shutting_down.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// Collects `categories` (checking consent again) and stores what changed. Returns the
/// number of events stored.
async fn collect_now(daemon: &Arc<Daemon>, categories: &[Category]) -> usize {
    let daemon = daemon.clone();
    let categories = categories.to_vec();
    crate::worker::run(move || match collect_blocking(&daemon, &categories) {
        Ok(n) => n,
        Err(e) => {
            log::error!("collection: {e}");
            0
        }
    })
    .await
}

/// Why a scheduled collection stored nothing.
#[derive(Debug)]
enum CollectionError {
    Identity(LoadError),
    Buffer(BufferError),
    Inventory(inventory::InventoryError),
}

impl std::fmt::Display for CollectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CollectionError::Identity(e) => std::fmt::Display::fmt(e, f),
            CollectionError::Buffer(e) => std::fmt::Display::fmt(e, f),
            CollectionError::Inventory(e) => std::fmt::Display::fmt(e, f),
        }
    }
}

impl From<BufferError> for CollectionError {
    fn from(e: BufferError) -> CollectionError {
        CollectionError::Buffer(e)
    }
}

fn collect_blocking(daemon: &Daemon, categories: &[Category]) -> Result<usize, CollectionError> {
    let config = daemon.config_snapshot();
    let view = daemon.view();
    let readers = PlatformReaders::new(Root::live(), &config);
    let identity = Identity::load(&config).map_err(CollectionError::Identity)?;
    let collection = collect::collect(&view, categories, &readers, Some(&identity));
    let at = Timestamp::now();
    let mut snapshots = Vec::new();
    let mut to_store = inventory::events_of(
        &daemon.store,
        &collection,
        at,
        config.buffer.max_bytes,
        &mut |category, event| {
            if !INVENTORY.contains(&category) {
                return Ok(true);
            }
            let changed = changed_snapshot(daemon, category, &event.payload, at)?;
            let keep = changed.is_some();
            snapshots.extend(changed);
            Ok(keep)
        },
    )
    .map_err(CollectionError::Inventory)?;
    if to_store.events.is_empty() {
        return Ok(0);
    }
    let n = to_store.events.len();
    let seqs = daemon
        .store
        .append_many(std::mem::take(&mut to_store.events))
        .map_err(buffer::store_error)?;
    to_store.stored(&daemon.store, &seqs)?;
    // Recorded only once the events are stored, so a failed append is retried.
    for (key, record) in snapshots {
        daemon
            .store
            .set_meta(&key, &record)
            .map_err(buffer::store_error)?;
    }
    log::debug!("stored {n} events");
    Ok(n)
}

/// For an inventory payload that differs from the last one stored (or whose heartbeat is
/// due), the snapshot record to keep once it is stored; `None` when unchanged.
fn changed_snapshot(
    daemon: &Daemon,
    category: Category,
    payload: &[u8],
    at: Timestamp,
) -> Result<Option<(String, Vec<u8>)>, BufferError> {
    let digest = ring::digest::digest(&ring::digest::SHA256, payload);
    let key = format!("snapshot:{category}");
    let previous = daemon.store.get_meta(&key).map_err(buffer::store_error)?;
    let now_s = u64::try_from(at.wall_time_ms / 1000).unwrap_or(0);
    if let Some(prev) = previous.as_deref() {
        if prev.len() == 40 && &prev[..32] == digest.as_ref() {
            let mut stamp = [0u8; 8];
            stamp.copy_from_slice(&prev[32..]);
            let sent_s = u64::from_be_bytes(stamp);
            // A clock that jumped backwards re-arms the heartbeat rather than silencing it.
            if now_s >= sent_s && now_s - sent_s < HEARTBEAT.as_secs() {
                return Ok(None);
            }
        }
    }
    let mut record = digest.as_ref().to_vec();
    record.extend_from_slice(&now_s.to_be_bytes());
    Ok(Some((key, record)))
}
