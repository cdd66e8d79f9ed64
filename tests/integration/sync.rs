//! Sync end to end: the real agent, the real collector, real TLS with certificates made
//! here, real processes killed with SIGKILL, and a fault proxy in between.

use assent_testkit::collector::{Collector, Options};
use assent_testkit::fault_proxy::{Fault, FaultProxy};
use assent_testkit::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A device configured to send to `url`, trusting `ca_file`.
fn device_for(url: &str, ca_file: &Path, extra: &str) -> Device {
    Device::new(&format!(
        "[collector]\nurl = \"{url}\"\nca_file = \"{}\"\n{extra}\n\
         [sync]\nbackoff_base_seconds = 1\nbackoff_max_seconds = 2\nmetered = \"allow\"\n",
        ca_file.display()
    ))
}

/// A device sending to `collector` with a client certificate.
fn mtls_device(collector: &Collector, name: &str) -> Device {
    let cert = collector.pki.client(name);
    device_for(
        &format!("https://localhost:{}", collector.addr.port()),
        &collector.pki.ca_file,
        &format!(
            "client_cert_file = \"{}\"\nclient_key_file = \"{}\"",
            cert.cert_file.display(),
            cert.key_file.display()
        ),
    )
}

/// Grants consent and stores `rounds` collections of five categories.
fn fill(device: &Device, rounds: usize) {
    device.run_ok(&["consent", "grant", "--all-required"]);
    device.run_ok(&["consent", "grant", "software"]);
    let root = fixture_root("x86-gateway");
    for _ in 0..rounds {
        device.run_ok(&["collect", "--root", root.to_str().unwrap()]);
    }
}

/// (seq, category) of every event the agent holds unsent.
fn agent_events(device: &Device) -> BTreeSet<(u64, String)> {
    rows_to_set(sqlite(
        &device.state_dir().join("buffer.db"),
        "SELECT seq, category FROM records WHERE payload IS NOT NULL AND category <> 'consent'",
    ))
}

/// (seq, category) of every event the collector holds.
fn collector_events(collector: &Collector) -> BTreeSet<(u64, String)> {
    rows_to_set(sqlite(
        &collector.database,
        "SELECT seq, category FROM events",
    ))
}

fn collector_count(collector: &Collector, query: &str) -> u64 {
    sqlite(&collector.database, query)[0].parse().unwrap()
}

fn rows_to_set(rows: Vec<String>) -> BTreeSet<(u64, String)> {
    rows.iter()
        .map(|r| {
            let (seq, cat) = r.split_once('|').unwrap();
            (seq.parse().unwrap(), cat.to_string())
        })
        .collect()
}

fn sync_once(device: &Device, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["sync", "--once"];
    args.extend_from_slice(extra);
    device.run(&args)
}

#[test]
fn everything_stored_arrives_exactly_once() {
    let collector = Collector::start();
    let device = mtls_device(&collector, "device-1");
    fill(&device, 6);
    let stored = agent_events(&device);
    assert_eq!(stored.len(), 31); // five categories six times, and the package list once (it never changed)

    let out = sync_once(&device, &["--batch-events", "7"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("sent 31 events"), "{text}");
    assert!(text.contains("remaining: 0 events"), "{text}");
    assert_eq!(collector_events(&collector), stored);
    // The consent decisions travelled with the data, as its legal basis.
    assert!(collector_count(&collector, "SELECT count(*) FROM consent_records") >= 8);

    // Nothing left to send; a second run sends nothing and duplicates nothing.
    let out = sync_once(&device, &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("sent 0 events"));
    fill(&device, 2);
    let more = agent_events(&device);
    assert!(sync_once(&device, &[]).status.success());
    let all: BTreeSet<_> = stored.union(&more).cloned().collect();
    assert_eq!(collector_events(&collector), all);
    assert_eq!(
        collector_count(&collector, "SELECT count(*) FROM events"),
        all.len() as u64
    );
    assert_eq!(
        collector_count(&collector, "SELECT count(DISTINCT device) FROM events"),
        1
    );
}

#[test]
fn faults_between_agent_and_collector_lose_and_duplicate_nothing() {
    // The collector speaks plain HTTP behind the TLS-terminating fault proxy, with token
    // auth, as it would behind nginx.
    let token = "test-token-0123456789abcdef0123";
    let collector = Collector::start_with(Options {
        plain_http: true,
        mtls: false,
        tokens: vec![("fleet".into(), token.into())],
        ..Options::default()
    });
    let schedule = vec![
        Fault::None,
        Fault::DropAfterForward,
        Fault::None,
        Fault::Status(503),
        Fault::Truncate,
        Fault::None,
        Fault::Status(429),
        Fault::Stall(Duration::from_millis(1500)),
        Fault::Status(500),
        Fault::DropBeforeForward,
    ];
    let proxy = FaultProxy::start(
        &collector.pki.server_cert,
        &collector.pki.server_key,
        collector.addr,
        schedule,
    );
    let token_file = collector.dir.path().join("device-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let device = device_for(
        &format!("https://localhost:{}", proxy.addr.port()),
        &collector.pki.ca_file,
        &format!("token_file = \"{}\"", token_file.display()),
    );
    fill(&device, 5);
    let stored = agent_events(&device);
    let out = sync_once(&device, &["--batch-events", "3", "--attempts", "40"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let injected = proxy.faults_injected();
    for fault in [
        Fault::DropAfterForward,
        Fault::Status(503),
        Fault::Truncate,
        Fault::Status(429),
        Fault::Status(500),
        Fault::DropBeforeForward,
    ] {
        assert!(
            injected.contains(&fault),
            "{fault:?} never injected: {injected:?}"
        );
    }
    assert_eq!(collector_events(&collector), stored);
    assert_eq!(
        collector_count(&collector, "SELECT count(*) FROM events"),
        stored.len() as u64
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("503") && stderr.contains("429"), "{stderr}");
}

#[test]
fn untrusted_wrong_name_and_expired_certificates_are_refused() {
    let cases: [(&str, Options); 3] = [
        ("untrusted CA", Options::default()),
        (
            "wrong host name",
            Options {
                server_names: vec!["collector.example.net".into()],
                ..Options::default()
            },
        ),
        (
            "expired",
            Options {
                server_cert_expired: true,
                ..Options::default()
            },
        ),
    ];
    for (case, options) in cases {
        let collector = Collector::start_with(options);
        let device = mtls_device(&collector, "device-1");
        if case == "untrusted CA" {
            // The device trusts a different CA than the one that signed the server.
            let other = assent_testkit::collector::Pki::new(&device.dir.path().join("other-pki"));
            let text = std::fs::read_to_string(&device.config).unwrap().replace(
                &collector.pki.ca_file.display().to_string(),
                &other.ca_file.display().to_string(),
            );
            std::fs::write(&device.config, text).unwrap();
        }
        fill(&device, 1);
        let out = sync_once(&device, &["--attempts", "1"]);
        assert_eq!(out.status.code(), Some(75), "{case}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("TLS handshake failed"), "{case}: {stderr}");
        assert!(stderr.contains("nothing was sent"), "{case}: {stderr}");
        assert!(
            stderr.contains("invalid peer certificate"),
            "{case}: {stderr}"
        );
        // (A foreign CA that happens to share the test CA's name fails as BadSignature.)
        let expected: &[&str] = match case {
            "untrusted CA" => &["UnknownIssuer", "BadSignature"],
            "wrong host name" => &["not valid for name \"localhost\""],
            _ => &["certificate expired"],
        };
        assert!(
            expected.iter().any(|e| stderr.contains(e)),
            "{case}: {stderr}"
        );
        assert_eq!(
            collector_count(&collector, "SELECT count(*) FROM events"),
            0
        );
        assert_eq!(agent_events(&device).len(), 6, "{case}: nothing acked");
    }
}

#[test]
fn withdrawal_with_a_backlog_sends_nothing_of_it_and_erases_what_was_sent() {
    let collector = Collector::start();
    let device = mtls_device(&collector, "device-1");
    fill(&device, 2);
    assert!(sync_once(&device, &[]).status.success());
    let software_sent = "SELECT count(*) FROM events WHERE category = 'software'";
    assert_eq!(collector_count(&collector, software_sent), 3); // two snapshots and one package list

    // A backlog builds up, then the owner withdraws software.
    let root = fixture_root("x86-gateway");
    for _ in 0..3 {
        device.run_ok(&["collect", "--root", root.to_str().unwrap()]);
    }
    let out = device.run_ok(&["consent", "revoke", "software"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("deleted 3 unsent events of software"));

    let out = sync_once(&device, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("erasure requests confirmed: 1"));
    assert_eq!(collector_count(&collector, software_sent), 0);
    assert_eq!(
        sqlite(
            &collector.database,
            "SELECT categories, erased_events FROM erasure_log"
        ),
        vec!["software|3".to_string()]
    );
    // The rest of the backlog arrived; the purge is reported as a gap.
    assert_eq!(
        collector_count(
            &collector,
            "SELECT count(*) FROM events WHERE category = 'hardware'"
        ),
        5
    );
    assert_eq!(
        collector_count(
            &collector,
            "SELECT sum(count) FROM gaps WHERE reason = 'purged' AND category = 'software'"
        ),
        3
    );
}

/// `sync --once` one event per batch, retrying long, as a background process.
fn background_sync(
    device: &Device,
    stdout: fn() -> Stdio,
    stderr: fn() -> Stdio,
) -> std::process::Child {
    assent()
        .args([
            "sync",
            "--once",
            "--batch-events",
            "1",
            "--attempts",
            "100",
            "--config",
        ])
        .arg(&device.config)
        .stdout(stdout())
        .stderr(stderr())
        .spawn()
        .unwrap()
}

/// Runs `sync --once` in the background and SIGKILLs it once the collector holds a few
/// more events than before (mid-queue, whatever the machine's speed).
fn kill_sync_mid_queue(device: &Device, collector: &Collector) {
    let before = collector_events(collector).len();
    let mut child = background_sync(device, Stdio::null, Stdio::null);
    let deadline = Instant::now() + Duration::from_secs(20);
    while collector_events(collector).len() < before + 3
        && child.try_wait().unwrap().is_none()
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_agent_killed_mid_batch_loses_and_duplicates_nothing() {
    let collector = Collector::start();
    let device = mtls_device(&collector, "device-1");
    fill(&device, 20);
    let stored = agent_events(&device);
    for _ in 0..5 {
        kill_sync_mid_queue(&device, &collector);
    }
    let delivered_before_final = collector_events(&collector).len();
    assert!(sync_once(&device, &["--attempts", "5"]).status.success());
    assert_eq!(collector_events(&collector), stored);
    assert_eq!(
        collector_count(&collector, "SELECT count(*) FROM events"),
        stored.len() as u64
    );
    assert!(
        delivered_before_final > 0 && delivered_before_final < stored.len(),
        "the kills should land mid-queue: {delivered_before_final} of {}",
        stored.len()
    );
}

#[test]
fn the_collector_killed_mid_batch_loses_and_duplicates_nothing() {
    let mut collector = Collector::start();
    let device = mtls_device(&collector, "device-1");
    fill(&device, 20);
    let stored = agent_events(&device);
    let child = background_sync(&device, Stdio::piped, Stdio::piped);
    // Kill the collector twice while batches are in flight, restart it on its port.
    for _ in 0..2 {
        let deadline = Instant::now() + Duration::from_secs(20);
        let start = collector_events(&collector).len();
        while collector_events(&collector).len() < start + 10 {
            assert!(Instant::now() < deadline, "sync made no progress");
            std::thread::sleep(Duration::from_millis(10));
        }
        collector.kill();
        std::thread::sleep(Duration::from_millis(500));
        collector.restart();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(collector_events(&collector), stored);
    assert_eq!(
        collector_count(&collector, "SELECT count(*) FROM events"),
        stored.len() as u64
    );
}

#[test]
fn the_owner_can_export_erase_and_forget() {
    let collector = Collector::start();
    let device = mtls_device(&collector, "device-1");
    fill(&device, 2);
    assert!(sync_once(&device, &[]).status.success());
    let sent = collector_count(&collector, "SELECT count(*) FROM events");
    assert_eq!(sent, 11);
    let root = fixture_root("x86-gateway");
    device.run_ok(&["collect", "--root", root.to_str().unwrap()]);

    // Export: one readable document with what is queued, the consent history and what
    // was sent.
    let out_file = device.dir.path().join("export.json");
    device.run_ok(&["export", "--out", out_file.to_str().unwrap()]);
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    let queued = doc["queued"].as_array().unwrap();
    assert!(
        queued
            .iter()
            .any(|r| r["category"] == "hardware" && r["data"]["model"]["present"] == "UNO-2484G"),
        "{doc}"
    );
    assert!(!doc["consent"]["history"].as_array().unwrap().is_empty());
    assert_eq!(doc["sent_batches"].as_array().unwrap().len(), 1);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&out_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Erase with --remote: nothing queued locally, the collector erases everything.
    let out = device.run_ok(&["erase", "--remote"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("deleted 5 queued events"), "{said}");
    // What it deleted besides the queue, and what it kept and why.
    assert!(
        said.contains("deleted the record of 1 batches already sent"),
        "{said}"
    );
    let consent_file = device.state_dir().join("consent.toml");
    assert!(
        said.contains(&format!(
            "kept on purpose:\n  the consent file {} and the consent log",
            consent_file.display()
        )),
        "{said}"
    );
    assert!(
        said.contains("the device identity: `assent forget`"),
        "{said}"
    );
    assert!(!said.contains("assent erase --remote"), "{said}");
    assert!(consent_file.exists());
    assert!(device.state_dir().join("consent.log").exists());
    assert!(agent_events(&device).is_empty());
    assert!(sync_once(&device, &[]).status.success());
    assert_eq!(
        collector_count(&collector, "SELECT count(*) FROM events"),
        0
    );
    assert_eq!(
        sqlite(&collector.database, "SELECT categories FROM erasure_log"),
        vec!["all".to_string()]
    );

    // Forget: erase, then a new pseudonym that cannot be linked to the old one.
    let before = sqlite(&collector.database, "SELECT pseudonym FROM devices");
    fill(&device, 1);
    let said = String::from_utf8_lossy(&device.run_ok(&["forget"]).stdout).to_string();
    assert!(said.contains("device identity rotated"), "{said}");
    assert!(
        !said.contains("the device identity: `assent forget`"),
        "{said}"
    );
    fill(&device, 1);
    assert!(sync_once(&device, &[]).status.success());
    let after = sqlite(&collector.database, "SELECT pseudonym FROM devices");
    assert!(
        after.len() > before.len(),
        "a new device appeared: {after:?}"
    );
}

#[test]
fn a_required_category_withdrawn_and_granted_again_does_not_stall_sync() {
    // Found by the soak: while a required category is refused nothing is active, so
    // `device_id` is not either and the consent records of the refusal go out under the
    // install pseudonym. The hardware pseudonym used again afterwards must not resume
    // behind the seqs those records took (a hole the collector would wait on forever).
    let collector = Collector::start();
    let device = mtls_device(&collector, "device-1");
    fill(&device, 1);
    assert!(sync_once(&device, &[]).status.success());
    let first = collector_events(&collector);
    assert_eq!(first.len(), 6);

    device.run_ok(&["consent", "revoke", "os"]);
    let out = sync_once(&device, &[]);
    assert!(out.status.success());
    // The refusal's consent records were sent under a second pseudonym.
    let pseudonyms = sqlite(&collector.database, "SELECT count(*) FROM devices");
    assert_eq!(pseudonyms, vec!["2".to_string()]);

    device.run_ok(&["consent", "grant", "os"]);
    let root = fixture_root("x86-gateway");
    device.run_ok(&["collect", "--root", root.to_str().unwrap()]);
    let queued = agent_events(&device);
    assert_eq!(queued.len(), 5);
    let out = sync_once(&device, &["--attempts", "3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("remaining: 0 events"), "{text}");
    // The withdrawal erased what the collector held of `os`; everything else arrived.
    let all: BTreeSet<_> = first
        .iter()
        .filter(|(_, category)| category != "os")
        .chain(&queued)
        .cloned()
        .collect();
    assert_eq!(collector_events(&collector), all);
}
