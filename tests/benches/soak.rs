//! The soak: the real daemon (`assent run`) and the real collector on loopback, the
//! collector speaking plain HTTP with token auth behind the TLS-terminating fault proxy,
//! for `SOAK_MINUTES` minutes (default 1). Meanwhile:
//!
//! - two local programs emit app events at a steady rate on the events socket;
//! - optional `software` consent is granted and withdrawn every 15 s;
//! - the collector is killed and restarted on its port (down 10 s at 10 s, then 8 s every
//!   45 s), so the small buffer (`[buffer] max_bytes` = 256 KiB, the minimum) fills up
//!   and evicts;
//! - the proxy injects a dropped connection, a 503, a truncated answer, a stall, a 500 and
//!   a drop after forwarding in every 40 requests;
//! - `app_events` itself is withdrawn and granted again at epoch boundaries (halfway
//!   through a short run, every 2 minutes in a long one).
//!
//! Once a second it samples the daemon's RSS (`VmRSS`), open file descriptors, and the
//! sizes of `buffer.db` and `buffer.db-wal`. At each epoch boundary (emitters paused,
//! queue drained) and at the end it checks conservation of `app_events`: every event
//! accepted (`ok <seq>`) in the epoch is at the collector exactly once or counted by an
//! `app_events` gap record, and the counts add up exactly. The collector erases every
//! `app_events` row when that category is withdrawn, so the check runs per epoch, just
//! before the withdrawal, and the erasure's `erased_events` must equal what was
//! delivered in the epoch. At the end it also checks that no event of a withdrawn
//! category reached the collector with a wall time inside a withdrawn interval, that the
//! files stayed within the cap, and that RSS, descriptors and file sizes stayed flat
//! (the last window's maximum against the first window's). Any failure panics with the
//! figures, so the process exits non-zero.
//!
//! Run: `make soak SOAK_MINUTES=N` (release binaries); `SOAK_WITHDRAW_APP_EVENTS=0`
//! leaves `app_events` granted throughout (one epoch).
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use assent_testkit as util;
use assent_testkit::collector::{Collector, Options};
use assent_testkit::fault_proxy::{Fault, FaultProxy};
use assent_testkit::sqlite;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The buffer cap: the store's minimum, so an 8 s outage forces evictions.
const BUFFER_MAX_BYTES: u64 = 256 * 1024;
/// Events per write and pause between writes, per emitter (about 100 events/s each).
const EMIT_BATCH: usize = 10;
const EMIT_PAUSE: Duration = Duration::from_millis(100);
const EMITTERS: usize = 2;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The device: its config, state directory and sockets.
struct Device {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Device {
    fn run(&self, args: &[&str]) -> Output {
        util::assent()
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap()
    }

    fn run_ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "assent {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn status(&self) -> Option<serde_json::Value> {
        let out = self.run(&["status", "--json"]);
        serde_json::from_slice(&out.stdout).ok()
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
}

/// One local program on the events socket, emitting until told to stop.
fn emitter(
    id: usize,
    socket: PathBuf,
    gate: Arc<RwLock<()>>,
    stop: Arc<AtomicBool>,
    accepted: Arc<Mutex<Vec<(u64, i64)>>>,
    refused: Arc<AtomicU64>,
) {
    let stream = UnixStream::connect(&socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        {
            let _open = gate.read().unwrap();
            let mut text = String::new();
            for _ in 0..EMIT_BATCH {
                text.push_str(&format!(
                    r#"{{"name":"soak_tick","attrs":{{"emitter":{id},"n":{n},"note":"steady rate"}}}}"#
                ));
                text.push('\n');
                n += 1;
            }
            let sent_at = now_ms();
            writer.write_all(text.as_bytes()).unwrap();
            for _ in 0..EMIT_BATCH {
                let mut answer = String::new();
                let read = reader.read_line(&mut answer).unwrap();
                assert!(read > 0, "emitter {id}: the daemon closed the socket");
                let answer = answer.trim();
                if let Some(seq) = answer.strip_prefix("ok ") {
                    accepted
                        .lock()
                        .unwrap()
                        .push((seq.parse().unwrap(), sent_at));
                } else if answer.contains("consent") {
                    refused.fetch_add(1, Ordering::SeqCst);
                } else {
                    panic!("emitter {id}: unexpected answer {answer:?}");
                }
            }
        }
        std::thread::sleep(EMIT_PAUSE);
    }
}

/// One metric's samples.
#[derive(Default)]
struct Series {
    samples: Vec<(f64, u64)>,
}

impl Series {
    fn push(&mut self, t: f64, v: u64) {
        self.samples.push((t, v));
    }

    fn max_in(&self, from: f64, to: f64) -> u64 {
        self.samples
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|(_, v)| *v)
            .max()
            .unwrap_or(0)
    }

    fn summary(&self) -> (u64, u64, u64, u64) {
        let values: Vec<u64> = self.samples.iter().map(|(_, v)| *v).collect();
        (
            values.iter().copied().min().unwrap_or(0),
            values.iter().copied().max().unwrap_or(0),
            values.first().copied().unwrap_or(0),
            values.last().copied().unwrap_or(0),
        )
    }
}

fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn fd_count(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn sqlite_u64(db: &Path, query: &str) -> u64 {
    sqlite(db, query)[0].parse().unwrap()
}

/// Totals over all epochs.
#[derive(Default)]
struct Totals {
    accepted: u64,
    delivered: u64,
    gap_accounted: u64,
    erased: u64,
    evicted: u64,
    delivered_and_evicted: u64,
    epochs: u64,
}

struct Soak {
    device: Device,
    collector: Collector,
    collector_down: bool,
    daemon: Child,
    accepted: Arc<Mutex<Vec<(u64, i64)>>>,
    totals: Totals,
    rss: Series,
    fds: Series,
    db: Series,
    wal: Series,
    start: Instant,
    restarts: u64,
    problems: Vec<String>,
}

impl Soak {
    fn sample(&mut self) {
        let t = self.start.elapsed().as_secs_f64();
        let pid = self.daemon.id();
        self.rss.push(t, vm_rss_kib(pid));
        self.fds.push(t, fd_count(pid));
        let state = self.device.state();
        self.db.push(t, file_size(&state.join("buffer.db")));
        self.wal.push(t, file_size(&state.join("buffer.db-wal")));
        if let Ok(Some(status)) = self.daemon.try_wait() {
            panic!("the daemon exited with {status}");
        }
    }

    /// Sleeps `d`, sampling every second.
    fn sleep_sampling(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            std::thread::sleep(Duration::from_secs(1).min(until - Instant::now()));
            self.sample();
        }
    }

    fn ensure_collector_up(&mut self) {
        if self.collector_down {
            self.collector.restart();
            self.collector_down = false;
            self.restarts += 1;
        }
    }

    /// Waits until the daemon holds no event or gap; false (and a problem noted) if it
    /// does not drain within 60 s.
    fn drain(&mut self) -> bool {
        self.ensure_collector_up();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = self.device.status();
            let queued = status
                .as_ref()
                .and_then(|s| Some(s["queued_events"].as_u64()? + s["queued_gaps"].as_u64()?));
            if queued == Some(0) {
                return true;
            }
            if Instant::now() > deadline {
                self.problems.push(format!(
                    "the queue did not drain within 60 s; status: {}",
                    status.map(|s| s.to_string()).unwrap_or_default()
                ));
                return false;
            }
            let _ = self.device.run(&["sync"]);
            self.sleep_sampling(Duration::from_millis(500));
        }
    }

    /// Conservation for the events accepted since the last withdrawal of `app_events`
    /// (the collector holds exactly those rows of `app_events`).
    fn check_epoch(&mut self, label: &str) -> u64 {
        let accepted: Vec<u64> = self
            .accepted
            .lock()
            .unwrap()
            .drain(..)
            .map(|(s, _)| s)
            .collect();
        let accepted_set: BTreeSet<u64> = accepted.iter().copied().collect();
        let db = self.collector.database.clone();
        let delivered: Vec<u64> = sqlite(
            &db,
            "SELECT seq FROM events WHERE category = 'app_events' ORDER BY seq",
        )
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let gaps: Vec<(u64, u64, u64)> = sqlite(
            &db,
            "SELECT first_seq, last_seq, count FROM gaps WHERE category = 'app_events'",
        )
        .iter()
        .map(|r| {
            let v: Vec<u64> = r.split('|').map(|x| x.parse().unwrap()).collect();
            (v[0], v[1], v[2])
        })
        .collect();
        let uncategorised = sqlite_u64(
            &db,
            "SELECT coalesce(sum(count), 0) FROM gaps WHERE category IS NULL",
        );
        let evicted = sqlite_u64(
            &db,
            "SELECT coalesce(sum(count), 0) FROM gaps WHERE category = 'app_events' AND reason = 'evicted'",
        );
        let gap_sum: u64 = gaps.iter().map(|g| g.2).sum();
        let delivered_set: BTreeSet<u64> = delivered.iter().copied().collect();
        let mut problems = Vec::new();
        if accepted_set.len() != accepted.len() {
            problems.push(format!("{label}: the daemon answered a seq twice"));
        }
        if delivered_set.len() != delivered.len() {
            problems.push(format!("{label}: a seq is at the collector twice"));
        }
        let strangers: Vec<&u64> = delivered_set.difference(&accepted_set).take(5).collect();
        if !strangers.is_empty() {
            problems.push(format!(
                "{label}: the collector holds app events never accepted in this epoch: {strangers:?}"
            ));
        }
        // Eviction takes a category's oldest events in seq order, so an `app_events` gap
        // accounts for every accepted app event in its range: its count must equal them.
        let mut covered = BTreeSet::new();
        for (first, last, count) in &gaps {
            let inside: Vec<u64> = accepted_set.range(first..=last).copied().collect();
            if inside.len() as u64 != *count {
                problems.push(format!(
                    "{label}: gap {first}..={last} counts {count}, {} accepted events lie in it",
                    inside.len()
                ));
            }
            covered.extend(inside);
        }
        let missing: Vec<u64> = accepted_set
            .difference(&delivered_set)
            .copied()
            .filter(|s| !covered.contains(s))
            .take(5)
            .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "{label}: accepted, not delivered and in no gap: {missing:?}"
            ));
        }
        // Delivered, but evicted before the acknowledgement came back (the answer was
        // lost): the collector holds them and a gap counts them as well.
        let both = covered.intersection(&delivered_set).count() as u64;
        let lost = covered.len() as u64 - both;
        if accepted.len() as u64 != delivered.len() as u64 + lost {
            problems.push(format!(
                "{label}: accepted {} != delivered {} + lost {lost} (gap-accounted {gap_sum}, \
                 of them delivered before eviction {both}; uncategorised gaps: {uncategorised})",
                accepted.len(),
                delivered.len()
            ));
        }
        println!(
            "  {label}: accepted {}, delivered once {}, gap-accounted {gap_sum} (evicted {evicted}; \
             {both} of them had reached the collector unacknowledged), {}",
            accepted.len(),
            delivered.len(),
            if problems.is_empty() { "adds up" } else { "DOES NOT ADD UP" }
        );
        self.problems.extend(problems);
        self.totals.accepted += accepted.len() as u64;
        self.totals.delivered += delivered.len() as u64;
        self.totals.gap_accounted += gap_sum;
        self.totals.delivered_and_evicted += both;
        self.totals.evicted += evicted;
        self.totals.epochs += 1;
        delivered.len() as u64
    }

    fn wait_active(&mut self, category: &str, active: bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let is = self.device.status().is_some_and(|s| {
                s["active_categories"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|c| c == category))
            });
            if is == active {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{category} not {} after 20 s",
                if active { "active" } else { "inactive" }
            );
            self.sleep_sampling(Duration::from_millis(200));
        }
    }
}

fn main() {
    let minutes: f64 = std::env::var("SOAK_MINUTES")
        .ok()
        .and_then(|m| m.trim().parse().ok())
        .unwrap_or(1.0);
    assert!(minutes > 0.0, "SOAK_MINUTES must be positive");
    let duration = Duration::from_secs_f64(minutes * 60.0);
    let total_s = duration.as_secs_f64();

    let token = "soak-token-0123456789abcdef0123456";
    let collector = Collector::start_with(Options {
        plain_http: true,
        mtls: false,
        tokens: vec![("fleet".into(), token.into())],
        log_level: "info".into(),
        ..Options::default()
    });
    let mut schedule = vec![Fault::None; 40];
    schedule[5] = Fault::DropBeforeForward;
    schedule[11] = Fault::Status(503);
    schedule[17] = Fault::Truncate;
    schedule[23] = Fault::Stall(Duration::from_millis(800));
    schedule[29] = Fault::Status(500);
    schedule[35] = Fault::DropAfterForward;
    let proxy = FaultProxy::start(
        &collector.pki.server_cert,
        &collector.pki.server_key,
        collector.addr,
        schedule,
    );

    let dir = tempfile::Builder::new()
        .prefix("assent-soak-")
        .tempdir()
        .unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let config = dir.path().join("assent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"state\"\nlog_level = \"info\"\n\
             [collector]\nurl = \"https://localhost:{}\"\nca_file = \"{}\"\ntoken_file = \"{}\"\n\
             [sync]\ninterval_seconds = 1\nbackoff_base_seconds = 1\nbackoff_max_seconds = 2\n\
             metered = \"allow\"\n\
             [buffer]\nmax_bytes = {BUFFER_MAX_BYTES}\n\
             [events]\nsocket = \"events.sock\"\nsocket_mode = \"0600\"\nrate_per_second = 1000\n\
             burst = 1000\n\
             [control]\nsocket = \"control.sock\"\n\
             [categories.software]\ninterval_seconds = 5\n",
            proxy.addr.port(),
            collector.pki.ca_file.display(),
            token_file.display(),
        ),
    )
    .unwrap();
    let device = Device { dir, config };
    device.run_ok(&["consent", "grant", "--all-required"]);
    device.run_ok(&["consent", "grant", "software"]);

    let log_path = device.dir.path().join("daemon.log");
    let daemon = util::assent()
        .args(["run", "--config"])
        .arg(&device.config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let socket = device.dir.path().join("events.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(&socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "the events socket never appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    println!(
        "soak: {minutes} min, buffer cap {BUFFER_MAX_BYTES} bytes, {EMITTERS} emitters at ~{} events/s each",
        EMIT_BATCH as u64 * 1000 / EMIT_PAUSE.as_millis() as u64
    );
    let mut soak = Soak {
        device,
        collector,
        collector_down: false,
        daemon,
        accepted: Arc::new(Mutex::new(Vec::new())),
        totals: Totals::default(),
        rss: Series::default(),
        fds: Series::default(),
        db: Series::default(),
        wal: Series::default(),
        start: Instant::now(),
        restarts: 0,
        problems: Vec::new(),
    };
    let gate = Arc::new(RwLock::new(()));
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let emitters: Vec<_> = (0..EMITTERS)
        .map(|id| {
            let (socket, gate, stop) = (socket.clone(), gate.clone(), stop.clone());
            let (accepted, refused) = (soak.accepted.clone(), refused.clone());
            std::thread::spawn(move || emitter(id, socket, gate, stop, accepted, refused))
        })
        .collect();

    // The schedule, in seconds from the start.
    // SOAK_WITHDRAW_APP_EVENTS=0 leaves `app_events` granted throughout.
    let withdraw_app_events = std::env::var("SOAK_WITHDRAW_APP_EVENTS").map_or(true, |v| v != "0");
    let boundaries: Vec<f64> = if !withdraw_app_events {
        Vec::new()
    } else if total_s <= 240.0 {
        vec![total_s / 2.0]
    } else {
        (0..)
            .map(|i| 90.0 + 120.0 * i as f64)
            .take_while(|t| *t < total_s - 30.0)
            .collect()
    };
    let mut next_boundary = 0;
    let mut next_toggle = 15.0;
    let mut next_kill = 10.0;
    let mut restart_at: Option<f64> = None;
    let mut software_granted = true;
    let mut software_toggles = 0;
    // Withdrawn intervals (wall ms) per category.
    let mut withdrawn: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    let mut software_revoked_at = 0i64;

    while soak.start.elapsed() < duration {
        std::thread::sleep(Duration::from_secs(1));
        soak.sample();
        let t = soak.start.elapsed().as_secs_f64();
        if let Some(at) = restart_at {
            if t >= at {
                soak.ensure_collector_up();
                restart_at = None;
            }
        }
        if t >= next_kill && restart_at.is_none() && t < total_s - 20.0 {
            soak.collector.kill();
            soak.collector_down = true;
            restart_at = Some(t + if soak.restarts == 0 { 10.0 } else { 8.0 });
            next_kill = t + 45.0;
        }
        if t >= next_toggle {
            if software_granted {
                soak.device.run_ok(&["consent", "revoke", "software"]);
                software_revoked_at = now_ms();
            } else {
                let granted_at = now_ms();
                soak.device.run_ok(&["consent", "grant", "software"]);
                withdrawn
                    .entry("software")
                    .or_default()
                    .push((software_revoked_at, granted_at));
            }
            software_granted = !software_granted;
            software_toggles += 1;
            next_toggle = t + 15.0;
        }
        if next_boundary < boundaries.len() && t >= boundaries[next_boundary] {
            next_boundary += 1;
            // Emitters paused, queue drained: this epoch must add up before the
            // withdrawal erases it at the collector.
            let paused = gate.write().unwrap();
            restart_at = None;
            if !soak.drain() {
                break;
            }
            let delivered = soak.check_epoch(&format!("epoch {}", soak.totals.epochs + 1));
            let erasures_before = sqlite_u64(
                &soak.collector.database,
                "SELECT count(*) FROM erasure_log WHERE categories LIKE '%app_events%'",
            );
            soak.device.run_ok(&["consent", "revoke", "app_events"]);
            let revoked_at = now_ms();
            soak.wait_active("app_events", false);
            let deadline = Instant::now() + Duration::from_secs(30);
            while sqlite_u64(
                &soak.collector.database,
                "SELECT count(*) FROM erasure_log WHERE categories LIKE '%app_events%'",
            ) == erasures_before
            {
                assert!(
                    Instant::now() < deadline,
                    "no app_events erasure reached the collector"
                );
                let _ = soak.device.run(&["sync"]);
                soak.sleep_sampling(Duration::from_millis(300));
            }
            let erased = sqlite_u64(
                &soak.collector.database,
                "SELECT erased_events FROM erasure_log WHERE categories LIKE '%app_events%' \
                 ORDER BY id DESC LIMIT 1",
            );
            if erased != delivered {
                soak.problems.push(format!(
                    "the app_events erasure removed {erased} events, {delivered} were delivered"
                ));
            }
            soak.totals.erased += erased;
            // Programs keep emitting while withdrawn: every one must be refused.
            drop(paused);
            soak.sleep_sampling(Duration::from_secs(4));
            let paused = gate.write().unwrap();
            let granted_at = now_ms();
            soak.device.run_ok(&["consent", "grant", "--all-required"]);
            // Required consent withdrawn: the service is off, no category may arrive.
            withdrawn
                .entry("*")
                .or_default()
                .push((revoked_at, granted_at));
            soak.wait_active("app_events", true);
            drop(paused);
        }
    }

    // The end: stop emitting, let everything arrive, check.
    stop.store(true, Ordering::SeqCst);
    for e in emitters {
        e.join().unwrap();
    }
    if soak.drain() {
        soak.check_epoch(&format!("epoch {} (final)", soak.totals.epochs + 1));
    }
    let db = soak.collector.database.clone();
    for (category, intervals) in &withdrawn {
        for (from, to) in intervals {
            let n = sqlite_u64(
                &db,
                &format!(
                    "SELECT count(*) FROM events WHERE ('{category}' = '*' OR category = '{category}') \
                     AND wall_time_ms > {from} AND wall_time_ms < {to}"
                ),
            );
            if n > 0 {
                soak.problems.push(format!(
                    "{n} {category} events recorded while it was withdrawn ({from}..{to} ms) reached the collector"
                ));
            }
        }
    }
    let faults = proxy.faults_injected();
    let _ = soak.daemon.kill();
    let _ = soak.daemon.wait();

    let mut table = vec![
        ("rss_kib", &soak.rss),
        ("open_fds", &soak.fds),
        ("buffer_db_bytes", &soak.db),
        ("buffer_wal_bytes", &soak.wal),
    ];
    println!(
        "\nsamples: {} over {:.0} s",
        soak.rss.samples.len(),
        soak.start.elapsed().as_secs_f64()
    );
    println!(
        "{:<18} {:>10} {:>10} {:>10} {:>10} {:>14} {:>14}",
        "metric", "min", "max", "first", "last", "first-win max", "last-win max"
    );
    let elapsed = soak.start.elapsed().as_secs_f64();
    let window = (elapsed / 2.0).min(60.0);
    for (name, series) in &mut table {
        let (min, max, first, last) = series.summary();
        println!(
            "{name:<18} {min:>10} {max:>10} {first:>10} {last:>10} {:>14} {:>14}",
            series.max_in(0.0, window),
            series.max_in(elapsed - window, elapsed + 1.0)
        );
    }
    let t = &soak.totals;
    println!(
        "\nevents: accepted {}, delivered once {}, gap-accounted {} (evicted {}; {} of them \
         delivered before eviction, ack lost), erased after withdrawal {} (= delivered before \
         it), refused while withdrawn {}",
        t.accepted,
        t.delivered,
        t.gap_accounted,
        t.evicted,
        t.delivered_and_evicted,
        t.erased,
        refused.load(Ordering::SeqCst)
    );
    println!(
        "actions: {} collector restarts, {software_toggles} software toggles, {} app_events withdrawals, {} proxy faults injected",
        soak.restarts,
        boundaries.len(),
        faults.len()
    );

    // Flatness: the last window against the first.
    let flat = |name: &str, series: &Series, slack: f64, abs: u64, problems: &mut Vec<String>| {
        let first = series.max_in(0.0, window);
        let last = series.max_in(elapsed - window, elapsed + 1.0);
        let limit = (first as f64 * slack) as u64 + abs;
        if last > limit {
            problems.push(format!(
                "{name} grew: last-window max {last} > first-window max {first} x {slack} + {abs}"
            ));
        }
    };
    let mut problems = std::mem::take(&mut soak.problems);
    flat("rss_kib", &soak.rss, 1.25, 1024, &mut problems);
    flat("open_fds", &soak.fds, 1.0, 4, &mut problems);
    flat("buffer_db_bytes", &soak.db, 1.10, 64 * 1024, &mut problems);
    flat(
        "buffer_wal_bytes",
        &soak.wal,
        1.10,
        64 * 1024,
        &mut problems,
    );
    let (_, db_max, _, _) = soak.db.summary();
    let (_, wal_max, _, _) = soak.wal.summary();
    if db_max + wal_max > BUFFER_MAX_BYTES + BUFFER_MAX_BYTES / 10 {
        problems.push(format!(
            "buffer files peaked at {db_max} + {wal_max} bytes, cap {BUFFER_MAX_BYTES}"
        ));
    }
    if t.evicted == 0 {
        problems.push("no eviction happened: the outages did not fill the buffer".into());
    }
    if t.accepted == 0 {
        problems.push("nothing was accepted".into());
    }
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    if log.contains("panicked") {
        problems.push("the daemon's log shows a panic".into());
    }
    if problems.is_empty() {
        println!("\nsoak passed: conservation holds, nothing withheld arrived, footprint flat");
    } else {
        println!("\nsoak FAILED:");
        for p in &problems {
            println!("  - {p}");
        }
        println!("daemon log: {}", log_path.display());
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        for line in tail.iter().rev() {
            println!("    | {line}");
        }
        // Keep the directory for a look.
        let kept = soak.device.dir.keep();
        println!("state kept in {}", kept.display());
        std::process::exit(1);
    }
}
