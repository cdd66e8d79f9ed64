//! The operator config: `/etc/assent/assent.toml` by default, documented key by key in
//! `docs/config.md`, with a commented example in `configs/assent.toml`.
//!
//! Parsing turns the file into a [`Config`] in which every value is already checked and
//! typed, or into [`Diagnostics`] listing every problem in the file at once
//! (`file:line:column: message`). Every key has a default except `[collector] url`; a
//! missing `[collector]` section is valid and means nothing is sent. Relative paths are
//! resolved against the directory of the config file, never the working directory.
//!
//! This module only reads the config; it knows nothing of the consent file, which is
//! checked on its own.

use assent_confcheck::{nearest, Diagnostics, Document, StringOrTable, Table};
use assent_platform::Category;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where the agent looks for its config when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/assent/assent.toml";

/// The longest collection or sync interval accepted: a year. Anything longer is far more
/// likely a unit mistake (milliseconds written as seconds) than an intent.
const MAX_INTERVAL_SECONDS: u64 = 365 * 24 * 3600;

/// The smallest buffer accepted: the store's own minimum, so that a config `check-config`
/// passes never fails when the buffer opens.
const MIN_BUFFER_BYTES: u64 = assent_store::MIN_MAX_BYTES;

/// The longest retention accepted, ten years: the seeds ask for data to be kept only as
/// long as needed.
const MAX_RETENTION_DAYS: u64 = 3650;

/// The longest retry delay accepted, a day.
const MAX_BACKOFF_SECONDS: u64 = 86_400;

/// The longest wait for a gpsd fix accepted.
const MAX_FIX_TIMEOUT_SECONDS: u64 = 60;

/// Linux interface names are at most 15 bytes (IFNAMSIZ less the NUL).
const MAX_INTERFACE_NAME_BYTES: usize = 15;

/// A Unix socket path must fit `sun_path` (108 bytes) with its NUL.
const MAX_SOCKET_PATH_BYTES: usize = 107;

/// The largest local event message accepted: one line is buffered per connection, so
/// this bounds the agent's memory per client.
const MAX_EVENT_MESSAGE_BYTES: u64 = 65_536;

/// The smallest message limit accepted: below it even a name and one attribute may not fit.
const MIN_EVENT_MESSAGE_BYTES: u64 = 256;

/// Upper bounds that catch unit mistakes rather than express intent.
const MAX_EVENT_ATTRIBUTES: u64 = 256;
const MAX_EVENT_RATE_PER_SECOND: u64 = 100_000;
const MAX_EVENT_BURST: u64 = 1_000_000;
const MAX_EVENT_CONNECTIONS: u64 = 4096;

/// The highest valid uid: `(uid_t)-1` means "no change" to the kernel, never a user.
const MAX_UID: u64 = u32::MAX as u64 - 1;

/// Group names as `groupadd` accepts them by default, at most 32 bytes.
const MAX_GROUP_NAME_BYTES: usize = 32;

/// The whole operator config, checked and with every default filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The file this config was read from, as given (for messages).
    pub path: PathBuf,
    /// Where the agent keeps its buffer, device secret and consent log.
    pub state_dir: PathBuf,
    /// The owner's consent decisions.
    pub consent_file: PathBuf,
    /// The version of the privacy policy grants must be given under.
    pub policy_version: u32,
    /// The most verbose level logged.
    #[serde(with = "level_name")]
    pub log_level: log::LevelFilter,
    /// `[identity]`.
    pub identity: IdentityConfig,
    /// Always holds all eight categories.
    pub categories: BTreeMap<Category, CategoryPolicy>,
    /// `None` when the file has no `[collector]` section: collect and buffer, never send.
    pub collector: Option<CollectorConfig>,
    /// `[buffer]`.
    pub buffer: BufferConfig,
    /// `[sync]`.
    pub sync: SyncConfig,
    /// `[location]`.
    pub location: LocationConfig,
    /// `[network_detail]`: which location-revealing sources that category may read.
    pub network_detail: NetworkDetailConfig,
    /// `[events]`: the socket local programs report events on.
    pub events: EventsConfig,
    /// `[control]`: the socket the command-line client talks to the daemon on.
    pub control: ControlConfig,
}

/// `[identity]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct IdentityConfig {
    /// A key shared by a fleet, so pseudonyms survive a reinstall; `None` uses the
    /// device's own secret.
    pub fleet_key_file: Option<PathBuf>,
}

/// `[categories.<name>]`: what the operator says about one category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryPolicy {
    /// Whether the service needs it: refusing a required category turns everything off.
    pub required: bool,
    /// Shown to the owner when asking for consent.
    pub purpose: String,
    /// How often the category is read; `None` for `app_events`, which programs push.
    pub interval_seconds: Option<u64>,
}

impl CategoryPolicy {
    /// The policy a category has when the config says nothing about it.
    pub fn default_for(category: Category) -> Self {
        let (purpose, interval_seconds) = match category {
            Category::DeviceId => (
                "tell your device's reports apart from other devices' with a de-identified \
                 ID; hardware identifiers never leave the device",
                Some(86_400),
            ),
            Category::Hardware => ("keep the service compatible with your device", Some(86_400)),
            Category::Os => (
                "keep the service compatible with your device's operating system",
                Some(86_400),
            ),
            Category::Network => ("diagnose connectivity problems", Some(3_600)),
            Category::NetworkDetail => (
                "diagnose Wi-Fi and cellular reception problems; the Wi-Fi networks and the \
                 mobile cell around your device show roughly where it is",
                Some(900),
            ),
            Category::Location => (
                "show where your device is, for example to find it or plan a service visit",
                Some(300),
            ),
            Category::Software => (
                "know which software versions are installed, to plan updates",
                Some(86_400),
            ),
            Category::AppEvents => (
                "keep a record of events that programs on your device report",
                None,
            ),
        };
        CategoryPolicy {
            required: category.required_by_default(),
            purpose: purpose.to_string(),
            interval_seconds,
        }
    }
}

/// `[collector]`: where batches are sent and how the device proves who it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectorConfig {
    /// The URL as written in the file.
    pub url: String,
    /// Host name or IP address from the URL, lower-case; IPv6 without brackets.
    pub host: String,
    /// Port from the URL, 443 when not written.
    pub port: u16,
    /// Path from the URL, `/` when not written.
    pub path: String,
    /// CA certificates (PEM) that the collector's certificate must chain to; `None` uses
    /// the system's trust store.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; always set together with the key.
    pub client_cert_file: Option<PathBuf>,
    /// Private key (PEM) of the client certificate.
    pub client_key_file: Option<PathBuf>,
    /// A bearer token, read from this file when sending.
    pub token_file: Option<PathBuf>,
}

/// `[buffer]`: the on-device store of data not yet sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferConfig {
    /// Size cap of the buffer; the oldest data goes first when it is full.
    pub max_bytes: u64,
    /// Data older than this is deleted even if never sent.
    pub retention_days: u64,
    /// How hard the buffer works to survive a power cut.
    pub durability: Durability,
}

/// How hard the buffer works to survive a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Every accepted record survives a power cut (SQLite `synchronous=FULL`).
    Full,
    /// The last records may be lost on a power cut, never on a crash; faster on slow
    /// flash (SQLite `synchronous=NORMAL`).
    Normal,
}

/// `[sync]`: when and how the buffer is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncConfig {
    /// Time between two sends.
    pub interval_seconds: u64,
    /// First retry delay after a failure; it doubles up to `backoff_max_seconds`.
    pub backoff_base_seconds: u64,
    /// Longest wait between retries; never below `backoff_base_seconds`.
    pub backoff_max_seconds: u64,
    /// What to do on a metered link.
    pub metered: MeteredPolicy,
    /// Interfaces to treat as metered besides those detected (cellular modems).
    pub metered_interfaces: Vec<String>,
}

/// What to do when the only way out is a metered link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeteredPolicy {
    /// Send as on any other link.
    Allow,
    /// Wait for an unmetered link.
    Defer,
    /// Send at most this many bytes a day over metered links, then wait.
    MaxBytesPerDay(u64),
}

/// `[location]`: how positions are read from gpsd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationConfig {
    /// Where gpsd listens.
    pub gpsd_address: SocketAddr,
    /// How long one reading waits for a position before giving up.
    pub fix_timeout_seconds: u64,
}

/// `[network_detail]`: the operator's switches for the sources that locate a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDetailConfig {
    /// The access points of the last Wi-Fi scan.
    pub wifi_list: bool,
    /// Each modem's serving cell.
    pub cell_ids: bool,
}

/// `[events]`: the Unix socket local programs send their events to, and its limits.
///
/// A peer is served when it is root, runs as the agent's own uid, has a uid in
/// `allowed_uids`, or belongs (primary or supplementary group) to a group in
/// `allowed_groups` or to `socket_group`. Everyone else who can open the socket is
/// answered with an error and disconnected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsConfig {
    /// Where the socket is created.
    pub socket: PathBuf,
    /// Permission bits of the socket file (connecting needs write permission).
    pub socket_mode: u32,
    /// Group the socket file is given, so its members can connect; `None` keeps the
    /// agent's group.
    pub socket_group: Option<String>,
    /// Users (by uid) allowed to send events, besides root and the agent's own uid.
    pub allowed_uids: Vec<u32>,
    /// Groups (by name) whose members may send events.
    pub allowed_groups: Vec<String>,
    /// The longest message line accepted, newline excluded.
    pub max_message_bytes: u64,
    /// The most attributes one event may carry.
    pub max_attributes: u64,
    /// Messages per second one connection may send on average.
    pub rate_per_second: u64,
    /// Messages one connection may send at once before the rate applies.
    pub burst: u64,
    /// Connections served at once; more are refused.
    pub max_connections: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            socket: PathBuf::from("/run/assent/events.sock"),
            socket_mode: 0o660,
            socket_group: None,
            allowed_uids: Vec::new(),
            allowed_groups: Vec::new(),
            max_message_bytes: 4096,
            max_attributes: 32,
            rate_per_second: 100,
            burst: 200,
            max_connections: 64,
        }
    }
}

/// `[control]`: the Unix socket of the daemon's command interface (status, sync, erase,
/// reset-id). Only root and members of `admin_group` are served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlConfig {
    /// Where the socket is created.
    pub socket: PathBuf,
    /// A group whose members may use the control socket besides root; the socket file is
    /// given this group (mode 0660), or kept root-only (0600) when unset.
    pub admin_group: Option<String>,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: PathBuf::from("/run/assent/control.sock"),
            admin_group: None,
        }
    }
}

impl Config {
    /// Reads and checks the config at `path`. A file that cannot be read is one
    /// diagnostic naming the file.
    pub fn load(path: &Path) -> Result<Config, Diagnostics> {
        let text = assent_confcheck::read_text(path, assent_confcheck::DEFAULT_MAX_BYTES)?;
        Config::parse(path, &text)
    }

    /// Checks `text`; `path_for_messages` names it in diagnostics and anchors relative
    /// paths. Returns every problem at once.
    pub fn parse(path_for_messages: &Path, text: &str) -> Result<Config, Diagnostics> {
        Config::parse_with(path_for_messages, text, Checks::Syntax)
    }

    /// `check-config`: [`Config::load`], and also every file the agent will open
    /// (`ca_file`, the client certificate and key, `token_file`, `fleet_key_file`) must
    /// exist and be readable now, and every group named (`socket_group`,
    /// `admin_group`) must exist; each problem at its key's file:line:column. Not done
    /// by `load`, so a missing certificate does not stop `consent show` or `collect`.
    pub fn check(path: &Path) -> Result<Config, Diagnostics> {
        let text = assent_confcheck::read_text(path, assent_confcheck::DEFAULT_MAX_BYTES)?;
        Config::parse_with(path, &text, Checks::System)
    }

    fn parse_with(
        path_for_messages: &Path,
        text: &str,
        checks: Checks,
    ) -> Result<Config, Diagnostics> {
        let doc = Document::parse(path_for_messages, text)?;
        let config = {
            let mut root = doc.root();
            read_config(path_for_messages, &mut root, checks)
        };
        doc.finish()?;
        Ok(config)
    }

    /// Valid but noteworthy facts about this config, for `check-config` and the log.
    pub fn warnings(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.collector.is_none() {
            notes.push(
                "no [collector] section: data is collected and buffered but never sent".to_string(),
            );
        }
        if !self.location.gpsd_address.ip().is_loopback() {
            notes.push(format!(
                "location.gpsd_address {} is not a loopback address: positions cross the \
                 network unencrypted",
                self.location.gpsd_address
            ));
        }
        // A software inventory of a few hundred packages is tens of KiB; an event over
        // the buffer's per-event limit is refused (and logged) at every collection.
        if let Some(limit) = assent_store::max_event_bytes(self.buffer.max_bytes) {
            if limit < SOFTWARE_EVENT_BYTES {
                notes.push(format!(
                    "buffer.max_bytes = {} lets one event be at most {limit} bytes: a software \
                     inventory can be larger and would then never be stored (5 MiB or more \
                     allows {SOFTWARE_EVENT_BYTES})",
                    self.buffer.max_bytes
                ));
            }
        }
        notes
    }
}

/// The event size a large software inventory may reach (about 1,500 packages).
const SOFTWARE_EVENT_BYTES: u64 = 64 * 1024;

/// Walks the root table. Every getter records its own errors; on error the default is
/// kept so the walk can go on and find the next one.
/// How far a config is checked: its text alone, or also the files and groups it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checks {
    Syntax,
    System,
}

/// `check-config` only: a file the agent will open must be readable now.
fn check_readable(checks: Checks, t: &Table<'_>, key: &str, path: Option<&Path>) {
    let Some(path) = path.filter(|_| checks == Checks::System) else {
        return;
    };
    match std::fs::File::open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            t.error(key, &format!("{}: no such file", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => t.error(
            key,
            &format!(
                "{}: not readable by this user (permission denied)",
                path.display()
            ),
        ),
        Err(e) => t.error(key, &format!("{}: cannot read: {e}", path.display())),
    }
}

/// `check-config` only: a group named must exist.
fn check_group(checks: Checks, t: &Table<'_>, key: &str, name: Option<&str>) {
    let Some(name) = name.filter(|_| checks == Checks::System) else {
        return;
    };
    match nix::unistd::Group::from_name(name) {
        Ok(Some(_)) => {}
        Ok(None) => t.error(key, &format!("no group `{name}` on this system")),
        Err(e) => t.error(key, &format!("cannot look up group `{name}`: {e}")),
    }
}

fn read_config(path: &Path, root: &mut Table<'_>, checks: Checks) -> Config {
    let state_dir = root
        .path("state_dir")
        .unwrap_or_else(|| PathBuf::from("/var/lib/assent"));
    // The consent file follows a moved state dir unless it is set on its own.
    let consent_file = root
        .path("consent_file")
        .unwrap_or_else(|| state_dir.join("consent.toml"));
    let policy_version = root
        .u64("policy_version", 1..=u64::from(u32::MAX))
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(1);
    let log_level = root
        .choice("log_level", &["error", "warn", "info", "debug", "trace"])
        .map_or(log::LevelFilter::Info, level_name::from_name);

    let identity = IdentityConfig {
        fleet_key_file: root.table("identity").and_then(|mut t| {
            let file = t.path("fleet_key_file");
            check_readable(checks, &t, "fleet_key_file", file.as_deref());
            file
        }),
    };

    let categories = read_categories(root);
    let collector = root
        .table("collector")
        .and_then(|mut t| read_collector(&mut t, checks));
    let buffer = read_buffer(root.table("buffer"));
    let sync = read_sync(root.table("sync"));
    let location = read_location(root.table("location"));
    let network_detail = read_network_detail(root.table("network_detail"));
    let events = read_events(root.table("events"), checks);
    let control = read_control(root.table("control"), &events.socket, checks);

    Config {
        path: path.to_path_buf(),
        state_dir,
        consent_file,
        policy_version,
        log_level,
        identity,
        categories,
        collector,
        buffer,
        sync,
        location,
        network_detail,
        events,
        control,
    }
}

fn read_categories(root: &mut Table<'_>) -> BTreeMap<Category, CategoryPolicy> {
    let mut tables = root.table("categories").map(|t| t.with_noun("category"));
    let mut categories = BTreeMap::new();
    for category in Category::ALL {
        let mut policy = CategoryPolicy::default_for(category);
        if let Some(mut t) = tables.as_mut().and_then(|c| c.table(category.name())) {
            if let Some(required) = t.bool("required") {
                policy.required = required;
            }
            if let Some(purpose) = t.string_with("purpose", non_empty) {
                policy.purpose = purpose;
            }
            // `app_events` are pushed by programs, not read on a timer: asking for the
            // key only for the others makes it an unknown key there.
            if category != Category::AppEvents {
                if let Some(i) = t.u64("interval_seconds", 1..=MAX_INTERVAL_SECONDS) {
                    policy.interval_seconds = Some(i);
                }
            }
        }
        categories.insert(category, policy);
    }
    categories
}

fn read_collector(t: &mut Table<'_>, checks: Checks) -> Option<CollectorConfig> {
    let url = t.string_with("url", |s| parse_https_url(s).map(|u| (s.to_string(), u)));
    let ca_file = t.path("ca_file");
    let client_cert_file = t.path("client_cert_file");
    let client_key_file = t.path("client_key_file");
    let token_file = t.path("token_file");
    for (key, file) in [
        ("ca_file", &ca_file),
        ("client_cert_file", &client_cert_file),
        ("client_key_file", &client_key_file),
        ("token_file", &token_file),
    ] {
        check_readable(checks, t, key, file.as_deref());
    }
    match (&client_cert_file, &client_key_file) {
        (Some(_), None) if !t.contains("client_key_file") => t.error(
            "client_cert_file",
            "needs `client_key_file` too (mutual TLS uses both)",
        ),
        (None, Some(_)) if !t.contains("client_cert_file") => t.error(
            "client_key_file",
            "needs `client_cert_file` too (mutual TLS uses both)",
        ),
        _ => {}
    }
    if !t.contains("url") {
        t.missing("url");
    }
    let (url, parsed) = url?;
    Some(CollectorConfig {
        url,
        host: parsed.host,
        port: parsed.port,
        path: parsed.path,
        ca_file,
        client_cert_file,
        client_key_file,
        token_file,
    })
}

fn read_buffer(table: Option<Table<'_>>) -> BufferConfig {
    let mut buffer = BufferConfig {
        max_bytes: 16 * 1024 * 1024,
        retention_days: 30,
        durability: Durability::Full,
    };
    let Some(mut t) = table else { return buffer };
    if let Some(v) = t.u64("max_bytes", MIN_BUFFER_BYTES..=u64::MAX) {
        buffer.max_bytes = v;
    }
    if let Some(v) = t.u64("retention_days", 1..=MAX_RETENTION_DAYS) {
        buffer.retention_days = v;
    }
    match t.choice("durability", &["full", "normal"]) {
        Some("normal") => buffer.durability = Durability::Normal,
        Some(_) => buffer.durability = Durability::Full,
        None => {}
    }
    buffer
}

fn read_sync(table: Option<Table<'_>>) -> SyncConfig {
    let mut sync = SyncConfig {
        interval_seconds: 300,
        backoff_base_seconds: 2,
        backoff_max_seconds: 300,
        metered: MeteredPolicy::Defer,
        metered_interfaces: Vec::new(),
    };
    let Some(mut t) = table else { return sync };
    if let Some(v) = t.u64("interval_seconds", 1..=MAX_INTERVAL_SECONDS) {
        sync.interval_seconds = v;
    }
    let base = t.u64("backoff_base_seconds", 1..=MAX_BACKOFF_SECONDS);
    let max = t.u64("backoff_max_seconds", 1..=MAX_BACKOFF_SECONDS);
    if let Some(v) = base {
        sync.backoff_base_seconds = v;
    }
    if let Some(v) = max {
        sync.backoff_max_seconds = v;
    }
    // Checked only when both values are valid (read or default), so one bad value does
    // not also produce this second, misleading error.
    let base_ok = base.is_some() || !t.contains("backoff_base_seconds");
    let max_ok = max.is_some() || !t.contains("backoff_max_seconds");
    if base_ok && max_ok && sync.backoff_base_seconds > sync.backoff_max_seconds {
        let message = format!(
            "must not exceed `backoff_max_seconds` ({}), found {}",
            sync.backoff_max_seconds, sync.backoff_base_seconds
        );
        if t.contains("backoff_base_seconds") {
            t.error("backoff_base_seconds", &message);
        } else {
            t.error(
                "backoff_max_seconds",
                &format!(
                    "must be at least `backoff_base_seconds` ({}), found {}",
                    sync.backoff_base_seconds, sync.backoff_max_seconds
                ),
            );
        }
    }
    if let Some(policy) = read_metered(&mut t) {
        sync.metered = policy;
    }
    if let Some(v) = t.string_array_with("metered_interfaces", interface_name) {
        sync.metered_interfaces = v;
    }
    sync
}

fn read_metered(t: &mut Table<'_>) -> Option<MeteredPolicy> {
    const FORMS: &str = "`allow`, `defer` or `{ max_bytes_per_day = N }`";
    match t.string_or_table("metered", FORMS)? {
        StringOrTable::String(s) => match s.as_str() {
            "allow" => Some(MeteredPolicy::Allow),
            "defer" => Some(MeteredPolicy::Defer),
            other => {
                let mut message = format!("expected {FORMS}, found `{other}`");
                if let Some(near) = nearest(other, ["allow", "defer"]) {
                    message.push_str(&format!("; did you mean `{near}`?"));
                }
                t.error("metered", &message);
                None
            }
        },
        StringOrTable::Table(mut m) => {
            if !m.contains("max_bytes_per_day") {
                m.missing("max_bytes_per_day");
            }
            m.u64("max_bytes_per_day", 1..=u64::MAX)
                .map(MeteredPolicy::MaxBytesPerDay)
        }
    }
}

fn read_location(table: Option<Table<'_>>) -> LocationConfig {
    let mut location = LocationConfig {
        gpsd_address: SocketAddr::from(([127, 0, 0, 1], 2947)),
        fix_timeout_seconds: 2,
    };
    let Some(mut t) = table else { return location };
    if let Some(v) = t.string_with("gpsd_address", |s| {
        s.parse::<SocketAddr>().map_err(|_| {
            format!("expected an IP address and port such as `127.0.0.1:2947`, found `{s}`")
        })
    }) {
        location.gpsd_address = v;
    }
    if let Some(v) = t.u64("fix_timeout_seconds", 1..=MAX_FIX_TIMEOUT_SECONDS) {
        location.fix_timeout_seconds = v;
    }
    location
}

fn read_network_detail(table: Option<Table<'_>>) -> NetworkDetailConfig {
    let mut config = NetworkDetailConfig {
        wifi_list: true,
        cell_ids: true,
    };
    if let Some(mut t) = table {
        config.wifi_list = t.bool("wifi_list").unwrap_or(config.wifi_list);
        config.cell_ids = t.bool("cell_ids").unwrap_or(config.cell_ids);
    }
    config
}

fn read_events(table: Option<Table<'_>>, checks: Checks) -> EventsConfig {
    let mut events = EventsConfig::default();
    let Some(mut t) = table else { return events };
    if let Some(v) = t.path("socket") {
        if let Err(message) = socket_path(&v) {
            t.error("socket", &message.to_string());
        } else {
            events.socket = v;
        }
    }
    if let Some(v) = t.string_with("socket_mode", octal_mode) {
        events.socket_mode = v;
    }
    events.socket_group = t.string_with("socket_group", group_name);
    check_group(checks, &t, "socket_group", events.socket_group.as_deref());
    if let Some(v) = t.u64_array("allowed_uids", 0..=MAX_UID) {
        events.allowed_uids = v
            .into_iter()
            .filter_map(|u| u32::try_from(u).ok())
            .collect();
    }
    if let Some(v) = t.string_array_with("allowed_groups", group_name) {
        events.allowed_groups = v;
    }
    if let Some(v) = t.u64(
        "max_message_bytes",
        MIN_EVENT_MESSAGE_BYTES..=MAX_EVENT_MESSAGE_BYTES,
    ) {
        events.max_message_bytes = v;
    }
    if let Some(v) = t.u64("max_attributes", 0..=MAX_EVENT_ATTRIBUTES) {
        events.max_attributes = v;
    }
    if let Some(v) = t.u64("rate_per_second", 1..=MAX_EVENT_RATE_PER_SECOND) {
        events.rate_per_second = v;
    }
    if let Some(v) = t.u64("burst", 1..=MAX_EVENT_BURST) {
        events.burst = v;
    }
    if let Some(v) = t.u64("max_connections", 1..=MAX_EVENT_CONNECTIONS) {
        events.max_connections = v;
    }
    events
}

fn read_control(table: Option<Table<'_>>, events_socket: &Path, checks: Checks) -> ControlConfig {
    let mut control = ControlConfig::default();
    let mut t = table;
    if let Some(t) = t.as_mut() {
        if let Some(v) = t.path("socket") {
            if let Err(message) = socket_path(&v) {
                t.error("socket", &message.to_string());
            } else {
                control.socket = v;
            }
        }
        control.admin_group = t.string_with("admin_group", group_name);
        check_group(checks, t, "admin_group", control.admin_group.as_deref());
    }
    // Two listeners cannot share a path; the second bind would remove the first's socket.
    if control.socket == events_socket {
        let message = format!(
            "must differ from `events.socket` ({})",
            control.socket.display()
        );
        match t.as_ref() {
            Some(t) if t.contains("socket") => t.error("socket", &message),
            _ => {}
        }
    }
    control
}

/// Why a config value was refused; its `Display` is the diagnostic confcheck places at
/// the key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ValueError {
    Empty,
    SocketPathTooLong(usize),
    NotAMode(String),
    GroupNameTooLong(String),
    NotAGroupName(String),
    InterfaceNameTooLong(String),
    NotAnInterfaceName(String),
    NotHttps(String),
    NotAUrl(String),
    SpacesInUrl,
    QueryInUrl,
    CredentialsInUrl,
    UnclosedBracket(String),
    NotIpv6(String),
    NoPortAfterBracket(String),
    EmptyHost,
    NotAHostName(String),
    NotAPort(String),
}

impl std::fmt::Display for ValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const FORM: &str = "`https://host[:port][/path]`";
        match self {
            ValueError::Empty => f.write_str("must not be empty"),
            ValueError::SocketPathTooLong(len) => write!(
                f,
                "is {len} bytes long once resolved; Unix socket paths are limited to \
                 {MAX_SOCKET_PATH_BYTES} bytes"
            ),
            ValueError::NotAMode(s) => write!(
                f,
                "expected permission bits in octal such as `0660` (at most `0777`), found `{s}`"
            ),
            ValueError::GroupNameTooLong(s) => write!(
                f,
                "`{s}` is longer than {MAX_GROUP_NAME_BYTES} bytes, the limit for group names"
            ),
            ValueError::NotAGroupName(s) => write!(f, "`{s}` is not a valid group name"),
            ValueError::InterfaceNameTooLong(s) => write!(
                f,
                "`{s}` is longer than {MAX_INTERFACE_NAME_BYTES} bytes, the limit for Linux interface names"
            ),
            ValueError::NotAnInterfaceName(s) => write!(f, "`{s}` is not a valid interface name"),
            ValueError::NotHttps(s) => write!(
                f,
                "must use https (data is only sent encrypted), found `{s}`"
            ),
            ValueError::NotAUrl(s) => write!(f, "expected a URL of the form {FORM}, found `{s}`"),
            ValueError::SpacesInUrl => f.write_str("must not contain spaces or control characters"),
            ValueError::QueryInUrl => f.write_str("must not have a query (`?`) or fragment (`#`)"),
            ValueError::CredentialsInUrl => f.write_str(
                "must not contain a user name or password; use `token_file` or a client \
                 certificate",
            ),
            ValueError::UnclosedBracket(s) => {
                write!(f, "has an unclosed `[` in the host, found `{s}`")
            }
            ValueError::NotIpv6(ip) => write!(f, "`{ip}` is not an IPv6 address"),
            ValueError::NoPortAfterBracket(p) => {
                write!(f, "expected `:port` after `]`, found `{p}`")
            }
            ValueError::EmptyHost => write!(f, "has an empty host, expected {FORM}"),
            ValueError::NotAHostName(host) => write!(f, "`{host}` is not a valid host name"),
            ValueError::NotAPort(p) => write!(f, "`{p}` is not a valid port (1 to 65535)"),
        }
    }
}

/// A socket path after resolution: it must fit `sun_path`.
fn socket_path(path: &Path) -> Result<(), ValueError> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH_BYTES {
        Err(ValueError::SocketPathTooLong(len))
    } else {
        Ok(())
    }
}

/// File permission bits written in octal, as `chmod` takes them: `"0660"`, `"660"`.
/// Only the permission bits (at most `0777`) are accepted: set-id and sticky bits mean
/// nothing on a socket.
fn octal_mode(s: &str) -> Result<u32, ValueError> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if !digits.is_empty() && digits.len() <= 4 && mode <= 0o777 => Ok(mode),
        _ => Err(ValueError::NotAMode(s.to_string())),
    }
}

/// A group name as `groupadd` accepts it: letters, digits, `_`, `.`, `-`, not starting
/// with `-`, at most 32 bytes.
fn group_name(s: &str) -> Result<String, ValueError> {
    if s.is_empty() {
        Err(ValueError::Empty)
    } else if s.len() > MAX_GROUP_NAME_BYTES {
        Err(ValueError::GroupNameTooLong(s.to_string()))
    } else if s.starts_with('-')
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        Err(ValueError::NotAGroupName(s.to_string()))
    } else {
        Ok(s.to_string())
    }
}

fn non_empty(s: &str) -> Result<String, ValueError> {
    if s.trim().is_empty() {
        Err(ValueError::Empty)
    } else {
        Ok(s.to_string())
    }
}

fn interface_name(s: &str) -> Result<String, ValueError> {
    if s.is_empty() {
        Err(ValueError::Empty)
    } else if s.len() > MAX_INTERFACE_NAME_BYTES {
        Err(ValueError::InterfaceNameTooLong(s.to_string()))
    } else if s
        .chars()
        .any(|c| c == '/' || c == '\0' || c.is_whitespace())
    {
        Err(ValueError::NotAnInterfaceName(s.to_string()))
    } else {
        Ok(s.to_string())
    }
}

/// The parts of a checked collector URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HttpsUrl {
    host: String,
    port: u16,
    path: String,
}

/// Checks `https://host[:port][/path]` by hand: the only form the collector needs, and
/// too small a grammar to justify a URL crate on the device. Refuses other schemes, user
/// information (credentials belong in `token_file`), queries and fragments.
fn parse_https_url(s: &str) -> Result<HttpsUrl, ValueError> {
    let rest = match s.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => rest,
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("http") => {
            return Err(ValueError::NotHttps(s.to_string()))
        }
        _ => return Err(ValueError::NotAUrl(s.to_string())),
    };
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ValueError::SpacesInUrl);
    }
    if rest.contains(['?', '#']) {
        return Err(ValueError::QueryInUrl);
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err(ValueError::CredentialsInUrl);
    }
    let bracketed = authority.starts_with('[');
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (ip, after) = inner
            .split_once(']')
            .ok_or_else(|| ValueError::UnclosedBracket(s.to_string()))?;
        ip.parse::<std::net::Ipv6Addr>()
            .map_err(|_| ValueError::NotIpv6(ip.to_string()))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| ValueError::NoPortAfterBracket(p.to_string()))?,
            ),
        };
        (ip.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
            None => (authority.to_ascii_lowercase(), None),
        }
    };
    if host.is_empty() {
        return Err(ValueError::EmptyHost);
    }
    if !bracketed && !valid_host_name(&host) {
        return Err(ValueError::NotAHostName(host));
    }
    let port = match port {
        None => 443,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(ValueError::NotAPort(p.to_string())),
            Ok(n) => n,
        },
    };
    Ok(HttpsUrl {
        host,
        port,
        path: path.to_string(),
    })
}

/// A DNS name or IPv4 address: dot-separated labels of 1 to 63 letters, digits and
/// hyphens, not starting or ending with a hyphen.
fn valid_host_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Log levels by their config names, lower-case, also in serialized form (log's own
/// serde form is upper-case).
mod level_name {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn from_name(name: &str) -> log::LevelFilter {
        match name {
            "off" => log::LevelFilter::Off,
            "error" => log::LevelFilter::Error,
            "warn" => log::LevelFilter::Warn,
            "debug" => log::LevelFilter::Debug,
            "trace" => log::LevelFilter::Trace,
            _ => log::LevelFilter::Info,
        }
    }

    pub fn serialize<S: Serializer>(level: &log::LevelFilter, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&level.as_str().to_ascii_lowercase())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<log::LevelFilter, D::Error> {
        let name = String::deserialize(d)?;
        name.parse()
            .map_err(|_| serde::de::Error::custom(format!("unknown log level `{name}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/etc/assent/assent.toml";
    const EXAMPLE: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../configs/assent.toml"
    ));
    const DOCS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/config.md"));

    /// Every key the parser accepts, as dotted paths (`<category>` stands for each one).
    const KNOWN_KEYS: &[&str] = &[
        "state_dir",
        "consent_file",
        "policy_version",
        "log_level",
        "identity.fleet_key_file",
        "categories.<category>.required",
        "categories.<category>.purpose",
        "categories.<category>.interval_seconds",
        "collector.url",
        "collector.ca_file",
        "collector.client_cert_file",
        "collector.client_key_file",
        "collector.token_file",
        "buffer.max_bytes",
        "buffer.retention_days",
        "buffer.durability",
        "sync.interval_seconds",
        "sync.backoff_base_seconds",
        "sync.backoff_max_seconds",
        "sync.metered",
        "sync.metered_interfaces",
        "location.gpsd_address",
        "location.fix_timeout_seconds",
        "network_detail.wifi_list",
        "network_detail.cell_ids",
        "events.socket",
        "events.socket_mode",
        "events.socket_group",
        "events.allowed_uids",
        "events.allowed_groups",
        "events.max_message_bytes",
        "events.max_attributes",
        "events.rate_per_second",
        "events.burst",
        "events.max_connections",
        "control.socket",
        "control.admin_group",
    ];

    /// Errors of `text` as `line:column: message`, empty if it parses.
    fn errors(text: &str) -> Vec<String> {
        match Config::parse(Path::new(PATH), text) {
            Ok(_) => Vec::new(),
            Err(d) => d
                .iter()
                .map(|d| {
                    assert_eq!(d.file, Path::new(PATH));
                    format!("{}:{}: {}", d.line, d.column, d.message)
                })
                .collect(),
        }
    }

    fn parse_ok(text: &str) -> Config {
        match Config::parse(Path::new(PATH), text) {
            Ok(c) => c,
            Err(d) => panic!("{text:?} should parse:\n{d}"),
        }
    }

    /// The defaults, written out by hand from docs/config.md.
    fn documented_defaults() -> Config {
        let policy = |required: bool, purpose: &str, interval: Option<u64>| CategoryPolicy {
            required,
            purpose: purpose.to_string(),
            interval_seconds: interval,
        };
        let categories = BTreeMap::from([
            (
                Category::DeviceId,
                policy(
                    true,
                    "tell your device's reports apart from other devices' with a \
                     de-identified ID; hardware identifiers never leave the device",
                    Some(86400),
                ),
            ),
            (
                Category::Hardware,
                policy(
                    true,
                    "keep the service compatible with your device",
                    Some(86400),
                ),
            ),
            (
                Category::Os,
                policy(
                    true,
                    "keep the service compatible with your device's operating system",
                    Some(86400),
                ),
            ),
            (
                Category::Network,
                policy(true, "diagnose connectivity problems", Some(3600)),
            ),
            (
                Category::NetworkDetail,
                policy(
                    false,
                    "diagnose Wi-Fi and cellular reception problems; the Wi-Fi networks and \
                     the mobile cell around your device show roughly where it is",
                    Some(900),
                ),
            ),
            (
                Category::Location,
                policy(
                    false,
                    "show where your device is, for example to find it or plan a service \
                     visit",
                    Some(300),
                ),
            ),
            (
                Category::Software,
                policy(
                    false,
                    "know which software versions are installed, to plan updates",
                    Some(86400),
                ),
            ),
            (
                Category::AppEvents,
                policy(
                    true,
                    "keep a record of events that programs on your device report",
                    None,
                ),
            ),
        ]);
        Config {
            path: PathBuf::from(PATH),
            state_dir: PathBuf::from("/var/lib/assent"),
            consent_file: PathBuf::from("/var/lib/assent/consent.toml"),
            policy_version: 1,
            log_level: log::LevelFilter::Info,
            identity: IdentityConfig {
                fleet_key_file: None,
            },
            categories,
            collector: None,
            buffer: BufferConfig {
                max_bytes: 16_777_216,
                retention_days: 30,
                durability: Durability::Full,
            },
            sync: SyncConfig {
                interval_seconds: 300,
                backoff_base_seconds: 2,
                backoff_max_seconds: 300,
                metered: MeteredPolicy::Defer,
                metered_interfaces: Vec::new(),
            },
            location: LocationConfig {
                gpsd_address: "127.0.0.1:2947".parse().unwrap(),
                fix_timeout_seconds: 2,
            },
            network_detail: NetworkDetailConfig {
                wifi_list: true,
                cell_ids: true,
            },
            events: EventsConfig {
                socket: PathBuf::from("/run/assent/events.sock"),
                socket_mode: 0o660,
                socket_group: None,
                allowed_uids: Vec::new(),
                allowed_groups: Vec::new(),
                max_message_bytes: 4096,
                max_attributes: 32,
                rate_per_second: 100,
                burst: 200,
                max_connections: 64,
            },
            control: ControlConfig {
                socket: PathBuf::from("/run/assent/control.sock"),
                admin_group: None,
            },
        }
    }

    #[test]
    fn an_empty_file_gives_the_documented_defaults() {
        let config = parse_ok("");
        assert_eq!(config, documented_defaults());
        assert_eq!(config.categories.len(), 8);
        for c in Category::ALL {
            assert_eq!(
                config.categories[&c].required,
                c.required_by_default(),
                "{c}"
            );
        }
        // Comments and blank lines alone are an empty config too.
        assert_eq!(parse_ok("# nothing\n\n   \n"), documented_defaults());
        assert_eq!(
            config.warnings(),
            vec!["no [collector] section: data is collected and buffered but never sent"]
        );
    }

    #[test]
    fn the_example_file_is_what_its_comments_say() {
        let mut want = documented_defaults();
        want.identity.fleet_key_file = Some(PathBuf::from("/etc/assent/fleet.key"));
        want.collector = Some(CollectorConfig {
            url: "https://collector.example.net:8443/v1".to_string(),
            host: "collector.example.net".to_string(),
            port: 8443,
            path: "/v1".to_string(),
            ca_file: Some(PathBuf::from("/etc/assent/ca.pem")),
            client_cert_file: Some(PathBuf::from("/etc/assent/device.pem")),
            client_key_file: Some(PathBuf::from("/etc/assent/device.key")),
            token_file: Some(PathBuf::from("/etc/assent/token")),
        });
        want.events.socket_group = Some("assent-events".to_string());
        want.control.admin_group = Some("assent-admin".to_string());
        let config = parse_ok(EXAMPLE);
        assert_eq!(config, want);
        assert_eq!(config.warnings(), Vec::<String>::new());
    }

    /// The example claims every value in it is the default, except the optional files:
    /// deleting any one other line must give the same config.
    #[test]
    fn every_value_line_of_the_example_is_the_default() {
        let full = parse_ok(EXAMPLE);
        let lines: Vec<&str> = EXAMPLE.lines().collect();
        let mut section = "";
        let mut checked = 0;
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim();
            if trimmed.starts_with('[') {
                section = trimmed;
                continue;
            }
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if section == "[collector]"
                || ["fleet_key_file", "socket_group", "admin_group"]
                    .iter()
                    .any(|k| trimmed.starts_with(k))
            {
                continue;
            }
            let without: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, l)| *l)
                .collect();
            let config = parse_ok(&without.join("\n"));
            assert_eq!(
                config,
                full,
                "line {}: `{trimmed}` is not the default",
                i + 1
            );
            checked += 1;
        }
        // 4 top level, 3 x 7 + 2 categories, 3 buffer, 5 sync, 2 location,
        // 2 network_detail, 9 events, 1 control.
        assert_eq!(checked, 4 + 23 + 3 + 5 + 2 + 2 + 9 + 1);
    }

    /// Every known key appears in the example (so the example parsing proves it is
    /// accepted) and in docs/config.md.
    #[test]
    fn example_and_docs_cover_every_key() {
        for dotted in KNOWN_KEYS {
            let (section, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
            assert!(
                DOCS.contains(&format!("| `{key}` |")),
                "docs/config.md has no row for `{dotted}`"
            );
            let sections: Vec<String> = if section.contains("<category>") {
                Category::ALL
                    .iter()
                    .filter(|c| !(**c == Category::AppEvents && key == "interval_seconds"))
                    .map(|c| format!("[categories.{}]", c.name()))
                    .collect()
            } else if section.is_empty() {
                vec![String::new()]
            } else {
                vec![format!("[{section}]")]
            };
            for header in sections {
                let start = if header.is_empty() {
                    0
                } else {
                    EXAMPLE
                        .find(&format!("\n{header}\n"))
                        .unwrap_or_else(|| panic!("example has no {header}"))
                };
                let body = &EXAMPLE[start..];
                let end = body[1..].find("\n[").map_or(body.len(), |e| e + 1);
                assert!(
                    body[..end].contains(&format!("\n{key} = ")),
                    "example has no `{key}` in {header:?}"
                );
            }
        }
        for c in Category::ALL {
            assert!(DOCS.contains(&format!("| `{}` |", c.name())), "{c}");
        }
    }

    #[test]
    fn a_typo_a_wrong_type_and_a_bad_url_are_reported_together() {
        let text = "\
state_dir = \"/var/lib/assent\"
polcy_version = 2
[sync]
interval_seconds = \"300\"
[collector]
url = \"http://collector.example.net\"
";
        let err = Config::parse(Path::new(PATH), text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "\
/etc/assent/assent.toml:2:1: unknown key `polcy_version`; did you mean `policy_version`?
/etc/assent/assent.toml:4:20: key `sync.interval_seconds`: expected a positive integer, found a string
/etc/assent/assent.toml:6:7: key `collector.url`: must use https (data is only sent encrypted), found `http://collector.example.net`"
        );
        // The same three lines are shown in docs/config.md.
        for line in err.to_string().lines() {
            assert!(DOCS.contains(line), "docs/config.md lacks {line}");
        }
    }

    #[test]
    fn unknown_categories_are_errors_with_a_suggestion() {
        let cases: &[(&str, &str)] = &[
            (
                "[categories.hardwar]\nrequired = true\n",
                "1:13: unknown category `hardwar`; did you mean `hardware`?",
            ),
            (
                "[categories.network-detail]\n",
                "1:13: unknown category `network-detail`; did you mean `network_detail`?",
            ),
            ("[categories.gps]\n", "1:13: unknown category `gps`"),
            (
                "[categories.app_events]\ninterval_seconds = 60\n",
                "2:1: unknown key `categories.app_events.interval_seconds`",
            ),
            (
                "[categories.os]\nrequird = true\n",
                "2:1: unknown key `categories.os.requird`; did you mean `categories.os.required`?",
            ),
            (
                "categories = 1\n",
                "1:14: key `categories`: expected a table, found an integer",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(errors(text), vec![want.to_string()], "{text}");
        }
    }

    #[test]
    fn categories_can_be_overridden_one_by_one() {
        let config = parse_ok(
            "[categories.location]\nrequired = true\npurpose = \"find lost devices\"\n\
             interval_seconds = 60\n[categories.hardware]\nrequired = false\n",
        );
        let location = &config.categories[&Category::Location];
        assert!(location.required);
        assert_eq!(location.purpose, "find lost devices");
        assert_eq!(location.interval_seconds, Some(60));
        let hardware = &config.categories[&Category::Hardware];
        assert!(!hardware.required);
        assert_eq!(
            hardware.purpose,
            CategoryPolicy::default_for(Category::Hardware).purpose
        );
        assert_eq!(config.categories.len(), 8);
    }

    #[test]
    fn metered_takes_a_word_or_a_daily_budget() {
        let ok: &[(&str, MeteredPolicy)] = &[
            ("metered = \"allow\"", MeteredPolicy::Allow),
            ("metered = \"defer\"", MeteredPolicy::Defer),
            (
                "metered = { max_bytes_per_day = 1048576 }",
                MeteredPolicy::MaxBytesPerDay(1_048_576),
            ),
            (
                "[sync.metered]\nmax_bytes_per_day = 5",
                MeteredPolicy::MaxBytesPerDay(5),
            ),
        ];
        for (body, want) in ok {
            let text = if body.starts_with('[') {
                body.to_string()
            } else {
                format!("[sync]\n{body}\n")
            };
            assert_eq!(parse_ok(&text).sync.metered, *want, "{body}");
        }
        let bad: &[(&str, &[&str])] = &[
            (
                "metered = \"dfer\"",
                &["2:11: key `sync.metered`: expected `allow`, `defer` or `{ max_bytes_per_day = N }`, found `dfer`; did you mean `defer`?"],
            ),
            (
                "metered = \"never\"",
                &["2:11: key `sync.metered`: expected `allow`, `defer` or `{ max_bytes_per_day = N }`, found `never`"],
            ),
            (
                "metered = { max_bytes_per_day = 0 }",
                &["2:33: key `sync.metered.max_bytes_per_day`: must be at least 1, found 0"],
            ),
            (
                "metered = { max_bytes_per_day = -10 }",
                &["2:33: key `sync.metered.max_bytes_per_day`: must be at least 1, found -10"],
            ),
            (
                "metered = {}",
                &["2:11: missing key `sync.metered.max_bytes_per_day`"],
            ),
            (
                "metered = { max_byte_per_day = 10 }",
                &[
                    "2:11: missing key `sync.metered.max_bytes_per_day`",
                    "2:13: unknown key `sync.metered.max_byte_per_day`; did you mean `sync.metered.max_bytes_per_day`?",
                ],
            ),
            (
                "metered = true",
                &["2:11: key `sync.metered`: expected `allow`, `defer` or `{ max_bytes_per_day = N }`, found a boolean"],
            ),
        ];
        for (body, want) in bad {
            assert_eq!(errors(&format!("[sync]\n{body}\n")), *want, "{body}");
        }
    }

    #[test]
    fn every_invalid_value_rule() {
        let cases: &[(&str, &[&str])] = &[
            ("state_dir = \"\"", &["1:13: key `state_dir`: must not be empty"]),
            ("consent_file = 7", &["1:16: key `consent_file`: expected a string, found an integer"]),
            ("policy_version = 0", &["1:18: key `policy_version`: must be between 1 and 4294967295, found 0"]),
            ("policy_version = 4294967296", &["1:18: key `policy_version`: must be between 1 and 4294967295, found 4294967296"]),
            ("policy_version = \"1\"", &["1:18: key `policy_version`: expected a positive integer, found a string"]),
            ("log_level = \"verbose\"", &["1:13: key `log_level`: expected one of `error`, `warn`, `info`, `debug`, `trace`, found `verbose`"]),
            ("log_level = \"INFO\"", &["1:13: key `log_level`: expected one of `error`, `warn`, `info`, `debug`, `trace`, found `INFO`; did you mean `info`?"]),
            ("[identity]\nfleet_key_file = \"\"", &["2:18: key `identity.fleet_key_file`: must not be empty"]),
            ("[categories.hardware]\ninterval_seconds = 0", &["2:20: key `categories.hardware.interval_seconds`: must be between 1 and 31536000, found 0"]),
            ("[categories.software]\ninterval_seconds = 86400000", &["2:20: key `categories.software.interval_seconds`: must be between 1 and 31536000, found 86400000"]),
            ("[categories.os]\npurpose = \"  \"", &["2:11: key `categories.os.purpose`: must not be empty"]),
            ("[categories.os]\nrequired = \"yes\"", &["2:12: key `categories.os.required`: expected a boolean (`true` or `false`), found a string"]),
            ("[buffer]\nmax_bytes = -1", &["2:13: key `buffer.max_bytes`: must be at least 262144, found -1"]),
            ("[buffer]\nmax_bytes = 0", &["2:13: key `buffer.max_bytes`: must be at least 262144, found 0"]),
            ("[buffer]\nmax_bytes = 1.5e7", &["2:13: key `buffer.max_bytes`: expected a positive integer, found a float"]),
            ("[buffer]\nretention_days = 0", &["2:18: key `buffer.retention_days`: must be between 1 and 3650, found 0"]),
            ("[buffer]\ndurability = \"fast\"", &["2:14: key `buffer.durability`: expected one of `full`, `normal`, found `fast`"]),
            ("[sync]\ninterval_seconds = 0", &["2:20: key `sync.interval_seconds`: must be between 1 and 31536000, found 0"]),
            ("[sync]\nbackoff_base_seconds = 0", &["2:24: key `sync.backoff_base_seconds`: must be between 1 and 86400, found 0"]),
            ("[sync]\nbackoff_base_seconds = 600", &["2:24: key `sync.backoff_base_seconds`: must not exceed `backoff_max_seconds` (300), found 600"]),
            ("[sync]\nbackoff_base_seconds = 10\nbackoff_max_seconds = 5", &["2:24: key `sync.backoff_base_seconds`: must not exceed `backoff_max_seconds` (5), found 10"]),
            ("[sync]\nbackoff_max_seconds = 1", &["2:23: key `sync.backoff_max_seconds`: must be at least `backoff_base_seconds` (2), found 1"]),
            // One bad value gives one error, not a second one about the pair.
            ("[sync]\nbackoff_base_seconds = 10\nbackoff_max_seconds = 0", &["3:23: key `sync.backoff_max_seconds`: must be between 1 and 86400, found 0"]),
            ("[sync]\nmetered_interfaces = \"wwan0\"", &["2:22: key `sync.metered_interfaces`: expected an array of strings, found a string"]),
            (
                "[sync]\nmetered_interfaces = [\"wwan0\", \"\", \"a-very-long-name0\", \"a b\", 3]",
                &[
                    "2:32: key `sync.metered_interfaces`: item 2: must not be empty",
                    "2:36: key `sync.metered_interfaces`: item 3: `a-very-long-name0` is longer than 15 bytes, the limit for Linux interface names",
                    "2:57: key `sync.metered_interfaces`: item 4: `a b` is not a valid interface name",
                    "2:64: key `sync.metered_interfaces`: item 5: expected a string, found an integer",
                ],
            ),
            ("[location]\ngpsd_address = \"localhost:2947\"", &["2:16: key `location.gpsd_address`: expected an IP address and port such as `127.0.0.1:2947`, found `localhost:2947`"]),
            ("[location]\ngpsd_address = \"127.0.0.1\"", &["2:16: key `location.gpsd_address`: expected an IP address and port such as `127.0.0.1:2947`, found `127.0.0.1`"]),
            ("[location]\nfix_timeout_seconds = 0", &["2:23: key `location.fix_timeout_seconds`: must be between 1 and 60, found 0"]),
            ("[location]\nfix_timeout_seconds = 61", &["2:23: key `location.fix_timeout_seconds`: must be between 1 and 60, found 61"]),
            ("[collector]\nca_file = \"/etc/assent/ca.pem\"", &["1:1: missing key `collector.url`"]),
            ("[collector]\nurl = \"https://c.example.net\"\nclient_cert_file = \"/a.pem\"", &["3:20: key `collector.client_cert_file`: needs `client_key_file` too (mutual TLS uses both)"]),
            ("[collector]\nurl = \"https://c.example.net\"\nclient_key_file = \"/a.key\"", &["3:19: key `collector.client_key_file`: needs `client_cert_file` too (mutual TLS uses both)"]),
            ("[collector]\nurl = \"https://user:secret@c.example.net\"", &["2:7: key `collector.url`: must not contain a user name or password; use `token_file` or a client certificate"]),
            ("[collector]\nurl = \"https://\"", &["2:7: key `collector.url`: has an empty host, expected `https://host[:port][/path]`"]),
            ("collector = \"https://c.example.net\"", &["1:13: key `collector`: expected a table, found a string"]),
            ("[buffer]\nmax_bytes = 99999999999999999999999", &["2:13: key `buffer.max_bytes`: must be at least 262144, found 99999999999999999999999"]),
            ("[events]\nsocket = \"\"", &["2:10: key `events.socket`: must not be empty"]),
            ("[events]\nsocket_mode = 660", &["2:15: key `events.socket_mode`: expected a string, found an integer"]),
            ("[events]\nsocket_mode = \"0668\"", &["2:15: key `events.socket_mode`: expected permission bits in octal such as `0660` (at most `0777`), found `0668`"]),
            ("[events]\nsocket_mode = \"4660\"", &["2:15: key `events.socket_mode`: expected permission bits in octal such as `0660` (at most `0777`), found `4660`"]),
            ("[events]\nsocket_mode = \"\"", &["2:15: key `events.socket_mode`: expected permission bits in octal such as `0660` (at most `0777`), found ``"]),
            ("[events]\nsocket_mode = \"-660\"", &["2:15: key `events.socket_mode`: expected permission bits in octal such as `0660` (at most `0777`), found `-660`"]),
            ("[events]\nsocket_mode = \"00660\"", &["2:15: key `events.socket_mode`: expected permission bits in octal such as `0660` (at most `0777`), found `00660`"]),
            ("[events]\nsocket_group = \"\"", &["2:16: key `events.socket_group`: must not be empty"]),
            ("[events]\nsocket_group = \"-x\"", &["2:16: key `events.socket_group`: `-x` is not a valid group name"]),
            ("[events]\nsocket_group = \"a:b\"", &["2:16: key `events.socket_group`: `a:b` is not a valid group name"]),
            ("[events]\nallowed_uids = [1000, -1, 4294967295, \"1001\"]", &[
                "2:23: key `events.allowed_uids`: item 2: must be at most 4294967294, found -1",
                "2:27: key `events.allowed_uids`: item 3: must be at most 4294967294, found 4294967295",
                "2:39: key `events.allowed_uids`: item 4: expected an integer, found a string",
            ]),
            ("[events]\nallowed_uids = 1000", &["2:16: key `events.allowed_uids`: expected an array of integers, found an integer"]),
            ("[events]\nallowed_groups = [\"video\", \"a b\", \"\"]", &[
                "2:28: key `events.allowed_groups`: item 2: `a b` is not a valid group name",
                "2:35: key `events.allowed_groups`: item 3: must not be empty",
            ]),
            ("[events]\nallowed_groups = [\"abcdefghijabcdefghijabcdefghijabc\"]", &["2:19: key `events.allowed_groups`: item 1: `abcdefghijabcdefghijabcdefghijabc` is longer than 32 bytes, the limit for group names"]),
            ("[events]\nmax_message_bytes = 100", &["2:21: key `events.max_message_bytes`: must be between 256 and 65536, found 100"]),
            ("[events]\nmax_message_bytes = 1048576", &["2:21: key `events.max_message_bytes`: must be between 256 and 65536, found 1048576"]),
            ("[events]\nmax_attributes = 257", &["2:18: key `events.max_attributes`: must be at most 256, found 257"]),
            ("[events]\nrate_per_second = 0", &["2:19: key `events.rate_per_second`: must be between 1 and 100000, found 0"]),
            ("[events]\nburst = 0", &["2:9: key `events.burst`: must be between 1 and 1000000, found 0"]),
            ("[events]\nmax_connections = 0", &["2:19: key `events.max_connections`: must be between 1 and 4096, found 0"]),
            ("[events]\nmax_connections = 5000", &["2:19: key `events.max_connections`: must be between 1 and 4096, found 5000"]),
            ("[events]\nmax_attributes = 1.5", &["2:18: key `events.max_attributes`: expected a non-negative integer, found a float"]),
            (
                "[events]\nsocket = \"/run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\"",
                &["2:10: key `events.socket`: is 108 bytes long once resolved; Unix socket paths are limited to 107 bytes"],
            ),
            ("[control]\nsocket = \"/run/assent/events.sock\"", &["2:10: key `control.socket`: must differ from `events.socket` (/run/assent/events.sock)"]),
            ("[events]\nsocket = \"/run/a.sock\"\n[control]\nsocket = \"/run/a.sock\"", &["4:10: key `control.socket`: must differ from `events.socket` (/run/a.sock)"]),
            ("[control]\nadmin_group = \"wheel group\"", &["2:15: key `control.admin_group`: `wheel group` is not a valid group name"]),
            ("[control]\nadmin_group = true", &["2:15: key `control.admin_group`: expected a string, found a boolean"]),
            ("[control]\nsocket_mode = \"0600\"", &["2:1: unknown key `control.socket_mode`"]),
        ];
        for (text, want) in cases {
            assert_eq!(errors(text), *want, "{text}");
        }
    }

    #[test]
    fn collector_urls() {
        let good: &[(&str, &str, u16, &str)] = &[
            (
                "https://collector.example.net",
                "collector.example.net",
                443,
                "/",
            ),
            (
                "https://Collector.Example.NET:8443/v1/",
                "collector.example.net",
                8443,
                "/v1/",
            ),
            ("HTTPS://c.example.net/", "c.example.net", 443, "/"),
            ("https://192.0.2.10:65535", "192.0.2.10", 65535, "/"),
            ("https://[2001:db8::1]:8443/in", "2001:db8::1", 8443, "/in"),
            ("https://[::1]", "::1", 443, "/"),
            ("https://localhost:1", "localhost", 1, "/"),
        ];
        for (url, host, port, path) in good {
            let want = HttpsUrl {
                host: host.to_string(),
                port: *port,
                path: path.to_string(),
            };
            assert_eq!(parse_https_url(url), Ok(want), "{url}");
        }
        let bad: &[(&str, &str)] = &[
            ("http://c.example.net", "must use https"),
            ("HTTP://c.example.net", "must use https"),
            ("ftp://c.example.net", "expected a URL of the form"),
            ("c.example.net", "expected a URL of the form"),
            ("", "expected a URL of the form"),
            ("https://", "empty host"),
            ("https://:8443", "empty host"),
            ("https:///path", "empty host"),
            ("https://user@c.example.net", "user name or password"),
            ("https://c.example.net:0", "not a valid port"),
            ("https://c.example.net:65536", "not a valid port"),
            ("https://c.example.net:", "not a valid port"),
            ("https://c.example.net:https", "not a valid port"),
            ("https://c.example.net/?a=1", "query"),
            ("https://c.example.net/#top", "fragment"),
            ("https://c.exa mple.net", "spaces"),
            ("https://c.example.net\n", "spaces or control"),
            ("https://-c.example.net", "not a valid host name"),
            ("https://c..example.net", "not a valid host name"),
            ("https://c_example.net", "not a valid host name"),
            ("https://[::1", "unclosed `[`"),
            ("https://[zz]:1", "not an IPv6 address"),
            ("https://[::1]x", "expected `:port`"),
            ("https://2001:db8::1/", "not a valid"),
        ];
        for (url, want) in bad {
            match parse_https_url(url) {
                Ok(u) => panic!("{url:?} accepted as {u:?}"),
                Err(e) => assert!(e.to_string().contains(want), "{url:?}: {e}"),
            }
        }
    }

    #[test]
    fn relative_paths_are_resolved_against_the_config_directory() {
        let config = Config::parse(
            Path::new("/opt/dev/assent.toml"),
            "state_dir = \"state\"\n[identity]\nfleet_key_file = \"../keys/fleet.key\"\n\
             [collector]\nurl = \"https://c.example.net\"\nca_file = \"ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(config.state_dir, Path::new("/opt/dev/state"));
        assert_eq!(
            config.consent_file,
            Path::new("/opt/dev/state/consent.toml")
        );
        assert_eq!(
            config.identity.fleet_key_file.as_deref(),
            Some(Path::new("/opt/keys/fleet.key"))
        );
        assert_eq!(
            config.collector.unwrap().ca_file.as_deref(),
            Some(Path::new("/opt/dev/ca.pem"))
        );
    }

    #[test]
    fn events_and_control_sockets_resolve_relative_paths_and_read_every_key() {
        let config = Config::parse(
            Path::new("/opt/dev/assent.toml"),
            "[events]\nsocket = \"run/events.sock\"\nsocket_mode = \"660\"\n\
             socket_group = \"app-events\"\nallowed_uids = [1000, 0x3e9]\n\
             allowed_groups = [\"video\", \"dialout\"]\nmax_message_bytes = 65536\n\
             max_attributes = 0\nrate_per_second = 5\nburst = 1\nmax_connections = 1\n\
             [control]\nsocket = \"run/control.sock\"\nadmin_group = \"wheel\"\n",
        )
        .unwrap();
        assert_eq!(
            config.events,
            EventsConfig {
                socket: PathBuf::from("/opt/dev/run/events.sock"),
                socket_mode: 0o660,
                socket_group: Some("app-events".to_string()),
                allowed_uids: vec![1000, 1001],
                allowed_groups: vec!["video".to_string(), "dialout".to_string()],
                max_message_bytes: 65536,
                max_attributes: 0,
                rate_per_second: 5,
                burst: 1,
                max_connections: 1,
            }
        );
        assert_eq!(
            config.control,
            ControlConfig {
                socket: PathBuf::from("/opt/dev/run/control.sock"),
                admin_group: Some("wheel".to_string()),
            }
        );
        for (text, mode) in [("0o600", 0o600), ("0", 0), ("777", 0o777), ("0640", 0o640)] {
            assert_eq!(octal_mode(text), Ok(mode), "{text}");
        }
    }

    #[test]
    fn the_consent_file_follows_state_dir_unless_set() {
        let moved = parse_ok("state_dir = \"/data/assent\"");
        assert_eq!(moved.consent_file, Path::new("/data/assent/consent.toml"));
        let both =
            parse_ok("state_dir = \"/data/assent\"\nconsent_file = \"/etc/assent/consent.toml\"");
        assert_eq!(both.consent_file, Path::new("/etc/assent/consent.toml"));
    }

    #[test]
    fn warnings_for_valid_but_notable_configs() {
        let remote = parse_ok(
            "[collector]\nurl = \"https://c.example.net\"\n[location]\ngpsd_address = \"192.0.2.7:2947\"\n",
        );
        assert_eq!(
            remote.warnings(),
            vec!["location.gpsd_address 192.0.2.7:2947 is not a loopback address: positions cross the network unencrypted"]
        );
        let v6 = parse_ok("[collector]\nurl = \"https://c.example.net\"\n[location]\ngpsd_address = \"[::1]:2947\"\n");
        assert_eq!(v6.warnings(), Vec::<String>::new());
        let small = parse_ok(
            "[collector]\nurl = \"https://c.example.net\"\n[buffer]\nmax_bytes = 262144\n",
        );
        assert_eq!(
            small.warnings(),
            vec!["buffer.max_bytes = 262144 lets one event be at most 13107 bytes: a software inventory can be larger and would then never be stored (5 MiB or more allows 65536)"]
        );
        let enough = parse_ok(
            "[collector]\nurl = \"https://c.example.net\"\n[buffer]\nmax_bytes = 5242880\n",
        );
        assert_eq!(enough.warnings(), Vec::<String>::new());
    }

    #[test]
    fn log_levels_map_to_filters_and_serialize_lower_case() {
        let cases = [
            ("error", log::LevelFilter::Error),
            ("warn", log::LevelFilter::Warn),
            ("info", log::LevelFilter::Info),
            ("debug", log::LevelFilter::Debug),
            ("trace", log::LevelFilter::Trace),
        ];
        for (name, level) in cases {
            let config = parse_ok(&format!("log_level = \"{name}\""));
            assert_eq!(config.log_level, level);
            let json = serde_json::to_value(&config).unwrap();
            assert_eq!(json["log_level"], name);
            let back: Config = serde_json::from_value(json).unwrap();
            assert_eq!(back, config);
        }
        let example = parse_ok(EXAMPLE);
        let json = serde_json::to_string(&example).unwrap();
        assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), example);
    }

    #[test]
    fn hostile_inputs_give_diagnostics_not_panics() {
        // Raw control characters and NULs are TOML syntax errors.
        let found = errors("state_dir = \"/var/lib/assent\"\nlog_level = \"in\0fo\"\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("2:16: invalid TOML"), "{found:?}");
        // Nesting deep enough to overflow a recursive parser is refused.
        let deep = format!("a = {}{}", "[".repeat(100_000), "]".repeat(100_000));
        let found = errors(&deep);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("invalid TOML"), "{found:?}");
        // A long unknown key is reported, without a suggestion.
        let long = format!("{} = 1", "k".repeat(10_000));
        let found = errors(&long);
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("1:1: unknown key `kkk"));
        assert!(!found[0].contains("did you mean"));
        // A duplicate key is a syntax error at the second one.
        let found = errors("log_level = \"info\"\nlog_level = \"warn\"\n");
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("2:1: invalid TOML: duplicate key"),
            "{found:?}"
        );
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("assent-config-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn load_reads_the_file_and_names_it_in_errors() {
        let tmp = TempDir::new("load");
        let path = tmp.0.join("assent.toml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let loaded = Config::load(&path).unwrap();
        assert_eq!(loaded.path, path);
        let mut want = parse_ok(EXAMPLE);
        want.path = path.clone();
        assert_eq!(loaded, want);

        let missing = tmp.0.join("missing.toml");
        let err = Config::load(&missing).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: cannot read: no such file", missing.display())
        );

        let err = Config::load(&tmp.0).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: cannot read: not a regular file", tmp.0.display())
        );

        let bad = tmp.0.join("bad.toml");
        std::fs::write(
            &bad,
            b"log_level = \"info\"\nstate_dir = \"/var/\xc3\x28\"\n",
        )
        .unwrap();
        let err = Config::load(&bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}:2:19: not valid UTF-8", bad.display())
        );

        let typo = tmp.0.join("typo.toml");
        std::fs::write(&typo, "\n\nlog_levle = \"info\"\n").unwrap();
        let err = Config::load(&typo).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}:3:1: unknown key `log_levle`; did you mean `log_level`?",
                typo.display()
            )
        );
    }

    #[test]
    fn the_default_path_is_the_documented_one() {
        assert_eq!(DEFAULT_CONFIG_PATH, "/etc/assent/assent.toml");
        assert!(DOCS.contains(DEFAULT_CONFIG_PATH));
    }
}
