//! A wall clock that jumps: a device without an RTC boots in 1970, NTP fixes it later,
//! and clocks get set backwards and forwards. The real `assent` runs under libfaketime
//! (Debian package `faketime`, preloaded with `LD_PRELOAD`), which fakes the wall clock
//! only (`FAKETIME_DONT_FAKE_MONOTONIC=1`): `CLOCK_MONOTONIC` and `CLOCK_BOOTTIME` stay
//! real, as they do on a device whose wall clock is being corrected.

use assent_testkit::collector::{Collector, Options, Pki};
use assent_testkit::fault_proxy::{Fault, FaultProxy};
use assent_testkit::*;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// 2020-01-01T00:00:00Z: below this a wall time is "clock not set".
const PLAUSIBLE_MS: i64 = 1_577_836_800_000;

/// The preloadable libfaketime (multi-threaded variant: the agent runs threads).
fn libfaketime() -> PathBuf {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("libfaketime not found ({candidates:?}): install the Debian package `faketime`")
        })
}

/// Runs `assent <args>` with the wall clock faked by `spec` (libfaketime syntax:
/// `@1970-01-02 00:00:00` absolute, `-3d` relative).
fn run_at(device: &Device, spec: &str, args: &[&str]) -> Output {
    assent()
        .args(args)
        .arg("--config")
        .arg(&device.config)
        .env("LD_PRELOAD", libfaketime())
        .env("FAKETIME", spec)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .output()
        .unwrap()
}

fn run_ok_at(device: &Device, spec: &str, args: &[&str]) -> Output {
    let out = run_at(device, spec, args);
    assert!(
        out.status.success(),
        "assent {args:?} at {spec} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn count(db: &Path, query: &str) -> u64 {
    sqlite(db, query)[0].parse().unwrap()
}

#[test]
fn faketime_fakes_the_agents_wall_clock_and_not_its_monotonic_clock() {
    // Guards the other tests: if the preload stopped working (a static binary, a
    // changed libfaketime), they would pass without testing anything.
    let device = Device::new("");
    device.run_ok(&["consent", "grant", "--all-required"]);
    let root = fixture_root("x86-gateway");
    run_ok_at(
        &device,
        "@1970-01-02 00:00:00",
        &["collect", "--root", root.to_str().unwrap()],
    );
    let rows = sqlite(
        &device.state_dir().join("buffer.db"),
        "SELECT wall_time_ms, monotonic_ns FROM records WHERE category = 'hardware'",
    );
    let (wall, mono) = rows[0].split_once('|').unwrap();
    let wall: i64 = wall.parse().unwrap();
    assert!(
        (86_400_000..86_460_000).contains(&wall),
        "the wall clock was not faked: {wall}"
    );
    let uptime_s: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mono_s = mono.parse::<u64>().unwrap() as f64 / 1e9;
    assert!(
        // /proc/uptime has two decimals; the event's clock has nanoseconds.
        mono_s <= uptime_s + 0.5 && mono_s > uptime_s - 60.0,
        "monotonic_ns {mono_s} s is not this boot's time since boot ({uptime_s} s)"
    );
}

#[test]
fn events_recorded_in_1970_are_kept_and_arrive_in_seq_order_after_ntp_fixes_the_clock() {
    // The collector's retention (1 day, swept every second) judges by received time.
    let collector = Collector::start_with(Options {
        retention_days: 1,
        retention_sweep_interval_seconds: 1,
        ..Options::default()
    });
    let cert = collector.pki.client("device-1");
    let device = Device::new(&format!(
        "[collector]\nurl = \"https://localhost:{}\"\nca_file = \"{}\"\nclient_cert_file = \"{}\"\n\
         client_key_file = \"{}\"\n[sync]\nbackoff_base_seconds = 1\nbackoff_max_seconds = 1\n\
         metered = \"allow\"\n[buffer]\nretention_days = 1\n",
        collector.addr.port(),
        collector.pki.ca_file.display(),
        cert.cert_file.display(),
        cert.key_file.display(),
    ));
    device.run_ok(&["consent", "grant", "--all-required"]);
    let root = fixture_root("x86-gateway");
    let collect = ["collect", "--root", root.to_str().unwrap()];

    // Boot in 1970: two collections. (4 events each: device_id, hardware, os, network.)
    run_ok_at(&device, "@1970-01-02 00:00:00", &collect);
    run_ok_at(&device, "@1970-01-02 00:05:00", &collect);
    // At 1970 the collector's certificate is not valid yet: nothing is sent, nothing
    // is lost.
    let out = run_at(
        &device,
        "@1970-01-02 00:06:00",
        &["sync", "--once", "--attempts", "1"],
    );
    assert_eq!(out.status.code(), Some(75), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS handshake failed"), "{err}");
    assert_eq!(count(&collector.database, "SELECT count(*) FROM events"), 0);
    // A clock set to a plausible but old time: these events are past retention.
    run_ok_at(&device, "-3d", &collect);
    // NTP fixes the clock.
    device.run_ok(&collect);
    // Then the clock jumps backwards to 1970 once more (RTC battery, bad NTP answer).
    run_ok_at(&device, "@1970-01-03 00:00:00", &collect);

    let out = device.run_ok(&["sync", "--once", "--batch-events", "3"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("remaining: 0 events"), "{text}");

    let db = &collector.database;
    // The store expired only the "-3d" events (the next time the buffer was opened with
    // the clock right), and reported them; nothing stamped in 1970 expired.
    assert_eq!(
        count(
            db,
            "SELECT coalesce(sum(count), 0) FROM gaps WHERE reason = 'expired'"
        ),
        4
    );
    assert_eq!(
        count(
            db,
            &format!("SELECT count(*) FROM events WHERE wall_time_ms < {PLAUSIBLE_MS}")
        ),
        12,
        "every event recorded at 1970 arrives"
    );
    assert_eq!(count(db, "SELECT count(*) FROM events"), 16);

    // In seq order: arrival (received time) and monotonic time never go backwards,
    // every event carries this boot's id, while the wall time jumps both ways.
    let rows = sqlite(
        db,
        "SELECT seq, received_at_ms, wall_time_ms, monotonic_ns, boot_id FROM events ORDER BY seq",
    );
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap()
        .trim()
        .replace('-', "");
    let mut previous: Option<(u64, i64, i64, u64)> = None;
    let mut wall_went_back = 0;
    for row in &rows {
        let f: Vec<&str> = row.split('|').collect();
        let (seq, received, wall, mono): (u64, i64, i64, u64) = (
            f[0].parse().unwrap(),
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
        );
        assert_eq!(f[4].to_lowercase(), boot_id, "{row}");
        if let Some((p_seq, p_received, p_wall, p_mono)) = previous {
            assert!(seq > p_seq);
            assert!(received >= p_received, "arrived out of seq order: {rows:?}");
            assert!(
                mono >= p_mono,
                "monotonic time went back in seq order: {rows:?}"
            );
            if wall < p_wall {
                wall_went_back += 1;
            }
        }
        previous = Some((seq, received, wall, mono));
    }
    assert!(
        wall_went_back >= 1,
        "the test should include a backwards jump"
    );

    // The collector's retention sweep (1 day by received time) keeps them.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        count(
            db,
            &format!("SELECT count(*) FROM events WHERE wall_time_ms < {PLAUSIBLE_MS}")
        ),
        12
    );
    assert_eq!(count(db, "SELECT count(*) FROM events"), 16);
}

#[test]
fn a_wall_clock_jump_during_backoff_neither_stretches_nor_skips_it() {
    // Every request is answered 503 with `Retry-After: 1`; with the backoff ceiling at
    // 1 s the daemon waits exactly 1 s between attempts. The wall clock jumps a day
    // forwards, then two days backwards, each time just after an attempt, i.e. in the
    // middle of a backoff. A wall-clock timer would fire at once after the forward jump
    // (skip) and wait a day after the backward one (stretch).
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let unused = "127.0.0.1:9".parse().unwrap();
    let proxy = FaultProxy::start(
        &pki.server_cert,
        &pki.server_key,
        unused,
        vec![Fault::Status(503)],
    );
    let token = dir.path().join("token");
    std::fs::write(&token, "clock-test-token-0123456789abcdef\n").unwrap();
    let device = Device::new(&format!(
        "[collector]\nurl = \"https://localhost:{}\"\nca_file = \"{}\"\ntoken_file = \"{}\"\n\
         [sync]\ninterval_seconds = 1\nbackoff_base_seconds = 1\nbackoff_max_seconds = 1\n\
         metered = \"allow\"\n[control]\nsocket = \"control.sock\"\n\
         [events]\nsocket = \"events.sock\"\n",
        proxy.addr.port(),
        pki.ca_file.display(),
        token.display(),
    ));
    device.run_ok(&["consent", "grant", "--all-required"]);
    let clock = dir.path().join("faketime.rc");
    std::fs::write(&clock, "+0\n").unwrap();
    let lib = libfaketime();
    let daemon = Daemon::start(
        &device,
        &[],
        &[
            ("LD_PRELOAD", lib.to_str().unwrap()),
            ("FAKETIME_TIMESTAMP_FILE", clock.to_str().unwrap()),
            ("FAKETIME_NO_CACHE", "1"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    let arrivals = || proxy.arrivals.lock().unwrap().clone();
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while arrivals().len() < n {
            assert!(
                Instant::now() < deadline,
                "only {} attempts:\n{}",
                arrivals().len(),
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    // The first attempts may be cut short by the start-up wakes (new data, consent).
    wait_for(4);
    let settled = arrivals().len();
    std::thread::sleep(Duration::from_millis(100));
    std::fs::write(&clock, "+1d\n").unwrap();
    wait_for(settled + 3);
    let after_forward = arrivals().len();
    std::thread::sleep(Duration::from_millis(100));
    std::fs::write(&clock, "-1d\n").unwrap();
    wait_for(after_forward + 3);
    let times = arrivals();
    daemon.wait_log("next attempt in 1.0 s", Duration::from_secs(1));
    // The jumps really reached the daemon: an event it stamps now is a day behind.
    let out = device.run_ok(&["emit", "probe"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("ok "),
        "{out:?}"
    );
    let real_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let stamped: i64 = sqlite(
        &device.state_dir().join("buffer.db"),
        "SELECT wall_time_ms FROM records WHERE category = 'app_events'",
    )[0]
    .parse()
    .unwrap();
    let behind_h = (real_ms - stamped) as f64 / 3_600_000.0;
    assert!(
        (23.9..24.1).contains(&behind_h),
        "the daemon's wall clock is {behind_h:.2} h behind, expected 24"
    );
    let intervals: Vec<f64> = times[settled - 1..]
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    for (i, d) in intervals.iter().enumerate() {
        assert!(
            (0.9..3.0).contains(d),
            "attempt interval {i} was {d:.3} s (expected ~1 s): {intervals:?}\n{}",
            daemon.log()
        );
    }
    assert!(intervals.len() >= 6, "{intervals:?}");
    drop(daemon);
}
