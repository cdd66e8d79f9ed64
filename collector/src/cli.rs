//! The command line: the only module that prints.
//!
//! Exit codes: 0 success, 1 runtime failure, 78 (`EX_CONFIG`) for an invalid config or
//! unusable certificate, key or tokens file, with every problem listed on stderr.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use crate::logger;
use argh::FromArgs;
use assent_collector::config::{Config, Database, PgTarget, DEFAULT_CONFIG_PATH};
use assent_collector::console::html::time;
use assent_collector::inventory;
use assent_collector::pg::{self, PgStorage};
use assent_collector::server;
use assent_collector::sqlite::SqliteStorage;
use assent_collector::storage::{Storage, StorageError};
use assent_platform::Category;
use assent_wire::Pseudonym;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const EX_CONFIG: u8 = 78;

#[derive(FromArgs, Debug)]
/// The Assent collector: receives batches from Assent devices over HTTPS and stores them.
/// Without a subcommand it serves.
struct Args {
    /// config file (default /etc/assent/collector.toml)
    #[argh(option)]
    config: Option<PathBuf>,
    #[argh(subcommand)]
    command: Option<Command>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Command {
    Serve(Serve),
    CheckConfig(CheckConfig),
    Devices(Devices),
    Export(Export),
    Inventory(InventoryArgs),
    Stats(Stats),
    Migrate(Migrate),
    Import(Import),
}

#[derive(FromArgs, Debug)]
/// Copy a SQLite collector database into the PostgreSQL database of the config; running
/// it again copies only what is new.
#[argh(subcommand, name = "import")]
struct Import {
    /// config file (its database must be PostgreSQL)
    #[argh(option)]
    config: Option<PathBuf>,
    /// the SQLite database file to read (opened read-only)
    #[argh(option)]
    from: PathBuf,
}

#[derive(FromArgs, Debug)]
/// Bring a PostgreSQL database's schema to this collector's version (a SQLite file is
/// migrated when the collector opens it).
#[argh(subcommand, name = "migrate")]
struct Migrate {
    /// config file
    #[argh(option)]
    config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Serve until SIGTERM or SIGINT.
#[argh(subcommand, name = "serve")]
struct Serve {
    /// config file
    #[argh(option)]
    config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Check the config, certificates, key and tokens file; list every problem (exit 78).
#[argh(subcommand, name = "check-config")]
struct CheckConfig {
    /// config file
    #[argh(option)]
    config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// List the devices held: pseudonym, first and last seen, and how many events, consent
/// records, gap records and erasures are held of each.
#[argh(subcommand, name = "devices")]
struct Devices {
    /// config file
    #[argh(option)]
    config: Option<PathBuf>,
    /// one JSON object per device and line instead of a table
    #[argh(switch)]
    json: bool,
}

#[derive(FromArgs, Debug)]
/// Print every record held for a device as JSON lines (`devices` lists them).
#[argh(subcommand, name = "export")]
struct Export {
    /// config file
    #[argh(option)]
    config: Option<PathBuf>,
    /// the device pseudonym
    #[argh(option)]
    device: String,
    /// only events of this category
    #[argh(option)]
    category: Option<String>,
}

#[derive(FromArgs, Debug)]
/// Print a device's complete package list as of a received time, as JSON; exit 2 when
/// the list held is incomplete (a part or delta was lost).
#[argh(subcommand, name = "inventory")]
struct InventoryArgs {
    /// config file
    #[argh(option)]
    config: Option<PathBuf>,
    /// the device pseudonym
    #[argh(option)]
    device: String,
    /// the inventory category (only `software`)
    #[argh(option, default = "String::from(\"software\")")]
    category: String,
    /// received time: RFC 3339 (`2026-12-02T10:00:00Z`) or milliseconds since the epoch
    /// (default: everything received)
    #[argh(option)]
    at: Option<String>,
}

#[derive(FromArgs, Debug)]
/// Print row counts of the database as JSON.
#[argh(subcommand, name = "stats")]
struct Stats {
    /// config file
    #[argh(option)]
    config: Option<PathBuf>,
}

/// Runs the command line.
pub fn main() -> ExitCode {
    let args: Args = argh::from_env();
    let pick = |own: Option<PathBuf>| {
        own.or_else(|| args.config.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    };
    match args.command {
        None => serve(&pick(None)),
        Some(Command::Serve(c)) => serve(&pick(c.config)),
        Some(Command::CheckConfig(c)) => check_config(&pick(c.config)),
        Some(Command::Devices(c)) => {
            let path = pick(c.config);
            devices(&path, c.json)
        }
        Some(Command::Export(c)) => {
            let path = pick(c.config);
            export(&path, &c.device, c.category.as_deref())
        }
        Some(Command::Inventory(c)) => {
            let path = pick(c.config.clone());
            inventory(&path, &c)
        }
        Some(Command::Stats(c)) => stats(&pick(c.config)),
        Some(Command::Migrate(c)) => migrate(&pick(c.config)),
        Some(Command::Import(c)) => {
            let path = pick(c.config);
            import(&path, &c.from)
        }
    }
}

fn load(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|diagnostics| {
        eprintln!("{diagnostics}");
        ExitCode::from(EX_CONFIG)
    })
}

fn serve(path: &Path) -> ExitCode {
    logger::init(log::LevelFilter::Info);
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    logger::init(config.log_filter());
    for note in config.warnings() {
        log::warn!("{note}");
    }
    match server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(server::ServerError::Config(d)) => {
            eprintln!("{d}");
            ExitCode::from(EX_CONFIG)
        }
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(d) = server::check_files(&config) {
        eprintln!("{d}");
        return ExitCode::from(EX_CONFIG);
    }
    for note in config.warnings() {
        eprintln!("{}: note: {note}", path.display());
    }
    if let Database::Postgres(target) = &config.database {
        match check_postgres(target) {
            Ok(note) => println!("{}: database: {note}", path.display()),
            Err(problem) => {
                eprintln!("{}: database: {problem}", path.display());
                return ExitCode::from(EX_CONFIG);
            }
        }
    }
    println!("{}: ok", path.display());
    ExitCode::SUCCESS
}

/// Connects and reads the schema version: what `serve` would refuse, said now.
fn check_postgres(target: &PgTarget) -> Result<String, String> {
    let mut client = pg::connect(target).map_err(|e| e.to_string())?;
    let version = pg::schema_version(&mut client).map_err(|e| e.to_string())?;
    match pg::version_problem(version) {
        None => Ok(format!(
            "connected to {}, schema at version {version}",
            target.url
        )),
        Some(problem) => Err(format!("connected to {}, but {problem}", target.url)),
    }
}

fn migrate(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match &config.database {
        Database::Sqlite(db) => match SqliteStorage::open(db) {
            Ok(_) => {
                println!("{}: sqlite schema up to date", db.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("assent-collector: migrate: {}: {e}", db.display());
                ExitCode::FAILURE
            }
        },
        Database::Postgres(target) => match pg::migrate(target) {
            Ok((before, after)) if before == after => {
                println!("{}: schema already at version {after}", target.url);
                ExitCode::SUCCESS
            }
            Ok((before, after)) => {
                println!(
                    "{}: schema migrated from version {before} to {after}",
                    target.url
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("assent-collector: migrate: {}: {e}", target.url);
                ExitCode::FAILURE
            }
        },
    }
}

fn import(path: &Path, from: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Database::Postgres(target) = &config.database else {
        eprintln!(
            "assent-collector: import: {}: `database` must be a postgresql:// URL",
            path.display()
        );
        return ExitCode::from(EX_CONFIG);
    };
    match pg::import_sqlite(target, from) {
        Ok(report) => {
            println!(
                "{}: imported {} events, {} gaps, {} consent records, {} erasure log rows \
                 ({} buffers of {} devices) into {}",
                from.display(),
                report.events,
                report.gaps,
                report.consent_records,
                report.erasures,
                report.buffers,
                report.devices,
                target.url
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("assent-collector: import from {}: {e}", from.display());
            ExitCode::FAILURE
        }
    }
}

fn open_read_only(path: &Path) -> Result<Box<dyn Storage>, ExitCode> {
    let config = load(path)?;
    let opened: Result<Box<dyn Storage>, _> = match &config.database {
        Database::Sqlite(db) => SqliteStorage::open_read_only(db)
            .map(|s| Box::new(s) as Box<dyn Storage>)
            .map_err(|e| format!("cannot open {}: {e}", db.display())),
        Database::Postgres(target) => PgStorage::open(target)
            .map(|s| Box::new(s) as Box<dyn Storage>)
            .map_err(|e| format!("{}: {e}", target.url)),
    };
    opened.map_err(|e| {
        eprintln!("assent-collector: {e}");
        ExitCode::FAILURE
    })
}

fn export(path: &Path, device: &str, category: Option<&str>) -> ExitCode {
    let device = match Pseudonym::parse(device) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("assent-collector: --device: {e}");
            return ExitCode::FAILURE;
        }
    };
    let category = match category.map(str::parse::<Category>) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            eprintln!("assent-collector: --category: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut storage = match open_read_only(path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut known = false;
    if let Err(e) = storage.devices(Some(&device), &mut |_| {
        known = true;
        Ok(())
    }) {
        eprintln!("assent-collector: export: {e}");
        return ExitCode::FAILURE;
    }
    if !known {
        eprintln!(
            "assent-collector: export: no device {device} in {}: the collector never \
             received a batch from it (`assent-collector devices` lists those it holds)",
            database_name(path)
        );
        return ExitCode::FAILURE;
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = storage.export(&device, category, &mut |line| {
        writeln!(out, "{line}").map_err(|e| StorageError::Database(format!("stdout: {e}")))
    });
    let flushed = out.flush();
    match (result, flushed) {
        (Ok(()), Ok(())) => ExitCode::SUCCESS,
        (Err(e), _) => {
            eprintln!("assent-collector: export: {e}");
            ExitCode::FAILURE
        }
        (_, Err(e)) => {
            eprintln!("assent-collector: export: stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The database of the config at `path`, as messages name it (the URL carries no
/// password).
fn database_name(path: &Path) -> String {
    match Config::load(path).map(|c| c.database) {
        Ok(Database::Sqlite(db)) => db.display().to_string(),
        Ok(Database::Postgres(target)) => target.url,
        Err(_) => "the database".to_string(),
    }
}

fn devices(path: &Path, json: bool) -> ExitCode {
    let mut storage = match open_read_only(path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut listed = 0u64;
    let stdout_error = |e: std::io::Error| StorageError::Database(format!("stdout: {e}"));
    let result = storage.devices(None, &mut |d| {
        if json {
            let line = serde_json::to_string(&d)
                .map_err(|e| StorageError::Database(format!("json: {e}")))?;
            writeln!(out, "{line}").map_err(stdout_error)?;
        } else {
            if listed == 0 {
                writeln!(
                    out,
                    "{:<26}  {:<19}  {:<19}  {:>10}  {:>7}  {:>6}  {:>8}",
                    "DEVICE",
                    "FIRST SEEN (UTC)",
                    "LAST SEEN (UTC)",
                    "EVENTS",
                    "CONSENT",
                    "GAPS",
                    "ERASURES"
                )
                .map_err(stdout_error)?;
            }
            writeln!(
                out,
                "{:<26}  {:<19}  {:<19}  {:>10}  {:>7}  {:>6}  {:>8}",
                d.device,
                time(d.first_seen_ms),
                time(d.last_seen_ms),
                d.events,
                d.consent_records,
                d.gaps,
                d.erasures
            )
            .map_err(stdout_error)?;
        }
        listed += 1;
        Ok(())
    });
    let result = result.and_then(|()| {
        if listed == 0 && !json {
            writeln!(out, "no devices in {}", database_name(path)).map_err(stdout_error)?;
        }
        out.flush().map_err(stdout_error)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("assent-collector: devices: {e}");
            ExitCode::FAILURE
        }
    }
}

fn inventory(path: &Path, args: &InventoryArgs) -> ExitCode {
    let device = match Pseudonym::parse(&args.device) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("assent-collector: --device: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.category != Category::Software.name() {
        eprintln!(
            "assent-collector: --category: `{}` has no inventory (only `software`)",
            args.category
        );
        return ExitCode::FAILURE;
    }
    let at_ms = match args.at.as_deref().map(parse_time).transpose() {
        Ok(at) => at,
        Err(e) => {
            eprintln!("assent-collector: --at: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut storage = match open_read_only(path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match inventory::software_at(storage.as_mut(), &device, at_ms) {
        Ok(found) => match serde_json::to_string(&found) {
            Ok(text) => {
                println!("{text}");
                if found.complete {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(2)
                }
            }
            Err(e) => {
                eprintln!("assent-collector: inventory: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("assent-collector: inventory: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Milliseconds since the epoch, given as such or in RFC 3339.
fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let time = humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("`{text}` is neither RFC 3339 nor milliseconds: {e}"))?;
    time.duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("`{text}` is before 1970"))
        .and_then(|d| i64::try_from(d.as_millis()).map_err(|_| format!("`{text}` is too late")))
}

fn stats(path: &Path) -> ExitCode {
    let mut storage = match open_read_only(path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match storage.stats() {
        Ok(stats) => match serde_json::to_string_pretty(&stats) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("assent-collector: stats: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("assent-collector: stats: {e}");
            ExitCode::FAILURE
        }
    }
}
