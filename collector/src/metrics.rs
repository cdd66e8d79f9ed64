//! Prometheus metrics: process-wide counters, gauges and histograms, and their text
//! exposition (format 0.0.4) for `GET /metrics` on the `[metrics] listen` address.
//!
//! Hand-written: the exposition is a few dozen lines and the set of series is fixed at
//! compile time, so a metrics crate would add a registry and dependencies for nothing.
//!
//! Every label value comes from a closed set known here (endpoint names, HTTP status
//! codes, category and gap-reason names, the build version): no pseudonym, address or
//! payload value can become a label, so the metrics are no side channel for device data.
//!
//! Cost: one static [`Metrics`] of atomics (a few KiB), updated with relaxed atomic adds;
//! the request counter takes a short mutex. No thread of its own: the listener runs on the
//! server's executor.

use assent_platform::Category;
use assent_wire::GapReason;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Upper bounds of the latency histograms, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The endpoints requests are counted under: a closed set, never the request's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    Batches,
    Erasure,
    /// Anything else (404s, wrong methods): the path itself is never a label.
    Other,
}

impl Endpoint {
    const ALL: [Endpoint; 3] = [Endpoint::Batches, Endpoint::Erasure, Endpoint::Other];

    fn name(self) -> &'static str {
        match self {
            Endpoint::Batches => "batches",
            Endpoint::Erasure => "erasure",
            Endpoint::Other => "other",
        }
    }

    fn index(self) -> usize {
        match self {
            Endpoint::Batches => 0,
            Endpoint::Erasure => 1,
            Endpoint::Other => 2,
        }
    }
}

const GAP_REASONS: [GapReason; 6] = [
    GapReason::Evicted,
    GapReason::Expired,
    GapReason::Purged,
    GapReason::BufferReset,
    GapReason::DiskFull,
    GapReason::Undecodable,
];

fn gap_reason_name(reason: GapReason) -> &'static str {
    match reason {
        GapReason::Evicted => "evicted",
        GapReason::Expired => "expired",
        GapReason::Purged => "purged",
        GapReason::BufferReset => "buffer_reset",
        GapReason::DiskFull => "disk_full",
        GapReason::Undecodable => "undecodable",
    }
}

fn gap_reason_index(reason: GapReason) -> usize {
    GAP_REASONS.iter().position(|r| *r == reason).unwrap_or(0)
}

fn category_index(category: Category) -> usize {
    Category::ALL
        .iter()
        .position(|c| *c == category)
        .unwrap_or(0)
}

/// A histogram with [`LATENCY_BUCKETS`]; the sum is kept in microseconds.
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; LATENCY_BUCKETS.len()],
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Every series the collector exposes. One static instance: [`global`].
pub struct Metrics {
    /// (endpoint, HTTP status) -> requests answered.
    requests: Mutex<BTreeMap<(Endpoint, u16), u64>>,
    request_seconds: [Histogram; 3],
    ingest_seconds: Histogram,
    /// Batches stored (not holes), and batches refused as holes.
    pub batches: AtomicU64,
    pub holes_refused: AtomicU64,
    /// Records at or below the high-water, skipped.
    pub duplicates_skipped: AtomicU64,
    events_by_category: [AtomicU64; 8],
    gaps_by_reason: [AtomicU64; 6],
    /// Events the gaps say were lost, by reason.
    gap_events_by_reason: [AtomicU64; 6],
    pub consent_records: AtomicU64,
    pub erasures: AtomicU64,
    pub erasures_by_operator: AtomicU64,
    pub events_erased: AtomicU64,
    pub retention_rows_dropped: AtomicU64,
    pub database_errors: AtomicU64,
    /// Connections to the database re-established (a backend with connections counts).
    pub database_reconnects: AtomicU64,
    pub writer_threads_busy: AtomicI64,
    pub writer_threads: AtomicI64,
    pub connections_open: AtomicI64,
    queue_depth: OnceLock<Box<dyn Fn() -> usize + Send + Sync>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

static METRICS: Metrics = Metrics::new();

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    const fn new() -> Metrics {
        Metrics {
            requests: Mutex::new(BTreeMap::new()),
            request_seconds: [const { Histogram::new() }; 3],
            ingest_seconds: Histogram::new(),
            batches: AtomicU64::new(0),
            holes_refused: AtomicU64::new(0),
            duplicates_skipped: AtomicU64::new(0),
            events_by_category: [const { AtomicU64::new(0) }; 8],
            gaps_by_reason: [const { AtomicU64::new(0) }; 6],
            gap_events_by_reason: [const { AtomicU64::new(0) }; 6],
            consent_records: AtomicU64::new(0),
            erasures: AtomicU64::new(0),
            erasures_by_operator: AtomicU64::new(0),
            events_erased: AtomicU64::new(0),
            retention_rows_dropped: AtomicU64::new(0),
            database_errors: AtomicU64::new(0),
            database_reconnects: AtomicU64::new(0),
            writer_threads_busy: AtomicI64::new(0),
            writer_threads: AtomicI64::new(0),
            connections_open: AtomicI64::new(0),
            queue_depth: OnceLock::new(),
        }
    }

    /// Counts one answered request and its latency.
    pub fn request(&self, endpoint: Endpoint, status: u16, elapsed: Duration) {
        if let Ok(mut map) = self.requests.lock() {
            *map.entry((endpoint, status)).or_insert(0) += 1;
        }
        self.request_seconds[endpoint.index()].observe(elapsed);
    }

    /// Records how long one ingest transaction took.
    pub fn ingest_latency(&self, elapsed: Duration) {
        self.ingest_seconds.observe(elapsed);
    }

    /// Counts what a stored batch brought: the records newly stored are the last
    /// `stored` of the batch, since seqs strictly increase and only those above the
    /// high-water are stored.
    pub fn stored(&self, records: &[assent_wire::Record], stored: u64) {
        let stored = usize::try_from(stored)
            .unwrap_or(usize::MAX)
            .min(records.len());
        let skipped = records.len() - stored;
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.duplicates_skipped
            .fetch_add(skipped as u64, Ordering::Relaxed);
        for record in &records[skipped..] {
            match record {
                assent_wire::Record::Event(e) => {
                    self.events_by_category[category_index(e.category)]
                        .fetch_add(1, Ordering::Relaxed);
                }
                assent_wire::Record::Gap(g) => {
                    let i = gap_reason_index(g.reason);
                    self.gaps_by_reason[i].fetch_add(1, Ordering::Relaxed);
                    self.gap_events_by_reason[i].fetch_add(g.count, Ordering::Relaxed);
                }
                assent_wire::Record::Consent(_) => {
                    self.consent_records.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Tells the exposition how to read the writer queue's length.
    pub fn set_queue_depth(&self, read: Box<dyn Fn() -> usize + Send + Sync>) {
        let _ = self.queue_depth.set(read);
    }

    /// The text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        let gauge = |out: &mut String, name: &str, help: &str, value: i64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);

        let _ = writeln!(
            out,
            "# HELP assent_collector_build_info The running collector's version.\n\
             # TYPE assent_collector_build_info gauge\n\
             assent_collector_build_info{{version=\"{}\",protocol=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            assent_wire::PROTOCOL_VERSION
        );

        let _ = writeln!(
            out,
            "# HELP assent_collector_requests_total Device API requests answered, by endpoint and HTTP status.\n\
             # TYPE assent_collector_requests_total counter"
        );
        let requests = self.requests.lock().map(|m| m.clone()).unwrap_or_default();
        for ((endpoint, status), n) in &requests {
            let _ = writeln!(
                out,
                "assent_collector_requests_total{{endpoint=\"{}\",status=\"{status}\"}} {n}",
                endpoint.name()
            );
        }

        let _ = writeln!(
            out,
            "# HELP assent_collector_request_duration_seconds Time from request head to answer, by endpoint.\n\
             # TYPE assent_collector_request_duration_seconds histogram"
        );
        for endpoint in Endpoint::ALL {
            self.request_seconds[endpoint.index()].write(
                &mut out,
                "assent_collector_request_duration_seconds",
                &format!("endpoint=\"{}\"", endpoint.name()),
            );
        }
        let _ = writeln!(
            out,
            "# HELP assent_collector_ingest_duration_seconds Time of one batch's database transaction.\n\
             # TYPE assent_collector_ingest_duration_seconds histogram"
        );
        self.ingest_seconds
            .write(&mut out, "assent_collector_ingest_duration_seconds", "");

        counter(
            &mut out,
            "assent_collector_batches_total",
            "Batches stored (including those that were wholly duplicates).",
            load(&self.batches),
        );
        counter(
            &mut out,
            "assent_collector_holes_refused_total",
            "Batches refused because they start beyond the high-water (the agent resends).",
            load(&self.holes_refused),
        );
        counter(
            &mut out,
            "assent_collector_duplicates_skipped_total",
            "Records at or below the high-water, skipped as already stored.",
            load(&self.duplicates_skipped),
        );
        let _ = writeln!(
            out,
            "# HELP assent_collector_events_total Events stored, by category.\n\
             # TYPE assent_collector_events_total counter"
        );
        for (category, n) in Category::ALL.iter().zip(&self.events_by_category) {
            let _ = writeln!(
                out,
                "assent_collector_events_total{{category=\"{}\"}} {}",
                category.name(),
                load(n)
            );
        }
        let _ = writeln!(
            out,
            "# HELP assent_collector_gaps_total Gap records stored, by reason.\n\
             # TYPE assent_collector_gaps_total counter"
        );
        for (reason, n) in GAP_REASONS.iter().zip(&self.gaps_by_reason) {
            let _ = writeln!(
                out,
                "assent_collector_gaps_total{{reason=\"{}\"}} {}",
                gap_reason_name(*reason),
                load(n)
            );
        }
        let _ = writeln!(
            out,
            "# HELP assent_collector_gap_events_total Events the stored gap records say were lost on devices, by reason.\n\
             # TYPE assent_collector_gap_events_total counter"
        );
        for (reason, n) in GAP_REASONS.iter().zip(&self.gap_events_by_reason) {
            let _ = writeln!(
                out,
                "assent_collector_gap_events_total{{reason=\"{}\"}} {}",
                gap_reason_name(*reason),
                load(n)
            );
        }
        counter(
            &mut out,
            "assent_collector_consent_records_total",
            "Consent changes stored.",
            load(&self.consent_records),
        );
        counter(
            &mut out,
            "assent_collector_erasures_total",
            "Erasures committed (device requests and console operators).",
            load(&self.erasures),
        );
        counter(
            &mut out,
            "assent_collector_operator_erasures_total",
            "Erasures committed from the console by an operator.",
            load(&self.erasures_by_operator),
        );
        counter(
            &mut out,
            "assent_collector_events_erased_total",
            "Events deleted by erasures.",
            load(&self.events_erased),
        );
        counter(
            &mut out,
            "assent_collector_retention_rows_dropped_total",
            "Events and gaps deleted by the retention sweep.",
            load(&self.retention_rows_dropped),
        );
        counter(
            &mut out,
            "assent_collector_database_errors_total",
            "Database calls that failed (the client got 500 or the sweep was retried later).",
            load(&self.database_errors),
        );
        counter(
            &mut out,
            "assent_collector_database_reconnects_total",
            "Database connections re-established after a loss.",
            load(&self.database_reconnects),
        );
        let depth = self.queue_depth.get().map_or(0, |read| read());
        gauge(
            &mut out,
            "assent_collector_writer_queue_depth",
            "Batches, erasures and sweeps waiting for a database writer.",
            i64::try_from(depth).unwrap_or(i64::MAX),
        );
        gauge(
            &mut out,
            "assent_collector_writer_threads",
            "Database writer threads.",
            self.writer_threads.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "assent_collector_writer_threads_busy",
            "Database writer threads inside a database call.",
            self.writer_threads_busy.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "assent_collector_connections_open",
            "Device connections open.",
            self.connections_open.load(Ordering::Relaxed),
        );
        out
    }
}

/// Counts a writer thread as busy while alive.
#[derive(Debug)]
pub struct Busy;

impl Busy {
    pub fn start() -> Busy {
        METRICS.writer_threads_busy.fetch_add(1, Ordering::Relaxed);
        Busy
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        METRICS.writer_threads_busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Reads the `[metrics] token_file`: one token of at least
/// [`crate::auth::MIN_TOKEN_CHARS`] characters on its first line.
pub fn load_token(path: &std::path::Path) -> Result<String, assent_confcheck::Diagnostics> {
    let text = assent_confcheck::read_text(path, 4096)?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.chars().count() < crate::auth::MIN_TOKEN_CHARS {
        return Err(assent_confcheck::Diagnostics(vec![
            assent_confcheck::Diagnostic::whole_file(
                path,
                format!(
                    "the metrics token must be at least {} characters on the first line",
                    crate::auth::MIN_TOKEN_CHARS
                ),
            ),
        ]));
    }
    Ok(token)
}

/// The `/metrics` listener's request handler; with `token`, requests need
/// `Authorization: Bearer <token>`.
pub fn handler(token: Option<String>) -> crate::local_http::Handler {
    use http_body_util::Full;
    use hyper::header::{self, HeaderValue};
    use hyper::{Method, Response, StatusCode};
    let digest = token.map(|t| sha256(t.as_bytes()));
    std::sync::Arc::new(move |req, _peer| {
        let authorized = match &digest {
            None => true,
            Some(want) => req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
                .is_some_and(|got| same(&sha256(got.trim_ascii()), want)),
        };
        let (status, content_type, body) = if req.uri().path() != "/metrics" {
            (
                StatusCode::NOT_FOUND,
                "text/plain",
                "not found: try /metrics\n".to_string(),
            )
        } else if req.method() != Method::GET && req.method() != Method::HEAD {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "use GET\n".to_string(),
            )
        } else if !authorized {
            (
                StatusCode::UNAUTHORIZED,
                "text/plain",
                "missing or invalid token\n".to_string(),
            )
        } else {
            (
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                global().render(),
            )
        };
        Box::pin(async move {
            let mut response = Response::new(Full::new(hyper::body::Bytes::from(body)));
            *response.status_mut() = status;
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            if status == StatusCode::UNAUTHORIZED {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            response
        })
    })
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

/// Compares two digests without a data-dependent early exit.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_every_family_once_and_no_free_labels() {
        let m = Metrics::new();
        m.request(Endpoint::Batches, 200, Duration::from_millis(3));
        m.request(Endpoint::Other, 404, Duration::from_millis(1));
        m.ingest_latency(Duration::from_millis(2));
        let text = m.render();
        for family in [
            "assent_collector_build_info",
            "assent_collector_requests_total",
            "assent_collector_request_duration_seconds",
            "assent_collector_ingest_duration_seconds",
            "assent_collector_events_total",
            "assent_collector_gaps_total",
            "assent_collector_writer_queue_depth",
        ] {
            assert_eq!(
                text.matches(&format!("# TYPE {family} ")).count(),
                1,
                "{family}"
            );
        }
        assert!(
            text.contains("assent_collector_requests_total{endpoint=\"batches\",status=\"200\"} 1")
        );
        assert!(text.contains(
            "assent_collector_request_duration_seconds_bucket{endpoint=\"batches\",le=\"0.005\"} 1"
        ));
        assert!(text.contains("assent_collector_ingest_duration_seconds_count 1"));
    }
}
