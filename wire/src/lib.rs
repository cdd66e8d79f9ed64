//! The wire protocol between the agent and the collector, versions 1 and 2
//! (`docs/protocol.md`). Version 2 changes only the erasure request, which carries a fence
//! per buffer; batches and acknowledgements are version 1 in both.
//!
//! One schema, two encodings: postcard (`application/vnd.assent.batch+postcard`, the
//! default, compact) and JSON (`application/json`, for interoperability and debugging).
//! Decoding is strict: unknown versions, malformed pseudonyms, records outside the
//! declared seq range, out-of-order seqs, trailing bytes and oversized batches are
//! rejected with a reason that names what is wrong.
//!
//! This crate is pure data: no I/O, no threads.

use assent_platform::{hardware, location, network, network_detail, os, software, Category};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The version of batches and of every acknowledgement (and of erasure requests without
/// fences).
pub const PROTOCOL_VERSION: u16 = 1;
/// The version of erasure requests with fences ([`ErasureRequestV2`]).
pub const PROTOCOL_VERSION_FENCED_ERASURE: u16 = 2;
/// Content type of a postcard-encoded body.
pub const CONTENT_TYPE_POSTCARD: &str = "application/vnd.assent.batch+postcard";
/// Content type of a JSON-encoded body.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Path of the batch endpoint.
pub const PATH_BATCHES: &str = "/v1/batches";
/// Path of the erasure endpoint.
pub const PATH_ERASURE: &str = "/v1/erasure";
/// The most records a batch may hold whatever the server allows.
pub const MAX_BATCH_RECORDS: usize = 100_000;

/// A device pseudonym: 26 characters of lower-case RFC 4648 base32.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pseudonym(String);

impl Pseudonym {
    pub const LEN: usize = 26;

    pub fn parse(s: &str) -> Result<Pseudonym, String> {
        let valid = s.len() == Self::LEN
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
        if valid {
            Ok(Pseudonym(s.to_string()))
        } else {
            Err(format!(
                "device pseudonym must be {} lower-case base32 characters",
                Self::LEN
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Pseudonym {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Pseudonym::parse(&s)
    }
}

impl From<Pseudonym> for String {
    fn from(p: Pseudonym) -> String {
        p.0
    }
}

impl fmt::Display for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a pseudonym was derived from; never the values themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Derivation {
    /// machine-id and a hardware serial, keyed with the fleet key.
    HardwareFleetKey,
    /// machine-id and a hardware serial, keyed with the device secret.
    HardwareDeviceSecret,
    /// The random install id: no hardware identifier was read.
    InstallId,
}

/// What the `device_id` category becomes once de-identified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceIdentity {
    pub pseudonym: Pseudonym,
    pub derivation: Derivation,
    /// Which identifiers went into the pseudonym (`machine_id`, `product_uuid`, ...).
    pub sources: Vec<String>,
}

/// A boot id (`/proc/sys/kernel/random/boot_id`): 32 hex digits in JSON, 16 bytes in
/// postcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BootId(pub [u8; 16]);

impl BootId {
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(s: &str) -> Result<BootId, String> {
        let s: String = s.chars().filter(|c| *c != '-').collect();
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("boot id must be 32 hex digits".to_string());
        }
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
                .map_err(|_| "boot id must be 32 hex digits".to_string())?;
        }
        Ok(BootId(out))
    }
}

impl Serialize for BootId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for BootId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let s = String::deserialize(deserializer)?;
            BootId::from_hex(&s).map_err(serde::de::Error::custom)
        } else {
            <[u8; 16]>::deserialize(deserializer).map(BootId)
        }
    }
}

/// One attribute value of an application event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttrValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

/// The first allocation for a payload's postcard bytes.
const POSTCARD_CAPACITY: usize = 256;

/// An event a local program reported through the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppEvent {
    pub name: String,
    pub attrs: BTreeMap<String, AttrValue>,
}

/// The body of an event: one category's data, de-identified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    DeviceId(DeviceIdentity),
    Hardware(Box<hardware::Hardware>),
    Os(Box<os::Os>),
    Network(Box<network::Network>),
    NetworkDetail(Box<network_detail::NetworkDetail>),
    Location(Box<location::Location>),
    Software(Box<software::Software>),
    AppEvent(AppEvent),
    /// The `software` category's package list, as parts of a full snapshot or a delta
    /// (event kind `packages`); the `Software` event then carries no packages.
    Packages(Box<PackageList>),
}

/// The most parts one package snapshot may be split into.
pub const MAX_PACKAGE_PARTS: u32 = 4096;
/// The most bytes one part's packages may inflate to.
pub const MAX_PART_INFLATED: u64 = 16 * 1024 * 1024;

/// One event of the package list: a part of a full snapshot, or the changes since an
/// earlier list. See "Package inventories" in docs/protocol.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageList {
    /// The list this event belongs to: every part of one snapshot carries the same id; a
    /// delta makes a new list with a new id. Random, so lists of another buffer or
    /// pseudonym never share an id.
    pub list_id: u64,
    /// SHA-256 of the complete list once this event is applied ([`package_list_digest`]).
    pub digest: [u8; 32],
    /// How many packages the complete list holds.
    pub package_count: u64,
    pub change: PackageChange,
}

/// What a [`PackageList`] event carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PackageChange {
    /// Part `index` (from 0) of `parts` of a full snapshot: its packages, in list order,
    /// as the postcard encoding of a `Vec<Package>` compressed with raw DEFLATE (the
    /// agent only compresses; the collector inflates, at most [`MAX_PART_INFLATED`]).
    Part {
        index: u32,
        parts: u32,
        #[serde(serialize_with = "as_bytes")]
        packages_deflate: Vec<u8>,
    },
    /// The changes from the list `base`: the packages no longer in the list, named by
    /// [`package_hash`], and the packages added (an upgrade removes the old version and
    /// adds the new one).
    Delta {
        base: u64,
        removed: Vec<u64>,
        added: Vec<software::Package>,
    },
}

/// Bytes serialized as bytes: the same encoding as a `Vec<u8>` in postcard (length, then
/// the bytes) and in JSON (an array of numbers), without serde's per-element code.
fn as_bytes<S: serde::Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// SHA-256 of a package list: of the postcard encoding of the packages sorted as the
/// platform sorts them (name, version, architecture).
pub fn package_list_digest(sorted: &[software::Package]) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut bytes = Vec::with_capacity(128);
    put_varint(&mut bytes, sorted.len() as u64);
    for package in sorted {
        encode_package(package, &mut bytes);
        context.update(&bytes);
        bytes.clear();
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// A package's name in a delta's `removed`: the first 8 bytes (big-endian) of SHA-256
/// over its postcard encoding.
pub fn package_hash(package: &software::Package) -> u64 {
    let mut bytes = Vec::with_capacity(96);
    encode_package(package, &mut bytes);
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    u64::from_be_bytes(first)
}

/// Appends the postcard encoding of a package list (what a part's `packages_deflate`
/// inflates to). Written out by hand, equal to postcard's (tested): the agent runs it
/// over every package, and serde's generic code for it costs flash.
pub fn encode_packages(packages: &[software::Package], out: &mut Vec<u8>) {
    put_varint(out, packages.len() as u64);
    for package in packages {
        encode_package(package, out);
    }
}

fn encode_package(package: &software::Package, out: &mut Vec<u8>) {
    let put_str = |out: &mut Vec<u8>, s: &str| {
        put_varint(out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    };
    put_str(out, &package.name);
    put_str(out, &package.version);
    match &package.architecture {
        None => out.push(0),
        Some(arch) => {
            out.push(1);
            put_str(out, arch);
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

impl Payload {
    /// The category this payload belongs to.
    pub fn category(&self) -> Category {
        match self {
            Payload::DeviceId(_) => Category::DeviceId,
            Payload::Hardware(_) => Category::Hardware,
            Payload::Os(_) => Category::Os,
            Payload::Network(_) => Category::Network,
            Payload::NetworkDetail(_) => Category::NetworkDetail,
            Payload::Location(_) => Category::Location,
            Payload::Software(_) => Category::Software,
            Payload::AppEvent(_) => Category::AppEvents,
            Payload::Packages(_) => Category::Software,
        }
    }

    /// The payload alone as JSON, without its variant tag.
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            Payload::DeviceId(v) => serde_json::to_value(v),
            Payload::Hardware(v) => serde_json::to_value(v),
            Payload::Os(v) => serde_json::to_value(v),
            Payload::Network(v) => serde_json::to_value(v),
            Payload::NetworkDetail(v) => serde_json::to_value(v),
            Payload::Location(v) => serde_json::to_value(v),
            Payload::Software(v) => serde_json::to_value(v),
            Payload::AppEvent(v) => serde_json::to_value(v),
            Payload::Packages(v) => serde_json::to_value(v),
        };
        value.unwrap_or(serde_json::Value::Null)
    }

    /// The postcard bytes the agent stores.
    pub fn to_postcard(&self) -> Result<Vec<u8>, DecodeError> {
        // Most payloads (app events, device facts) fit: one allocation instead of the
        // five or so a vector grown from empty takes.
        postcard::to_extend(self, Vec::with_capacity(POSTCARD_CAPACITY))
            .map_err(|e| DecodeError::new(format!("payload: {e}")))
    }

    /// Decodes stored postcard bytes, rejecting trailing bytes.
    pub fn from_postcard(bytes: &[u8]) -> Result<Payload, DecodeError> {
        let (payload, rest) = postcard::take_from_bytes::<Payload>(bytes)
            .map_err(|e| DecodeError::new(format!("payload: {e}")))?;
        if !rest.is_empty() {
            return Err(DecodeError::new("payload: trailing bytes"));
        }
        Ok(payload)
    }
}

/// An event in a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub seq: u64,
    pub category: Category,
    /// What happened within the category (`snapshot`, `heartbeat`, an app event name...).
    pub kind: String,
    /// Wall-clock milliseconds since the epoch when recorded (may be wrong at boot).
    pub wall_time_ms: i64,
    /// The boot the event was recorded in, and monotonic time within it: ordering that
    /// survives a wall clock that jumps.
    pub boot_id: BootId,
    pub monotonic_ns: u64,
    pub payload: Payload,
}

/// Why events were lost before being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapReason {
    Evicted,
    Expired,
    Purged,
    BufferReset,
    DiskFull,
    /// The stored bytes of the event could not be decoded (damaged or from an
    /// incompatible version); it is reported instead of sent.
    Undecodable,
}

/// `count` events (of `category` when given) with seqs in `first_seq..=last_seq` were
/// lost before being sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gap {
    pub seq: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub count: u64,
    pub reason: GapReason,
    pub category: Option<Category>,
}

/// A change of the owner's consent: the legal basis for what the collector holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentChange {
    pub seq: u64,
    pub observed_at: String,
    pub category: Category,
    pub active: bool,
    pub state: String,
    pub by: Option<String>,
    pub at: Option<String>,
    pub policy_version: u32,
}

/// One entry of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    Event(Event),
    Gap(Gap),
    Consent(ConsentChange),
}

impl Record {
    pub fn seq(&self) -> u64 {
        match self {
            Record::Event(e) => e.seq,
            Record::Gap(g) => g.seq,
            Record::Consent(c) => c.seq,
        }
    }
}

/// `POST /v1/batches`: every seq in `first_seq..=last_seq` is either a record here or
/// was lost on the device and is accounted for by a gap record (here or earlier).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub version: u16,
    pub device: Pseudonym,
    /// The device's buffer: a new one (after a corrupt buffer was replaced) starts its
    /// seqs again, so seqs are unique per (device, buffer).
    pub buffer_id: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub records: Vec<Record>,
}

/// The answer to a batch: the highest seq the collector has durably stored, with every
/// seq below it stored too, for this device and buffer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchAck {
    pub version: u16,
    pub acked_through: u64,
}

/// `POST /v1/erasure`: delete what the collector holds for a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    pub version: u16,
    pub device: Pseudonym,
    /// `None` means every category, consent records and gaps included.
    pub categories: Option<Vec<Category>>,
}

/// `POST /v1/erasure`, version 2: as [`ErasureRequest`], with the last seq the agent had
/// assigned in each buffer when it purged. The collector never stores an event of an
/// erased category at or below its buffer's fence, so a batch abandoned on a slow
/// replica that commits after the erasure cannot bring erased events back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequestV2 {
    pub version: u16,
    pub device: Pseudonym,
    /// `None` means every category, consent records and gaps included.
    pub categories: Option<Vec<Category>>,
    /// One per buffer the device has held (at most [`MAX_FENCES`]).
    pub fences: Vec<BufferFence>,
}

/// The most fences one erasure request may carry.
pub const MAX_FENCES: usize = 64;

/// The last seq assigned in a buffer when the agent purged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferFence {
    pub buffer_id: u64,
    pub last_seq: u64,
}

/// An erasure request of either version, as the collector acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    /// The version the request came in, which its answer carries back.
    pub version: u16,
    pub device: Pseudonym,
    pub categories: Option<Vec<Category>>,
    /// Empty for a version 1 request: nothing is fenced.
    pub fences: Vec<BufferFence>,
}

impl From<ErasureRequest> for Erasure {
    fn from(r: ErasureRequest) -> Erasure {
        Erasure {
            version: r.version,
            device: r.device,
            categories: r.categories,
            fences: Vec::new(),
        }
    }
}

/// The answer to an erasure request, sent only once the deletion is committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureAck {
    pub version: u16,
    pub erased_events: u64,
}

/// An error answer: `{"error": "reason"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// Which encoding a body uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Postcard,
    Json,
}

impl Encoding {
    /// The encoding named by a `Content-Type` header value (parameters ignored).
    pub fn from_content_type(value: &str) -> Option<Encoding> {
        let media = value.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case(CONTENT_TYPE_POSTCARD) {
            Some(Encoding::Postcard)
        } else if media.eq_ignore_ascii_case(CONTENT_TYPE_JSON) {
            Some(Encoding::Json)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Postcard => CONTENT_TYPE_POSTCARD,
            Encoding::Json => CONTENT_TYPE_JSON,
        }
    }
}

/// Why a body was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl DecodeError {
    fn new(reason: impl Into<String>) -> DecodeError {
        DecodeError(reason.into())
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Encodes any protocol message.
pub fn encode<T: Serialize>(value: &T, encoding: Encoding) -> Result<Vec<u8>, DecodeError> {
    match encoding {
        Encoding::Postcard => {
            postcard::to_stdvec(value).map_err(|e| DecodeError::new(e.to_string()))
        }
        Encoding::Json => serde_json::to_vec(value).map_err(|e| DecodeError::new(e.to_string())),
    }
}

/// Decodes a protocol message strictly: no trailing bytes, no unknown JSON fields.
fn decode_raw<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    encoding: Encoding,
) -> Result<T, DecodeError> {
    match encoding {
        Encoding::Postcard => {
            let (value, rest) = postcard::take_from_bytes::<T>(bytes)
                .map_err(|e| DecodeError::new(format!("not a valid postcard message: {e}")))?;
            if !rest.is_empty() {
                return Err(DecodeError::new(format!(
                    "{} trailing bytes after the message",
                    rest.len()
                )));
            }
            Ok(value)
        }
        Encoding::Json => serde_json::from_slice(bytes)
            .map_err(|e| DecodeError::new(format!("invalid JSON: {e}"))),
    }
}

/// Reads the version before anything else, so an unknown version is reported as such
/// rather than as a decoding error further in.
fn check_version(bytes: &[u8], encoding: Encoding) -> Result<(), DecodeError> {
    check_version_in(bytes, encoding, &[PROTOCOL_VERSION]).map(|_| ())
}

/// The body's version when it is one of `known`.
fn check_version_in(bytes: &[u8], encoding: Encoding, known: &[u16]) -> Result<u16, DecodeError> {
    let version = match encoding {
        Encoding::Postcard => postcard::take_from_bytes::<u16>(bytes)
            .map(|(v, _)| v)
            .map_err(|_| DecodeError::new("empty or truncated body"))?,
        Encoding::Json => {
            #[derive(Deserialize)]
            struct VersionOnly {
                version: Option<u16>,
            }
            let v: VersionOnly = serde_json::from_slice(bytes)
                .map_err(|e| DecodeError::new(format!("invalid JSON: {e}")))?;
            v.version
                .ok_or_else(|| DecodeError::new("missing field `version`"))?
        }
    };
    if !known.contains(&version) {
        let known: Vec<String> = known.iter().map(u16::to_string).collect();
        return Err(DecodeError::new(format!(
            "unsupported protocol version {version} (this server speaks {})",
            known.join(" and ")
        )));
    }
    Ok(version)
}

/// Whether an error answer's reason says the server does not know the version sent: what
/// a v1-only collector answers (400) to a version 2 body, so a client can fall back.
pub fn is_unsupported_version(reason: &str) -> bool {
    reason.starts_with("unsupported protocol version ")
}

/// Decodes and validates a batch. `max_records` is the server's limit.
pub fn decode_batch(
    bytes: &[u8],
    encoding: Encoding,
    max_records: usize,
) -> Result<Batch, DecodeError> {
    check_version(bytes, encoding)?;
    let batch: Batch = decode_raw(bytes, encoding)?;
    validate_batch(&batch, max_records)?;
    Ok(batch)
}

/// The rules a batch must keep beyond its types.
pub fn validate_batch(batch: &Batch, max_records: usize) -> Result<(), DecodeError> {
    if batch.first_seq == 0 || batch.first_seq > batch.last_seq {
        return Err(DecodeError::new(format!(
            "bad seq range {}..={}",
            batch.first_seq, batch.last_seq
        )));
    }
    let limit = max_records.min(MAX_BATCH_RECORDS);
    if batch.records.len() > limit {
        return Err(DecodeError::new(format!(
            "{} records, more than the limit of {limit}",
            batch.records.len()
        )));
    }
    let mut previous = 0u64;
    for record in &batch.records {
        let seq = record.seq();
        if seq < batch.first_seq || seq > batch.last_seq {
            return Err(DecodeError::new(format!(
                "record seq {seq} outside the batch range {}..={}",
                batch.first_seq, batch.last_seq
            )));
        }
        if seq <= previous {
            return Err(DecodeError::new(format!(
                "record seqs not strictly increasing at {seq}"
            )));
        }
        previous = seq;
        match record {
            Record::Event(e) if e.payload.category() != e.category => {
                return Err(DecodeError::new(format!(
                    "event {seq}: payload of {} under category {}",
                    e.payload.category(),
                    e.category
                )));
            }
            Record::Event(e) => {
                if let Payload::Packages(list) = &e.payload {
                    check_package_list(seq, list)?;
                }
                if let Some(field) = non_finite_float(&e.payload) {
                    return Err(DecodeError::new(format!(
                        "event {seq}: {field} is not a finite number"
                    )));
                }
            }
            Record::Gap(g) if g.count > 0 && g.first_seq > g.last_seq => {
                return Err(DecodeError::new(format!("gap {seq}: bad range")));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The shape rules of a package-list event the types cannot say.
fn check_package_list(seq: u64, list: &PackageList) -> Result<(), DecodeError> {
    if let PackageChange::Part { index, parts, .. } = &list.change {
        if *parts == 0 || *parts > MAX_PACKAGE_PARTS || index >= parts {
            return Err(DecodeError::new(format!(
                "event {seq}: package part {index} of {parts} (parts must be 1..={MAX_PACKAGE_PARTS})"
            )));
        }
    }
    Ok(())
}

/// The first float of a payload that is NaN or infinite. Postcard can carry one, JSON
/// cannot (serde_json writes it as `null`, which then fails to decode), and the
/// collector stores payloads as JSON: both encodings must refuse it alike.
fn non_finite_float(payload: &Payload) -> Option<String> {
    match payload {
        Payload::AppEvent(a) => a.attrs.iter().find_map(|(key, value)| match value {
            AttrValue::Float(f) if !f.is_finite() => Some(format!("attribute `{key}`")),
            _ => None,
        }),
        Payload::Location(l) => {
            let assent_platform::Field::Present(fix) = &l.fix else {
                return None;
            };
            let optional = |f: &assent_platform::Field<f64>| match f {
                assent_platform::Field::Present(v) => *v,
                _ => 0.0,
            };
            [
                ("latitude_deg", fix.latitude_deg),
                ("longitude_deg", fix.longitude_deg),
                ("altitude_m", optional(&fix.altitude_m)),
                ("speed_mps", optional(&fix.speed_mps)),
                ("track_deg", optional(&fix.track_deg)),
                ("horizontal_error_m", optional(&fix.horizontal_error_m)),
            ]
            .into_iter()
            .find(|(_, v)| !v.is_finite())
            .map(|(name, _)| format!("location fix `{name}`"))
        }
        _ => None,
    }
}

/// Decodes and validates an erasure request.
pub fn decode_erasure(bytes: &[u8], encoding: Encoding) -> Result<ErasureRequest, DecodeError> {
    check_version(bytes, encoding)?;
    let request: ErasureRequest = decode_raw(bytes, encoding)?;
    if request.categories.as_ref().is_some_and(Vec::is_empty) {
        return Err(DecodeError::new(
            "categories is empty; omit it (null) to erase everything",
        ));
    }
    Ok(request)
}

/// Decodes and validates an erasure request of version 1 or 2 (the collector side).
pub fn decode_erasure_any(bytes: &[u8], encoding: Encoding) -> Result<Erasure, DecodeError> {
    let version = check_version_in(
        bytes,
        encoding,
        &[PROTOCOL_VERSION, PROTOCOL_VERSION_FENCED_ERASURE],
    )?;
    let erasure = if version == PROTOCOL_VERSION {
        let r: ErasureRequest = decode_raw(bytes, encoding)?;
        Erasure {
            version,
            device: r.device,
            categories: r.categories,
            fences: Vec::new(),
        }
    } else {
        let r: ErasureRequestV2 = decode_raw(bytes, encoding)?;
        if r.fences.len() > MAX_FENCES {
            return Err(DecodeError::new(format!(
                "{} fences, more than the limit of {MAX_FENCES}",
                r.fences.len()
            )));
        }
        let mut ids: Vec<u64> = r.fences.iter().map(|f| f.buffer_id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(DecodeError::new("two fences for one buffer"));
        }
        Erasure {
            version,
            device: r.device,
            categories: r.categories,
            fences: r.fences,
        }
    };
    if erasure.categories.as_ref().is_some_and(Vec::is_empty) {
        return Err(DecodeError::new(
            "categories is empty; omit it (null) to erase everything",
        ));
    }
    Ok(erasure)
}

/// The reason of an error answer in either encoding (the client side), when it decodes.
pub fn decode_error_body(bytes: &[u8], encoding: Encoding) -> Option<String> {
    decode_raw::<ErrorBody>(bytes, encoding)
        .ok()
        .map(|e| e.error)
}

/// Decodes a batch acknowledgement (the client side).
pub fn decode_batch_ack(bytes: &[u8], encoding: Encoding) -> Result<BatchAck, DecodeError> {
    check_version(bytes, encoding)?;
    decode_raw(bytes, encoding)
}

/// Decodes an erasure acknowledgement (the client side).
pub fn decode_erasure_ack(bytes: &[u8], encoding: Encoding) -> Result<ErasureAck, DecodeError> {
    check_version(bytes, encoding)?;
    decode_raw(bytes, encoding)
}

#[cfg(test)]
mod tests;
