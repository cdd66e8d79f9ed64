//! A collector that takes the connection and then never answers, or answers a byte a
//! minute (docs/reliability.md, "collector slow"): the agent's stage timeouts end each
//! attempt, the batch is sent again, nothing is lost or stored twice, and the agent's
//! memory does not grow while it waits. The timeouts are the built-in ones (30 s for the
//! request and for the response body; `agent/src/sync/http.rs`), so this test takes
//! about a minute.

use assent_testkit::collector::{Collector, Options};
use assent_testkit::fault_proxy::{Fault, FaultProxy};
use assent_testkit::Device;
use assent_testkit::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn a_collector_that_never_answers_or_trickles_is_timed_out_and_nothing_is_lost() {
    let token = "stalled-collector-token-0123456789";
    let collector = Collector::start_with(Options {
        plain_http: true,
        mtls: false,
        tokens: vec![("fleet".into(), token.into())],
        ..Options::default()
    });
    // First batch: no answer at all. Second batch: stored, then acknowledged a byte a
    // minute. Everything after passes.
    let mut schedule = vec![
        Fault::NeverAnswer,
        Fault::None,
        Fault::Trickle(Duration::from_secs(60)),
    ];
    schedule.extend([Fault::None; 20]);
    let proxy = FaultProxy::start(
        &collector.pki.server_cert,
        &collector.pki.server_key,
        collector.addr,
        schedule,
    );
    let token_file = collector.dir.path().join("device-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let device = Device::new(&format!(
        "[collector]\nurl = \"https://localhost:{}\"\nca_file = \"{}\"\ntoken_file = \"{}\"\n\
         [sync]\nbackoff_base_seconds = 1\nbackoff_max_seconds = 1\nmetered = \"allow\"\n",
        proxy.addr.port(),
        collector.pki.ca_file.display(),
        token_file.display(),
    ));
    device.run_ok(&["consent", "grant", "--all-required"]);
    let root = fixture_root("x86-gateway");
    for _ in 0..4 {
        device.run_ok(&["collect", "--root", root.to_str().unwrap()]);
    }
    let log = device.dir.path().join("sync.log");
    let mut sync = assent()
        .args(["sync", "--once", "--batch-events", "4", "--attempts", "10"])
        .arg("--config")
        .arg(&device.config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // RSS once a second while the agent waits out both stalls.
    let mut rss = Vec::new();
    // Two 30 s timeouts and a few 1 s backoffs; far beyond that, a timeout did not fire.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = sync.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = sync.kill();
            panic!(
                "sync still waiting after 180 s:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if let Some(kib) = vm_rss_kib(sync.id()) {
            rss.push(kib);
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("timed out during request"), "{stderr}");
    assert!(
        stderr.contains("timed out during response body"),
        "{stderr}"
    );
    assert_eq!(
        proxy.faults_injected(),
        vec![Fault::NeverAnswer, Fault::Trickle(Duration::from_secs(60))]
    );
    let count = |q: &str| -> u64 {
        let out = run_ok(Command::new("sqlite3").arg(&collector.database).arg(q));
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    assert_eq!(count("SELECT count(*) FROM events"), 16);
    assert_eq!(count("SELECT count(DISTINCT seq) FROM events"), 16);
    // Flat: the second stall costs no more than the first (a connection per attempt is
    // dropped, not kept), within a page-cache-sized margin.
    assert!(rss.len() >= 40, "{rss:?}");
    let (first, second) = rss.split_at(rss.len() / 2);
    let (first_max, second_max) = (
        first.iter().max().copied().unwrap_or(0),
        second.iter().max().copied().unwrap_or(0),
    );
    assert!(
        second_max <= first_max + 1024,
        "RSS grew from {first_max} KiB to {second_max} KiB: {rss:?}"
    );
}
