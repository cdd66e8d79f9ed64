//! Three collector replicas on one PostgreSQL behind a real nginx (TLS terminated there,
//! round-robin upstream), with clients that sync the way the agent does (resend from the
//! acknowledged seq on any failure) while replicas are SIGKILLed and restarted and the
//! database is stopped with `pg_ctl stop -m immediate` and started again: every event is
//! stored exactly once and every high-water is right. The replicas write events both
//! ways (`database_write_method`), interleaved on one database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assent_testkit::collector as support;
use assent_testkit::pg as pg_support;

use assent_wire::Encoding;
use pg_support::PrivateCluster;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

const TOKEN: &str = "fleet0123456789abcdef0123456789abcd";

struct Nginx {
    child: Child,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
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

fn start_nginx(dir: &Path, pki: &Pki, upstreams: &[u16]) -> Nginx {
    let port = free_port();
    let servers: String = upstreams
        .iter()
        .map(|p| format!("        server 127.0.0.1:{p} max_fails=0;\n"))
        .collect();
    let d = dir.display();
    // As root, workers would run as nobody and could not use the private temp dir.
    let user = if nix::unistd::geteuid().is_root() {
        "user root;\n"
    } else {
        ""
    };
    let conf = format!(
        "{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n    access_log {d}/access.log;\n\
             client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n\
             scgi_temp_path {d}/scgi;\n\
             upstream collectors {{\n{servers}    }}\n\
             server {{\n        listen 127.0.0.1:{port} ssl;\n\
                 ssl_certificate {};\n        ssl_certificate_key {};\n\
                 client_max_body_size 8m;\n\
                 location / {{\n            proxy_pass http://collectors;\n\
                     proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n\
                     proxy_next_upstream error timeout;\n\
                     proxy_read_timeout 20s;\n        }}\n    }}\n}}\n",
        pki.server_cert.display(),
        pki.server_key.display(),
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the `nginx` binary is needed for this test (apt-get install nginx)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx not listening: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Nginx { child, port }
}

/// One device's sync loop: new events in batches of 1..=17 until `stop`, then until all
/// are acknowledged; each batch is sent from the acknowledged seq on, so a lost answer
/// means an overlapping resend. Returns (last seq, failed requests).
fn sync_device(n: u64, addr: std::net::SocketAddr, ca: &Path, stop: &AtomicBool) -> (u64, u32) {
    let dev = device(n);
    let mut acked = 0u64;
    let mut produced = 0u64;
    let mut failures = 0u32;
    let mut client: Option<Client> = None;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        if stopping && acked == produced {
            return (produced, failures);
        }
        assert!(Instant::now() < deadline, "device {n} stuck at {acked}");
        if !stopping && produced < acked + 40 {
            produced += 1 + (produced * 7 + n) % 17;
        }
        let batch = app_batch(&dev, 9, acked + 1, produced);
        if client.is_none() {
            client = Client::connect(addr, ca, None, Some(TOKEN)).ok();
        }
        let reply = client
            .as_mut()
            .map(|c| c.post_batch(&batch, Encoding::Json));
        match reply {
            Some(Ok(r)) if r.status == 200 => {
                let through = r.json()["acked_through"].as_u64().unwrap();
                assert!(through >= acked, "high-water went back");
                acked = through;
                std::thread::sleep(Duration::from_millis(5));
            }
            _ => {
                failures += 1;
                client = None;
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

#[test]
fn replicas_behind_nginx_store_every_event_once_through_kills_and_a_database_crash() {
    let cluster = PrivateCluster::start(57000 + (std::process::id() % 1000) as u16);
    let url = cluster.fresh_database();
    // Both ways of writing events on one database: replicas 0 and 2 by COPY, 1 by
    // multi-row INSERT.
    let mut replicas: Vec<Collector> = (0..3)
        .map(|i| {
            Collector::start_with(Options {
                database_url: Some(url.clone()),
                database_write_method: Some(if i == 1 { "insert" } else { "copy" }.into()),
                plain_http: true,
                mtls: false,
                tokens: vec![("fleet".into(), TOKEN.into())],
                ..Options::default()
            })
        })
        .collect();
    let ports: Vec<u16> = replicas.iter().map(|c| c.addr.port()).collect();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::with_server(&dir.path().join("pki"), &["localhost", "127.0.0.1"], false);
    let nginx = start_nginx(dir.path(), &pki, &ports);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], nginx.port));

    let devices = 6u64;
    let stop = Arc::new(AtomicBool::new(false));
    let agents: Vec<_> = (0..devices)
        .map(|n| {
            let ca = pki.ca_file.clone();
            let stop = stop.clone();
            std::thread::spawn(move || sync_device(100 + n, addr, &ca, &stop))
        })
        .collect();

    // SIGKILL and restart each replica in turn, nine times, and crash the database once
    // in the middle, while the clients sync.
    for round in 0..9 {
        std::thread::sleep(Duration::from_millis(300));
        replicas[round % 3].restart();
        if round == 4 {
            cluster.stop_immediate();
            std::thread::sleep(Duration::from_millis(500));
            cluster.restart();
        }
    }
    stop.store(true, Ordering::SeqCst);
    let mut failures = 0;
    let mut lasts = Vec::new();
    for a in agents {
        let (last, f) = a.join().unwrap();
        assert!(last > 0);
        lasts.push(last);
        failures += f;
    }
    assert!(
        failures > 0,
        "no request failed: the chaos did not reach the clients"
    );

    let name = pg_support::database_name(&url);
    let mut db = cluster.client(&name);
    for (n, last) in lasts.into_iter().enumerate() {
        let dev = device(100 + n as u64);
        let seqs: Vec<i64> = db
            .query(
                "SELECT seq FROM events WHERE device = $1 ORDER BY seq",
                &[&dev.as_str()],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            seqs,
            (1..=last as i64).collect::<Vec<_>>(),
            "device {n}: each seq exactly once"
        );
        let hw: i64 = db
            .query_one(
                "SELECT high_water FROM buffers WHERE device = $1 AND buffer_id = 9",
                &[&dev.as_str()],
            )
            .unwrap()
            .get(0);
        assert_eq!(hw, last as i64);
    }
}
