//! The protocol end to end against the real `assent-collector` process over real TLS:
//! ingest and export in both encodings, idempotency, erasure, retention, authentication,
//! error answers, curl as a client we did not write, and `check-config`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assent_testkit::pg as pg_support;

use assent_platform::Category;
use assent_testkit::collector::*;
use assent_testkit::on_both_backends;
use assent_wire::{
    decode_erasure_ack, encode, Batch, ConsentChange, Encoding, ErasureRequest, Gap, GapReason,
    Record, PATH_BATCHES, PATH_ERASURE, PROTOCOL_VERSION,
};
use pg_support::{sql_execute, sql_rows, Backend};
use std::process::Command;
use std::time::{Duration, Instant};

on_both_backends!(
    batch_in_export_out_for_both_encodings,
    duplicate_overlapping_and_out_of_order_batches_store_each_event_once,
    erasure_deletes_commits_and_is_logged,
    retention_deletes_events_received_too_long_ago,
    curl_posts_a_json_batch_with_a_client_certificate,
    tokens_401_and_403,
    error_answers_name_what_is_wrong,
    gzip_bodies_are_accepted_and_bounded_once_inflated,
    devices_lists_what_is_held_and_export_refuses_an_unknown_device
);

fn batch(
    device: &assent_wire::Pseudonym,
    buffer_id: u64,
    first: u64,
    last: u64,
    records: Vec<Record>,
) -> Batch {
    Batch {
        version: PROTOCOL_VERSION,
        device: device.clone(),
        buffer_id,
        first_seq: first,
        last_seq: last,
        records,
    }
}

fn consent(seq: u64, category: Category) -> Record {
    Record::Consent(ConsentChange {
        seq,
        observed_at: "2026-11-20T10:00:00Z".into(),
        category,
        active: true,
        state: "granted".into(),
        by: Some("owner".into()),
        at: Some("2026-11-20T09:59:00Z".into()),
        policy_version: 1,
    })
}

fn batch_in_export_out_for_both_encodings(backend: Backend) {
    let c = Collector::start_with(backend.options());
    let mut client = c.mtls_client();
    for (n, encoding) in [(1, Encoding::Postcard), (2, Encoding::Json)] {
        let dev = device(n);
        let payloads = inventory_payloads("rpi4-raspios64");
        assert!(
            payloads.len() >= 4,
            "fixture gave {} payloads",
            payloads.len()
        );
        let mut records = vec![consent(1, Category::Hardware)];
        let mut seq = 1;
        for p in &payloads {
            seq += 1;
            records.push(event(seq, p.clone()));
        }
        // Seqs seq+1..=seq+3 were lost on the device: a gap record explains them.
        records.push(Record::Gap(Gap {
            seq: seq + 4,
            first_seq: seq + 1,
            last_seq: seq + 3,
            count: 3,
            reason: GapReason::Evicted,
            category: None,
        }));
        records.push(app_event(seq + 5));
        let last = seq + 5;
        let b = batch(&dev, 42, 1, last, records);
        assert_eq!(client.ack(&b, encoding), last);

        let lines = c.export(&dev, None);
        let events: Vec<_> = lines.iter().filter(|l| l["record"] == "event").collect();
        assert_eq!(events.len(), payloads.len() + 1);
        for (line, payload) in events.iter().zip(&payloads) {
            assert_eq!(line["payload"], payload.to_json(), "{encoding:?}");
            assert_eq!(line["category"], payload.category().name());
            assert_eq!(line["device"], dev.as_str());
            assert_eq!(line["buffer_id"], 42);
            assert_eq!(line["boot_id"], "5a".repeat(16));
        }
        let gaps: Vec<_> = lines.iter().filter(|l| l["record"] == "gap").collect();
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0]["reason"], "evicted");
        assert_eq!(gaps[0]["count"], 3);
        let consents: Vec<_> = lines.iter().filter(|l| l["record"] == "consent").collect();
        assert_eq!(consents.len(), 1);
        assert_eq!(consents[0]["state"], "granted");
        // --category narrows to that category's events.
        let apps = c.export(&dev, Some("app_events"));
        assert_eq!(apps.len(), 1);
        assert_eq!(apps[0]["payload"]["name"], "door_opened");
    }
    let stats = c.cli(&["stats"]);
    assert!(stats.status.success());
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["devices"], 2);
    assert_eq!(stats["consent_records"], 2);
    assert_eq!(stats["gaps"], 2);
    // Events per category as an object whose counts add up to the events.
    let by_category = stats["events_by_category"].as_object().unwrap();
    assert_eq!(by_category["app_events"], 2);
    assert_eq!(by_category["hardware"], 2);
    let sum: u64 = by_category.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(serde_json::json!(sum), stats["events"]);
}

fn devices_lists_what_is_held_and_export_refuses_an_unknown_device(backend: Backend) {
    let c = Collector::start_with(backend.options());
    let empty = c.cli(&["devices"]);
    assert!(empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stdout).starts_with("no devices in "));
    let empty = c.cli(&["devices", "--json"]);
    assert!(empty.status.success() && empty.stdout.is_empty());

    let started = assent_collector::server::now_ms();
    let mut client = c.mtls_client();
    let (a, b) = (device(41), device(40));
    let records = vec![
        consent(1, Category::AppEvents),
        app_event(2),
        app_event(3),
        Record::Gap(Gap {
            seq: 4,
            first_seq: 4,
            last_seq: 4,
            count: 1,
            reason: GapReason::Evicted,
            category: Some(Category::AppEvents),
        }),
        app_event(5),
    ];
    assert_eq!(client.ack(&batch(&a, 1, 1, 5, records), Encoding::Json), 5);
    assert_eq!(client.ack(&app_batch(&b, 1, 1, 2), Encoding::Postcard), 2);
    assert_eq!(client.ack(&app_batch(&b, 1, 3, 3), Encoding::Postcard), 3);
    let erase = ErasureRequest {
        version: PROTOCOL_VERSION,
        device: b.clone(),
        categories: Some(vec![Category::AppEvents]),
    };
    let reply = client
        .request(
            "POST",
            PATH_ERASURE,
            "application/json",
            encode(&erase, Encoding::Json).unwrap(),
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    let finished = assent_collector::server::now_ms();

    let out = c.cli(&["devices", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let counts: Vec<(&str, u64, u64, u64, u64)> = listed
        .iter()
        .map(|d| {
            (
                d["device"].as_str().unwrap(),
                d["events"].as_u64().unwrap(),
                d["consent_records"].as_u64().unwrap(),
                d["gaps"].as_u64().unwrap(),
                d["erasures"].as_u64().unwrap(),
            )
        })
        .collect();
    // In pseudonym order; the erased device is still listed, with its erasure.
    assert_eq!(
        counts,
        [(b.as_str(), 0, 0, 0, 1), (a.as_str(), 3, 1, 1, 0)],
        "{listed:?}"
    );
    for d in &listed {
        let (first, last) = (
            d["first_seen_ms"].as_i64().unwrap(),
            d["last_seen_ms"].as_i64().unwrap(),
        );
        assert!(started <= first && first <= last && last <= finished, "{d}");
    }

    // The table: a header, then a line per device with the same counts.
    let out = c.cli(&["devices"]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert_eq!(lines[0][0], "DEVICE");
    assert_eq!(lines[2][0], a.as_str(), "{table}");
    assert_eq!(lines[2][5..], ["3", "1", "1", "0"], "{table}");

    // An unknown pseudonym is an error naming it, not an empty export.
    let unknown = device(99);
    c.assert_unknown_device(&unknown);
    let out = c.cli(&["export", "--device", unknown.as_str()]);
    assert_eq!(out.status.code(), Some(1));
    // A device whose data was erased is known: its export is empty, and succeeds.
    let out = c.cli(&["export", "--device", b.as_str(), "--category", "app_events"]);
    assert!(out.status.success() && out.stdout.is_empty());
}

fn duplicate_overlapping_and_out_of_order_batches_store_each_event_once(backend: Backend) {
    let c = Collector::start_with(backend.options());
    let mut client = c.mtls_client();
    let dev = device(7);
    // A new buffer is taken to start where its first batch starts (after reset-id a
    // pseudonym appears mid-sequence).
    assert_eq!(
        client.ack(&app_batch(&dev, 1, 101, 110), Encoding::Postcard),
        110
    );
    assert_eq!(
        client.ack(&app_batch(&dev, 1, 101, 110), Encoding::Json),
        110
    );
    assert_eq!(
        client.ack(&app_batch(&dev, 1, 105, 115), Encoding::Postcard),
        115
    );
    assert_eq!(
        client.ack(&app_batch(&dev, 1, 103, 108), Encoding::Postcard),
        115
    );
    // A hole: 116..=119 never arrived. Nothing is stored, the answer says resend from 116.
    assert_eq!(
        client.ack(&app_batch(&dev, 1, 120, 125), Encoding::Postcard),
        115
    );
    assert_eq!(
        client.ack(&app_batch(&dev, 1, 116, 125), Encoding::Json),
        125
    );
    let want: Vec<u64> = (101..=125).collect();
    assert_eq!(c.event_seqs(&dev), want);
    // A replaced buffer starts its seqs again, stored beside the old one.
    assert_eq!(client.ack(&app_batch(&dev, 2, 1, 5), Encoding::Postcard), 5);
    assert_eq!(c.event_seqs(&dev).len(), want.len() + 5);
    // Another device's seqs are its own.
    assert_eq!(
        client.ack(&app_batch(&device(8), 1, 101, 103), Encoding::Json),
        103
    );
    assert_eq!(c.event_seqs(&dev).len(), want.len() + 5);
}

fn erasure_deletes_commits_and_is_logged(backend: Backend) {
    let c = Collector::start_with(backend.options());
    let mut client = c.mtls_client();
    let dev = device(3);
    let other = device(4);
    let hw = inventory_payloads("x86-gateway")
        .into_iter()
        .find(|p| p.category() == Category::Hardware)
        .unwrap();
    let records = vec![
        consent(1, Category::AppEvents),
        event(2, hw.clone()),
        app_event(3),
        app_event(4),
    ];
    assert_eq!(
        client.ack(&batch(&dev, 9, 1, 4, records.clone()), Encoding::Postcard),
        4
    );
    assert_eq!(
        client.ack(&batch(&other, 9, 1, 4, records.clone()), Encoding::Postcard),
        4
    );

    for encoding in [Encoding::Json, Encoding::Postcard] {
        let request = ErasureRequest {
            version: PROTOCOL_VERSION,
            device: dev.clone(),
            categories: Some(vec![Category::AppEvents]),
        };
        let reply = client
            .request(
                "POST",
                PATH_ERASURE,
                encoding.content_type(),
                encode(&request, encoding).unwrap(),
            )
            .unwrap();
        assert_eq!(reply.status, 200);
        let ack = decode_erasure_ack(&reply.body, encoding).unwrap();
        // Two app events the first time, none left the second.
        let want = if encoding == Encoding::Json { 2 } else { 0 };
        assert_eq!(ack.erased_events, want);
    }
    let left = c.export(&dev, None);
    let kinds: Vec<&str> = left.iter().map(|l| l["record"].as_str().unwrap()).collect();
    // The hardware event stays, and so does the consent record: the legal basis.
    assert_eq!(kinds, ["event", "consent"]);
    assert_eq!(left[0]["category"], "hardware");
    // A resend of the old batch does not bring erased events back.
    assert_eq!(
        client.ack(&batch(&dev, 9, 1, 4, records), Encoding::Postcard),
        4
    );
    assert_eq!(c.export(&dev, None).len(), 2);

    let all = ErasureRequest {
        version: PROTOCOL_VERSION,
        device: dev.clone(),
        categories: None,
    };
    let reply = client
        .request(
            "POST",
            PATH_ERASURE,
            "application/json",
            encode(&all, Encoding::Json).unwrap(),
        )
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["erased_events"], 1);
    assert!(c.export(&dev, None).is_empty());
    // The other device is untouched.
    assert_eq!(c.export(&other, None).len(), 4);

    let log: Vec<(String, String, i64)> = sql_rows(
        &c,
        "SELECT device, categories, erased_events FROM erasure_log ORDER BY id",
    )
    .into_iter()
    .map(|r| (r[0].clone(), r[1].clone(), r[2].parse().unwrap()))
    .collect();
    let d = dev.to_string();
    assert_eq!(
        log,
        [
            (d.clone(), "app_events".to_string(), 2),
            (d.clone(), "app_events".to_string(), 0),
            (d, "all".to_string(), 1)
        ]
    );
}

fn retention_deletes_events_received_too_long_ago(backend: Backend) {
    let c = Collector::start_with(Options {
        retention_days: 2,
        retention_sweep_interval_seconds: 1,
        ..backend.options()
    });
    let mut client = c.mtls_client();
    let dev = device(11);
    assert_eq!(
        client.ack(&app_batch(&dev, 1, 1, 10), Encoding::Postcard),
        10
    );
    // Backdate the receipt of seqs 1..=4 to three days ago, as if they had been held
    // that long; 5..=10 stay fresh.
    let three_days_ms = 3 * 86_400_000i64;
    let changed = sql_execute(
        &c,
        &format!(
            "UPDATE events SET received_at_ms = received_at_ms - {three_days_ms} WHERE seq <= 4"
        ),
    );
    assert_eq!(changed, 4);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seqs = c.event_seqs(&dev);
        if seqs.len() < 10 {
            assert_eq!(seqs, (5..=10).collect::<Vec<u64>>());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention did not run:\n{}",
            c.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        c.log().contains("retention: deleted 4 events and gaps"),
        "{}",
        c.log()
    );
    // The high-water stays: a resend of the expired events does not store them again.
    assert_eq!(
        client.ack(&app_batch(&dev, 1, 1, 10), Encoding::Postcard),
        10
    );
    assert_eq!(c.event_seqs(&dev).len(), 6);
}

fn curl(c: &Collector, cert: Option<&ClientCert>, body: &[u8]) -> std::process::Output {
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--max-time", "20", "--cacert"])
        .arg(&c.pki.ca_file)
        .args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "@-",
        ]);
    if let Some(cert) = cert {
        cmd.arg("--cert")
            .arg(&cert.cert_file)
            .arg("--key")
            .arg(&cert.key_file);
    }
    cmd.arg(format!("https://localhost:{}{PATH_BATCHES}", c.addr.port()));
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd
        .spawn()
        .expect("the `curl` binary is needed for this test (apt-get install curl)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(body).unwrap();
    child.wait_with_output().unwrap()
}

fn curl_posts_a_json_batch_with_a_client_certificate(backend: Backend) {
    let c = Collector::start_with(backend.options());
    let dev = device(21);
    let body = encode(&app_batch(&dev, 5, 1, 3), Encoding::Json).unwrap();
    let cert = c.pki.client("curl-client");
    let out = curl(&c, Some(&cert), &body);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ack: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ack, serde_json::json!({"version": 1, "acked_through": 3}));
    assert_eq!(c.event_seqs(&dev), [1, 2, 3]);

    // Without a certificate TLS itself refuses: with TLS 1.3 curl learns it from the
    // server's `certificate required` alert when it reads, exit 56 (CURLE_RECV_ERROR).
    let other = device(22);
    let body = encode(&app_batch(&other, 5, 1, 3), Encoding::Json).unwrap();
    let out = curl(&c, None, &body);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(56), "{stderr}");
    assert!(stderr.contains("alert certificate required"), "{stderr}");
    assert!(out.stdout.is_empty());
    // A certificate from another CA: `unknown ca` alert, same exit.
    let foreign = c.pki.foreign_client("stranger");
    let out = curl(&c, Some(&foreign), &body);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(56), "{stderr}");
    assert!(stderr.contains("alert unknown ca"), "{stderr}");
    // Nothing of either attempt was stored.
    c.assert_unknown_device(&other);
}

const DEVICE_TOKEN: &str = "dev0123456789abcdef0123456789abcdef";
const FLEET_TOKEN: &str = "fleet0123456789abcdef0123456789abcd";

fn tokens_401_and_403(backend: Backend) {
    let bound = device(31);
    let c = Collector::start_with(Options {
        mtls: false,
        tokens: vec![
            (bound.to_string(), DEVICE_TOKEN.into()),
            ("site-north".into(), FLEET_TOKEN.into()),
        ],
        ..backend.options()
    });
    let b = app_batch(&bound, 1, 1, 2);
    let other = app_batch(&device(32), 1, 1, 2);

    let mut anonymous = c.client(None, None);
    let reply = anonymous.post_batch(&b, Encoding::Json).unwrap();
    assert_eq!(reply.status, 401);
    assert_eq!(reply.headers["www-authenticate"], "Bearer");
    assert_eq!(reply.json()["error"], "missing or invalid credentials");

    let mut wrong = c.client(None, Some("not0123456789abcdef0123456789abcdef"));
    assert_eq!(
        wrong.post_batch(&b, Encoding::Postcard).unwrap().status,
        401
    );
    c.assert_unknown_device(&bound);

    let mut dev_client = c.client(None, Some(DEVICE_TOKEN));
    assert_eq!(dev_client.ack(&b, Encoding::Postcard), 2);
    let reply = dev_client.post_batch(&other, Encoding::Json).unwrap();
    assert_eq!(reply.status, 403);
    assert!(reply.json()["error"]
        .as_str()
        .unwrap()
        .contains("may not send for device"));

    let mut fleet = c.client(None, Some(FLEET_TOKEN));
    assert_eq!(fleet.ack(&other, Encoding::Json), 2);
    assert_eq!(c.event_seqs(&bound), [1, 2]);
}

fn error_answers_name_what_is_wrong(backend: Backend) {
    let c = Collector::start_with(Options {
        limits: "max_body_bytes = 4096\nmax_batch_events = 5".into(),
        ..backend.options()
    });
    let mut client = c.mtls_client();
    let dev = device(41);
    let json = "application/json";

    let reply = client.request("GET", PATH_BATCHES, json, vec![]).unwrap();
    assert_eq!(
        (reply.status, reply.headers["allow"].to_str().unwrap()),
        (405, "POST")
    );
    let mut client = c.mtls_client();
    let reply = client.request("POST", "/v2/batches", json, vec![]).unwrap();
    assert_eq!(reply.status, 404);
    let mut client = c.mtls_client();
    let reply = client
        .request("POST", PATH_BATCHES, "text/plain", b"hi".to_vec())
        .unwrap();
    assert_eq!(reply.status, 415);
    assert!(reply.json()["error"]
        .as_str()
        .unwrap()
        .contains("content type must be"));

    let mut client = c.mtls_client();
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (b"{not json".to_vec(), json, "invalid JSON"),
        (
            br#"{"version":2,"device":"x"}"#.to_vec(),
            json,
            "unsupported protocol version 2 (this server speaks 1)",
        ),
        (
            vec![0xff, 0xff, 0xff, 0xff],
            assent_wire::CONTENT_TYPE_POSTCARD,
            "empty or truncated body",
        ),
        (
            encode(
                &app_batch(&dev, 1, u64::MAX - 1, u64::MAX - 1),
                Encoding::Json,
            )
            .unwrap(),
            json,
            "beyond the largest seq stored",
        ),
    ];
    // More records than allowed is too large (the agent halves its batch), not malformed.
    let reply = client
        .request(
            "POST",
            PATH_BATCHES,
            json,
            encode(&app_batch(&dev, 1, 1, 6), Encoding::Json).unwrap(),
        )
        .unwrap();
    assert_eq!(reply.status, 413);
    assert!(
        String::from_utf8_lossy(&reply.body).contains("6 records, more than the limit of 5"),
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    for (body, content_type, reason) in cases {
        let reply = client
            .request("POST", PATH_BATCHES, content_type, body)
            .unwrap();
        assert_eq!(reply.status, 400, "{reason}");
        let body = if content_type == json {
            reply.json()["error"].as_str().unwrap().to_string()
        } else {
            // A postcard request gets a postcard error body.
            let e: assent_wire::ErrorBody = postcard_error(&reply.body);
            e.error
        };
        assert!(body.contains(reason), "{body:?} lacks {reason:?}");
    }
    // A body over the limit by Content-Length is refused before it is read.
    let big = vec![b' '; 5000];
    let reply = client.request("POST", PATH_BATCHES, json, big).unwrap();
    assert_eq!(reply.status, 413);
    c.assert_unknown_device(&dev);
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn gzip_bodies_are_accepted_and_bounded_once_inflated(backend: Backend) {
    let c = Collector::start_with(Options {
        limits: "max_body_bytes = 65536".into(),
        ..backend.options()
    });
    let mut client = c.mtls_client();
    let dev = device(51);
    let pc = assent_wire::CONTENT_TYPE_POSTCARD;
    let body = encode(&app_batch(&dev, 1, 1, 100), Encoding::Postcard).unwrap();
    let packed = gzip(&body);
    assert!(
        packed.len() * 3 < body.len(),
        "{} vs {}",
        packed.len(),
        body.len()
    );
    let headers = [("content-type", pc), ("content-encoding", "gzip")];
    let reply = client
        .request_with("POST", PATH_BATCHES, &headers, packed)
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        assent_wire::decode_batch_ack(&reply.body, Encoding::Postcard)
            .unwrap()
            .acked_through,
        100
    );
    assert_eq!(c.event_seqs(&dev).len(), 100);

    // A bomb: 10 MB of zeros in about 10 kB is refused once it inflates past the limit.
    let bomb = gzip(&vec![0u8; 10_000_000]);
    assert!(bomb.len() < 65536);
    let reply = client
        .request_with("POST", PATH_BATCHES, &headers, bomb)
        .unwrap();
    assert_eq!(reply.status, 413);
    // Not gzip at all.
    let reply = client
        .request_with("POST", PATH_BATCHES, &headers, b"plain".to_vec())
        .unwrap();
    assert_eq!(reply.status, 400);
    // An encoding the collector does not speak.
    let mut client = c.mtls_client();
    let reply = client
        .request_with(
            "POST",
            PATH_BATCHES,
            &[
                ("content-type", "application/json"),
                ("content-encoding", "br"),
            ],
            b"{}".to_vec(),
        )
        .unwrap();
    assert_eq!(reply.status, 415);
    assert!(reply.json()["error"]
        .as_str()
        .unwrap()
        .contains("content encoding `br`"));
}

fn postcard_error(bytes: &[u8]) -> assent_wire::ErrorBody {
    // ErrorBody has no version field, so it is decoded with postcard through the wire
    // crate's own encoding of a string: a varint length, then the bytes.
    let (len, rest) = bytes.split_first().unwrap();
    assert!(*len < 128, "short reasons only in this test");
    assent_wire::ErrorBody {
        error: String::from_utf8(rest[..*len as usize].to_vec()).unwrap(),
    }
}

#[test]
fn check_config_lists_every_problem_and_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "listen = \"nowhere\"\nretention_dyas = 3\n[tls]\nenabled = false\n[limits]\nmax_connections = 0\n",
    )
    .unwrap();
    let out = Command::new(collector_bin())
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let p = path.display();
    for want in [
        format!("{p}:1:10: "),
        format!("{p}:2:1: unknown key `retention_dyas`; did you mean `retention_days`?"),
        format!("{p}:4:11: "),
        format!("{p}:6:19: "),
    ] {
        assert!(stderr.contains(&want), "{want:?} not in:\n{stderr}");
    }
    assert_eq!(stderr.lines().count(), 4, "{stderr}");

    // A valid config whose files are missing: each file named.
    let pki = Pki::new(&dir.path().join("pki"));
    let good = write_config(dir.path(), &pki, &Options::default());
    let out = Command::new(collector_bin())
        .args(["check-config", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&pki.server_key).unwrap();
    std::fs::write(&pki.ca_file, "not a pem").unwrap();
    let out = Command::new(collector_bin())
        .args(["check-config", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server.key: cannot read: no such file"),
        "{stderr}"
    );
    assert!(stderr.contains("ca.pem: no PEM certificate"), "{stderr}");
}
