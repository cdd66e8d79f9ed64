//! Memory of the dist `assent run` beside collectd (Debian's `collectd-core`, plugins cpu,
//! memory, interface, load, df, csv), both started in this run: RSS, PSS and anonymous
//! memory (`/proc/PID/smaps_rollup`) after `BENCH_IDLE_SECONDS` (default 60) idle, and
//! the ratios; then the agent's peak RSS while local programs emit at full rate and while
//! it syncs a large backlog (the peak is reset with `clear_refs` before each phase).
//!
//! The agent is the dist build, static musl unless told (`make bench` builds it:
//! `target/<arch>-unknown-linux-musl/dist/assent`, or `ASSENT_DIST_AGENT`), all categories
//! granted, a reachable collector, after one sync.
//! Prints figures; asserts only that each phase did its work.
// The children are killed and waited for at the end of `main`.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::zombie_processes
)]

use assent_testkit::collector as collector_support;

use assent_testkit::{run_ok, workspace};
use collector_support::Collector;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
const PIPELINE: usize = 100;
/// Events each client sends in the full-rate phase.
const EMIT_PER_CLIENT: usize = 5_000;
/// Events queued while the collector is down, then synced.
const BACKLOG_PER_CLIENT: usize = 6_000;
/// Every category the agent knows; granted all, so every reader runs.
const CATEGORIES: &[&str] = &[
    "device_id",
    "hardware",
    "os",
    "network",
    "network_detail",
    "location",
    "software",
];

fn main() {
    let agent = dist_agent();
    let collectd = Path::new("/usr/sbin/collectd");
    assert!(
        collectd.exists(),
        "the memory bench compares with collectd: apt-get install collectd-core"
    );
    let idle_seconds: u64 = std::env::var("BENCH_IDLE_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);

    let mut collector = Collector::start_with(collector_support::Options {
        log_level: "info".into(),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let config = write_agent_config(dir.path(), &collector);
    for category in CATEGORIES {
        // A category this build does not offer is refused; the rest stay granted.
        let _ = Command::new(&agent)
            .args(["consent", "grant", category, "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    run_ok(
        Command::new(&agent)
            .args(["consent", "grant", "--all-required", "--config"])
            .arg(&config),
    );

    let mut daemon = start_agent(&agent, dir.path(), &config);
    let pid = daemon.id();
    wait_until("the first sync", Duration::from_secs(60), || {
        agent_status(&agent, &config)["last_sync"].is_string()
    });
    let mut collectd_child = start_collectd(collectd, dir.path());

    std::thread::sleep(Duration::from_secs(idle_seconds));
    let a = smaps_rollup(pid);
    let c = smaps_rollup(collectd_child.id());
    println!(
        "memory after {idle_seconds} s idle (kB, /proc/PID/smaps_rollup; agent environment \
         from the unit: {:?})",
        unit_environment()
    );
    println!("  {:<28} {:>8} {:>8} {:>10}", "", "RSS", "PSS", "anonymous");
    println!(
        "  {:<28} {:>8} {:>8} {:>10}",
        "assent run (dist build)", a.rss, a.pss, a.anonymous
    );
    println!(
        "  {:<28} {:>8} {:>8} {:>10}",
        "collectd (5 plugins + csv)", c.rss, c.pss, c.anonymous
    );
    println!(
        "  {:<28} {:>8.2} {:>8.2} {:>10.2}",
        "ratio assent / collectd",
        ratio(a.rss, c.rss),
        ratio(a.pss, c.pss),
        ratio(a.anonymous, c.anonymous)
    );
    println!(
        "  assent threads {}, collectd threads {}",
        threads(pid),
        threads(collectd_child.id())
    );
    println!("  where assent's resident memory is (kB, by mapping):");
    for (name, rss, anonymous) in mappings(pid) {
        println!("    {rss:>6} RSS {anonymous:>6} anonymous  {name}");
    }
    println!("  where collectd's resident memory is (kB, by mapping):");
    for (name, rss, anonymous) in mappings(collectd_child.id()).into_iter().take(6) {
        println!("    {rss:>6} RSS {anonymous:>6} anonymous  {name}");
    }
    let _ = collectd_child.kill();
    let _ = collectd_child.wait();

    // Local programs at full rate, the collector reachable (the agent syncs meanwhile).
    let socket = dir.path().join("events.sock");
    let idle_rss = status_kib(pid, "VmRSS:");
    reset_peak(pid);
    let started = Instant::now();
    let accepted = emit(&socket, EMIT_PER_CLIENT);
    let rate = accepted as f64 / started.elapsed().as_secs_f64();
    assert_eq!(accepted, CLIENTS * EMIT_PER_CLIENT, "events refused");
    println!(
        "peak RSS while {CLIENTS} local programs emit at full rate ({rate:.0} events/s): {} kB \
         (idle {idle_rss} kB)",
        status_kib(pid, "VmHWM:")
    );
    // New events wait for `sync.interval_seconds`; a sync request sends them now.
    request_sync(&agent, &config);
    wait_until(
        "the emitted events to be synced",
        Duration::from_secs(120),
        || queued(&agent, &config) == Some(0),
    );

    // A large backlog: queued while the collector is down, then synced in one go.
    collector.kill();
    let accepted = emit(&socket, BACKLOG_PER_CLIENT);
    assert_eq!(accepted, CLIENTS * BACKLOG_PER_CLIENT, "events refused");
    let backlog = queued(&agent, &config).unwrap_or(0);
    assert!(backlog >= accepted as u64, "backlog of {backlog} events");
    collector.restart();
    reset_peak(pid);
    let before_sync = status_kib(pid, "VmRSS:");
    let started = Instant::now();
    request_sync(&agent, &config);
    wait_until("the backlog to be synced", Duration::from_secs(300), || {
        queued(&agent, &config) == Some(0)
    });
    println!(
        "peak RSS while syncing a backlog of {backlog} events ({:.1} s): {} kB (before {before_sync} kB)",
        started.elapsed().as_secs_f64(),
        status_kib(pid, "VmHWM:")
    );
    println!("  where assent's resident memory is after the backlog (kB, by mapping):");
    for (name, rss, anonymous) in mappings(pid).into_iter().take(4) {
        println!("    {rss:>6} RSS {anonymous:>6} anonymous  {name}");
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
}

/// The dist agent `make bench` builds for this machine.
fn dist_agent() -> PathBuf {
    if let Some(path) = std::env::var_os("ASSENT_DIST_AGENT") {
        return PathBuf::from(path);
    }
    // The static musl build is the one for small devices; the glibc build otherwise.
    let arch = std::env::consts::ARCH;
    ["musl", "gnu"]
        .iter()
        .map(|libc| workspace().join(format!("target/{arch}-unknown-linux-{libc}/dist/assent")))
        .find(|p| p.exists())
        .expect(
            "no dist assent for this machine: make cross-build TARGET=<arch>-unknown-linux-musl \
             (make bench does), or set ASSENT_DIST_AGENT",
        )
}

fn write_agent_config(dir: &Path, collector: &Collector) -> PathBuf {
    let cert = collector.pki.client("bench-device");
    let config = dir.join("assent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"state\"\nlog_level = \"warn\"\n\
             [collector]\nurl = \"https://localhost:{}\"\nca_file = \"{}\"\n\
             client_cert_file = \"{}\"\nclient_key_file = \"{}\"\n[sync]\nmetered = \"allow\"\n\
             [events]\nsocket = \"events.sock\"\nrate_per_second = 100000\nburst = 1000000\n\
             [control]\nsocket = \"control.sock\"\n",
            collector.addr.port(),
            collector.pki.ca_file.display(),
            cert.cert_file.display(),
            cert.key_file.display()
        ),
    )
    .unwrap();
    config
}

fn start_agent(agent: &Path, dir: &Path, config: &Path) -> Child {
    let notify = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&notify).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut command = Command::new(agent);
    for (key, value) in unit_environment() {
        command.env(key, value);
    }
    let child = command
        .args(["run", "--config"])
        .arg(config)
        .env("NOTIFY_SOCKET", &notify)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 512];
    loop {
        let n = socket.recv(&mut buf).expect("no READY=1 from the agent");
        if String::from_utf8_lossy(&buf[..n]).contains("READY=1") {
            return child;
        }
    }
}

fn start_collectd(collectd: &Path, dir: &Path) -> Child {
    let base = dir.join("collectd");
    std::fs::create_dir_all(base.join("csv")).unwrap();
    let conf = base.join("collectd.conf");
    std::fs::write(
        &conf,
        format!(
            "Hostname \"bench\"\nFQDNLookup false\nBaseDir \"{base}\"\n\
             PIDFile \"{base}/collectd.pid\"\nPluginDir \"/usr/lib/collectd\"\n\
             TypesDB \"/usr/share/collectd/types.db\"\nInterval 10\n\
             LoadPlugin cpu\nLoadPlugin memory\nLoadPlugin interface\nLoadPlugin load\n\
             LoadPlugin df\nLoadPlugin csv\n\
             <Plugin csv>\n  DataDir \"{base}/csv\"\n  StoreRates false\n</Plugin>\n",
            base = base.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(collectd)
        .args(["-f", "-C"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        child.try_wait().unwrap().is_none(),
        "collectd exited at start (config {})",
        conf.display()
    );
    child
}

/// The `Environment=` settings of the shipped unit (`configs/assent.service`), given to
/// the agent as systemd would, plus `ASSENT_BENCH_ENV` (`KEY=VALUE` separated by spaces)
/// to try others.
fn unit_environment() -> Vec<(String, String)> {
    let unit = std::fs::read_to_string(workspace().join("configs/assent.service")).unwrap();
    let extra = std::env::var("ASSENT_BENCH_ENV").unwrap_or_default();
    unit.lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .flat_map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .chain(extra.split_whitespace().map(str::to_owned))
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// Sends `per_client` events from each of `CLIENTS` pipelining clients; returns how many
/// were answered `ok` (stored durably).
fn emit(socket: &Path, per_client: usize) -> usize {
    assent_testkit::device::emit_pipelined(socket, CLIENTS, per_client, PIPELINE)
}

fn request_sync(agent: &Path, config: &Path) {
    run_ok(Command::new(agent).args(["sync", "--config"]).arg(config));
}

fn agent_status(agent: &Path, config: &Path) -> serde_json::Value {
    let out = Command::new(agent)
        .args(["status", "--json", "--config"])
        .arg(config)
        .output()
        .unwrap();
    let value: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    match value.get("status") {
        Some(status) => status.clone(),
        None => value,
    }
}

/// Events queued in the agent's buffer, from `assent status --json`.
fn queued(agent: &Path, config: &Path) -> Option<u64> {
    agent_status(agent, config)["queued_events"].as_u64()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[derive(Debug, Default)]
struct Rollup {
    rss: u64,
    pss: u64,
    anonymous: u64,
}

fn smaps_rollup(pid: u32) -> Rollup {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Rollup {
        rss: field("Rss:"),
        pss: field("Pss:"),
        anonymous: field("Anonymous:"),
    }
}

/// Resident and anonymous kB per mapping name (`[heap]`, `[stack]`, a file, or
/// `[anonymous]` for the rest: thread stacks, mmap'd allocations), largest first.
fn mappings(pid: u32) -> Vec<(String, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut sums: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    let mut current = String::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            current = words.nth(4).unwrap_or("[anonymous]").to_owned();
            continue;
        }
        let value = || {
            words
                .clone()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        match first {
            "Rss:" => sums.entry(current.clone()).or_default().0 += value(),
            "Anonymous:" => sums.entry(current.clone()).or_default().1 += value(),
            _ => {}
        }
    }
    let mut out: Vec<_> = sums
        .into_iter()
        .filter(|(_, (rss, _))| *rss > 0)
        .map(|(name, (rss, anonymous))| (name, rss, anonymous))
        .collect();
    out.sort_by_key(|m| std::cmp::Reverse(m.1));
    out
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Resets the peak RSS (`VmHWM`) to the current RSS (Linux `clear_refs` value 5).
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("writing clear_refs");
}

fn ratio(a: u64, b: u64) -> f64 {
    a as f64 / b.max(1) as f64
}
