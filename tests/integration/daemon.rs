//! The daemon (`assent run`) as a real process: systemd notification, and sync driven by
//! connectivity in a network namespace.

use assent_testkit::collector::{Collector, Options};
use assent_testkit::*;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Sockets in the device's own directory, so daemons of parallel tests never share one.
const PRIVATE_SOCKETS: &str =
    "[events]\nsocket = \"events.sock\"\n[control]\nsocket = \"control.sock\"\n";

/// Runs a command that must succeed.
fn sh(args: &[&str]) {
    run_ok(Command::new(args[0]).args(&args[1..]));
}

#[test]
fn the_daemon_notifies_systemd_ready_and_watchdog() {
    let device = Device::new(PRIVATE_SOCKETS);
    let socket_path = device.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _daemon = Daemon::start(
        &device,
        &[],
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(seen.iter().any(|m: &String| m.contains("READY=1"))
        && seen.iter().any(|m| m.contains("WATCHDOG=1")))
    {
        assert!(Instant::now() < deadline, "notifications so far: {seen:?}");
        let mut buf = [0u8; 1024];
        let n = socket.recv(&mut buf).unwrap();
        seen.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    assert!(seen.iter().any(|m| m.contains("STATUS=")), "{seen:?}");
}

/// A network namespace joined to the host by a veth pair, removed on drop.
struct Netns {
    name: String,
    host_ip: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let n = std::process::id() % 200 + 20;
        let name = format!("assent-{tag}-{}", std::process::id());
        let (host_if, ns_if) = (format!("ah{n}{tag}"), format!("an{n}{tag}"));
        let (host_ip, ns_ip) = (format!("10.{n}.7.1"), format!("10.{n}.7.2"));
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let _ = Command::new("ip").args(["link", "del", &host_if]).output();
        sh(&["ip", "netns", "add", &name]);
        sh(&[
            "ip", "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ]);
        sh(&["ip", "link", "set", &ns_if, "netns", &name]);
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{host_ip}/24"),
            "dev",
            &host_if,
        ]);
        sh(&["ip", "link", "set", &host_if, "up"]);
        let ns = Netns { name, host_ip };
        ns.exec(&["ip", "addr", "add", &format!("{ns_ip}/24"), "dev", &ns_if]);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    fn exec(&self, args: &[&str]) {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        sh(&full);
    }

    fn ns_if(&self) -> String {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.name, "ip", "-o", "link", "show", "type", "veth",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.split(": ")
            .nth(1)
            .unwrap()
            .split('@')
            .next()
            .unwrap()
            .to_string()
    }

    fn link(&self, up: bool) {
        let ns_if = self.ns_if();
        self.exec(&["ip", "link", "set", &ns_if, if up { "up" } else { "down" }]);
        if up {
            self.exec(&["ip", "route", "replace", "default", "via", &self.host_ip]);
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn collector_events(database: &Path) -> u64 {
    sqlite(database, "SELECT count(*) FROM events")[0]
        .parse()
        .unwrap()
}

#[test]
fn link_down_means_no_attempts_and_link_up_means_sync_within_seconds() {
    let ns = Netns::new("sy");
    let collector = Collector::start_with(Options {
        listen: format!("{}:0", ns.host_ip),
        server_names: vec!["localhost".into(), ns.host_ip.clone()],
        ..Options::default()
    });
    let cert = collector.pki.client("device-1");
    let device = Device::new(&format!(
        "[collector]\nurl = \"https://{}:{}\"\nca_file = \"{}\"\nclient_cert_file = \"{}\"\n\
         client_key_file = \"{}\"\n[sync]\nbackoff_base_seconds = 1\nbackoff_max_seconds = 2\n\
         metered = \"allow\"\n{PRIVATE_SOCKETS}",
        ns.host_ip,
        collector.addr.port(),
        collector.pki.ca_file.display(),
        cert.cert_file.display(),
        cert.key_file.display(),
    ));
    device.run_ok(&["consent", "grant", "--all-required"]);

    // Link down: the daemon collects, stores, and makes no attempt to send.
    ns.link(false);
    let netns_exec = ["ip", "netns", "exec", ns.name.as_str()];
    let daemon = Daemon::start(&device, &netns_exec, &[]);
    daemon.wait_log(
        "offline (no interface up with a default route)",
        Duration::from_secs(10),
    );
    daemon.wait_log("stored ", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(collector_events(&collector.database), 0);
    // The uploader was woken by the new data and held back; it never tried (a try
    // would log its failure as `sync: ...`).
    daemon.wait_log("offline: not syncing", Duration::from_secs(1));
    assert!(!daemon.log().contains("sync:"), "{}", daemon.log());

    // Link up: connectivity returns and the queue arrives within seconds.
    let up = Instant::now();
    ns.link(true);
    let deadline = up + Duration::from_secs(10);
    while collector_events(&collector.database) < 4 {
        assert!(
            Instant::now() < deadline,
            "nothing synced 10 s after the link came up:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    daemon.wait_log("connectivity: online via", Duration::from_secs(1));
}

/// A device whose daemon sends to `collector`, with its sockets in the device directory.
fn daemon_device(collector: &Collector, extra: &str) -> Device {
    let cert = collector.pki.client("device-1");
    let device = Device::new(&format!(
        "[collector]\nurl = \"https://localhost:{}\"\nca_file = \"{}\"\nclient_cert_file = \"{}\"\n\
         client_key_file = \"{}\"\n[sync]\ninterval_seconds = 1\nbackoff_base_seconds = 1\n\
         backoff_max_seconds = 2\nmetered = \"allow\"\n[events]\nsocket = \"events.sock\"\n\
         socket_mode = \"0666\"\n[control]\nsocket = \"control.sock\"\n{extra}",
        collector.addr.port(),
        collector.pki.ca_file.display(),
        cert.cert_file.display(),
        cert.key_file.display(),
    ));
    device.run_ok(&["consent", "grant", "--all-required"]);
    device
}

/// A local program writing events on the socket, pipelining, counting accepted seqs.
struct Emitter {
    stream: std::os::unix::net::UnixStream,
    reader: std::io::BufReader<std::os::unix::net::UnixStream>,
}

impl Emitter {
    fn connect(device: &Device) -> Emitter {
        let path = device.dir.path().join("events.sock");
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match std::os::unix::net::UnixStream::connect(&path) {
                Ok(s) => break s,
                Err(e) => {
                    assert!(Instant::now() < deadline, "{}: {e}", path.display());
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Emitter {
            reader: std::io::BufReader::new(stream.try_clone().unwrap()),
            stream,
        }
    }

    /// Sends `lines` and returns each answer.
    fn send(&mut self, lines: &[String]) -> std::io::Result<Vec<String>> {
        use std::io::{BufRead, Write};
        let mut text = String::new();
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        self.stream.write_all(text.as_bytes())?;
        let mut answers = Vec::new();
        for _ in lines {
            let mut answer = String::new();
            if self.reader.read_line(&mut answer)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            answers.push(answer.trim().to_string());
        }
        Ok(answers)
    }
}

fn accepted_seqs(answers: &[String]) -> Vec<u64> {
    answers
        .iter()
        .filter_map(|a| a.strip_prefix("ok "))
        .map(|s| s.parse().unwrap())
        .collect()
}

/// Waits until the daemon's queue is empty and the collector holds `expected` app events.
fn wait_delivered(device: &Device, collector: &Collector, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held = sqlite(
            &collector.database,
            "SELECT count(*) FROM events WHERE category = 'app_events'",
        )[0]
        .parse::<usize>()
        .unwrap();
        let status = device.run(&["status", "--json"]);
        let queued = serde_json::from_slice::<serde_json::Value>(&status.stdout)
            .map(|v| v["queued_events"].as_u64().unwrap_or(1))
            .unwrap_or(1);
        if held >= expected && queued == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "collector holds {held} of {expected} app events, {queued} queued"
        );
        let _ = device.run(&["sync"]);
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn consent_toggles_and_emits_add_up_exactly_at_the_collector() {
    let collector = Collector::start();
    let device = daemon_device(&collector, "[categories.software]\ninterval_seconds = 1\n");
    let daemon = Daemon::start(&device, &[], &[]);
    daemon.wait_log("running", Duration::from_secs(10));
    let mut emitter = Emitter::connect(&device);
    let mut accepted = Vec::new();
    let mut last_software_grant_ms = 0i64;
    for round in 0..6 {
        // Optional software is granted and withdrawn while programs keep emitting.
        if round % 2 == 0 {
            device.run_ok(&["consent", "grant", "software"]);
            last_software_grant_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
        } else {
            device.run_ok(&["consent", "revoke", "software"]);
        }
        let lines: Vec<String> = (0..50)
            .map(|i| format!(r#"{{"name":"tick","attrs":{{"round":{round},"i":{i}}}}}"#))
            .collect();
        let answers = emitter.send(&lines).unwrap();
        accepted.extend(accepted_seqs(&answers));
        assert_eq!(accepted.len(), 50 * (round + 1), "{answers:?}");
        std::thread::sleep(Duration::from_millis(700));
    }
    wait_delivered(&device, &collector, accepted.len());

    // Every accepted event is at the collector once, none lost (no gaps for them).
    let held: Vec<u64> = sqlite(
        &collector.database,
        "SELECT seq FROM events WHERE category = 'app_events' ORDER BY seq",
    )
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    accepted.sort_unstable();
    let gaps: u64 = sqlite(
        &collector.database,
        "SELECT coalesce(sum(count), 0) FROM gaps WHERE category = 'app_events'",
    )[0]
    .parse()
    .unwrap();
    assert_eq!(held.len() as u64 + gaps, accepted.len() as u64);
    assert_eq!(held, accepted);
    // Never granted: never held.
    assert_eq!(
        sqlite(
            &collector.database,
            "SELECT count(*) FROM events WHERE category IN ('location', 'network_detail')"
        ),
        vec!["0"]
    );
    // Software ended granted; everything collected before the last withdrawal was
    // erased at the collector, and nothing collected while withdrawn is there.
    let before_last_grant = sqlite(
        &collector.database,
        &format!(
            "SELECT count(*) FROM events WHERE category = 'software' AND wall_time_ms < {last_software_grant_ms}"
        ),
    );
    assert_eq!(before_last_grant, vec!["0"]);
    let erasures: u64 = sqlite(
        &collector.database,
        "SELECT count(*) FROM erasure_log WHERE categories LIKE '%software%'",
    )[0]
    .parse()
    .unwrap();
    assert!(erasures >= 1, "each withdrawal asks the collector to erase");
    drop(daemon);
}

#[test]
fn sigkill_during_emits_and_syncs_loses_nothing_accepted() {
    let collector = Collector::start();
    let device = daemon_device(&collector, "");
    let mut accepted = Vec::new();
    for round in 0..5 {
        let mut daemon = Daemon::start(&device, &[], &[]);
        let mut emitter = Emitter::connect(&device);
        for burst in 0..5 {
            let lines: Vec<String> = (0..40)
                .map(|i| {
                    format!(
                        r#"{{"name":"tick","attrs":{{"round":{round},"burst":{burst},"i":{i}}}}}"#
                    )
                })
                .collect();
            match emitter.send(&lines) {
                Ok(answers) => accepted.extend(accepted_seqs(&answers)),
                Err(e) => panic!("emitting: {e}"),
            }
        }
        // Kill while the uploader is busy with what was just accepted.
        std::thread::sleep(Duration::from_millis(50 + 60 * round as u64));
        let _ = daemon.child.kill();
        let _ = daemon.child.wait();
    }
    let _daemon = Daemon::start(&device, &[], &[]);
    wait_delivered(&device, &collector, accepted.len());
    let held: Vec<u64> = sqlite(
        &collector.database,
        "SELECT seq FROM events WHERE category = 'app_events' ORDER BY seq",
    )
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    accepted.sort_unstable();
    assert_eq!(
        held, accepted,
        "every accepted event at the collector exactly once"
    );
}

#[test]
fn hostile_local_clients_are_refused_and_the_daemon_stays_responsive() {
    let collector = Collector::start();
    let device = daemon_device(&collector, "");
    // `nobody` must reach the socket for the peer check, not the file mode, to refuse it.
    run_ok(Command::new("chmod").arg("a+x").arg(device.dir.path()));
    let daemon = Daemon::start(&device, &[], &[]);
    let mut emitter = Emitter::connect(&device);

    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(binary_path("assent"))
        .args(["emit", "intruder", "--config"])
        .arg(&device.config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("uid 65534 is not allowed"), "{err}");

    let huge = format!(
        r#"{{"name":"big","attrs":{{"blob":"{}"}}}}"#,
        "x".repeat(10_000)
    );
    let answers = emitter
        .send(&[huge, r#"{"name":"after"}"#.to_string()])
        .unwrap();
    assert!(answers[0].contains("larger than"), "{answers:?}");
    assert!(answers[1].starts_with("ok "), "{answers:?}");

    // A flood from one client is rate-limited; the control socket and another client
    // are answered promptly meanwhile.
    let socket = device.dir.path().join("events.sock");
    let flooder = std::thread::spawn(move || {
        let stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
        let mut flood = Emitter {
            reader: std::io::BufReader::new(stream.try_clone().unwrap()),
            stream,
        };
        let lines: Vec<String> = (0..3000)
            .map(|i| format!(r#"{{"name":"flood","attrs":{{"i":{i}}}}}"#))
            .collect();
        flood.send(&lines).unwrap()
    });
    for _ in 0..5 {
        let start = Instant::now();
        let status = device.run_ok(&["status", "--json"]);
        assert!(serde_json::from_slice::<serde_json::Value>(&status.stdout).is_ok());
        let answers = emitter
            .send(&[r#"{"name":"still_here"}"#.to_string()])
            .unwrap();
        assert!(answers[0].starts_with("ok "), "{answers:?}");
        // Generous: this checks the daemon is not wedged, not its speed.
        assert!(start.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(100));
    }
    let flood_answers = flooder.join().unwrap();
    let limited = flood_answers
        .iter()
        .filter(|a| a.contains("rate limit exceeded"))
        .count();
    assert!(limited > 1000, "only {limited} of 3000 were rate-limited");
    let status = device.run_ok(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(
        status["local_events"]["rejected_rate"].as_u64().unwrap() > 1000,
        "{status}"
    );
    drop(daemon);
}

#[test]
fn a_metered_link_defers_sync_until_the_policy_allows_it() {
    let ns = Netns::new("me");
    ns.link(true);
    let collector = Collector::start_with(Options {
        listen: format!("{}:0", ns.host_ip),
        server_names: vec!["localhost".into(), ns.host_ip.clone()],
        ..Options::default()
    });
    let cert = collector.pki.client("device-1");
    let ns_if = ns.ns_if();
    let config_text = |metered: &str| {
        format!(
            "state_dir = \"state\"\nlog_level = \"debug\"\n[collector]\nurl = \"https://{}:{}\"\n\
             ca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n\
             [sync]\nmetered = \"{metered}\"\nmetered_interfaces = [\"{ns_if}\"]\n\
             [events]\nsocket = \"events.sock\"\n[control]\nsocket = \"control.sock\"\n",
            ns.host_ip,
            collector.addr.port(),
            collector.pki.ca_file.display(),
            cert.cert_file.display(),
            cert.key_file.display(),
        )
    };
    let device = Device::new("");
    std::fs::write(&device.config, config_text("defer")).unwrap();
    device.run_ok(&["consent", "grant", "--all-required"]);
    let netns_exec = ["ip", "netns", "exec", ns.name.as_str()];
    let daemon = Daemon::start(&device, &netns_exec, &[]);
    daemon.wait_log(
        &format!("online via {ns_if} (metered)"),
        Duration::from_secs(10),
    );
    daemon.wait_log(
        "not sending: the default route is over metered",
        Duration::from_secs(10),
    );
    let status = device.run_ok(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["connectivity"]["metered"], true, "{status}");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(collector_events(&collector.database), 0);

    // The operator allows metered sending: SIGHUP reloads, a sync request sends.
    std::fs::write(&device.config, config_text("allow")).unwrap();
    nix_kill(daemon.child.id(), "HUP");
    daemon.wait_log("configuration reloaded", Duration::from_secs(5));
    device.run_ok(&["sync"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while collector_events(&collector.database) < 4 {
        assert!(Instant::now() < deadline, "{}", daemon.log());
        std::thread::sleep(Duration::from_millis(100));
    }

    // A broken config on reload keeps the last good one, and the daemon keeps serving.
    std::fs::write(&device.config, "state_dir = [\n").unwrap();
    nix_kill(daemon.child.id(), "HUP");
    daemon.wait_log(
        "invalid, keeping the running configuration",
        Duration::from_secs(5),
    );
    std::fs::write(&device.config, config_text("allow")).unwrap();
    device.run_ok(&["status"]);
}

fn nix_kill(pid: u32, signal: &str) {
    sh(&["kill", &format!("-{signal}"), &pid.to_string()]);
}

/// Each thread costs a stack and its bookkeeping on a device (docs/performance.md,
/// "Memory"): after a sync and a control request, the daemon runs its own named threads
/// and nothing else, such as smol's global executor thread (`smol-1`), which a
/// `smol::spawn` anywhere would start for the daemon's life.
#[test]
fn after_a_sync_and_a_control_request_the_daemon_runs_only_its_own_threads() {
    let collector = Collector::start();
    let device = daemon_device(&collector, "");
    let daemon = Daemon::start(&device, &[], &[]);
    daemon.wait_log("first sync of this run", Duration::from_secs(20));
    device.run_ok(&["status"]);
    let expected = [
        "assent",
        "assent-events",
        "assent-store-co",
        "assent-worker-0",
        "assent-worker-1",
        "async-io",
        "consent-watch",
    ];
    let threads = || {
        let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", daemon.child.id()))
            .unwrap()
            .map(|task| {
                std::fs::read_to_string(task.unwrap().path().join("comm"))
                    .unwrap()
                    .trim()
                    .to_string()
            })
            .collect();
        names.sort();
        names
    };
    // The resolver thread of a connection ends with its lookup: wait for it, not longer.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut names = threads();
    while names != expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        names = threads();
    }
    assert_eq!(names, expected);
    drop(daemon);
}
