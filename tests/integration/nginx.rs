//! The collector behind Debian's nginx with the shipped `configs/nginx-collector.conf`:
//! TLS ends at nginx, the bearer token is checked by the collector on plain HTTP.

use assent_testkit::collector::{Collector, Options};
use assent_testkit::Device;
use assent_testkit::*;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "nginx-fleet-token-0123456789abcdef";

/// A private nginx (master and one worker, as root) in a temp dir, stopped on drop.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Nginx {
    fn start(collector: &Collector) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let shipped =
            std::fs::read_to_string(workspace().join("configs/nginx-collector.conf")).unwrap();
        let site = [
            (
                "server 127.0.0.1:8080;",
                format!("server {};", collector.addr),
            ),
            ("listen 8443 ssl;", format!("listen 127.0.0.1:{port} ssl;")),
            (
                "/etc/assent/collector/server.pem",
                collector.pki.server_cert.display().to_string(),
            ),
            (
                "/etc/assent/collector/server.key",
                collector.pki.server_key.display().to_string(),
            ),
        ]
        .iter()
        .fold(shipped, |text, (from, to)| {
            assert!(text.contains(from), "the shipped config lacks {from:?}");
            text.replace(from, to)
        });
        let d = dir.path().display();
        std::fs::write(dir.path().join("site.conf"), site).unwrap();
        std::fs::write(
            dir.path().join("nginx.conf"),
            format!(
                "user root root;\nworker_processes 1;\nerror_log {d}/error.log info;\n\
                 pid {d}/nginx.pid;\nevents {{ worker_connections 64; }}\nhttp {{\n\
                 access_log {d}/access.log;\nclient_body_temp_path {d}/body;\n\
                 proxy_temp_path {d}/proxy;\nfastcgi_temp_path {d}/fastcgi;\n\
                 uwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
                 include {d}/site.conf;\n}}\n"
            ),
        )
        .unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        let mut nginx = Nginx { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!("nginx exited with {status}:\n{}", nginx.file("stderr.log"));
            }
            assert!(Instant::now() < deadline, "nginx not listening on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// HTTP statuses in the access log, in order.
    fn statuses(&self) -> Vec<u16> {
        // The default `combined` format: `... "POST /v1/batches HTTP/1.1" 200 ...`.
        self.file("access.log")
            .lines()
            .filter_map(|l| l.split("\" ").nth(1)?.split(' ').next()?.parse().ok())
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: graceful stop; the worker exits with the master.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGQUIT,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn plain_collector() -> Collector {
    Collector::start_with(Options {
        plain_http: true,
        mtls: false,
        tokens: vec![("fleet".into(), TOKEN.into())],
        ..Options::default()
    })
}

fn device_behind(nginx: &Nginx, collector: &Collector) -> Device {
    let token_file = collector.dir.path().join("device-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    Device::new(&format!(
        "[collector]\nurl = \"https://localhost:{}\"\nca_file = \"{}\"\ntoken_file = \"{}\"\n\
         [sync]\nbackoff_base_seconds = 1\nbackoff_max_seconds = 1\nmetered = \"allow\"\n",
        nginx.port,
        collector.pki.ca_file.display(),
        token_file.display(),
    ))
}

fn count(database: &Path, query: &str) -> u64 {
    let out = run_ok(Command::new("sqlite3").arg(database).arg(query));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn collect(device: &Device, times: usize) {
    let root = fixture_root("x86-gateway");
    for _ in 0..times {
        device.run_ok(&["collect", "--root", root.to_str().unwrap()]);
    }
}

#[test]
fn agents_sync_through_nginx_exactly_once_and_a_502_while_the_collector_restarts_is_retried() {
    let mut collector = plain_collector();
    let nginx = Nginx::start(&collector);
    let device = device_behind(&nginx, &collector);
    device.run_ok(&["consent", "grant", "--all-required"]);
    collect(&device, 4);
    device.run_ok(&["sync", "--once", "--batch-events", "4"]);
    assert_eq!(
        count(&collector.database, "SELECT count(*) FROM events"),
        16
    );

    // The collector goes down: nginx answers 502 until it is back, and the agent retries
    // as it would a 503.
    collector.kill();
    collect(&device, 2);
    let log = device.dir.path().join("sync.log");
    let mut sync: Child = assent()
        .args(["sync", "--once", "--batch-events", "4", "--attempts", "60"])
        .arg("--config")
        .arg(&device.config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while nginx.statuses().iter().filter(|s| **s == 502).count() < 2 {
        assert!(
            Instant::now() < deadline,
            "no 502 from nginx: {:?}\n{}",
            nginx.statuses(),
            nginx.file("error.log")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    collector.restart();
    let status = sync.wait().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("answered 502"), "{stderr}");
    let statuses = nginx.statuses();
    assert_eq!(statuses.last(), Some(&200), "{statuses:?}");
    assert_eq!(
        count(&collector.database, "SELECT count(*) FROM events"),
        24
    );
    assert_eq!(
        count(
            &collector.database,
            "SELECT count(DISTINCT seq) FROM events"
        ),
        24
    );
}

/// POSTs `bytes` bytes through nginx with the token; the status and the body.
fn post_through(nginx: &Nginx, collector: &Collector, bytes: usize) -> (u16, String) {
    let body = nginx.dir.path().join("body.json");
    std::fs::write(&body, vec![b' '; bytes]).unwrap();
    let answer: PathBuf = nginx.dir.path().join("answer");
    let out = run_ok(
        Command::new("curl")
            .args(["-sS", "-o"])
            .arg(&answer)
            .args(["-w", "%{http_code}", "--cacert"])
            .arg(&collector.pki.ca_file)
            .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
            .args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(format!("@{}", body.display()))
            .arg(format!("https://localhost:{}/v1/batches", nginx.port)),
    );
    let status = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    (status, std::fs::read_to_string(&answer).unwrap_or_default())
}

#[test]
fn nginx_lets_exactly_the_collectors_largest_body_through() {
    let collector = plain_collector();
    let nginx = Nginx::start(&collector);
    // configs/collector.toml's max_body_bytes, which the shipped nginx config matches.
    let collector_toml =
        std::fs::read_to_string(workspace().join("configs/collector.toml")).unwrap();
    let max: usize = collector_toml
        .lines()
        .find_map(|l| l.strip_prefix("max_body_bytes = "))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    // The largest body reaches the collector, which reads it and refuses its content.
    let (status, answer) = post_through(&nginx, &collector, max);
    assert_eq!(status, 400, "{answer}");
    assert!(answer.starts_with("{\"error\""), "{answer}");
    // One byte more is nginx's own 413, the answer the collector would give.
    let (status, answer) = post_through(&nginx, &collector, max + 1);
    assert_eq!(status, 413, "{answer}");
    assert!(answer.contains("nginx"), "{answer}");
}
