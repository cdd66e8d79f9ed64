//! The collector config: `/etc/assent/collector.toml` by default, with a commented example
//! in `configs/collector.toml` naming every key.
//!
//! Parsing turns the file into a [`Config`] whose values are all checked and typed, or
//! into [`Diagnostics`] listing every problem at once (`file:line:column: message`).
//! Relative paths are resolved against the directory of the config file. This module
//! reads only the config itself; certificates and the tokens file are loaded (and their
//! problems reported) by [`crate::tls`] and [`crate::auth`].

use assent_confcheck::{Diagnostics, Document, Table};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where the collector looks for its config when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/assent/collector.toml";

/// The longest retention accepted, ten years.
const MAX_RETENTION_DAYS: u64 = 3650;

/// The longest timeout accepted for any of the `*_timeout_seconds` keys: an hour. Longer
/// would let a handful of slow clients hold connections for good.
const MAX_TIMEOUT_SECONDS: u64 = 3600;

/// The smallest body limit accepted: below this even a small batch does not fit.
const MIN_BODY_BYTES: u64 = 1024;

/// The largest body limit accepted: 1 GiB. Bodies are held in memory while decoded.
const MAX_BODY_BYTES: u64 = 1 << 30;

/// The whole collector config, checked, with every default filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The file this config was read from, as given (for messages).
    pub path: PathBuf,
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Where records are stored: a SQLite file or a PostgreSQL database.
    pub database: Database,
    /// Events and gaps received longer ago than this are deleted.
    pub retention_days: u64,
    /// How often the retention sweep runs.
    pub retention_sweep_interval_seconds: u64,
    /// The most verbose level logged.
    pub log_level: String,
    /// The newest protocol version served: 2, or 1 to answer like a collector that
    /// predates fenced erasures (staged upgrades, docs/protocol.md "Upgrade order").
    pub max_protocol: u16,
    /// `[tls]`.
    pub tls: TlsConfig,
    /// `[auth]`.
    pub auth: AuthConfig,
    /// `[limits]`.
    pub limits: Limits,
    /// `[metrics]` and `[console]`: the operators' listeners, off unless configured.
    pub operator: OperatorConfig,
}

/// The `database` key: a path (SQLite) or a `postgresql://` URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Database {
    /// The SQLite database file (created when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL database (created by the operator, its schema by `migrate`).
    Postgres(PgTarget),
}

/// A PostgreSQL database to connect to, from `database`, `database_password_file`,
/// `database_ca_file` and `database_writers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgTarget {
    /// The URL as written, `sslmode` included; it never holds a password (refused when
    /// parsing), so it may be logged.
    pub url: String,
    /// The URL without `sslmode`, which the driver does not know in its `verify-full`
    /// form; what is handed to the driver.
    pub driver_url: String,
    /// Whether the connection is TLS with the server certificate and name verified.
    pub tls: PgTls,
    /// A file whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// CA certificates (PEM) the server certificate must chain to (`verify-full`).
    pub ca_file: Option<PathBuf>,
    /// Writer threads, each with its own connection.
    pub writers: u64,
    /// How an ingest transaction writes its events.
    pub write_method: PgWriteMethod,
}

/// How the ingest transaction writes a group's events (`database_write_method`); both
/// store the same rows under the same locks, measured side by side by `make bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PgWriteMethod {
    /// One binary `COPY ... FROM STDIN BINARY` per group (`"copy"`, the default).
    Copy,
    /// Multi-row `INSERT ... VALUES (...), (...)` statements (`"insert"`).
    Insert,
}

impl PgWriteMethod {
    /// The value as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            PgWriteMethod::Copy => "copy",
            PgWriteMethod::Insert => "insert",
        }
    }
}

/// TLS to PostgreSQL: only the two modes that mean something; `require` (encrypted but
/// unverified) and `prefer` are refused, since they do not stop an active attacker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PgTls {
    /// Plain connection: a Unix socket, or a network the operator trusts.
    Disable,
    /// TLS, the certificate chained to `database_ca_file`, the host name checked.
    VerifyFull,
}

/// Default writer threads against PostgreSQL.
pub const DEFAULT_PG_WRITERS: u64 = 4;

/// Splits a `postgresql://` URL into what the driver accepts and its TLS mode; refuses a
/// password in the URL (it would end up in logs and `ps`).
pub fn parse_pg_url(url: &str) -> Result<(String, PgTls), String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority = base
        .split_once("://")
        .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        if userinfo.contains(':') {
            return Err("the URL holds a password: put it in `database_password_file`".into());
        }
    }
    let mut tls = PgTls::Disable;
    let mut kept = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "password" => {
                return Err("the URL holds a password: put it in `database_password_file`".into())
            }
            "sslmode" => {
                tls = match value {
                    "disable" => PgTls::Disable,
                    "verify-full" => PgTls::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode `{other}` is not supported: use `verify-full` (with \
                             `database_ca_file`) or `disable`"
                        ))
                    }
                }
            }
            _ => kept.push(pair),
        }
    }
    let driver_url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    driver_url
        .parse::<postgres::Config>()
        .map_err(|e| format!("not a valid PostgreSQL URL: {e}"))?;
    Ok((driver_url, tls))
}

/// `[tls]`: the server certificate and, for mutual TLS, the client CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsConfig {
    /// `false` only behind a TLS-terminating proxy, and then tokens are required.
    pub enabled: bool,
    /// Server certificate chain (PEM); set whenever `enabled`.
    pub cert_file: Option<PathBuf>,
    /// Private key of the server certificate (PEM); set whenever `enabled`.
    pub key_file: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to; when set, every
    /// client must present one.
    pub client_ca_file: Option<PathBuf>,
}

/// `[auth]`: bearer tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AuthConfig {
    /// `label token` per line; when set, every request needs a valid token.
    pub tokens_file: Option<PathBuf>,
}

/// `[limits]`: what one client, and all of them together, may cost the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest request body accepted (413 above it).
    pub max_body_bytes: u64,
    /// Most records (events, gaps, consent changes) in one batch (400 above it).
    pub max_batch_events: u64,
    /// Most open connections; further clients wait in the kernel's accept queue.
    pub max_connections: u64,
    /// Most requests being handled at once; 429 above it.
    pub max_requests_in_flight: u64,
    /// Most batches and erasures waiting for the database writer; 429 above it.
    pub ingest_queue_length: u64,
    /// Time for the TLS handshake and for a request's headers; also how long a kept-alive
    /// connection may stay idle between requests.
    pub header_timeout_seconds: u64,
    /// Time for a whole request body once its headers are in.
    pub body_timeout_seconds: u64,
    /// How long a shutdown waits for requests in flight before giving up on them.
    pub shutdown_timeout_seconds: u64,
    /// Sent in `Retry-After` with 429 and 503 answers.
    pub retry_after_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 8 * 1024 * 1024,
            max_batch_events: 10_000,
            max_connections: 1024,
            max_requests_in_flight: 256,
            ingest_queue_length: 64,
            header_timeout_seconds: 10,
            body_timeout_seconds: 30,
            shutdown_timeout_seconds: 30,
            retry_after_seconds: 5,
        }
    }
}

impl Config {
    /// Reads and checks the config at `path`.
    pub fn load(path: &Path) -> Result<Config, Diagnostics> {
        let text = assent_confcheck::read_text(path, assent_confcheck::DEFAULT_MAX_BYTES)?;
        Config::parse(path, &text)
    }

    /// Checks `text`; `path_for_messages` names it in diagnostics and anchors relative
    /// paths. Returns every problem at once.
    pub fn parse(path_for_messages: &Path, text: &str) -> Result<Config, Diagnostics> {
        let doc = Document::parse(path_for_messages, text)?;
        let config = {
            let mut root = doc.root();
            read_config(path_for_messages, &mut root)
        };
        doc.finish()?;
        Ok(config)
    }

    /// The log level as a filter.
    pub fn log_filter(&self) -> log::LevelFilter {
        self.log_level.parse().unwrap_or(log::LevelFilter::Info)
    }

    /// Valid but noteworthy facts about this config, for `check-config` and the log.
    pub fn warnings(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.tls.enabled {
            notes.push(
                "tls.enabled = false: run this only behind a TLS-terminating proxy".to_string(),
            );
        }
        if self.max_protocol < assent_wire::PROTOCOL_VERSION_FENCED_ERASURE {
            notes.push(format!(
                "max_protocol = {}: erasures are taken without fences (agents fall back); \
                 remove it once every replica runs this version",
                self.max_protocol
            ));
        }
        if self.tls.enabled && self.tls.client_ca_file.is_none() {
            notes.push("no tls.client_ca_file: clients are authenticated by token only".into());
        }
        notes
    }
}

fn read_config(path: &Path, root: &mut Table<'_>) -> Config {
    let listen = root
        .string_with("listen", |s| {
            s.parse::<SocketAddr>().map_err(|_| {
                format!("expected an IP address and port such as `0.0.0.0:8443`, found `{s}`")
            })
        })
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 8443)));
    let database = read_database(path, root);
    let retention_days = root
        .u64("retention_days", 1..=MAX_RETENTION_DAYS)
        .unwrap_or(365);
    let retention_sweep_interval_seconds = root
        .u64("retention_sweep_interval_seconds", 1..=86_400)
        .unwrap_or(3600);
    let log_level = root
        .choice("log_level", &["error", "warn", "info", "debug", "trace"])
        .unwrap_or("info")
        .to_string();
    let max_protocol = root
        .u64(
            "max_protocol",
            u64::from(assent_wire::PROTOCOL_VERSION)
                ..=u64::from(assent_wire::PROTOCOL_VERSION_FENCED_ERASURE),
        )
        .and_then(|v| u16::try_from(v).ok())
        .unwrap_or(assent_wire::PROTOCOL_VERSION_FENCED_ERASURE);
    let auth = AuthConfig {
        tokens_file: root.table("auth").and_then(|mut t| t.path("tokens_file")),
    };
    let tls = read_tls(root.table("tls"), root, &auth);
    let limits = read_limits(root.table("limits"));
    let operator = read_operator(root);
    Config {
        path: path.to_path_buf(),
        listen,
        database,
        retention_days,
        retention_sweep_interval_seconds,
        log_level,
        max_protocol,
        tls,
        auth,
        limits,
        operator,
    }
}

fn read_database(path: &Path, root: &mut Table<'_>) -> Database {
    let base = path.parent().unwrap_or(Path::new("."));
    let writers = root.u64("database_writers", 1..=256);
    let password_file = root.path("database_password_file");
    let ca_file = root.path("database_ca_file");
    let write_method = root
        .choice("database_write_method", &["copy", "insert"])
        .map(|m| {
            if m == "insert" {
                PgWriteMethod::Insert
            } else {
                PgWriteMethod::Copy
            }
        });
    let raw = root.string_with("database", |s| {
        if s.is_empty() {
            Err("must not be empty".to_string())
        } else if s.contains('\0') {
            Err("must not contain a NUL character".to_string())
        } else if s.starts_with("postgresql://") || s.starts_with("postgres://") {
            parse_pg_url(s).map(|(driver_url, tls)| Err((s.to_string(), driver_url, tls)))
        } else {
            Ok(Ok(s.to_string()))
        }
    });
    match raw {
        Some(Err((url, driver_url, tls))) => {
            if tls == PgTls::VerifyFull && ca_file.is_none() {
                root.error(
                    "database",
                    "sslmode=verify-full needs `database_ca_file` (the CA of the server certificate)",
                );
            }
            Database::Postgres(PgTarget {
                url,
                driver_url,
                tls,
                password_file,
                ca_file,
                writers: writers.unwrap_or(DEFAULT_PG_WRITERS),
                write_method: write_method.unwrap_or(PgWriteMethod::Copy),
            })
        }
        other => {
            for key in [
                "database_password_file",
                "database_ca_file",
                "database_writers",
                "database_write_method",
            ] {
                if root.contains(key) {
                    root.error(key, "applies to a `postgresql://` database only");
                }
            }
            Database::Sqlite(match other {
                Some(Ok(text)) => base.join(text),
                _ => PathBuf::from("/var/lib/assent-collector/collector.db"),
            })
        }
    }
}

fn read_tls(table: Option<Table<'_>>, root: &Table<'_>, auth: &AuthConfig) -> TlsConfig {
    let mut tls = TlsConfig {
        enabled: true,
        cert_file: None,
        key_file: None,
        client_ca_file: None,
    };
    let Some(mut t) = table else {
        root.error_here("missing table `[tls]` (cert_file and key_file, or enabled = false)");
        return tls;
    };
    if let Some(v) = t.bool("enabled") {
        tls.enabled = v;
    }
    tls.cert_file = t.path("cert_file");
    tls.key_file = t.path("key_file");
    tls.client_ca_file = t.path("client_ca_file");
    if tls.enabled {
        for key in ["cert_file", "key_file"] {
            if !t.contains(key) {
                t.missing(key);
            }
        }
        if !t.contains("client_ca_file") && auth.tokens_file.is_none() {
            t.error_here(
                "no authentication configured: set `client_ca_file` (mutual TLS) or \
                 `[auth] tokens_file`, or both",
            );
        }
    } else {
        if auth.tokens_file.is_none() {
            t.error(
                "enabled",
                "`enabled = false` needs `[auth] tokens_file`: behind a proxy, tokens are \
                 the only way to tell devices apart",
            );
        }
        if t.contains("client_ca_file") {
            t.error(
                "client_ca_file",
                "has no effect with `enabled = false`: the proxy terminates TLS",
            );
        }
    }
    tls
}

fn read_limits(table: Option<Table<'_>>) -> Limits {
    let mut limits = Limits::default();
    let Some(mut t) = table else { return limits };
    let timeouts = 1..=MAX_TIMEOUT_SECONDS;
    let fields: [(&str, &mut u64, std::ops::RangeInclusive<u64>); 9] = [
        (
            "max_body_bytes",
            &mut limits.max_body_bytes,
            MIN_BODY_BYTES..=MAX_BODY_BYTES,
        ),
        (
            "max_batch_events",
            &mut limits.max_batch_events,
            1..=assent_wire::MAX_BATCH_RECORDS as u64,
        ),
        (
            "max_connections",
            &mut limits.max_connections,
            1..=1_000_000,
        ),
        (
            "max_requests_in_flight",
            &mut limits.max_requests_in_flight,
            1..=1_000_000,
        ),
        (
            "ingest_queue_length",
            &mut limits.ingest_queue_length,
            1..=1_000_000,
        ),
        (
            "header_timeout_seconds",
            &mut limits.header_timeout_seconds,
            timeouts.clone(),
        ),
        (
            "body_timeout_seconds",
            &mut limits.body_timeout_seconds,
            timeouts.clone(),
        ),
        (
            "shutdown_timeout_seconds",
            &mut limits.shutdown_timeout_seconds,
            timeouts.clone(),
        ),
        (
            "retry_after_seconds",
            &mut limits.retry_after_seconds,
            timeouts,
        ),
    ];
    for (key, slot, range) in fields {
        if let Some(v) = t.u64(key, range) {
            *slot = v;
        }
    }
    limits
}

/// The default `[metrics] listen`: loopback only.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9477";

/// The default `[console] listen`: loopback only.
pub const DEFAULT_CONSOLE_LISTEN: &str = "127.0.0.1:8480";

/// The operators' listeners; each is off when its table is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct OperatorConfig {
    pub metrics: Option<MetricsConfig>,
    pub console: Option<ConsoleConfig>,
}

/// `[metrics]`: Prometheus text exposition at `GET /metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
    /// A file whose first line is the bearer token scrapers must send.
    pub token_file: Option<PathBuf>,
    /// HTTPS instead of plain HTTP.
    pub tls: Option<OperatorTls>,
}

/// `tls_cert_file` and `tls_key_file` of an operator listener: it speaks HTTPS with this
/// certificate chain and key (no client certificates: operators and scrapers sign in
/// with their tokens).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// `[console]`: the operators' read-only web pages and the erase action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleConfig {
    pub listen: SocketAddr,
    /// `operator-name token` per line (the devices' tokens file format).
    pub operators_file: PathBuf,
    /// HTTPS instead of plain HTTP.
    pub tls: Option<OperatorTls>,
}

fn read_listen(t: &mut Table<'_>, default: &str) -> SocketAddr {
    let fallback = default
        .parse()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
    t.string_with("listen", |s| {
        s.parse::<SocketAddr>().map_err(|_| {
            format!("expected an IP address and port such as `{default}`, found `{s}`")
        })
    })
    .unwrap_or(fallback)
}

fn read_operator_tls(t: &mut Table<'_>) -> Option<OperatorTls> {
    let cert_file = t.path("tls_cert_file");
    let key_file = t.path("tls_key_file");
    match (cert_file, key_file) {
        (Some(cert_file), Some(key_file)) => Some(OperatorTls {
            cert_file,
            key_file,
        }),
        (Some(_), None) if !t.contains("tls_key_file") => {
            t.error("tls_cert_file", "needs `tls_key_file` beside it");
            None
        }
        (None, Some(_)) if !t.contains("tls_cert_file") => {
            t.error("tls_key_file", "needs `tls_cert_file` beside it");
            None
        }
        _ => None,
    }
}

fn read_operator(root: &mut Table<'_>) -> OperatorConfig {
    let metrics = root.table("metrics").map(|mut t| MetricsConfig {
        listen: read_listen(&mut t, DEFAULT_METRICS_LISTEN),
        token_file: t.path("token_file"),
        tls: read_operator_tls(&mut t),
    });
    let console = root.table("console").map(|mut t| {
        let listen = read_listen(&mut t, DEFAULT_CONSOLE_LISTEN);
        let operators_file = t.path("operators_file");
        if operators_file.is_none() && !t.contains("operators_file") {
            t.missing("operators_file");
        }
        ConsoleConfig {
            listen,
            operators_file: operators_file.unwrap_or_default(),
            tls: read_operator_tls(&mut t),
        }
    });
    OperatorConfig { metrics, console }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("/etc/c.toml"), text).map_err(|d| d.to_string())
    }

    #[test]
    fn minimal_mtls_config_gets_defaults() {
        let c = parse(
            "database = \"db.sqlite\"\n[tls]\ncert_file = \"s.pem\"\nkey_file = \"s.key\"\n\
             client_ca_file = \"ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(
            c.database,
            Database::Sqlite(PathBuf::from("/etc/db.sqlite"))
        );
        assert_eq!(c.tls.cert_file, Some(PathBuf::from("/etc/s.pem")));
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(c.retention_days, 365);
    }

    #[test]
    fn every_error_at_once_with_positions() {
        let err = parse(
            "listen = \"nowhere\"\nretention_days = 0\nretentoin_days = 3\n[tls]\n\
             cert_file = \"s.pem\"\n[limits]\nmax_body_bytes = 10\n",
        )
        .unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 6, "{err}");
        assert!(lines[0].starts_with("/etc/c.toml:1:10: "), "{err}");
        assert!(lines[1].starts_with("/etc/c.toml:2:18: "), "{err}");
        assert!(err.contains("did you mean `retention_days`"), "{err}");
        assert!(err.contains("missing key `tls.key_file`") || err.contains("key_file"));
        assert!(err.contains("no authentication configured"), "{err}");
        assert!(err.contains("max_body_bytes"), "{err}");
    }

    #[test]
    fn plain_http_needs_tokens() {
        let err = parse("[tls]\nenabled = false\n").unwrap_err();
        assert!(err.contains("/etc/c.toml:2:11: "), "{err}");
        assert!(err.contains("needs `[auth] tokens_file`"), "{err}");
        let ok = parse("[tls]\nenabled = false\n[auth]\ntokens_file = \"/t\"\n").unwrap();
        assert!(!ok.tls.enabled);
        assert_eq!(ok.auth.tokens_file, Some(PathBuf::from("/t")));
    }

    #[test]
    fn the_example_config_is_valid_and_names_every_default() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../configs/collector.toml"
        ));
        let text = std::fs::read_to_string(path).unwrap();
        let c = Config::parse(path, &text).unwrap();
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.retention_days, 365);
        assert_eq!(c.retention_sweep_interval_seconds, 3600);
        assert_eq!(c.max_protocol, assent_wire::PROTOCOL_VERSION_FENCED_ERASURE);
        assert!(c.tls.enabled && c.tls.client_ca_file.is_some());
        assert!(c.auth.tokens_file.is_some());
    }

    #[test]
    fn postgres_urls() {
        let tls = "[tls]\nenabled = false\n[auth]\ntokens_file = \"/t\"\n";
        let c = parse(&format!(
            "database = \"postgresql://assent@db.example:5433/fleet?sslmode=verify-full\"\n\
             database_password_file = \"pw\"\ndatabase_ca_file = \"ca.pem\"\n{tls}"
        ))
        .unwrap();
        let Database::Postgres(t) = c.database else {
            panic!("not postgres")
        };
        assert_eq!(t.tls, PgTls::VerifyFull);
        assert_eq!(t.driver_url, "postgresql://assent@db.example:5433/fleet");
        assert_eq!(t.password_file, Some(PathBuf::from("/etc/pw")));
        assert_eq!(t.writers, DEFAULT_PG_WRITERS);
        let c = parse(&format!(
            "database = \"postgresql://assent@/fleet?host=/run/pg&port=5432\"\n\
             database_writers = 8\n{tls}"
        ))
        .unwrap();
        let Database::Postgres(t) = c.database else {
            panic!("not postgres")
        };
        assert_eq!((t.tls, t.writers), (PgTls::Disable, 8));
        assert_eq!(t.write_method, PgWriteMethod::Copy);
        let c = parse(&format!(
            "database = \"postgresql://a@/d?host=/run/pg\"\ndatabase_write_method = \"insert\"\n{tls}"
        ))
        .unwrap();
        let Database::Postgres(t) = c.database else {
            panic!("not postgres")
        };
        assert_eq!(t.write_method, PgWriteMethod::Insert);
        let err = parse(&format!(
            "database = \"postgresql://a@/d?host=/run/pg\"\ndatabase_write_method = \"rows\"\n{tls}"
        ))
        .unwrap_err();
        assert!(err.contains("/etc/c.toml:2:"), "{err}");
        assert!(
            err.contains("`copy`, `insert`") || err.contains("copy"),
            "{err}"
        );
        for (url, want) in [
            ("postgresql://a:secret@h/d", "holds a password"),
            ("postgresql://a@h/d?password=x", "holds a password"),
            (
                "postgresql://a@h/d?sslmode=require",
                "sslmode `require` is not supported",
            ),
            (
                "postgresql://a@h/d?sslmode=verify-full",
                "needs `database_ca_file`",
            ),
        ] {
            let err = parse(&format!("database = \"{url}\"\n{tls}")).unwrap_err();
            assert!(err.contains("/etc/c.toml:1:"), "{err}");
            assert!(err.contains(want), "{url}: {err}");
            assert!(!err.contains("secret"), "the password is echoed: {err}");
        }
        let err = parse(&format!("database = \"x.db\"\ndatabase_writers = 2\n{tls}")).unwrap_err();
        assert!(
            err.contains("applies to a `postgresql://` database only"),
            "{err}"
        );
    }

    #[test]
    fn operator_listeners_are_off_unless_configured() {
        let base = "[tls]\nenabled = false\n[auth]\ntokens_file = \"/t\"\n";
        assert_eq!(parse(base).unwrap().operator, OperatorConfig::default());
        let c = parse(&format!(
            "{base}[metrics]\ntoken_file = \"m\"\n[console]\noperators_file = \"ops\"\n"
        ))
        .unwrap();
        let metrics = c.operator.metrics.unwrap();
        assert_eq!(metrics.listen, DEFAULT_METRICS_LISTEN.parse().unwrap());
        assert_eq!(metrics.token_file, Some(PathBuf::from("/etc/m")));
        let console = c.operator.console.unwrap();
        assert_eq!(console.listen, DEFAULT_CONSOLE_LISTEN.parse().unwrap());
        assert_eq!(console.operators_file, PathBuf::from("/etc/ops"));
        let err = parse(&format!("{base}[console]\nlisten = \"x\"\n")).unwrap_err();
        assert!(err.contains("/etc/c.toml:6:10: "), "{err}");
        assert!(err.contains("operators_file"), "{err}");
    }

    #[test]
    fn max_protocol_is_1_or_2_and_warned_about_when_1() {
        let tls = "[tls]\nenabled = false\n[auth]\ntokens_file = \"/t\"\n";
        let c = parse(tls).unwrap();
        assert_eq!(c.max_protocol, 2);
        assert!(!c.warnings().iter().any(|w| w.contains("max_protocol")));
        let c = parse(&format!("max_protocol = 1\n{tls}")).unwrap();
        assert_eq!(c.max_protocol, 1);
        assert!(
            c.warnings().iter().any(|w| w.contains("without fences")),
            "{:?}",
            c.warnings()
        );
        for bad in ["0", "3", "\"1\""] {
            let err = parse(&format!("max_protocol = {bad}\n{tls}")).unwrap_err();
            assert!(err.contains("/etc/c.toml:1:16: "), "{bad}: {err}");
        }
    }

    #[test]
    fn missing_tls_table_is_an_error() {
        let err = parse("database = \"x\"\n").unwrap_err();
        assert!(err.contains("missing table `[tls]`"), "{err}");
    }
}
