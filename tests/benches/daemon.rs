//! The daemon as a process (release build): time from start to READY=1; idle RSS, CPU
//! and wakeups (voluntary context switches of all its threads) over
//! `BENCH_IDLE_SECONDS` (default 60); events/s accepted durably through the events
//! socket by 8 pipelining local clients.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use assent_testkit::collector as collector_support;
use assent_testkit::{run_ok, workspace};
use collector_support::Collector;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
/// Two socket runs per round, 4 rounds: 512,000 events, about 150 MB on disk, well
/// within the daemon's 256 MiB buffer (a full buffer evicts, which is not what is measured).
const EVENTS_PER_CLIENT: usize = 8_000;
const PIPELINE: usize = 100;
/// Rounds of two socket runs and one store run, in turns.
const ROUNDS: usize = 4;
/// Events in flight per store producer and lines unanswered per windowed client: what
/// the socket allows a connection.
const IN_FLIGHT: usize = 64;

fn main() {
    let assent = std::env::var_os("ASSENT_BENCH_AGENT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/release/assent"));
    assert!(
        assent.exists(),
        "build it first: cargo build --release -p assent"
    );
    let idle_seconds: u64 = std::env::var("BENCH_IDLE_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let collector = Collector::start_with(collector_support::Options {
        log_level: "info".into(),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let cert = collector.pki.client("bench-device");
    let config = dir.path().join("assent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"state\"\nlog_level = \"warn\"\n[buffer]\nmax_bytes = 268435456\n\
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
    run_ok(
        Command::new(&assent)
            .args(["consent", "grant", "--all-required", "--config"])
            .arg(&config),
    );

    let notify = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&notify).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let start = Instant::now();
    let mut child = Command::new(&assent)
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 512];
    loop {
        let n = socket.recv(&mut buf).unwrap();
        if String::from_utf8_lossy(&buf[..n]).contains("READY=1") {
            break;
        }
    }
    let ready = start.elapsed();
    println!("daemon (release build)");
    println!(
        "  start to READY=1          {:8.1} ms",
        ready.as_secs_f64() * 1000.0
    );

    // Let the first collection and sync finish, then measure idleness.
    std::thread::sleep(Duration::from_secs(3));
    let pid = child.id();
    let (cpu0, switches0) = (cpu_ticks(pid), voluntary_switches(pid));
    std::thread::sleep(Duration::from_secs(idle_seconds));
    let (cpu1, switches1) = (cpu_ticks(pid), voluntary_switches(pid));
    let ticks_per_second = 100.0;
    println!(
        "  idle RSS                  {:8} KiB",
        status_field(pid, "VmRSS:")
    );
    println!(
        "  idle CPU over {idle_seconds} s        {:8.2} s ({:.3} %)",
        (cpu1 - cpu0) as f64 / ticks_per_second,
        (cpu1 - cpu0) as f64 / ticks_per_second / idle_seconds as f64 * 100.0
    );
    println!(
        "  idle wakeups per minute   {:8.1} (voluntary context switches, all threads)",
        (switches1 - switches0) as f64 * 60.0 / idle_seconds as f64
    );

    // Events through the socket, durably stored before each `ok`, beside the store's own
    // pipelined submit with the daemon's store options on the same disk, in turns so
    // that all see the same disk load. The aim compares clients that keep IN_FLIGHT
    // lines unanswered with producers that keep IN_FLIGHT events submitted; clients that
    // send PIPELINE lines and then wait for all their answers are shown beside them.
    let socket_path = dir.path().join("events.sock");
    let (mut windowed_total, mut chunked_total, mut store_total) = (0.0, 0.0, 0.0);
    println!(
        "  events through the socket, {CLIENTS} pipelining clients (~170-byte lines), beside \
         the store's submit with {CLIENTS} producers x {IN_FLIGHT} in flight:"
    );
    for round in 1..=ROUNDS {
        let texts = assent_testkit::device::windowed_lines(CLIENTS, EVENTS_PER_CLIENT);
        let start = Instant::now();
        let accepted = assent_testkit::device::emit_windowed(&socket_path, texts, IN_FLIGHT);
        let windowed_rate = accepted as f64 / start.elapsed().as_secs_f64();
        assert_eq!(accepted, CLIENTS * EVENTS_PER_CLIENT);
        let start = Instant::now();
        let accepted = assent_testkit::device::emit_pipelined(
            &socket_path,
            CLIENTS,
            EVENTS_PER_CLIENT,
            PIPELINE,
        );
        let chunked_rate = accepted as f64 / start.elapsed().as_secs_f64();
        assert_eq!(accepted, CLIENTS * EVENTS_PER_CLIENT);
        let store_rate = store_submit_rate(&dir.path().join(format!("peer-{round}")));
        println!(
            "    round {round}: socket, {IN_FLIGHT} in flight {windowed_rate:8.0} events/s \
             (ratio {:.2}); socket, {PIPELINE} then wait {chunked_rate:8.0} ({:.2}); store \
             submit {store_rate:8.0}",
            windowed_rate / store_rate,
            chunked_rate / store_rate,
        );
        windowed_total += windowed_rate;
        chunked_total += chunked_rate;
        store_total += store_rate;
    }
    println!(
        "  events socket ({IN_FLIGHT} in flight) / store submit over {ROUNDS} rounds {:8.2} \
         (aim >= 0.8); {PIPELINE} then wait: {:.2}",
        windowed_total / store_total,
        chunked_total / store_total
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// Events per second the store accepts durably from `CLIENTS` producers each keeping
/// `IN_FLIGHT` submitted, with the daemon's store options (this bench's `max_bytes`, the
/// rest defaults) and events the size of the socket's (an `app_events` event of the
/// bench's line, postcard-encoded by the agent: about 160 bytes of payload).
fn store_submit_rate(dir: &std::path::Path) -> f64 {
    use assent_store::{NewEvent, Store, StoreOptions};
    use std::sync::{Arc, Condvar, Mutex};
    let options = StoreOptions {
        max_bytes: 268_435_456,
        optional_categories: vec!["app_events".into()],
        ..StoreOptions::default()
    };
    let (store, _) = Store::open(dir, options).unwrap();
    let store = Arc::new(store);
    let start = Instant::now();
    let producers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let slots = Arc::new((Mutex::new(0usize), Condvar::new()));
                for n in 0..EVENTS_PER_CLIENT {
                    {
                        let (used, freed) = &*slots;
                        let mut used = used.lock().unwrap();
                        while *used >= IN_FLIGHT {
                            used = freed.wait(used).unwrap();
                        }
                        *used += 1;
                    }
                    let event = NewEvent {
                        category: "app_events".into(),
                        kind: "bench".into(),
                        wall_time_ms: 1_780_000_000_000 + n as i64,
                        boot_id: [7; 16],
                        monotonic_ns: n as u64,
                        payload: vec![(c + n) as u8; 160],
                    };
                    let slots = Arc::clone(&slots);
                    store
                        .submit(event, move |result| {
                            result.unwrap();
                            let (used, freed) = &*slots;
                            *used.lock().unwrap() -= 1;
                            freed.notify_one();
                        })
                        .unwrap();
                }
                let (used, freed) = &*slots;
                let mut used = used.lock().unwrap();
                while *used > 0 {
                    used = freed.wait(used).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    (CLIENTS * EVENTS_PER_CLIENT) as f64 / start.elapsed().as_secs_f64()
}

fn status_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// utime + stime of the whole process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn voluntary_switches(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| t.ok())
        .map(|t| {
            std::fs::read_to_string(t.path().join("status"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}
