//! The uploader: everything accepted reaches the collector exactly once, nothing is sent
//! that consent does not cover, and metered links are spared.
//!
//! One batch is in flight at a time, from `Store::next_batch`; the collector's ack
//! advances the store. Before each batch the consent file is read again: events of
//! categories no longer active are purged, not sent, and queued erasure requests are
//! sent before any further batch. The batch carries a pseudonym derived from hardware
//! identifiers only while `device_id` is active.

pub mod backoff;
pub mod connectivity;
pub mod driver;
pub mod http;
pub mod tls;

use crate::collect::identity::{Identity, IdentityError, LoadError};
use crate::collect::{PlatformReaders, Readers};
use crate::config::{Config, MeteredPolicy};
use crate::consent::{self, ConsentView};
use crate::local::buffer;
use crate::local::outbox::{self, ErasureJob, SentBatch};
use crate::sync::connectivity::Connectivity;
use assent_platform::{Category, Facts, Root};
use assent_store::{GapReason as StoreGapReason, Record as StoredRecord, Store};
use assent_wire::{
    self as wire, Batch, Encoding, Gap, GapReason, Payload, Pseudonym, Record, PROTOCOL_VERSION,
};
use http::{HttpClient, Response, Timeouts, TransportError};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Events per batch to start with (halved on 413).
pub const DEFAULT_BATCH_EVENTS: usize = 1000;
/// Bytes of stored events per batch to start with (halved on 413).
pub const DEFAULT_BATCH_BYTES: u64 = 1 << 20;
/// Dead-lettered batches kept in the state directory.
pub const DEAD_LETTER_LIMIT: usize = 32;

/// What one step of the uploader did.
#[derive(Debug)]
pub enum Step {
    /// Nothing is queued.
    Idle,
    /// A batch was acknowledged.
    Sent {
        events: u64,
        bytes: u64,
        acked_through: u64,
    },
    /// A queued erasure request was confirmed.
    Erased { device: Pseudonym, events: u64 },
    /// A batch the collector refuses for good was moved to the dead-letter directory.
    DeadLettered { path: PathBuf, reason: String },
    /// Sending is not allowed now (metered link, no collector).
    Deferred(String),
    /// A transient failure: try again after a backoff (at least `retry_after`).
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
}

/// Why the uploader could not be set up or could not take a step (a step's error
/// becomes [`Step::Retry`]).
#[derive(Debug)]
pub enum SyncError {
    /// The config at this path has no `[collector]` section.
    NoCollector(PathBuf),
    /// The TLS client configuration could not be built.
    Tls(tls::TlsError),
    /// The token file could not be read.
    TokenFile(PathBuf, std::io::Error),
    /// The buffer failed.
    Buffer(buffer::BufferError),
    /// The device identity could not be loaded.
    Identity(LoadError),
    /// No pseudonym could be derived.
    Pseudonym(IdentityError),
    /// A message could not be encoded, or an answer of the collector (`what`) decoded.
    Wire(Option<&'static str>, wire::DecodeError),
    /// A dead-lettered batch could not be kept at this path.
    DeadLetter(PathBuf, std::io::Error),
    /// A dead-lettered batch could not be written as JSON.
    DeadLetterJson(serde_json::Error),
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncError::NoCollector(config) => write!(
                f,
                "{}: no [collector] section: nothing can be sent",
                config.display()
            ),
            SyncError::Tls(e) => std::fmt::Display::fmt(e, f),
            SyncError::TokenFile(path, e) => {
                write!(f, "collector.token_file: {}: {e}", path.display())
            }
            SyncError::DeadLetter(path, e) => write!(f, "{}: {e}", path.display()),
            SyncError::Buffer(e) => std::fmt::Display::fmt(e, f),
            SyncError::Identity(e) => std::fmt::Display::fmt(e, f),
            SyncError::Pseudonym(e) => std::fmt::Display::fmt(e, f),
            SyncError::Wire(None, e) => std::fmt::Display::fmt(e, f),
            SyncError::Wire(Some(what), e) => write!(f, "{what}: {e}"),
            SyncError::DeadLetterJson(e) => std::fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for SyncError {}

impl From<buffer::BufferError> for SyncError {
    fn from(e: buffer::BufferError) -> SyncError {
        SyncError::Buffer(e)
    }
}

impl From<assent_store::StoreError> for SyncError {
    fn from(e: assent_store::StoreError) -> SyncError {
        SyncError::Buffer(buffer::BufferError::Store(e))
    }
}

/// Why a stored event cannot be sent (it is reported as a gap instead).
#[derive(Debug)]
enum UnsendableEvent {
    Consent(buffer::BufferError),
    Category(assent_platform::category::UnknownCategory),
    Payload(wire::DecodeError),
    /// The payload's category is not the one it was stored under.
    Mismatch {
        payload: Category,
        stored: Category,
    },
}

impl std::fmt::Display for UnsendableEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnsendableEvent::Consent(e) => std::fmt::Display::fmt(e, f),
            UnsendableEvent::Category(e) => std::fmt::Display::fmt(e, f),
            UnsendableEvent::Payload(e) => std::fmt::Display::fmt(e, f),
            UnsendableEvent::Mismatch { payload, stored } => {
                write!(f, "payload of {payload} stored as {stored}")
            }
        }
    }
}

/// The uploader for one collector.
pub struct Uploader<'a> {
    config: &'a Config,
    store: &'a Store,
    client: HttpClient,
    token: Option<String>,
    encoding: Encoding,
    /// The collector answered a v2 erasure with "unsupported protocol version": send v1
    /// (without fences) for the rest of this uploader's life.
    erasure_v1_only: bool,
    max_events: usize,
    max_bytes: u64,
    /// Allow a metered link whatever `sync.metered` says (a technician's explicit flush).
    pub allow_metered: bool,
}

impl std::fmt::Debug for Uploader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Uploader({:?})", self.client)
    }
}

impl<'a> Uploader<'a> {
    pub fn new(config: &'a Config, store: &'a Store) -> Result<Uploader<'a>, SyncError> {
        let collector = config
            .collector
            .as_ref()
            .ok_or_else(|| SyncError::NoCollector(config.path.clone()))?;
        let tls = tls::client_config(collector).map_err(SyncError::Tls)?;
        let token = match &collector.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| SyncError::TokenFile(path.clone(), e))?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        Ok(Uploader {
            config,
            store,
            client: HttpClient::new(
                &collector.host,
                collector.port,
                &collector.path,
                tls,
                Timeouts::default(),
            ),
            token,
            encoding: Encoding::Postcard,
            erasure_v1_only: false,
            max_events: DEFAULT_BATCH_EVENTS,
            max_bytes: DEFAULT_BATCH_BYTES,
            allow_metered: false,
        })
    }

    /// Uses a batch size other than the default (benchmarks, tests).
    pub fn set_batch_limits(&mut self, max_events: usize, max_bytes: u64) {
        // Room for the events asked for, whatever their size (up to the collector's
        // body limit, which answers 413 and halves the batch if exceeded).
        self.max_events = max_events.max(1);
        self.max_bytes = max_bytes.max(1);
    }

    /// One step: apply consent, send one queued erasure or one batch.
    pub async fn step(&mut self) -> Step {
        match self.try_step().await {
            Ok(step) => step,
            Err(e) => Step::Retry {
                reason: e.to_string(),
                retry_after: None,
            },
        }
    }

    async fn try_step(&mut self) -> Result<Step, SyncError> {
        let view = self.apply_consent()?;
        if let Some(reason) = self.metered_block()? {
            return Ok(Step::Deferred(reason));
        }
        if let Some(job) = outbox::erasure_queue(self.store)?.into_iter().next() {
            return self.send_erasure(job).await;
        }
        let Some(stored) = self.store.next_batch(self.max_events, self.max_bytes)? else {
            return Ok(Step::Idle);
        };
        let device = self.pseudonym(&view)?;
        let buffer_id = outbox::wire_buffer_id(self.store, self.store.buffer_id()?, &device)?;
        let batch = to_wire_batch(&device, buffer_id, stored);
        // Consent is checked again right before anything is sent.
        let now = consent::load(self.config).1;
        if let Some(category) = batch_categories(&batch).find(|c| !now.is_active(*c)) {
            log::info!("consent for {category} changed while preparing a batch; purging first");
            self.apply_consent()?;
            return Box::pin(self.try_step()).await;
        }
        let body = wire::encode(&batch, self.encoding).map_err(|e| SyncError::Wire(None, e))?;
        let response = match self
            .client
            .post(
                wire::PATH_BATCHES,
                self.encoding.content_type(),
                body,
                self.token.as_deref(),
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return Ok(transport_retry(&mut self.client, e)),
        };
        let bytes = response.sent_bytes;
        self.count_metered(bytes)?;
        self.handle_batch_response(&device, &batch, bytes, response)
    }

    /// Reads consent, logs changes, purges what is no longer allowed.
    fn apply_consent(&self) -> Result<ConsentView, SyncError> {
        let (source, view) = consent::load(self.config);
        if let Some(problem) = source.problem() {
            log::warn!("{problem}");
        }
        buffer::apply_consent(self.config, self.store, &view)?;
        Ok(view)
    }

    /// The pseudonym for this batch: from hardware identifiers only while `device_id`
    /// is active; otherwise from the install id, and no identifier is read.
    fn pseudonym(&self, view: &ConsentView) -> Result<Pseudonym, SyncError> {
        let identity = Identity::load(self.config).map_err(SyncError::Identity)?;
        let ids = if view.is_active(Category::DeviceId) {
            match PlatformReaders::new(Root::live(), self.config).read(Category::DeviceId) {
                Some(Facts::DeviceId(ids)) => Some(ids),
                _ => None,
            }
        } else {
            None
        };
        match identity.pseudonym(ids.as_ref()) {
            Ok((p, _)) => Ok(p),
            Err(e) => {
                log::warn!("{e}; sending under the install pseudonym");
                identity
                    .pseudonym(None)
                    .map(|(p, _)| p)
                    .map_err(SyncError::Pseudonym)
            }
        }
    }

    async fn send_erasure(&mut self, job: ErasureJob) -> Result<Step, SyncError> {
        let mut response = self.post_erasure(&job).await?;
        if !self.erasure_v1_only {
            if let Ok(r) = &response {
                if is_v1_only_answer(r, self.encoding) {
                    log::info!("the collector speaks protocol v1 only: erasing without fences");
                    self.erasure_v1_only = true;
                    response = self.post_erasure(&job).await?;
                }
            }
        }
        let response = match response {
            Ok(r) => r,
            Err(e) => return Ok(transport_retry(&mut self.client, e)),
        };
        self.erasure_answer(job, response)
    }

    /// Posts `job` as v2 with its fences, or as v1 once the collector said it speaks v1.
    async fn post_erasure(
        &mut self,
        job: &ErasureJob,
    ) -> Result<Result<Response, TransportError>, SyncError> {
        let body = if self.erasure_v1_only {
            let request = wire::ErasureRequest {
                version: PROTOCOL_VERSION,
                device: job.device.clone(),
                categories: job.categories.clone(),
            };
            wire::encode(&request, self.encoding)
        } else {
            let request = wire::ErasureRequestV2 {
                version: wire::PROTOCOL_VERSION_FENCED_ERASURE,
                device: job.device.clone(),
                categories: job.categories.clone(),
                fences: outbox::erasure_fences(self.store, job)?,
            };
            wire::encode(&request, self.encoding)
        }
        .map_err(|e| SyncError::Wire(None, e))?;
        Ok(self
            .client
            .post(
                wire::PATH_ERASURE,
                self.encoding.content_type(),
                body,
                self.token.as_deref(),
            )
            .await)
    }

    fn erasure_answer(&mut self, job: ErasureJob, response: Response) -> Result<Step, SyncError> {
        match response.status {
            200 => {
                let encoding = response_encoding(&response, self.encoding);
                let ack = wire::decode_erasure_ack(&response.body, encoding)
                    .map_err(|e| SyncError::Wire(Some("collector's erasure answer"), e))?;
                outbox::erasure_done(self.store, &job)?;
                log::info!(
                    "collector erased {} events of {} ({})",
                    ack.erased_events,
                    job.device,
                    describe_categories(&job.categories)
                );
                Ok(Step::Erased {
                    device: job.device,
                    events: ack.erased_events,
                })
            }
            status => Ok(status_retry(status, &response, "erasure request")),
        }
    }

    fn handle_batch_response(
        &mut self,
        device: &Pseudonym,
        batch: &Batch,
        bytes: u64,
        response: Response,
    ) -> Result<Step, SyncError> {
        match response.status {
            200 => {
                let encoding = response_encoding(&response, self.encoding);
                let ack = wire::decode_batch_ack(&response.body, encoding)
                    .map_err(|e| SyncError::Wire(Some("collector's answer"), e))?;
                let through = ack.acked_through.min(batch.last_seq);
                let before = self.store.stats()?.acked_through;
                if through > before {
                    self.store.ack(through)?;
                }
                outbox::set_last_pseudonym(self.store, device)?;
                let events = batch
                    .records
                    .iter()
                    .filter(|r| matches!(r, Record::Event(_)) && r.seq() <= through)
                    .count() as u64;
                outbox::record_sent(self.store, sent_entry(device, batch, bytes))?;
                if through < batch.last_seq {
                    // The collector is missing something before this batch: resend from
                    // where it stands.
                    return Ok(Step::Retry {
                        reason: format!(
                            "collector acknowledged through {through} of {}..={}",
                            batch.first_seq, batch.last_seq
                        ),
                        retry_after: None,
                    });
                }
                Ok(Step::Sent {
                    events,
                    bytes,
                    acked_through: through,
                })
            }
            413 if batch.records.len() > 1 => {
                self.max_events = (batch.records.len() / 2).max(1);
                self.max_bytes = (self.max_bytes / 2).max(1);
                log::warn!(
                    "collector says the batch is too large; sending at most {} records",
                    self.max_events
                );
                Ok(Step::Retry {
                    reason: "batch too large".to_string(),
                    retry_after: Some(Duration::ZERO),
                })
            }
            status @ (400 | 404 | 405 | 413 | 415 | 422) => {
                self.dead_letter(batch, status, &response)
            }
            status => Ok(status_retry(status, &response, "batch")),
        }
    }

    /// Moves a batch the collector refuses for good out of the queue, keeping it in the
    /// dead-letter directory (bounded), with a clear log line.
    fn dead_letter(
        &mut self,
        batch: &Batch,
        status: u16,
        response: &Response,
    ) -> Result<Step, SyncError> {
        let reason = format!(
            "collector rejected batch {}..={} with {status}: {}",
            batch.first_seq,
            batch.last_seq,
            error_text(response)
        );
        let dir = self.config.state_dir.join("dead-letter");
        crate::unix::fsutil::ensure_private_dir(&dir)
            .map_err(|e| SyncError::DeadLetter(dir.clone(), e))?;
        let path = dir.join(format!(
            "{}-{}-{}.json",
            now_ms(),
            batch.first_seq,
            batch.last_seq
        ));
        let doc = serde_json::json!({"status": status, "reason": reason, "batch": batch});
        let text = serde_json::to_vec_pretty(&doc).map_err(SyncError::DeadLetterJson)?;
        crate::unix::fsutil::write_atomic(&path, &text, 0o600)
            .map_err(|e| SyncError::DeadLetter(path.clone(), e))?;
        prune_dead_letters(&dir);
        self.store.ack(batch.last_seq)?;
        log::error!("{reason}; kept in {}", path.display());
        Ok(Step::DeadLettered { path, reason })
    }

    /// Whether the current default route is metered and the policy forbids sending.
    fn metered_block(&self) -> Result<Option<String>, SyncError> {
        if self.allow_metered {
            return Ok(None);
        }
        let Some(interface) = metered_route(self.config) else {
            return Ok(None);
        };
        match self.config.sync.metered {
            MeteredPolicy::Allow => Ok(None),
            MeteredPolicy::Defer => Ok(Some(format!(
                "the default route is over metered {interface}; sync.metered = \"defer\""
            ))),
            MeteredPolicy::MaxBytesPerDay(limit) => {
                let usage = outbox::metered_usage(self.store)?;
                if usage.day == today() && usage.bytes >= limit {
                    Ok(Some(format!(
                        "{} bytes sent over metered {interface} today, limit {limit}",
                        usage.bytes
                    )))
                } else {
                    Ok(None)
                }
            }
        }
    }

    fn count_metered(&self, bytes: u64) -> Result<(), SyncError> {
        if metered_route(self.config).is_some() {
            outbox::add_metered_bytes(self.store, today(), bytes)?;
        }
        Ok(())
    }
}

/// The metered interface carrying the default route, if the route is metered.
pub fn metered_route(config: &Config) -> Option<String> {
    let now = Connectivity::read(&Root::live(), config);
    now.route_interface.filter(|_| now.metered)
}

fn today() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// What a v1-only collector answers a v2 body: 400 "unsupported protocol version ..."
/// (docs/protocol.md, "Fallback").
fn is_v1_only_answer(response: &Response, sent: Encoding) -> bool {
    response.status == 400
        && wire::decode_error_body(&response.body, response_encoding(response, sent))
            .is_some_and(|reason| wire::is_unsupported_version(&reason))
}

fn response_encoding(response: &Response, sent: Encoding) -> Encoding {
    response
        .content_type
        .as_deref()
        .and_then(Encoding::from_content_type)
        .unwrap_or(sent)
}

fn error_text(response: &Response) -> String {
    serde_json::from_slice::<wire::ErrorBody>(&response.body)
        .map(|e| e.error)
        .unwrap_or_else(|_| {
            String::from_utf8_lossy(&response.body[..response.body.len().min(200)]).to_string()
        })
}

fn transport_retry(client: &mut HttpClient, error: TransportError) -> Step {
    client.disconnect();
    if matches!(error, TransportError::Tls(_)) {
        log::error!(
            "{error}: the collector's certificate is not trusted or does not match its name; nothing was sent"
        );
    }
    Step::Retry {
        reason: error.to_string(),
        retry_after: None,
    }
}

fn status_retry(status: u16, response: &Response, what: &str) -> Step {
    let detail = error_text(response);
    let reason = match status {
        401 | 403 => {
            log::error!("collector refused our credentials ({status}: {detail}): check collector.client_cert_file or token_file");
            format!("credentials rejected ({status})")
        }
        429 => format!("collector overloaded (429): {detail}"),
        503 => format!("collector unavailable (503): {detail}"),
        other => format!("{what} answered {other}: {detail}"),
    };
    Step::Retry {
        reason,
        retry_after: response.retry_after,
    }
}

fn describe_categories(categories: &Option<Vec<Category>>) -> String {
    match categories {
        None => "all categories".to_string(),
        Some(list) => list.iter().map(|c| c.name()).collect::<Vec<_>>().join(", "),
    }
}

fn batch_categories(batch: &Batch) -> impl Iterator<Item = Category> + '_ {
    batch.records.iter().filter_map(|r| match r {
        Record::Event(e) => Some(e.category),
        _ => None,
    })
}

fn sent_entry(device: &Pseudonym, batch: &Batch, bytes: u64) -> SentBatch {
    let mut counts = BTreeMap::new();
    for record in &batch.records {
        let key = match record {
            Record::Event(e) => e.category.name().to_string(),
            Record::Gap(_) => "gap".to_string(),
            Record::Consent(_) => "consent".to_string(),
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    SentBatch {
        at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        device: device.clone(),
        first_seq: batch.first_seq,
        last_seq: batch.last_seq,
        bytes,
        counts,
    }
}

fn prune_dead_letters(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let excess = files.len().saturating_sub(DEAD_LETTER_LIMIT);
    for old in &files[..excess] {
        log::warn!(
            "dead-letter directory full ({DEAD_LETTER_LIMIT} batches): removing {}",
            old.display()
        );
        let _ = std::fs::remove_file(old);
    }
}

/// Turns a stored batch into a wire batch. A stored event that cannot be decoded is
/// reported as a gap rather than sent or dropped.
pub fn to_wire_batch(device: &Pseudonym, buffer_id: u64, stored: assent_store::Batch) -> Batch {
    let records = stored
        .records
        .into_iter()
        .map(|record| match record {
            StoredRecord::Event(e) => {
                let seq = e.seq;
                event_record(e).unwrap_or_else(|reason| {
                    log::error!("stored event {seq} cannot be sent ({reason}); reporting a gap");
                    Record::Gap(Gap {
                        seq,
                        first_seq: seq,
                        last_seq: seq,
                        count: 1,
                        reason: GapReason::Undecodable,
                        category: None,
                    })
                })
            }
            StoredRecord::Gap(g) => Record::Gap(Gap {
                seq: g.seq,
                first_seq: g.first_seq,
                last_seq: g.last_seq,
                count: g.count,
                reason: match g.reason {
                    StoreGapReason::Evicted => GapReason::Evicted,
                    StoreGapReason::Expired => GapReason::Expired,
                    StoreGapReason::Purged => GapReason::Purged,
                    StoreGapReason::BufferReset => GapReason::BufferReset,
                    StoreGapReason::DiskFull => GapReason::DiskFull,
                },
                category: g.category.and_then(|c| c.parse().ok()),
            }),
        })
        .collect();
    Batch {
        version: PROTOCOL_VERSION,
        device: device.clone(),
        buffer_id,
        first_seq: stored.first_seq,
        last_seq: stored.last_seq,
        records,
    }
}

fn event_record(e: assent_store::StoredEvent) -> Result<Record, UnsendableEvent> {
    if e.category == buffer::CONSENT_CATEGORY {
        let entry = buffer::decode_consent(&e.payload).map_err(UnsendableEvent::Consent)?;
        return Ok(Record::Consent(wire::ConsentChange {
            seq: e.seq,
            observed_at: entry.observed_at,
            category: entry.category,
            active: entry.active,
            state: entry.state,
            by: entry.by,
            at: entry.at,
            policy_version: entry.policy_version,
        }));
    }
    let category: Category = e.category.parse().map_err(UnsendableEvent::Category)?;
    let payload = Payload::from_postcard(&e.payload).map_err(UnsendableEvent::Payload)?;
    if payload.category() != category {
        return Err(UnsendableEvent::Mismatch {
            payload: payload.category(),
            stored: category,
        });
    }
    Ok(Record::Event(wire::Event {
        seq: e.seq,
        category,
        kind: e.kind,
        wall_time_ms: e.wall_time_ms,
        boot_id: wire::BootId(e.boot_id),
        monotonic_ns: e.monotonic_ns,
        payload,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer a v1-only collector gives a v2 erasure is built here as that collector
    /// builds it: its reason from the v1-only decoder, its body an `ErrorBody` in the
    /// request's encoding.
    #[test]
    fn a_v1_only_answer_is_told_from_other_refusals() {
        let v2 = wire::ErasureRequestV2 {
            version: wire::PROTOCOL_VERSION_FENCED_ERASURE,
            device: Pseudonym::parse("abcdefghijklmnopqrstuvwxyz").unwrap(),
            categories: None,
            fences: vec![],
        };
        for encoding in [Encoding::Postcard, Encoding::Json] {
            let reason = wire::decode_erasure(&wire::encode(&v2, encoding).unwrap(), encoding)
                .unwrap_err()
                .0;
            let answer = |status: u16, error: &str| Response {
                sent_bytes: 0,
                status,
                content_type: Some(encoding.content_type().to_string()),
                retry_after: None,
                body: wire::encode(
                    &wire::ErrorBody {
                        error: error.to_string(),
                    },
                    encoding,
                )
                .unwrap(),
            };
            assert!(is_v1_only_answer(&answer(400, &reason), encoding));
            assert!(!is_v1_only_answer(
                &answer(400, "categories is empty"),
                encoding
            ));
            assert!(!is_v1_only_answer(&answer(500, &reason), encoding));
        }
    }
}
