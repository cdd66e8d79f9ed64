//! The command line: argument parsing and everything the binary prints.
#![allow(clippy::print_stderr)]

/// Writes a line to stdout. A reader that went away (`assent ... | head`) is not an
/// error worth a panic: the first failed write is remembered and decides the exit status.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Like `out!` without the newline.
macro_rules! out_raw {
    ($($arg:tt)*) => { $crate::cli::write_stdout(format_args!($($arg)*)) };
}

use crate::collect::identity::{Identity, IdentityState, LoadError};
use crate::collect::preview;
pub mod exit;

use crate::collect::{self, Outcome, PlatformReaders};
use crate::config::{Config, DEFAULT_CONFIG_PATH};
use crate::consent::{self, ConsentSource, Decision};
use crate::control::protocol::Request;
use crate::local::{buffer, owner};
use crate::unix::logger;
use crate::{control, daemon, sync};
use argh::FromArgs;
use assent_platform::location::GpsdOptions;
use assent_platform::{Category, ReadOptions, Root};
use exit::Exit;
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(FromArgs, Debug)]
/// Assent: a consent-gated telemetry agent for Linux devices.
struct Args {
    /// print the version and exit
    #[argh(switch, short = 'V')]
    version: bool,

    #[argh(subcommand)]
    command: Option<Command>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Command {
    Collect(CollectArgs),
    CheckConfig(CheckConfigArgs),
    Consent(ConsentArgs),
    ResetId(ResetIdArgs),
    Sync(SyncArgs),
    Run(RunArgs),
    Status(StatusArgs),
    Export(ExportArgs),
    Erase(EraseArgs),
    Forget(ForgetArgs),
    Emit(EmitArgs),
    Control(ControlArgs),
}

#[derive(FromArgs, Debug)]
/// Send one control-protocol request (a JSON line, see docs/control.md) to the running
/// daemon and print its answer, e.g. '{"command":"consent-show"}'.
#[argh(subcommand, name = "control")]
struct ControlArgs {
    /// the request as JSON
    #[argh(positional)]
    request: String,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Report an event through the running daemon, as a local program would: NAME and
/// key=value attributes (true/false, integers and decimals are typed; key:=value forces
/// text). Answered once the event is stored durably.
#[argh(subcommand, name = "emit")]
struct EmitArgs {
    /// the event name
    #[argh(positional)]
    name: String,

    /// attributes as key=value
    #[argh(positional)]
    attrs: Vec<String>,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Run the daemon in the foreground (as systemd does).
#[argh(subcommand, name = "run")]
struct RunArgs {
    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Show the running daemon's state: last sync, next attempt, backoff, queue,
/// connectivity, active categories.
#[argh(subcommand, name = "status")]
struct StatusArgs {
    /// print JSON
    #[argh(switch)]
    json: bool,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Write everything held on this device as one JSON document a person can read.
#[argh(subcommand, name = "export")]
struct ExportArgs {
    /// write to this file (mode 0600) instead of standard output
    #[argh(option)]
    out: Option<PathBuf>,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Delete everything held locally; with --remote also ask the collector to erase
/// everything it holds for this device.
#[argh(subcommand, name = "erase")]
struct EraseArgs {
    /// also send an erasure request for all categories
    #[argh(switch)]
    remote: bool,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Forget this device: erase --remote, then reset-id.
#[argh(subcommand, name = "forget")]
struct ForgetArgs {
    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Upload the queued events to the collector. With --once: the whole queue now, in the
/// foreground, without a running daemon; prints what was sent, acked and what remains.
#[argh(subcommand, name = "sync")]
struct SyncArgs {
    /// upload everything queued now and exit (no daemon needed)
    #[argh(switch)]
    once: bool,

    /// send even over a metered link (a technician's explicit flush)
    #[argh(switch)]
    allow_metered: bool,

    /// most events per batch (default 1000; halved when the collector says 413)
    #[argh(option, default = "sync::DEFAULT_BATCH_EVENTS")]
    batch_events: usize,

    /// give up after this many failed attempts in a row (default 3)
    #[argh(option, default = "3")]
    attempts: u32,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Collect device facts: --preview shows everything that could be collected, ignoring
/// consent; --dry-run shows what would be collected under the current consent.
#[argh(subcommand, name = "collect")]
struct CollectArgs {
    /// print what could be collected, ignoring consent (identifiers masked)
    #[argh(switch)]
    preview: bool,

    /// print what would be collected now under the current consent, de-identified as it
    /// would be sent; nothing is stored
    #[argh(switch)]
    dry_run: bool,

    /// print JSON
    #[argh(switch)]
    json: bool,

    /// read from this root filesystem instead of / (live sources such as netlink and
    /// gpsd are used only for /)
    #[argh(option)]
    root: Option<PathBuf>,

    /// only this category; repeat for several (default: all)
    #[argh(option)]
    category: Vec<String>,

    /// gpsd address for the location category (default from the config, else
    /// 127.0.0.1:2947)
    #[argh(option)]
    gpsd: Option<SocketAddr>,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Validate the config and the consent file; exit 78 with every error when invalid.
#[argh(subcommand, name = "check-config")]
struct CheckConfigArgs {
    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Show or change the owner's consent.
#[argh(subcommand, name = "consent")]
struct ConsentArgs {
    #[argh(subcommand)]
    command: ConsentCommand,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum ConsentCommand {
    Show(ConsentShowArgs),
    Grant(ConsentGrantArgs),
    Revoke(ConsentRevokeArgs),
}

#[derive(FromArgs, Debug)]
/// Show each category: required or optional, purpose, state, who decided and when.
#[argh(subcommand, name = "show")]
struct ConsentShowArgs {
    /// print JSON
    #[argh(switch)]
    json: bool,

    /// print the consent log instead: every change, when and by whom
    #[argh(switch)]
    history: bool,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Grant categories under the current policy version.
#[argh(subcommand, name = "grant")]
struct ConsentGrantArgs {
    /// categories to grant
    #[argh(positional)]
    categories: Vec<String>,

    /// grant every category the operator marks required
    #[argh(switch)]
    all_required: bool,

    /// who grants: "owner", "guardian", "technician:ops-17" (default owner)
    #[argh(option, default = "String::from(\"owner\")")]
    by: String,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Withdraw consent for categories; collection stops and unsent data is deleted.
#[argh(subcommand, name = "revoke")]
struct ConsentRevokeArgs {
    /// categories to revoke
    #[argh(positional)]
    categories: Vec<String>,

    /// revoke every category
    #[argh(switch)]
    all: bool,

    /// who revokes (default owner)
    #[argh(option, default = "String::from(\"owner\")")]
    by: String,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Rotate the device secret and install id, so old and new pseudonyms cannot be linked.
#[argh(subcommand, name = "reset-id")]
struct ResetIdArgs {
    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    config: Option<PathBuf>,
}

thread_local! {
    static STDOUT_ERROR: std::cell::RefCell<Option<std::io::ErrorKind>> =
        const { std::cell::RefCell::new(None) };
}

pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let failed = STDOUT_ERROR.with(|e| e.borrow().is_some());
    if failed {
        return;
    }
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        STDOUT_ERROR.with(|slot| *slot.borrow_mut() = Some(e.kind()));
    }
}

pub fn main() -> ExitCode {
    let code = run();
    use std::io::Write;
    let flushed = std::io::stdout().lock().flush();
    let error = STDOUT_ERROR
        .with(|e| *e.borrow())
        .or(flushed.err().map(|e| e.kind()));
    match error {
        // The reader closed the pipe: stop quietly, as the SIGPIPE default would.
        Some(std::io::ErrorKind::BrokenPipe) => ExitCode::from(Exit::BrokenPipe),
        Some(kind) => {
            eprintln!("assent: cannot write to standard output: {kind}");
            ExitCode::from(Exit::IoError)
        }
        None => code,
    }
}

fn run() -> ExitCode {
    logger::init(log::LevelFilter::Warn);
    let args: Args = argh::from_env();
    if args.version {
        out!("assent {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let result = match args.command {
        Some(Command::Collect(c)) => collect(c),
        Some(Command::CheckConfig(c)) => check_config(c),
        Some(Command::Consent(c)) => consent(c),
        Some(Command::ResetId(c)) => reset_id(c),
        Some(Command::Sync(c)) => sync(c),
        Some(Command::Run(c)) => run_daemon(c),
        Some(Command::Status(c)) => status(c),
        Some(Command::Export(c)) => export(c),
        Some(Command::Erase(c)) => erase(c.config, c.remote, false),
        Some(Command::Forget(c)) => erase(c.config, true, true),
        Some(Command::Emit(c)) => emit(c),
        Some(Command::Control(c)) => control_request(c),
        None => Err(Failure::usage(
            "no command given; run `assent --help` to see them",
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let message = f.message.trim_end();
            if logger::journald() {
                // Under journald a line without a `<N>` prefix is logged at info.
                for line in message.lines() {
                    eprintln!("<3>{line}");
                }
            } else {
                eprintln!("{message}");
            }
            ExitCode::from(f.code)
        }
    }
}

/// A failed command: what to print and the exit status.
struct Failure {
    code: Exit,
    message: String,
}

impl Failure {
    fn usage(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: Exit::Usage,
            message: format!("assent: {message}"),
        }
    }

    fn config(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: Exit::Config,
            message: message.to_string(),
        }
    }

    fn unavailable(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: Exit::TempFail,
            message: format!("assent: {message}"),
        }
    }

    fn cant_create(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: Exit::CantCreate,
            message: format!("assent: {message}"),
        }
    }
}

fn config_path(given: &Option<PathBuf>) -> PathBuf {
    given
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

/// Loads the config, or fails with every diagnostic and EX_CONFIG. (Its `log_level` is
/// for the daemon; one-shot commands log warnings unless ASSENT_LOG says otherwise.)
fn load_config(given: &Option<PathBuf>) -> Result<Config, Failure> {
    Config::load(&config_path(given)).map_err(Failure::config)
}

fn collect(args: CollectArgs) -> Result<(), Failure> {
    if args.preview && args.dry_run {
        return Err(Failure::usage("--preview and --dry-run exclude each other"));
    }
    let categories = parse_categories(&args.category)?;
    let root = match &args.root {
        Some(path) if !path.is_dir() => {
            return Err(Failure::usage(format!(
                "--root {}: not a directory",
                path.display()
            )))
        }
        Some(path) => Root::at(path),
        None => Root::live(),
    };
    if args.preview {
        let mut options = ReadOptions::default();
        if args.config.is_some() {
            options = PlatformReaders::new(root.clone(), &load_config(&args.config)?).options;
        }
        if let Some(address) = args.gpsd {
            options.gpsd = GpsdOptions {
                address,
                ..GpsdOptions::default()
            };
        }
        return print_preview(&root, &categories, &options, args.json);
    }
    let config = load_config(&args.config)?;
    if !args.dry_run {
        return collect_and_store(&config, root, &categories, args.gpsd);
    }
    let (source, view) = consent::load(&config);
    if let Some(problem) = source.problem() {
        log::warn!("{problem}");
    }
    let mut readers = PlatformReaders::new(root, &config);
    if let Some(address) = args.gpsd {
        readers.options.gpsd.address = address;
    }
    // The device secret is not collected data: it is created on first use, so the
    // pseudonym shown is the one that would be sent.
    let identity = match Identity::load(&config) {
        Ok(identity) => Some(identity),
        Err(LoadError::FleetKey(e)) => return Err(Failure::config(e)),
        Err(LoadError::State(e)) => {
            log::warn!("device identity: {e}");
            None
        }
    };
    let collection = collect::collect(&view, &categories, &readers, identity.as_ref());
    let mut by_category = Map::new();
    for (category, outcome) in &collection.outcomes {
        let entry = match outcome {
            Outcome::Collected(data) => json!({"collected": true, "data": data.to_json()}),
            Outcome::NotCollected(reason) => json!({"collected": false, "reason": reason}),
        };
        by_category.insert(category.name().to_string(), entry);
    }
    let pseudonym = match &collection.pseudonym {
        Ok((p, derivation)) => json!({"pseudonym": p, "derivation": derivation}),
        Err(reason) => json!({"pseudonym": null, "reason": reason}),
    };
    if args.json {
        let doc = json!({
            "dry_run": true,
            "consent_problem": source.problem(),
            "device": pseudonym,
            "categories": by_category,
        });
        out!("{}", to_pretty(&doc)?);
        return Ok(());
    }
    out!("DRY RUN: what would be collected now under the current consent.");
    out!("Nothing is stored or sent.");
    if let Some(problem) = source.problem() {
        out!("{problem}");
    }
    match &collection.pseudonym {
        Ok((p, d)) => out!(
            "Device pseudonym: {p} ({})",
            json!(d).as_str().unwrap_or("")
        ),
        Err(reason) => out!("Device pseudonym: none ({reason})"),
    }
    for (category, outcome) in &collection.outcomes {
        match outcome {
            Outcome::Collected(data) => {
                let mut map = Map::new();
                map.insert(category.name().to_string(), data.to_json());
                out_raw!("{}", preview::render_groups(&[*category], &map));
            }
            Outcome::NotCollected(reason) => {
                out!("\n[{category}]\n  not collected: {reason}");
            }
        }
    }
    Ok(())
}

/// `assent collect`: collects the active categories once and appends them to the buffer.
fn collect_and_store(
    config: &Config,
    root: Root,
    categories: &[Category],
    gpsd: Option<SocketAddr>,
) -> Result<(), Failure> {
    let store = buffer::open(config).map_err(Failure::cant_create)?;
    let (source, view) = consent::load(config);
    if let Some(problem) = source.problem() {
        log::warn!("{problem}");
    }
    // Withdrawn categories are purged before anything new is stored.
    let applied = buffer::apply_consent(config, &store, &view).map_err(Failure::cant_create)?;
    if applied.changes > 0 {
        log::info!("{} consent changes logged", applied.changes);
    }
    let mut readers = PlatformReaders::new(root, config);
    if let Some(address) = gpsd {
        readers.options.gpsd.address = address;
    }
    let identity = Identity::load(config).map_err(|e| match e {
        LoadError::FleetKey(e) => Failure::config(e),
        LoadError::State(e) => Failure::cant_create(e),
    })?;
    let collection = collect::collect(&view, categories, &readers, Some(&identity));
    let at = buffer::Timestamp::now();
    let mut to_store = collect::inventory::events_of(
        &store,
        &collection,
        at,
        config.buffer.max_bytes,
        &mut |_, _| Ok(true),
    )
    .map_err(Failure::cant_create)?;
    let stored: Vec<&str> = collection.collected().map(|(c, _)| c.name()).collect();
    let seqs = if to_store.events.is_empty() {
        Vec::new()
    } else {
        store
            .append_many(std::mem::take(&mut to_store.events))
            .map_err(|e| Failure::cant_create(buffer::store_error(e)))?
    };
    to_store
        .stored(&store, &seqs)
        .map_err(Failure::cant_create)?;
    match (seqs.first(), seqs.last()) {
        (Some(first), Some(last)) => out!(
            "stored {} events (seq {first}..{last}): {}",
            seqs.len(),
            stored.join(", ")
        ),
        _ => out!("stored nothing"),
    }
    for (category, outcome) in &collection.outcomes {
        if let Outcome::NotCollected(reason) = outcome {
            out!("not collected: {category} ({reason})");
        }
    }
    Ok(())
}

fn print_preview(
    root: &Root,
    categories: &[Category],
    options: &ReadOptions,
    as_json: bool,
) -> Result<(), Failure> {
    let categories: Vec<Category> = categories
        .iter()
        .copied()
        .filter(|c| *c != Category::AppEvents)
        .collect();
    let preview = preview::collect(root, &categories, options);
    if as_json {
        eprintln!("assent: preview: ignores consent; nothing is stored or sent");
        out!("{}", to_pretty(&Value::Object(preview))?);
    } else {
        out_raw!("{}", preview::render_human(root, &categories, &preview));
    }
    Ok(())
}

fn to_pretty(value: &Value) -> Result<String, Failure> {
    serde_json::to_string_pretty(value).map_err(|e| Failure {
        code: Exit::Software,
        message: format!("assent: cannot encode JSON: {e}"),
    })
}

fn check_config(args: CheckConfigArgs) -> Result<(), Failure> {
    let config = load_config(&args.config)?;
    for warning in config.warnings() {
        out!("warning: {warning}");
    }
    let (source, view) = consent::load(&config);
    match &source {
        ConsentSource::Loaded(_) => {}
        ConsentSource::Missing(_) => {
            out!("{}: ok", config.path.display());
            if let Some(problem) = source.problem() {
                out!("{problem}");
            }
            return Ok(());
        }
        ConsentSource::Unreadable(..) | ConsentSource::Invalid(_) => {
            return Err(Failure::config(source.problem().unwrap_or_default()));
        }
    }
    out!("{}: ok", config.path.display());
    out!("{}: ok", config.consent_file.display());
    let active: Vec<&str> = view.active().iter().map(|c| c.name()).collect();
    if active.is_empty() {
        out!("no category is active");
    } else {
        out!("active: {}", active.join(", "));
    }
    Ok(())
}

fn consent(args: ConsentArgs) -> Result<(), Failure> {
    match args.command {
        ConsentCommand::Show(a) => consent_show(a),
        ConsentCommand::Grant(a) => {
            let config = load_config(&a.config)?;
            let mut categories = parse_named_categories(&a.categories)?;
            if a.all_required {
                categories.extend(
                    config
                        .categories
                        .iter()
                        .filter(|(_, p)| p.required)
                        .map(|(c, _)| *c),
                );
            }
            if categories.is_empty() {
                return Err(Failure::usage(
                    "consent grant: name categories or pass --all-required",
                ));
            }
            consent_edit(&config, categories, Decision::Grant, &a.by)
        }
        ConsentCommand::Revoke(a) => {
            let config = load_config(&a.config)?;
            let mut categories = parse_named_categories(&a.categories)?;
            if a.all {
                categories.extend(Category::ALL);
            }
            if categories.is_empty() {
                return Err(Failure::usage(
                    "consent revoke: name categories or pass --all",
                ));
            }
            consent_edit(&config, categories, Decision::Revoke, &a.by)
        }
    }
}

fn consent_edit(
    config: &Config,
    mut categories: Vec<Category>,
    decision: Decision,
    by: &str,
) -> Result<(), Failure> {
    categories.sort();
    categories.dedup();
    let store = buffer::open(config).map_err(Failure::cant_create)?;
    let (view, applied) = buffer::decide_consent(config, &store, categories.clone(), decision, by)
        .map_err(Failure::cant_create)?;
    for (category, count) in &applied.purged {
        out!("deleted {count} unsent events of {category}");
    }
    let verb = match decision {
        Decision::Grant => "granted",
        Decision::Revoke => "revoked",
    };
    let names: Vec<&str> = categories.iter().map(|c| c.name()).collect();
    out!("{verb}: {}", names.join(", "));
    let active: Vec<&str> = view.active().iter().map(|c| c.name()).collect();
    if active.is_empty() {
        out!("active now: none");
        for status in &view.categories {
            if let consent::CategoryState::BlockedByRequired { .. } = status.state {
                out!("{}: {}", status.category, status.state.reason());
                break;
            }
        }
    } else {
        out!("active now: {}", active.join(", "));
    }
    Ok(())
}

fn consent_show(args: ConsentShowArgs) -> Result<(), Failure> {
    let config = load_config(&args.config)?;
    if args.history {
        let entries = consent::log::read_all(&config.state_dir)
            .map_err(|e| Failure::config(format!("{}: {e}", config.state_dir.display())))?;
        for entry in entries {
            let line = serde_json::to_string(&entry).map_err(Failure::config)?;
            out!("{line}");
        }
        return Ok(());
    }
    let (source, view) = consent::load(&config);
    if let Some(problem) = source.problem() {
        log::warn!("{problem}");
    }
    if args.json {
        out!("{}", to_pretty(&json!(view))?);
        return Ok(());
    }
    out!(
        "consent file: {} (policy version {})",
        config.consent_file.display(),
        view.policy_version
    );
    if let Some(problem) = &view.problem {
        out!("{problem}");
    }
    let rows: Vec<[String; 5]> = view
        .categories
        .iter()
        .map(|s| {
            [
                s.category.name().to_string(),
                if s.required { "required" } else { "optional" }.to_string(),
                s.state.reason(),
                s.by.clone().unwrap_or_else(|| "-".into()),
                s.at.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let header = ["CATEGORY", "", "STATE", "BY", "AT"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut out = String::new();
        for (cell, w) in cells.iter().zip(widths) {
            out.push_str(&format!("{cell:<w$}  "));
        }
        out.trim_end().to_string()
    };
    out!("{}", line(header));
    for (row, status) in rows.iter().zip(&view.categories) {
        out!("{}", line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
        out!("    purpose: {}", status.purpose);
    }
    Ok(())
}

fn sync(args: SyncArgs) -> Result<(), Failure> {
    let config = load_config(&args.config)?;
    if !args.once {
        control::request(&config, &Request::Sync).map_err(Failure::unavailable)?;
        out!("the daemon is syncing now; `assent status` shows the result");
        return Ok(());
    }
    let store = buffer::open(&config).map_err(Failure::cant_create)?;
    let mut uploader = sync::Uploader::new(&config, &store).map_err(Failure::config)?;
    uploader.allow_metered = args.allow_metered;
    uploader.set_batch_limits(
        args.batch_events,
        sync::DEFAULT_BATCH_BYTES.max(args.batch_events as u64 * 1024),
    );
    let mut backoff = sync::backoff::Backoff::new(
        std::time::Duration::from_secs(config.sync.backoff_base_seconds),
        std::time::Duration::from_secs(config.sync.backoff_max_seconds),
    );
    let mut once = SyncOnce {
        attempts: args.attempts.max(1),
        ..SyncOnce::default()
    };
    let end = smol::block_on(sync::driver::drive(&mut uploader, &mut backoff, &mut once));
    let SyncOnce {
        batches,
        events,
        bytes,
        erasures,
        acked,
        ..
    } = once;
    let outcome = match end {
        sync::driver::End::Idle | sync::driver::End::Stopped => Ok(()),
        sync::driver::End::Deferred(reason) => Err(format!("not sending: {reason}")),
        sync::driver::End::GaveUp(reason) => Err(reason),
    };
    let stats = store
        .stats()
        .map_err(|e| Failure::cant_create(buffer::store_error(e)))?;
    out!(
        "sent {events} events in {batches} batches ({bytes} bytes on the wire); erasure requests confirmed: {erasures}"
    );
    match acked {
        Some(seq) => out!("acked through seq {seq}"),
        None => out!("acked: nothing new"),
    }
    out!(
        "remaining: {} events, {} gap records",
        stats.count,
        stats.gaps
    );
    outcome.map_err(|reason| Failure {
        code: Exit::TempFail,
        message: format!("assent: sync stopped: {reason}"),
    })
}

/// `sync --once` as a [`sync::driver::Drive`]: totals for the report, a bounded number
/// of attempts, retries waited out here (at most 30 s each).
#[derive(Debug, Default)]
struct SyncOnce {
    attempts: u32,
    failures: u32,
    batches: u64,
    events: u64,
    bytes: u64,
    erasures: u64,
    acked: Option<u64>,
}

impl sync::driver::Drive for SyncOnce {
    fn observed(&mut self, step: &sync::Step) {
        match step {
            sync::Step::Sent {
                events,
                bytes,
                acked_through,
            } => {
                self.batches += 1;
                self.events += events;
                self.bytes += bytes;
                self.acked = Some(*acked_through);
                self.failures = 0;
            }
            sync::Step::Erased { device, events } => {
                log::info!("collector erased {events} events held for {device}");
                self.erasures += 1;
                self.failures = 0;
            }
            sync::Step::DeadLettered { path, reason } => {
                eprintln!("assent: {reason}; kept in {}", path.display());
            }
            sync::Step::Idle | sync::Step::Deferred(_) | sync::Step::Retry { .. } => {}
        }
    }

    async fn retry(&mut self, reason: &str, delay: std::time::Duration) -> sync::driver::Retry {
        self.failures += 1;
        if self.failures >= self.attempts {
            return sync::driver::Retry::Stop;
        }
        let delay = delay.min(std::time::Duration::from_secs(30));
        log::warn!("{reason}; retrying in {:.1} s", delay.as_secs_f64());
        smol::Timer::after(delay).await;
        sync::driver::Retry::Again
    }
}

fn run_daemon(args: RunArgs) -> Result<(), Failure> {
    // The daemon refuses to start on an invalid config, with the same messages as
    // check-config.
    let config = load_config(&args.config)?;
    logger::set_level(config.log_level);
    for warning in config.warnings() {
        log::warn!("{warning}");
    }
    daemon::run(config).map_err(|e| Failure {
        code: Exit::Failure,
        message: format!("assent: {e}"),
    })
}

fn status(args: StatusArgs) -> Result<(), Failure> {
    let config = load_config(&args.config)?;
    let answer = control::request(&config, &Request::Status).map_err(Failure::unavailable)?;
    let status = &answer["status"];
    if args.json {
        out!("{}", to_pretty(status)?);
        return Ok(());
    }
    let text = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let connectivity = match &status["connectivity"] {
        Value::Null => "unknown".to_string(),
        c if c["online"] == true => format!(
            "online via {}{}",
            text(&c["route_interface"]),
            if c["metered"] == true {
                " (metered)"
            } else {
                ""
            }
        ),
        _ => "offline".to_string(),
    };
    let active: Vec<String> = status["active_categories"]
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    out!("running since     {}", text(&status["started_at"]));
    out!(
        "active categories {}",
        if active.is_empty() {
            "none".to_string()
        } else {
            active.join(", ")
        }
    );
    if let Some(problem) = status["consent_problem"].as_str() {
        out!("consent           {problem}");
    }
    out!("connectivity      {connectivity}");
    out!("last sync         {}", text(&status["last_sync"]));
    out!("last result       {}", text(&status["last_sync_result"]));
    out!(
        "next attempt in   {} s",
        text(&status["next_attempt_in_seconds"])
    );
    out!(
        "backoff           {} s",
        text(&status["backoff_ceiling_seconds"])
    );
    out!(
        "queue             {} events, {} gap records, {} bytes on disk",
        text(&status["queued_events"]),
        text(&status["queued_gaps"]),
        text(&status["buffer_file_bytes"])
    );
    Ok(())
}

fn export(args: ExportArgs) -> Result<(), Failure> {
    let config = load_config(&args.config)?;
    let store = buffer::open(&config).map_err(Failure::cant_create)?;
    let doc = owner::export(&config, &store).map_err(Failure::cant_create)?;
    let text = to_pretty(&doc)? + "\n";
    match args.out {
        Some(path) => {
            crate::unix::fsutil::write_atomic(&path, text.as_bytes(), 0o600)
                .map_err(|e| Failure::cant_create(format!("{}: {e}", path.display())))?;
            out!("exported to {}", path.display());
        }
        None => out_raw!("{text}"),
    }
    Ok(())
}

fn erase(config: Option<PathBuf>, remote: bool, forget: bool) -> Result<(), Failure> {
    let config = load_config(&config)?;
    let store = buffer::open(&config).map_err(Failure::cant_create)?;
    let erased = owner::erase(&config, &store, remote).map_err(Failure::cant_create)?;
    out!(
        "deleted {} queued events held on this device",
        erased.events_deleted
    );
    if remote {
        if erased.remote_requested {
            out!("erasure of everything queued for the collector; it is sent before any further data");
            // A running daemon sends it now; without one, `assent sync --once` does.
            let _ = control::request(&config, &Request::Sync);
        } else {
            out!("nothing was ever sent, so the collector holds nothing to erase");
        }
    }
    if forget {
        IdentityState::rotate(&config.state_dir).map_err(Failure::cant_create)?;
        out!("device identity rotated: the new pseudonym cannot be linked to the old one");
    }
    Ok(())
}

fn control_request(args: ControlArgs) -> Result<(), Failure> {
    let config = load_config(&args.config)?;
    let request = Request::from_json(&args.request)
        .map_err(|e| Failure::usage(format!("control: bad request: {e}")))?;
    let answer = control::request(&config, &request).map_err(Failure::unavailable)?;
    let line = serde_json::to_string(&answer).map_err(Failure::config)?;
    out!("{line}");
    Ok(())
}

fn emit(args: EmitArgs) -> Result<(), Failure> {
    let config = load_config(&args.config)?;
    let seq =
        crate::events::emit::run(&config.events.socket, &args.name, &args.attrs).map_err(|e| {
            Failure {
                code: Exit::Failure,
                message: format!("assent: emit: {e}"),
            }
        })?;
    out!("ok {seq}");
    Ok(())
}

fn reset_id(args: ResetIdArgs) -> Result<(), Failure> {
    let config = load_config(&args.config)?;
    crate::unix::fsutil::ensure_private_dir(&config.state_dir)
        .map_err(|e| Failure::cant_create(format!("{}: {e}", config.state_dir.display())))?;
    IdentityState::rotate(&config.state_dir).map_err(Failure::cant_create)?;
    out!("device identity rotated: the new pseudonym cannot be linked to the old one");
    Ok(())
}

/// The categories named on the command line, in display order; all readable ones when
/// none is named.
fn parse_categories(names: &[String]) -> Result<Vec<Category>, Failure> {
    if names.is_empty() {
        return Ok(Category::READABLE.to_vec());
    }
    let mut chosen = parse_named_categories(names)?;
    if chosen.contains(&Category::AppEvents) {
        return Err(Failure::usage(
            "--category app_events: these events come from local programs; there is nothing to collect",
        ));
    }
    chosen.sort();
    chosen.dedup();
    Ok(chosen)
}

fn parse_named_categories(names: &[String]) -> Result<Vec<Category>, Failure> {
    names
        .iter()
        .map(|n| n.parse::<Category>().map_err(Failure::usage))
        .collect()
}
