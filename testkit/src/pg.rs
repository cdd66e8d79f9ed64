//! PostgreSQL for tests: a fresh database per test on the throw-away cluster named by
//! `ASSENT_TEST_PG` (`host=DIR port=PORT user=assent`, started by
//! `scripts/pg-test-cluster.sh`; `.ci/run` exports it). A missing cluster fails the test.
//!
//! [`Backend`] lets one test body run against SQLite and PostgreSQL; [`sql_rows`] and
//! [`sql_execute`] reach either database directly.
//!
//! Included next to `support/mod.rs` with `#[path = "support/pg.rs"] mod pg_support;`
//! (kept out of `mod.rs`, so crates that include that file need no PostgreSQL client).

use crate::collector::{Collector, Options};
use assent_collector::config::{PgTarget, PgTls, PgWriteMethod};
use std::sync::atomic::{AtomicU32, Ordering};

/// Runs each named test body (`fn NAME(backend: Backend)`) against SQLite and
/// PostgreSQL, as `sqlite::NAME` and `postgres::NAME` (`use assent_testkit::on_both_backends`).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $name() {
                super::$name(super::Backend::Sqlite)
            })*
        }
        mod postgres {
            $(#[test]
            fn $name() {
                super::$name(super::Backend::Postgres)
            })*
        }
    };
}

/// Which database a collector under test stores into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The default options on this backend: for PostgreSQL a new, migrated database.
    pub fn options(self) -> Options {
        match self {
            Backend::Sqlite => Options::default(),
            Backend::Postgres => Options {
                database_url: Some(fresh_database()),
                ..Options::default()
            },
        }
    }
}

/// (socket dir, port, user) of the test cluster.
pub fn cluster() -> (String, String, String) {
    let spec = std::env::var("ASSENT_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "ASSENT_TEST_PG is not set: start a cluster with \
             `scripts/pg-test-cluster.sh DIR` and export what it prints"
        )
    });
    let mut host = None;
    let mut port = "5432".to_string();
    let mut user = "assent".to_string();
    for pair in spec.split_whitespace() {
        match pair.split_once('=') {
            Some(("host", v)) => host = Some(v.to_string()),
            Some(("port", v)) => port = v.to_string(),
            Some(("user", v)) => user = v.to_string(),
            _ => panic!("ASSENT_TEST_PG: cannot read `{pair}` (want host=DIR port=N user=U)"),
        }
    }
    (host.expect("ASSENT_TEST_PG has no host=DIR"), port, user)
}

/// The URL of database `name` on the test cluster, as a collector config takes it.
pub fn url(name: &str) -> String {
    let (host, port, user) = cluster();
    format!("postgresql://{user}@/{name}?host={host}&port={port}")
}

/// A client on database `name`.
pub fn client(name: &str) -> postgres::Client {
    let (host, port, user) = cluster();
    postgres::Client::connect(
        &format!("host={host} port={port} user={user} dbname={name}"),
        postgres::NoTls,
    )
    .unwrap_or_else(|e| panic!("cannot connect to the test cluster ({host}:{port}): {e}"))
}

/// A target for the library's own functions.
pub fn target(url: &str) -> PgTarget {
    PgTarget {
        url: url.to_string(),
        driver_url: url.to_string(),
        tls: PgTls::Disable,
        password_file: None,
        ca_file: None,
        writers: 4,
        write_method: PgWriteMethod::Copy,
    }
}

/// Creates an empty database with a name unique to this process and call.
pub fn empty_database() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "t_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    client("postgres")
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    name
}

/// A new database with the collector's schema; returns its URL.
pub fn fresh_database() -> String {
    let url = url(&empty_database());
    assent_collector::pg::migrate(&target(&url)).unwrap();
    url
}

/// The database name in a test URL.
pub fn database_name(url: &str) -> String {
    url.split('/')
        .nth(3)
        .and_then(|rest| rest.split('?').next())
        .unwrap()
        .to_string()
}

/// Runs a query on the collector's database, every value as text (NULL as "NULL").
pub fn sql_rows(c: &Collector, sql: &str) -> Vec<Vec<String>> {
    match &c.options.database_url {
        Some(url) => {
            let mut client = client(&database_name(url));
            client
                .simple_query(sql)
                .unwrap()
                .into_iter()
                .filter_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(row) => Some(
                        (0..row.len())
                            .map(|i| row.get(i).unwrap_or("NULL").to_string())
                            .collect(),
                    ),
                    _ => None,
                })
                .collect()
        }
        None => {
            let db = rusqlite::Connection::open(&c.database).unwrap();
            db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
            let mut stmt = db.prepare(sql).unwrap();
            let n = stmt.column_count();
            stmt.query_map([], |r| {
                (0..n)
                    .map(|i| {
                        Ok(match r.get::<_, rusqlite::types::Value>(i)? {
                            rusqlite::types::Value::Null => "NULL".to_string(),
                            rusqlite::types::Value::Integer(v) => v.to_string(),
                            rusqlite::types::Value::Real(v) => v.to_string(),
                            rusqlite::types::Value::Text(v) => v,
                            rusqlite::types::Value::Blob(v) => format!("{v:?}"),
                        })
                    })
                    .collect()
            })
            .unwrap()
            .map(Result::unwrap)
            .collect()
        }
    }
}

/// Runs a statement on the collector's database; returns the rows it changed.
pub fn sql_execute(c: &Collector, sql: &str) -> u64 {
    match &c.options.database_url {
        Some(url) => client(&database_name(url)).execute(sql, &[]).unwrap(),
        None => {
            let db = rusqlite::Connection::open(&c.database).unwrap();
            db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
            db.execute(sql, []).unwrap() as u64
        }
    }
}

/// A cluster of a test's own, for tests that stop PostgreSQL under a running collector
/// (stopping the shared one would break the tests running beside it).
pub struct PrivateCluster {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

fn pg_bin(tool: &str) -> std::path::PathBuf {
    let mut versions: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("postgresql is not installed (apt-get install postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin").join(tool)))
        .filter(|p| p.exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no PostgreSQL binaries under /usr/lib/postgresql")
}

impl PrivateCluster {
    /// initdb and start, through the same script CI uses.
    pub fn start(port: u16) -> PrivateCluster {
        let dir = tempfile::tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pg-test-cluster.sh");
        let out = std::process::Command::new(script)
            .arg(dir.path())
            .arg(port.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cannot start a private cluster: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PrivateCluster { dir, port }
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let mut cmd = if nix::unistd::geteuid().is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "assent-pg", "--"]).arg(pg_bin("pg_ctl"));
            c
        } else {
            std::process::Command::new(pg_bin("pg_ctl"))
        };
        let out = cmd.arg("-D").arg(&data).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `pg_ctl stop -m immediate`: the server dies without a checkpoint, like a crash.
    pub fn stop_immediate(&self) {
        self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
    }

    /// Starts the stopped server again (crash recovery replays the WAL).
    pub fn restart(&self) {
        self.restart_with("-c listen_addresses=");
    }

    /// Starts the stopped server with more server options (`-c name=value ...`).
    pub fn restart_with(&self, extra: &str) {
        let dir = self.dir.path().display().to_string();
        let log = self.dir.path().join("server.log").display().to_string();
        let opts = format!(
            "-k {dir} -p {} -c fsync=off -c max_connections=300 {extra}",
            self.port
        );
        self.pg_ctl(&["-w", "-l", &log, "-o", &opts, "start"]);
    }

    /// Stops the server cleanly.
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast", "-w"]);
    }

    /// Writes a file into the data directory, owned by the server's user, mode 0600.
    pub fn write_data_file(&self, name: &str, contents: &[u8]) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join("data").join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name("assent-pg").unwrap().unwrap();
            std::os::unix::fs::chown(&path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                .unwrap();
        }
    }

    /// A new migrated database on this cluster; returns its URL.
    pub fn fresh_database(&self) -> String {
        let dir = self.dir.path().display().to_string();
        let name = format!("t_{}", std::process::id());
        let mut admin = postgres::Client::connect(
            &format!("host={dir} port={} user=assent dbname=postgres", self.port),
            postgres::NoTls,
        )
        .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let url = format!("postgresql://assent@/{name}?host={dir}&port={}", self.port);
        assent_collector::pg::migrate(&target(&url)).unwrap();
        url
    }

    /// A client on database `name` of this cluster.
    pub fn client(&self, name: &str) -> postgres::Client {
        postgres::Client::connect(
            &format!(
                "host={} port={} user=assent dbname={name}",
                self.dir.path().display(),
                self.port
            ),
            postgres::NoTls,
        )
        .unwrap()
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = if nix::unistd::geteuid().is_root() {
            std::process::Command::new("runuser")
                .args(["-u", "assent-pg", "--"])
                .arg(pg_bin("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .args(["stop", "-m", "immediate"])
                .output()
        } else {
            std::process::Command::new(pg_bin("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .args(["stop", "-m", "immediate"])
                .output()
        };
    }
}
