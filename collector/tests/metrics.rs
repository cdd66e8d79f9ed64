//! `GET /metrics` on the real collector: the exposition passes `promtool check metrics`,
//! counts exactly what the test caused, needs its token, carries no device data in a
//! label, and a real Prometheus server scrapes it and answers queries with those counts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assent_testkit::collector as support;
use assent_testkit::on_both_backends;
use assent_testkit::pg as pg_support;

use assent_platform::Category;
use assent_wire::{
    encode, Batch, ConsentChange, Encoding, ErasureRequest, Gap, GapReason, Record, PATH_ERASURE,
    PROTOCOL_VERSION,
};
use pg_support::Backend;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{app_batch, device, Collector, Options};

const METRICS_TOKEN: &str = "metrics-token-0123456789abcdef";

fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn scrape(addr: SocketAddr, token: Option<&str>) -> (u16, String) {
    let url = format!("http://{addr}/metrics");
    match token {
        Some(t) => curl(&["-H", &format!("Authorization: Bearer {t}"), &url]),
        None => curl(&[&url]),
    }
}

/// `name{labels} value` lines of the exposition, keyed by everything before the value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

on_both_backends!(
    metrics_count_what_happened_and_pass_promtool,
    a_real_prometheus_scrapes_the_counters
);

fn start(backend: Backend) -> (Collector, tempfile::TempDir) {
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("metrics.token");
    std::fs::write(&token_file, format!("{METRICS_TOKEN}\n")).unwrap();
    let collector = Collector::start_with(Options {
        extra_config: format!(
            "\n[metrics]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n",
            token_file.display()
        ),
        ..backend.options()
    });
    (collector, secrets)
}

/// What the test sends, and so what the counters must say.
struct Caused {
    app_events: u64,
    batches_stored: u64,
    duplicates: u64,
    holes: u64,
    evicted_gaps: u64,
    evicted_events: u64,
    erased: u64,
}

fn cause_traffic(collector: &Collector) -> Caused {
    let mut client = collector.mtls_client();
    let d = device(7);
    // 10 app events; then the same batch again (10 duplicates); then a hole.
    let first = app_batch(&d, 1, 1, 10);
    assert_eq!(client.ack(&first, Encoding::Postcard), 10);
    assert_eq!(client.ack(&first, Encoding::Json), 10);
    assert_eq!(client.ack(&app_batch(&d, 1, 20, 25), Encoding::Json), 10);
    // Two gaps (evicted, 5 and 3 events), one consent change, two more app events.
    let mixed = Batch {
        version: PROTOCOL_VERSION,
        device: d.clone(),
        buffer_id: 1,
        first_seq: 11,
        last_seq: 15,
        records: vec![
            Record::Gap(Gap {
                seq: 11,
                first_seq: 11,
                last_seq: 11,
                count: 5,
                reason: GapReason::Evicted,
                category: Some(Category::AppEvents),
            }),
            Record::Gap(Gap {
                seq: 12,
                first_seq: 12,
                last_seq: 12,
                count: 3,
                reason: GapReason::Evicted,
                category: None,
            }),
            Record::Consent(ConsentChange {
                seq: 13,
                observed_at: "2026-01-01T00:00:00Z".into(),
                category: Category::AppEvents,
                active: true,
                state: "active".into(),
                by: None,
                at: None,
                policy_version: 1,
            }),
            support::app_event(14),
            support::app_event(15),
        ],
    };
    assert_eq!(client.ack(&mixed, Encoding::Json), 15);
    // A device-initiated erasure of app events: all 12 go.
    let erasure = ErasureRequest {
        version: PROTOCOL_VERSION,
        device: d,
        categories: Some(vec![Category::AppEvents]),
    };
    let reply = client
        .request(
            "POST",
            PATH_ERASURE,
            Encoding::Json.content_type(),
            encode(&erasure, Encoding::Json).unwrap(),
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    // Two requests to an unknown path, whose path must not become a label.
    for _ in 0..2 {
        let r = client
            .request("GET", "/secret-path-7", "application/json", vec![])
            .unwrap();
        assert_eq!(r.status, 404);
        client = collector.mtls_client();
    }
    Caused {
        app_events: 12,
        batches_stored: 3,
        duplicates: 10,
        holes: 1,
        evicted_gaps: 2,
        evicted_events: 8,
        erased: 12,
    }
}

fn metrics_count_what_happened_and_pass_promtool(backend: Backend) {
    let (collector, _secrets) = start(backend);
    let addr = collector.logged_addr("metrics at http://");
    assert!(addr.ip().is_loopback());
    let caused = cause_traffic(&collector);

    let (status, _) = scrape(addr, None);
    assert_eq!(status, 401, "no token");
    let (status, _) = scrape(addr, Some("wrong-token-0123456789abcdef"));
    assert_eq!(status, 401, "wrong token");
    let (status, _) = curl(&[
        "-H",
        &format!("Authorization: Bearer {METRICS_TOKEN}"),
        &format!("http://{addr}/other"),
    ]);
    assert_eq!(status, 404);
    let (status, text) = scrape(addr, Some(METRICS_TOKEN));
    assert_eq!(status, 200, "{text}");

    // promtool is the reference parser and linter of the format.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let s = samples(&text);
    let get = |key: &str| {
        *s.get(key)
            .unwrap_or_else(|| panic!("no sample `{key}` in\n{text}"))
    };
    let writers = match backend {
        Backend::Sqlite => 1.0,
        Backend::Postgres => assent_collector::config::DEFAULT_PG_WRITERS as f64,
    };
    let want: &[(&str, f64)] = &[
        (
            "assent_collector_events_total{category=\"app_events\"}",
            caused.app_events as f64,
        ),
        ("assent_collector_events_total{category=\"os\"}", 0.0),
        (
            "assent_collector_batches_total",
            caused.batches_stored as f64,
        ),
        (
            "assent_collector_duplicates_skipped_total",
            caused.duplicates as f64,
        ),
        ("assent_collector_holes_refused_total", caused.holes as f64),
        (
            "assent_collector_gaps_total{reason=\"evicted\"}",
            caused.evicted_gaps as f64,
        ),
        (
            "assent_collector_gap_events_total{reason=\"evicted\"}",
            caused.evicted_events as f64,
        ),
        ("assent_collector_consent_records_total", 1.0),
        ("assent_collector_erasures_total", 1.0),
        ("assent_collector_events_erased_total", caused.erased as f64),
        (
            "assent_collector_requests_total{endpoint=\"batches\",status=\"200\"}",
            4.0,
        ),
        (
            "assent_collector_requests_total{endpoint=\"erasure\",status=\"200\"}",
            1.0,
        ),
        (
            "assent_collector_requests_total{endpoint=\"other\",status=\"404\"}",
            2.0,
        ),
        (
            "assent_collector_request_duration_seconds_count{endpoint=\"batches\"}",
            4.0,
        ),
        ("assent_collector_ingest_duration_seconds_count", 4.0),
        ("assent_collector_database_errors_total", 0.0),
        ("assent_collector_writer_threads", writers),
        ("assent_collector_database_reconnects_total", 0.0),
        ("assent_collector_writer_threads_busy", 0.0),
        ("assent_collector_writer_queue_depth", 0.0),
    ];
    for (key, value) in want {
        assert_eq!(get(key), *value, "{key}");
    }
    // The curl scrape's connection is not the device API's: only the test's client is.
    assert!(get("assent_collector_connections_open") <= 1.0);
    assert!(text.contains(&format!(
        "assent_collector_build_info{{version=\"{}\"",
        env!("CARGO_PKG_VERSION")
    )));
    // No device data in any label: not the pseudonym, nor the path, nor the peer.
    let d = device(7).to_string();
    for line in text.lines() {
        assert!(!line.contains(&d), "pseudonym in `{line}`");
        assert!(!line.contains("secret-path"), "path in `{line}`");
        assert!(!line.contains("127.0.0.1"), "address in `{line}`");
        assert!(!line.contains("door"), "payload in `{line}`");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Prometheus server scraping `target` every second, killed on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Scrapes `target` over HTTPS, trusting `ca_file`, when given one.
    fn start(
        dir: &Path,
        target: SocketAddr,
        token_file: &Path,
        ca_file: Option<&Path>,
    ) -> Prometheus {
        let config = dir.join("prometheus.yml");
        let tls = ca_file.map_or(String::new(), |ca| {
            format!(
                "    scheme: https\n    tls_config:\n      ca_file: {}\n",
                ca.display()
            )
        });
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: assent-collector\n    \
                 authorization:\n      credentials_file: {}\n{tls}    \
                 static_configs:\n      - targets: ['{target}']\n",
                token_file.display()
            ),
        )
        .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("prometheus (Debian package prometheus) is installed");
        Prometheus { child, addr, log }
    }

    /// The value of an instant query returning one series, if it has one yet.
    fn query(&self, query: &str) -> Option<f64> {
        let (status, body) = curl(&[
            "--get",
            "--data-urlencode",
            &format!("query={query}"),
            &format!("http://{}/api/v1/query", self.addr),
        ]);
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let result = v["data"]["result"].as_array()?;
        if result.len() != 1 {
            return None;
        }
        result[0]["value"][1].as_str()?.parse().ok()
    }

    fn wait_for(&self, query: &str, want: f64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = None;
        while Instant::now() < deadline {
            last = self.query(query);
            if last == Some(want) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "prometheus: `{query}` is {last:?}, want {want}\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

fn a_real_prometheus_scrapes_the_counters(backend: Backend) {
    let (collector, secrets) = start(backend);
    let addr = collector.logged_addr("metrics at http://");
    let caused = cause_traffic(&collector);
    let prometheus = Prometheus::start(
        secrets.path(),
        addr,
        &secrets.path().join("metrics.token"),
        None,
    );
    prometheus.wait_for("up{job=\"assent-collector\"}", 1.0);
    prometheus.wait_for(
        "assent_collector_events_total{category=\"app_events\"}",
        caused.app_events as f64,
    );
    prometheus.wait_for(
        "assent_collector_duplicates_skipped_total",
        caused.duplicates as f64,
    );
    prometheus.wait_for("assent_collector_holes_refused_total", caused.holes as f64);
    prometheus.wait_for(
        "assent_collector_gap_events_total{reason=\"evicted\"}",
        caused.evicted_events as f64,
    );
    prometheus.wait_for("assent_collector_events_erased_total", caused.erased as f64);
    prometheus.wait_for(
        "sum(assent_collector_requests_total{endpoint=\"batches\"})",
        4.0,
    );
    prometheus.wait_for("assent_collector_ingest_duration_seconds_count", 4.0);
    // A new batch shows up in the next scrapes.
    let mut client = collector.mtls_client();
    client.ack(&app_batch(&device(8), 1, 1, 3), Encoding::Json);
    prometheus.wait_for(
        "assent_collector_events_total{category=\"app_events\"}",
        caused.app_events as f64 + 3.0,
    );
}

/// With `tls_cert_file` and `tls_key_file`, a real Prometheus scrapes the metrics over
/// HTTPS, verifying the certificate against the test CA, and sees the counters.
#[test]
fn a_real_prometheus_scrapes_over_https() {
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("metrics.token");
    std::fs::write(&token_file, format!("{METRICS_TOKEN}\n")).unwrap();
    let collector = Collector::start_with(Options {
        extra_config: format!(
            "\n[metrics]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n\
             tls_cert_file = \"pki/server.pem\"\ntls_key_file = \"pki/server.key\"\n",
            token_file.display()
        ),
        ..Options::default()
    });
    let addr = collector.logged_addr("metrics at https://");
    let mut client = collector.mtls_client();
    client.ack(&app_batch(&device(9), 1, 1, 4), Encoding::Json);
    let prometheus = Prometheus::start(
        secrets.path(),
        addr,
        &token_file,
        Some(&collector.pki.ca_file),
    );
    prometheus.wait_for("up{job=\"assent-collector\"}", 1.0);
    prometheus.wait_for(
        "assent_collector_events_total{category=\"app_events\"}",
        4.0,
    );
}

/// PostgreSQL dies under the collector (`pg_ctl stop -m immediate`): each failed batch
/// is a database error, and the writers' new connections once it is back are counted as
/// reconnects.
#[test]
fn postgres_errors_and_reconnects_are_counted() {
    let cluster = pg_support::PrivateCluster::start(57000 + (std::process::id() % 1000) as u16);
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("metrics.token");
    std::fs::write(&token_file, format!("{METRICS_TOKEN}\n")).unwrap();
    let collector = Collector::start_with(Options {
        database_url: Some(cluster.fresh_database()),
        extra_config: format!(
            "\n[metrics]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n",
            token_file.display()
        ),
        ..Options::default()
    });
    let addr = collector.logged_addr("metrics at http://");
    let mut client = collector.mtls_client();
    let dev = device(51);
    assert_eq!(client.ack(&app_batch(&dev, 1, 1, 5), Encoding::Postcard), 5);
    cluster.stop_immediate();
    for _ in 0..3 {
        let reply = client
            .post_batch(&app_batch(&dev, 1, 6, 10), Encoding::Postcard)
            .unwrap();
        assert_eq!(reply.status, 500);
    }
    let counts = || {
        let (status, text) = scrape(addr, Some(METRICS_TOKEN));
        assert_eq!(status, 200, "{text}");
        let s = samples(&text);
        (
            s["assent_collector_database_errors_total"],
            s["assent_collector_database_reconnects_total"],
        )
    };
    let (errors, reconnects) = counts();
    assert!(
        errors >= 3.0,
        "{errors} database errors for 3 failed batches"
    );
    assert_eq!(reconnects, 0.0);
    cluster.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = client
            .post_batch(&app_batch(&dev, 1, 6, 10), Encoding::Postcard)
            .unwrap();
        if reply.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no reconnect:\n{}",
            collector.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, reconnects) = counts();
    assert!(reconnects >= 1.0, "{reconnects} reconnects");
}
