//! Test support: a throw-away PKI, a running `assent-collector` process, and clients.
//!
//! - [`Pki`] makes a CA (rcgen), a server certificate for `localhost` and 127.0.0.1, and
//!   client certificates, as PEM files in a directory.
//! - [`Collector`] writes a config into a temp dir, starts the real binary on a free port
//!   (`listen = "127.0.0.1:0"`, the chosen port read from its log), and kills it on drop.
//! - [`Client`] is a blocking HTTPS client (hyper over futures-rustls, the agent's stack)
//!   with an optional client certificate and bearer token; [`RawTls`] is a bare TLS
//!   stream for clients that misbehave on purpose.
//!

use assent_platform::Category;
use assent_wire::{
    encode, AppEvent, AttrValue, Batch, BootId, Encoding, Event, Payload, Pseudonym, Record,
    PROTOCOL_VERSION,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The collector binary under test, next to the running test binary's `deps` directory.
pub fn collector_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("assent-collector");
    assert!(path.exists(), "{} not built", path.display());
    path
}

/// A client certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct ClientCert {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// A test CA with a server certificate; makes client certificates on demand.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_file: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    ca_cert: rcgen::Certificate,
    ca_key: KeyPair,
}

fn make_ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    (params.self_signed(&key).unwrap(), key)
}

impl Pki {
    /// Makes the CA and a server certificate for `localhost` and 127.0.0.1 in `dir`.
    pub fn new(dir: &Path) -> Pki {
        Pki::with_server(dir, &["localhost", "127.0.0.1"], false)
    }

    /// Makes the CA and a server certificate for `names`, already expired if asked.
    pub fn with_server(dir: &Path, names: &[&str], expired: bool) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let (ca_cert, ca_key) = make_ca("Assent test CA");
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("localhost"),
        );
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
        let server_cert = dir.join("server.pem");
        let server_key = dir.join("server.key");
        std::fs::write(&server_cert, cert.pem()).unwrap();
        std::fs::write(&server_key, key.serialize_pem()).unwrap();
        Pki {
            dir: dir.to_path_buf(),
            ca_file,
            server_cert,
            server_key,
            ca_cert,
            ca_key,
        }
    }

    fn client_signed_by(
        &self,
        name: &str,
        ca: &rcgen::Certificate,
        ca_key: &KeyPair,
    ) -> ClientCert {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, ca, ca_key).unwrap();
        let out = ClientCert {
            cert_file: self.dir.join(format!("{name}.pem")),
            key_file: self.dir.join(format!("{name}.key")),
        };
        std::fs::write(&out.cert_file, cert.pem()).unwrap();
        std::fs::write(&out.key_file, key.serialize_pem()).unwrap();
        out
    }

    /// A client certificate signed by this CA.
    pub fn client(&self, name: &str) -> ClientCert {
        self.client_signed_by(name, &self.ca_cert, &self.ca_key)
    }

    /// A client certificate signed by another CA, which the collector must refuse.
    pub fn foreign_client(&self, name: &str) -> ClientCert {
        let (ca, key) = make_ca("Some other CA");
        self.client_signed_by(name, &ca, &key)
    }
}

/// How to configure a collector under test.
#[derive(Debug, Clone)]
pub struct Options {
    /// Require client certificates from the test CA.
    pub mtls: bool,
    /// `label token` lines for `[auth] tokens_file`; none means no token auth.
    pub tokens: Vec<(String, String)>,
    /// Extra lines for `[limits]`.
    pub limits: String,
    pub retention_days: u64,
    pub retention_sweep_interval_seconds: u64,
    /// `debug` by default, so a failing test shows every refusal in the log.
    pub log_level: String,
    /// Names in the server certificate (default `localhost`, `127.0.0.1`).
    pub server_names: Vec<String>,
    /// Serve an expired server certificate.
    pub server_cert_expired: bool,
    /// Serve plain HTTP (behind a TLS-terminating proxy; needs tokens).
    pub plain_http: bool,
    /// The address to listen on (port 0: any free port).
    pub listen: String,
    /// The `database` value when not the default SQLite file `collector.db` (a
    /// `postgresql://` URL from `support/pg.rs`).
    pub database_url: Option<String>,
    /// `database_writers` (PostgreSQL only); none leaves the default.
    pub database_writers: Option<u64>,
    /// `database_write_method` (PostgreSQL only, `copy` or `insert`); none leaves the default.
    pub database_write_method: Option<String>,
    /// `max_protocol`; none leaves the default (2).
    pub max_protocol: Option<u16>,
    /// Appended to the config as it is (more tables, e.g. `[metrics]`, `[console]`).
    pub extra_config: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mtls: true,
            tokens: Vec::new(),
            limits: String::new(),
            retention_days: 30,
            retention_sweep_interval_seconds: 3600,
            log_level: "debug".into(),
            server_names: vec!["localhost".into(), "127.0.0.1".into()],
            server_cert_expired: false,
            plain_http: false,
            listen: "127.0.0.1:0".into(),
            database_url: None,
            database_writers: None,
            database_write_method: None,
            max_protocol: None,
            extra_config: String::new(),
        }
    }
}

/// A running `assent-collector serve` in its own temp dir.
pub struct Collector {
    pub dir: tempfile::TempDir,
    pub pki: Pki,
    pub addr: SocketAddr,
    pub config_path: PathBuf,
    pub database: PathBuf,
    pub log_path: PathBuf,
    pub options: Options,
    child: Option<Child>,
}

/// Writes the config a collector under test runs with.
pub fn write_config(dir: &Path, pki: &Pki, options: &Options) -> PathBuf {
    write_config_listening(dir, pki, options, &options.listen)
}

/// Writes the config with a given listen address (a restart keeps its port).
pub fn write_config_listening(dir: &Path, pki: &Pki, options: &Options, listen: &str) -> PathBuf {
    let mut text = format!(
        "listen = \"{listen}\"\ndatabase = \"{}\"\nretention_days = {}\n\
         retention_sweep_interval_seconds = {}\nlog_level = \"{}\"\n\n",
        options.database_url.as_deref().unwrap_or("collector.db"),
        options.retention_days,
        options.retention_sweep_interval_seconds,
        options.log_level,
    );
    if let Some(n) = options.database_writers {
        text.push_str(&format!("database_writers = {n}\n"));
    }
    if let Some(method) = &options.database_write_method {
        text.push_str(&format!("database_write_method = \"{method}\"\n"));
    }
    if let Some(v) = options.max_protocol {
        text.push_str(&format!("max_protocol = {v}\n"));
    }
    if options.plain_http {
        text.push_str("[tls]\nenabled = false\n");
    } else {
        text.push_str(&format!(
            "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            pki.server_cert.display(),
            pki.server_key.display(),
        ));
    }
    if options.mtls && !options.plain_http {
        text.push_str(&format!("client_ca_file = \"{}\"\n", pki.ca_file.display()));
    }
    if !options.tokens.is_empty() {
        let tokens: String = options
            .tokens
            .iter()
            .map(|(label, token)| format!("{label} {token}\n"))
            .collect();
        std::fs::write(dir.join("tokens"), format!("# test tokens\n{tokens}")).unwrap();
        text.push_str("\n[auth]\ntokens_file = \"tokens\"\n");
    }
    text.push_str(&format!("\n[limits]\n{}\n", options.limits));
    text.push_str(&options.extra_config);
    let path = dir.join("collector.toml");
    std::fs::write(&path, text).unwrap();
    path
}

impl Collector {
    /// Starts a collector with the default options (mutual TLS).
    pub fn start() -> Collector {
        Collector::start_with(Options::default())
    }

    /// Starts a collector and waits until it listens.
    pub fn start_with(options: Options) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<&str> = options.server_names.iter().map(String::as_str).collect();
        let pki = Pki::with_server(&dir.path().join("pki"), &names, options.server_cert_expired);
        let config_path = write_config(dir.path(), &pki, &options);
        let log_path = dir.path().join("collector.log");
        let child = spawn_collector(&config_path, &log_path);
        let mut collector = Collector {
            database: dir.path().join("collector.db"),
            dir,
            pki,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            config_path,
            log_path,
            options,
            child: Some(child),
        };
        collector.addr = collector.wait_listening();
        collector
    }

    /// SIGKILLs the collector (no graceful shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the collector again on the same port, with the same database.
    pub fn restart(&mut self) {
        self.kill();
        let listen = self.addr.to_string();
        write_config_listening(self.dir.path(), &self.pki, &self.options, &listen);
        let _ = std::fs::write(&self.log_path, b"");
        self.child = Some(spawn_collector(&self.config_path, &self.log_path));
        let deadline = Instant::now() + Duration::from_secs(20);
        // The port may linger briefly; wait until the new process says it listens.
        while !self.log().contains("listening on ") {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("collector exited with {status} on restart:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "collector not listening after restart"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_listening(&mut self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            if let Some(rest) = log.split("listening on ").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or("");
                return addr.parse().unwrap();
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("collector exited with {status} before listening:\n{log}");
            }
            assert!(Instant::now() < deadline, "collector not listening:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address after `marker` in the log (the operator listeners log theirs as
    /// `metrics at http://ADDR/metrics` and `console at http://ADDR/`).
    pub fn logged_addr(&self, marker: &str) -> SocketAddr {
        let log = self.log();
        let rest = log
            .split(marker)
            .nth(1)
            .unwrap_or_else(|| panic!("no `{marker}` in the log:\n{log}"));
        let addr: String = rest.chars().take_while(|c| *c != '/').collect();
        addr.parse()
            .unwrap_or_else(|e| panic!("bad address `{addr}` after `{marker}`: {e}"))
    }

    /// Everything the collector logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
    }

    /// Waits for the process to exit, failing after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "collector still running after {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory of the collector process, in KiB.
    pub fn vm_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().unwrap().try_wait().unwrap().is_none()
    }

    /// Runs `assent-collector <args> --config <this config>`.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(collector_bin())
            .args(args)
            .arg("--config")
            .arg(&self.config_path)
            .output()
            .unwrap()
    }

    /// `export` for a device, parsed: one JSON value per line.
    pub fn export(&self, device: &Pseudonym, category: Option<&str>) -> Vec<serde_json::Value> {
        let mut args = vec!["export", "--device", device.as_str()];
        if let Some(c) = category {
            args.extend(["--category", c]);
        }
        let out = self.cli(&args);
        assert!(
            out.status.success(),
            "export failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Asserts the collector holds nothing of `device`: `export` fails and names it.
    pub fn assert_unknown_device(&self, device: &Pseudonym) {
        let out = self.cli(&["export", "--device", device.as_str()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "export of {device} succeeded");
        assert!(
            out.stdout.is_empty() && stderr.contains(&format!("no device {device}")),
            "{stderr}"
        );
    }

    /// The seqs of the events exported for a device.
    pub fn event_seqs(&self, device: &Pseudonym) -> Vec<u64> {
        self.export(device, None)
            .iter()
            .filter(|l| l["record"] == "event")
            .map(|l| l["seq"].as_u64().unwrap())
            .collect()
    }

    /// A client with this collector's CA and the given credentials.
    pub fn client(&self, cert: Option<&ClientCert>, token: Option<&str>) -> Client {
        Client::connect(self.addr, &self.pki.ca_file, cert, token).unwrap()
    }

    /// A client with a fresh certificate from the test CA.
    pub fn mtls_client(&self) -> Client {
        let cert = self.pki.client("device-client");
        self.client(Some(&cert), None)
    }

    /// A bare TLS stream to this collector.
    pub fn raw_tls(&self, cert: Option<&ClientCert>) -> RawTls {
        RawTls::connect(self.addr, &self.pki.ca_file, cert)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_collector(config_path: &Path, log_path: &Path) -> Child {
    let log = std::fs::File::create(log_path).unwrap();
    Command::new(collector_bin())
        .args(["serve", "--config"])
        .arg(config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// A rustls client config trusting `ca_file`, with an optional client certificate.
pub fn client_tls(ca_file: &Path, cert: Option<&ClientCert>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca_file).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match cert {
        Some(c) => {
            let chain: Vec<_> = CertificateDer::pem_file_iter(&c.cert_file)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(&c.key_file).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (error bodies and JSON acks).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// A blocking HTTPS/1.1 client on one kept-alive connection.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    token: Option<String>,
    _driver: smol::Task<()>,
}

impl Client {
    /// Connects and completes the TLS handshake; a refused handshake is an error.
    pub fn connect(
        addr: SocketAddr,
        ca_file: &Path,
        cert: Option<&ClientCert>,
        token: Option<&str>,
    ) -> Result<Client, String> {
        let config = client_tls(ca_file, cert);
        smol::block_on(async {
            let tcp = smol::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let tls = futures_rustls::TlsConnector::from(config)
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .map_err(|e| format!("tls: {e}"))?;
            let (sender, conn) =
                hyper::client::conn::http1::handshake(smol_hyper::rt::FuturesIo::new(tls))
                    .await
                    .map_err(|e| format!("http: {e}"))?;
            let driver = smol::spawn(async move {
                let _ = conn.await;
            });
            Ok(Client {
                sender,
                token: token.map(str::to_string),
                _driver: driver,
            })
        })
    }

    /// Sends one request and reads the whole answer.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Reply, String> {
        self.request_with(method, path, &[("content-type", content_type)], body)
    }

    /// Sends one request with the given headers (Host and the token are added).
    pub fn request_with(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Reply, String> {
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        if let Some(t) = &self.token {
            builder = builder.header("authorization", format!("Bearer {t}"));
        }
        let req = builder.body(Full::new(Bytes::from(body))).unwrap();
        smol::block_on(async {
            self.sender
                .ready()
                .await
                .map_err(|e| format!("not ready: {e}"))?;
            let resp = self
                .sender
                .send_request(req)
                .await
                .map_err(|e| format!("send: {e}"))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?
                .to_bytes()
                .to_vec();
            Ok(Reply {
                status,
                headers,
                body,
            })
        })
    }

    /// POSTs a batch in `encoding`.
    pub fn post_batch(&mut self, batch: &Batch, encoding: Encoding) -> Result<Reply, String> {
        self.request(
            "POST",
            assent_wire::PATH_BATCHES,
            encoding.content_type(),
            encode(batch, encoding).unwrap(),
        )
    }

    /// POSTs a batch and returns `acked_through`, failing on anything but 200.
    pub fn ack(&mut self, batch: &Batch, encoding: Encoding) -> u64 {
        let reply = self.post_batch(batch, encoding).unwrap();
        assert_eq!(
            reply.status,
            200,
            "{:?}",
            String::from_utf8_lossy(&reply.body)
        );
        assent_wire::decode_batch_ack(&reply.body, encoding)
            .unwrap()
            .acked_through
    }
}

/// A bare blocking TLS stream, for clients that misbehave on purpose.
pub struct RawTls {
    pub stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    /// Answer bytes already read by `server_spoke`.
    early: Vec<u8>,
}

impl RawTls {
    pub fn connect(addr: SocketAddr, ca_file: &Path, cert: Option<&ClientCert>) -> RawTls {
        let config = client_tls(ca_file, cert);
        let conn =
            rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap())
                .unwrap();
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        RawTls {
            stream: rustls::StreamOwned::new(conn, tcp),
            early: Vec::new(),
        }
    }

    /// Writes bytes (completing the handshake first if needed).
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Whether the server has answered (or closed) yet, without waiting; what it sent is
    /// kept for `read_status`. A client that keeps writing after the server answered and
    /// closed gets a reset, which can discard the answer before it is read.
    pub fn server_spoke(&mut self) -> bool {
        let tcp = &self.stream.sock;
        let _ = tcp.set_read_timeout(Some(Duration::from_millis(1)));
        let mut buf = [0u8; 4096];
        let spoke = match self.stream.read(&mut buf) {
            Ok(n) => {
                self.early.extend_from_slice(&buf[..n]);
                true
            }
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        let _ = self
            .stream
            .sock
            .set_read_timeout(Some(Duration::from_secs(30)));
        spoke
    }

    /// Reads until the server closes (or the read timeout passes) and returns the status
    /// code of the first answer, if one came.
    pub fn read_status(&mut self) -> Option<u16> {
        let mut buf = std::mem::take(&mut self.early);
        let _ = self.stream.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        text.strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
    }
}

/// A pseudonym made from a number, distinct for distinct numbers.
pub fn device(n: u64) -> Pseudonym {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut s = String::new();
    let mut v = n;
    for _ in 0..Pseudonym::LEN {
        s.push(ALPHABET[(v % 32) as usize] as char);
        v /= 32;
    }
    Pseudonym::parse(&s).unwrap()
}

/// An app event record.
pub fn app_event(seq: u64) -> Record {
    Record::Event(Event {
        seq,
        category: Category::AppEvents,
        kind: "door_opened".into(),
        wall_time_ms: 1_795_000_000_000i64.wrapping_add(seq as i64),
        boot_id: BootId([0x5a; 16]),
        monotonic_ns: seq.wrapping_mul(1_000_000),
        payload: Payload::AppEvent(AppEvent {
            name: "door_opened".into(),
            attrs: BTreeMap::from([
                ("door".into(), AttrValue::Text("north".into())),
                ("count".into(), AttrValue::Int(seq as i64)),
                ("ok".into(), AttrValue::Bool(true)),
                ("temp_c".into(), AttrValue::Float(21.5)),
            ]),
        }),
    })
}

/// A batch covering `first..=last` with one app event per seq.
pub fn app_batch(device: &Pseudonym, buffer_id: u64, first: u64, last: u64) -> Batch {
    Batch {
        version: PROTOCOL_VERSION,
        device: device.clone(),
        buffer_id,
        first_seq: first,
        last_seq: last,
        records: (first..=last).map(app_event).collect(),
    }
}

/// Realistic inventory payloads read from a fixture root (`tests/fixtures/roots/<name>`)
/// with the platform readers, one per readable category that has facts there.
pub fn inventory_payloads(root: &str) -> Vec<Payload> {
    use assent_platform::{Facts, ReadOptions, Root};
    let root = Root::at(format!(
        "{}/../tests/fixtures/roots/{root}",
        env!("CARGO_MANIFEST_DIR")
    ));
    let mut out = Vec::new();
    for category in Category::READABLE {
        match assent_platform::read(category, &root, &ReadOptions::default()) {
            Some(Facts::Hardware(f)) => out.push(Payload::Hardware(Box::new(f))),
            Some(Facts::Os(f)) => out.push(Payload::Os(Box::new(f))),
            Some(Facts::Network(f)) => out.push(Payload::Network(Box::new(f))),
            Some(Facts::NetworkDetail(f)) => out.push(Payload::NetworkDetail(Box::new(f))),
            Some(Facts::Location(f)) => out.push(Payload::Location(Box::new(f))),
            Some(Facts::Software(f)) => out.push(Payload::Software(Box::new(f))),
            _ => {}
        }
    }
    out
}

/// An event record carrying `payload`.
pub fn event(seq: u64, payload: Payload) -> Record {
    Record::Event(Event {
        seq,
        category: payload.category(),
        kind: "snapshot".into(),
        wall_time_ms: 1_795_000_000_000i64.wrapping_add(seq as i64),
        boot_id: BootId([0x5a; 16]),
        monotonic_ns: seq.wrapping_mul(1_000_000),
        payload,
    })
}
