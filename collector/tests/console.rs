//! The operators' console on the real collector, in a real headless Chromium
//! (playwright-core, `tests/browser/console.mjs`): the pages load, the charts show the
//! numbers the database holds, hostile device data renders as text with nothing run, no
//! console errors, nothing is fetched from elsewhere, and erasing needs a CSRF token and a
//! confirmation, then works and is logged with the operator's name. Plus the HTTP rules
//! (auth, no state change on GET, CSP) checked with curl.
//!
//! `ASSENT_UPDATE_SCREENSHOTS=1` writes the screenshots into `docs/images/` (for
//! docs/operations.md); otherwise into a temp dir.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assent_testkit::collector as support;
use assent_testkit::on_both_backends;
use assent_testkit::pg as pg_support;

use assent_platform::software::Package;
use assent_platform::{Category, Field};
use assent_wire::{
    AppEvent, AttrValue, Batch, BootId, ConsentChange, Encoding, Event, Gap, GapReason, Payload,
    Pseudonym, Record, PROTOCOL_VERSION,
};
use pg_support::{sql_rows, Backend};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{device, Collector, Options};

const OPERATOR: &str = "alice";
const OPERATOR_TOKEN: &str = "console-token-alice-0123456789";
const SCRIPT_ATTR: &str = "<script>alert(1)</script>";
const IMG_PACKAGE: &str = "\"><img src=x onerror=window.__pwned=1>";

fn consent(seq: u64, category: Category, active: bool, state: &str) -> Record {
    Record::Consent(ConsentChange {
        seq,
        observed_at: "2026-11-30T10:00:00Z".into(),
        category,
        active,
        state: state.into(),
        by: Some("owner <b>".into()),
        at: None,
        policy_version: 1,
    })
}

fn batch(device: &Pseudonym, first: u64, records: Vec<Record>) -> Batch {
    let last = records.last().map_or(first, Record::seq);
    Batch {
        version: PROTOCOL_VERSION,
        device: device.clone(),
        buffer_id: 9,
        first_seq: first,
        last_seq: last,
        records,
    }
}

fn hostile_app_event(seq: u64) -> Record {
    Record::Event(Event {
        seq,
        category: Category::AppEvents,
        kind: "<i>kind</i>".into(),
        wall_time_ms: 1_795_000_000_000,
        boot_id: BootId([1; 16]),
        monotonic_ns: 1,
        payload: Payload::AppEvent(AppEvent {
            name: "door_opened".into(),
            attrs: BTreeMap::from([("note".into(), AttrValue::Text(SCRIPT_ATTR.into()))]),
        }),
    })
}

/// Inventory from the Raspberry Pi fixture with a hostile package added.
fn hostile_inventory(first_seq: u64) -> Vec<Record> {
    let mut payloads = support::inventory_payloads("rpi4-raspios64");
    for p in &mut payloads {
        if let Payload::Software(s) = p {
            if let Field::Present(packages) = &mut s.packages {
                packages.insert(
                    0,
                    Package {
                        name: IMG_PACKAGE.into(),
                        version: "1.0".into(),
                        architecture: None,
                    },
                );
            }
        }
    }
    assert!(payloads.iter().any(|p| matches!(p, Payload::Software(_))));
    payloads
        .into_iter()
        .enumerate()
        .map(|(i, p)| support::event(first_seq + i as u64, p))
        .collect()
}

/// Three devices: one with inventory and hostile data, two with app events, consent
/// changes (granted, refused, withdrawn), gaps and a device-initiated erasure.
fn fill(collector: &Collector) -> (Pseudonym, Pseudonym) {
    let mut client = collector.mtls_client();
    let hostile = device(101);
    let mut records = vec![
        consent(1, Category::AppEvents, true, "active"),
        consent(2, Category::Os, false, "refused"),
    ];
    let inventory = hostile_inventory(3);
    let next = 3 + inventory.len() as u64;
    records.extend(inventory);
    records.push(hostile_app_event(next));
    let b = batch(&hostile, 1, records);
    assert_eq!(client.ack(&b, Encoding::Json), b.last_seq);

    let withdrawn = device(102);
    let mut records = vec![consent(1, Category::AppEvents, true, "active")];
    records.extend((2..=6).map(support::app_event));
    records.push(Record::Gap(Gap {
        seq: 7,
        first_seq: 7,
        last_seq: 7,
        count: 5,
        reason: GapReason::Evicted,
        category: Some(Category::AppEvents),
    }));
    client.ack(&batch(&withdrawn, 1, records), Encoding::Postcard);
    client.ack(
        &batch(
            &withdrawn,
            8,
            vec![consent(8, Category::AppEvents, false, "not_granted")],
        ),
        Encoding::Json,
    );

    let third = device(103);
    let mut records: Vec<Record> = (1..=3).map(support::app_event).collect();
    records.push(Record::Gap(Gap {
        seq: 4,
        first_seq: 4,
        last_seq: 4,
        count: 2,
        reason: GapReason::DiskFull,
        category: None,
    }));
    client.ack(&batch(&third, 1, records), Encoding::Json);
    // The third device asks for its app events to be erased itself.
    let erasure = assent_wire::ErasureRequest {
        version: PROTOCOL_VERSION,
        device: third,
        categories: Some(vec![Category::AppEvents]),
    };
    let reply = client
        .request(
            "POST",
            assent_wire::PATH_ERASURE,
            Encoding::Json.content_type(),
            assent_wire::encode(&erasure, Encoding::Json).unwrap(),
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    (hostile, withdrawn)
}

on_both_backends!(
    console_in_chromium_shows_the_database_and_erases_with_confirmation,
    console_http_rules
);

fn start(backend: Backend) -> (Collector, tempfile::TempDir) {
    let secrets = tempfile::tempdir().unwrap();
    let operators = secrets.path().join("operators");
    std::fs::write(
        &operators,
        format!("# console operators\n{OPERATOR} {OPERATOR_TOKEN}\nbob console-token-bob-0123456789abc\n"),
    )
    .unwrap();
    let collector = Collector::start_with(Options {
        extra_config: format!(
            "\n[console]\nlisten = \"127.0.0.1:0\"\noperators_file = \"{}\"\n\
             \n[metrics]\nlisten = \"127.0.0.1:0\"\n",
            operators.display()
        ),
        ..backend.options()
    });
    (collector, secrets)
}

fn curl(args: &[&str]) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-s", "-D", "/dev/stderr", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        body.to_string(),
        String::from_utf8_lossy(&out.stderr).to_lowercase(),
    )
}

/// (key, count) rows of the collector's database, SQLite or PostgreSQL.
fn query_pairs(c: &Collector, sql: &str) -> BTreeMap<String, u64> {
    sql_rows(c, sql)
        .into_iter()
        .map(|r| (r[0].clone(), r[1].parse().unwrap()))
        .collect()
}

fn query_one(c: &Collector, sql: &str) -> u64 {
    sql_rows(c, sql)[0][0].parse().unwrap()
}

fn today() -> String {
    let day = assent_collector::server::now_ms() / 86_400_000;
    assent_collector::console::html::date(day)
}

/// (series -> value) of one chart's bars on `day` (all bars when `day` is None).
fn bars(report: &Value, chart: &str, day: Option<&str>) -> BTreeMap<String, u64> {
    let charts = report["charts"].as_array().unwrap();
    let chart = charts
        .iter()
        .find(|c| c["id"] == chart)
        .unwrap_or_else(|| panic!("no chart {chart} in {charts:?}"));
    let mut out = BTreeMap::new();
    for bar in chart["bars"].as_array().unwrap() {
        if day.is_some_and(|d| bar["day"] != d) {
            continue;
        }
        *out.entry(bar["series"].as_str().unwrap().to_string())
            .or_insert(0) += bar["value"].as_u64().unwrap();
    }
    out
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser")
}

fn run_browser(console: SocketAddr, device: &Pseudonym, shots: &Path) -> Value {
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci` in tests/browser (.ci/run does)"
    );
    let out = Command::new("node")
        .arg("console.mjs")
        .current_dir(&dir)
        .env("CONSOLE_URL", format!("http://{console}"))
        .env("OPERATOR", OPERATOR)
        .env("TOKEN", OPERATOR_TOKEN)
        .env("DEVICE", device.as_str())
        .env("SHOTS", shots)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "the browser driver failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "driver output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn console_in_chromium_shows_the_database_and_erases_with_confirmation(backend: Backend) {
    let (collector, _secrets) = start(backend);
    let (hostile, withdrawn) = fill(&collector);
    let console = collector.logged_addr("console at http://");
    assert!(console.ip().is_loopback());
    let db = &collector;

    // What the database holds, by independent queries. Events per day count arrivals:
    // the third device's 3 erased app events still count.
    let held_by_category = query_pairs(
        db,
        "SELECT category, COUNT(*) FROM events GROUP BY category",
    );
    let mut events_by_category = held_by_category.clone();
    *events_by_category.get_mut("app_events").unwrap() += 3;
    assert_eq!(
        query_pairs(
            db,
            "SELECT category, SUM(events) FROM daily_events GROUP BY category"
        ),
        events_by_category
    );
    let devices_with_events = query_one(db, "SELECT COUNT(DISTINCT device) FROM events");
    let devices_today = query_one(db, "SELECT COUNT(*) FROM devices");
    let gap_events = query_pairs(db, "SELECT reason, SUM(count) FROM gaps GROUP BY reason");
    let hostile_events = query_one(
        db,
        &format!("SELECT COUNT(*) FROM events WHERE device = '{hostile}'"),
    );
    assert!(hostile_events > 3, "{hostile_events}");
    assert_eq!(
        devices_with_events, 2,
        "the third device's events were erased"
    );

    // The docs' screenshots are the SQLite run's (both backends draw the same pages).
    let shots =
        if backend == Backend::Sqlite && std::env::var_os("ASSENT_UPDATE_SCREENSHOTS").is_some() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/images");
            std::fs::create_dir_all(&dir).unwrap();
            dir
        } else {
            collector.dir.path().to_path_buf()
        };
    let report = run_browser(console, &hostile, &shots);

    // The pages loaded, under the strict policy, with nothing else asked for.
    assert_eq!(report["overviewStatus"], 200);
    assert_eq!(report["deviceStatus"], 200);
    let csp = report["csp"].as_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(report["consoleErrors"], Value::Array(vec![]));
    assert_eq!(report["pageErrors"], Value::Array(vec![]));
    // The only error is the one the wrong confirmation causes on purpose: its 400.
    assert_eq!(
        report["expectedErrors"],
        serde_json::json!([
            "Failed to load resource: the server responded with a status of 400 (Bad Request)"
        ])
    );
    assert_eq!(report["requestsElsewhere"], Value::Array(vec![]));

    // The charts' numbers are the database's.
    let day = today();
    assert_eq!(
        bars(&report, "events-per-day", Some(&day)),
        events_by_category
    );
    assert_eq!(
        bars(&report, "devices-per-day", Some(&day)),
        BTreeMap::from([("devices".to_string(), devices_today)])
    );
    assert_eq!(devices_today, 3);
    assert_eq!(bars(&report, "gaps-by-reason", None), gap_events);
    assert_eq!(
        gap_events,
        BTreeMap::from([("disk_full".into(), 2), ("evicted".into(), 5)])
    );
    assert_eq!(
        bars(&report, "consent-app_events", Some(&day)),
        BTreeMap::from([("granted".into(), 1), ("withdrawn".into(), 1)]),
        "{withdrawn} withdrew"
    );
    assert_eq!(
        bars(&report, "consent-os", Some(&day)),
        BTreeMap::from([("refused".into(), 1)])
    );
    // Before the operator's erasure: the device's own, 3 events.
    assert_eq!(
        bars(&report, "erasures-per-day", Some(&day)),
        BTreeMap::from([("erasures".into(), 1)])
    );
    assert_eq!(
        bars(&report, "events-erased-per-day", Some(&day)),
        BTreeMap::from([("events".into(), 3)])
    );
    assert_eq!(report["totals"]["total-devices"], 3);
    assert_eq!(
        report["totals"]["total-events"],
        held_by_category.values().sum::<u64>()
    );
    assert_eq!(
        report["overviewErasureBy"],
        serde_json::json!(["the device"])
    );

    // Hostile strings are text; nothing ran, no element was injected.
    let text = report["deviceText"].as_str().unwrap();
    assert!(text.contains(SCRIPT_ATTR), "{text}");
    assert!(text.contains(IMG_PACKAGE), "{text}");
    assert!(text.contains("<i>kind</i>"), "{text}");
    assert_eq!(report["imgCount"], 0);
    assert_eq!(report["scriptCount"], 0);
    assert_eq!(report["pwned"], false);
    assert_eq!(report["dialogs"], Value::Array(vec![]));

    // Erasing: the first step only asks; a wrong confirmation erases nothing.
    let held_before = report["heldBefore"].clone();
    let held_total: u64 = held_before
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[1].as_u64().unwrap())
        .sum();
    assert_eq!(held_total, hostile_events);
    assert_eq!(report["confirmEvents"], hostile_events);
    assert_eq!(report["heldAfterConfirmPage"], held_before);
    assert_eq!(report["wrongConfirmStatus"], 400);
    assert_eq!(report["heldAfterWrongConfirm"], held_before);
    assert!(report["wrongConfirmText"]
        .as_str()
        .unwrap()
        .contains("nothing was erased"));
    // Confirmed: gone, and logged under the operator.
    assert_eq!(report["heldAfterErase"], Value::Array(vec![]));
    assert_eq!(
        report["notice"].as_str().unwrap(),
        format!("Erasure committed: {hostile_events} events deleted.")
    );
    let rows = report["deviceErasures"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][1], "all");
    assert_eq!(rows[0][2], hostile_events.to_string());
    assert_eq!(rows[0][3], format!("operator {OPERATOR}"));
    assert_eq!(report["forgedStatus"], 403);
    assert_eq!(
        query_one(
            db,
            &format!("SELECT COUNT(*) FROM events WHERE device = '{hostile}'"),
        ),
        0
    );
    assert_eq!(
        query_one(
            db,
            &format!(
                "SELECT COUNT(*) FROM erasure_log WHERE device = '{hostile}' \
                 AND operator = '{OPERATOR}' AND erased_events = {hostile_events}"
            ),
        ),
        1
    );
    assert!(collector.log().contains(&format!(
        "console: operator {OPERATOR} erased {hostile_events} events"
    )));
    // Counted like any erasure, and as an operator's.
    let metrics = collector.logged_addr("metrics at http://");
    let (status, text, _) = curl(&[&format!("http://{metrics}/metrics")]);
    assert_eq!(status, 200);
    for line in [
        "assent_collector_operator_erasures_total 1".to_string(),
        "assent_collector_erasures_total 2".to_string(),
        format!(
            "assent_collector_events_erased_total {}",
            hostile_events + 3
        ),
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
    }
}

fn console_http_rules(backend: Backend) {
    let (collector, _secrets) = start(backend);
    let (hostile, withdrawn) = fill(&collector);
    let console = collector.logged_addr("console at http://");
    let base = format!("http://{console}");
    let basic = format!("{OPERATOR}:{OPERATOR_TOKEN}");

    // Sign-in: none, a wrong token, another operator's name with alice's token: 401.
    for args in [
        vec![base.clone() + "/"],
        vec![
            "-u".into(),
            format!("{OPERATOR}:wrong-token-0123456789abc"),
            base.clone() + "/",
        ],
        vec![
            "-u".into(),
            format!("bob:{OPERATOR_TOKEN}"),
            base.clone() + "/",
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, _, headers) = curl(&args);
        assert_eq!(status, 401, "{args:?}");
        assert!(headers.contains("www-authenticate: basic"), "{headers}");
    }
    let (status, body, headers) = curl(&["-u", &basic, &format!("{base}/")]);
    assert_eq!(status, 200);
    assert!(body.contains("Fleet overview"));
    assert!(
        headers.contains("content-security-policy: default-src 'none'"),
        "{headers}"
    );
    assert!(
        headers.contains("x-content-type-options: nosniff"),
        "{headers}"
    );
    // A bearer token works too (scripts, curl).
    let (status, _, _) = curl(&[
        "-H",
        &format!("Authorization: Bearer {OPERATOR_TOKEN}"),
        &format!("{base}/devices/{withdrawn}"),
    ]);
    assert_eq!(status, 200);

    // The search form redirects; unknown and malformed pseudonyms are 404.
    let (status, _, headers) = curl(&["-u", &basic, &format!("{base}/device?pseudonym={hostile}")]);
    assert_eq!(status, 303);
    assert!(
        headers.contains(&format!("location: /devices/{hostile}")),
        "{headers}"
    );
    let (status, _, _) = curl(&["-u", &basic, &format!("{base}/devices/{}", device(999))]);
    assert_eq!(status, 404);
    let (status, _, _) = curl(&["-u", &basic, &format!("{base}/devices/%3Cscript%3E")]);
    assert_eq!(status, 404);

    // No state change on GET; POST needs the CSRF token of this operator and device.
    let erase = format!("{base}/devices/{hostile}/erase");
    let (status, _, _) = curl(&["-u", &basic, &erase]);
    assert_eq!(status, 405);
    let form = format!("csrf=00&scope=all&confirm={hostile}");
    let (status, _, _) = curl(&["-u", &basic, "--data", &form, &erase]);
    assert_eq!(status, 403);
    // A token taken from another device's page does not work for this one.
    let (_, page, _) = curl(&["-u", &basic, &format!("{base}/devices/{withdrawn}")]);
    let other_csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let form = format!("csrf={other_csrf}&scope=all&confirm={hostile}");
    let (status, _, _) = curl(&["-u", &basic, "--data", &form, &erase]);
    assert_eq!(status, 403);
    // A POST that says it comes from another site is refused even with a good token.
    let (_, page, _) = curl(&["-u", &basic, &format!("{base}/devices/{hostile}")]);
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let form = format!("csrf={csrf}&scope=app_events&confirm={hostile}");
    let (status, _, _) = curl(&[
        "-u",
        &basic,
        "-H",
        "Sec-Fetch-Site: cross-site",
        "--data",
        &form,
        &erase,
    ]);
    assert_eq!(status, 403);
    let db = &collector;
    let count = |category: &str| {
        query_one(
            db,
            &format!(
                "SELECT COUNT(*) FROM events WHERE device = '{hostile}' AND category = '{category}'"
            ),
        )
    };
    assert_eq!(count("app_events"), 1);
    // The same request from the console itself erases one category only.
    let (status, _, headers) = curl(&["-u", &basic, "--data", &form, &erase]);
    assert_eq!(status, 303, "{headers}");
    assert!(headers.contains("location: /devices/"), "{headers}");
    assert_eq!(count("app_events"), 0);
    assert!(count("software") > 0);
    // The stylesheet and icon are served locally, to anyone (they hold nothing).
    let (status, _, headers) = curl(&[&format!("{base}/static/console.css")]);
    assert_eq!(status, 200);
    assert!(headers.contains("content-type: text/css"), "{headers}");
}

/// `tls_cert_file` and `tls_key_file` make the console and the metrics listener speak
/// HTTPS with that certificate (here the test PKI's, for 127.0.0.1), checked by curl
/// against the CA; plain HTTP and an unverified certificate get nothing; the console's
/// own origin is then `https://`; half a key pair or a missing file is a config error.
#[test]
fn operator_listeners_speak_https_with_their_own_certificate() {
    let secrets = tempfile::tempdir().unwrap();
    let operators = secrets.path().join("operators");
    std::fs::write(&operators, format!("{OPERATOR} {OPERATOR_TOKEN}\n")).unwrap();
    let tls = "tls_cert_file = \"pki/server.pem\"\ntls_key_file = \"pki/server.key\"\n";
    let collector = Collector::start_with(Options {
        extra_config: format!(
            "\n[console]\nlisten = \"127.0.0.1:0\"\noperators_file = \"{}\"\n{tls}\
             \n[metrics]\nlisten = \"127.0.0.1:0\"\n{tls}",
            operators.display()
        ),
        ..Options::default()
    });
    let ca = collector.pki.ca_file.display().to_string();
    let basic = format!("{OPERATOR}:{OPERATOR_TOKEN}");
    let console = collector.logged_addr("console at https://");
    let base = format!("https://{console}");
    let (status, body, headers) = curl(&["--cacert", &ca, "-u", &basic, &format!("{base}/")]);
    assert_eq!(status, 200, "{headers}");
    assert!(body.contains("Fleet overview"));
    // Plain HTTP on the TLS port, and TLS without trusting the CA, get no page.
    let (status, body, _) = curl(&["-u", &basic, &format!("http://{console}/")]);
    assert!(
        status != 200 && !body.contains("Fleet overview"),
        "{status}"
    );
    let (status, _, _) = curl(&["-u", &basic, &format!("{base}/")]);
    assert_eq!(status, 0, "curl accepted a certificate it cannot verify");
    // The erase action's origin check knows the console is on https now: an http origin
    // is another site; the https one passes it (and is then refused for want of a CSRF
    // token).
    let erase = format!("{base}/devices/{}/erase", device(1));
    for (origin, from_elsewhere) in [(format!("http://{console}"), true), (base.clone(), false)] {
        let (status, body, _) = curl(&[
            "--cacert",
            &ca,
            "-u",
            &basic,
            "-H",
            &format!("Origin: {origin}"),
            "-d",
            "confirm=x",
            &erase,
        ]);
        assert_eq!(status, 403, "{body}");
        assert_eq!(
            body.contains("did not come from the console"),
            from_elsewhere,
            "{origin}: {body}"
        );
    }
    let metrics = collector.logged_addr("metrics at https://");
    let (status, body, _) = curl(&["--cacert", &ca, &format!("https://{metrics}/metrics")]);
    assert_eq!(status, 200);
    assert!(body.contains("assent_collector_build_info"), "{body}");

    // check-config: half a pair names the missing key; a missing file is named.
    let config = std::fs::read_to_string(&collector.config_path).unwrap();
    for (broken, says) in [
        (
            config.replacen("tls_key_file = \"pki/server.key\"\n", "", 1),
            "key `console.tls_cert_file`: needs `tls_key_file` beside it",
        ),
        (
            config.replacen("pki/server.key", "pki/absent.key", 1),
            "absent.key",
        ),
    ] {
        std::fs::write(&collector.config_path, &broken).unwrap();
        let out = collector.cli(&["check-config"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
}
