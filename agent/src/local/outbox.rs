//! What the agent remembers about sending, kept in the buffer's `meta` table so it is as
//! durable as the events: pending erasure requests, the pseudonym last sent under, a
//! bounded log of sent batches (for the owner's export), and metered-link usage.

use crate::local::buffer::BufferError;
use assent_platform::Category;
use assent_store::Store;
use assent_wire::{BufferFence, Pseudonym};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const ERASURE_QUEUE: &str = "erasure_queue";
const LAST_PSEUDONYM: &str = "last_pseudonym";
const SENT_LOG: &str = "sent_log";
const METERED_USAGE: &str = "metered_usage";
const PSEUDONYM_EPOCH: &str = "pseudonym_epoch";
const ERASURE_FENCES: &str = "erasure_fences";

/// Which pseudonym the current sending epoch belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PseudonymEpoch {
    device: Pseudonym,
    epoch: u64,
}

/// The buffer key sent with batches under `device`. A batch carries a different
/// pseudonym when consent for `device_id` changes (nothing is active while a required
/// category is refused); each change starts a new epoch and so a new key, which the
/// collector treats as a new (device, buffer) starting at the next seq. Without it a
/// pseudonym used again after a switch would resume behind a hole it can never fill.
pub fn wire_buffer_id(
    store: &Store,
    buffer_id: u64,
    device: &Pseudonym,
) -> Result<u64, BufferError> {
    let current: Option<PseudonymEpoch> = get(store, PSEUDONYM_EPOCH)?;
    let epoch = match current {
        Some(c) if &c.device == device => c.epoch,
        Some(c) => {
            let next = PseudonymEpoch {
                device: device.clone(),
                epoch: c.epoch + 1,
            };
            put(store, PSEUDONYM_EPOCH, &next)?;
            next.epoch
        }
        None => {
            put(
                store,
                PSEUDONYM_EPOCH,
                &PseudonymEpoch {
                    device: device.clone(),
                    epoch: 0,
                },
            )?;
            0
        }
    };
    Ok(epoch_buffer_id(buffer_id, epoch))
}

/// Epoch 0 keeps the store's own id; later epochs are spread over the id space.
fn epoch_buffer_id(buffer_id: u64, epoch: u64) -> u64 {
    buffer_id
        .wrapping_add(epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .max(1)
}

/// The most sent-batch entries kept.
pub const SENT_LOG_LIMIT: usize = 200;

/// An erasure the collector must be asked for, under the pseudonym that data was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureJob {
    pub device: Pseudonym,
    /// `None`: everything.
    pub categories: Option<Vec<Category>>,
    pub queued_at: String,
}

/// One batch the collector acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentBatch {
    pub at: String,
    pub device: Pseudonym,
    pub first_seq: u64,
    pub last_seq: u64,
    pub bytes: u64,
    /// Events per category (plus `gap` and `consent` records).
    pub counts: BTreeMap<String, u64>,
}

/// Bytes sent over metered links on one day (days since the epoch, UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeteredUsage {
    pub day: u64,
    pub bytes: u64,
}

fn get<T: for<'de> Deserialize<'de>>(
    store: &Store,
    key: &'static str,
) -> Result<Option<T>, BufferError> {
    match store.get_meta(key)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| BufferError::Meta(key, e)),
        None => Ok(None),
    }
}

fn put<T: Serialize>(store: &Store, key: &'static str, value: &T) -> Result<(), BufferError> {
    let bytes = serde_json::to_vec(value).map_err(|e| BufferError::Meta(key, e))?;
    Ok(store.set_meta(key, &bytes)?)
}

pub fn erasure_queue(store: &Store) -> Result<Vec<ErasureJob>, BufferError> {
    Ok(get(store, ERASURE_QUEUE)?.unwrap_or_default())
}

/// Queues an erasure durably; it is sent before any further batch. Its fence (protocol
/// v2) is taken now, before the caller purges: the last seq assigned in the buffer the
/// job's pseudonym sends under.
pub fn queue_erasure(store: &Store, job: ErasureJob) -> Result<(), BufferError> {
    let erases_software = job
        .categories
        .as_ref()
        .is_none_or(|c| c.contains(&Category::Software));
    if erases_software {
        crate::collect::inventory::forget(store)?;
    }
    let mut queue = erasure_queue(store)?;
    if !queue.contains(&job) {
        let mut fences: Vec<(ErasureJob, Vec<BufferFence>)> =
            get(store, ERASURE_FENCES)?.unwrap_or_default();
        let current: Option<PseudonymEpoch> = get(store, PSEUDONYM_EPOCH)?;
        if let Some(epoch) = current.filter(|c| c.device == job.device) {
            let buffer_id = store.buffer_id()?;
            let last_seq = store.stats()?.last_seq;
            fences.push((
                job.clone(),
                vec![BufferFence {
                    buffer_id: epoch_buffer_id(buffer_id, epoch.epoch),
                    last_seq,
                }],
            ));
            put(store, ERASURE_FENCES, &fences)?;
        }
        queue.push(job);
    }
    put(store, ERASURE_QUEUE, &queue)
}

/// The fences taken when `job` was queued (none for a job queued by an older agent).
pub fn erasure_fences(store: &Store, job: &ErasureJob) -> Result<Vec<BufferFence>, BufferError> {
    let fences: Vec<(ErasureJob, Vec<BufferFence>)> =
        get(store, ERASURE_FENCES)?.unwrap_or_default();
    Ok(fences
        .into_iter()
        .find(|(j, _)| j == job)
        .map(|(_, f)| f)
        .unwrap_or_default())
}

/// Removes the first queued erasure once the collector confirmed it.
pub fn erasure_done(store: &Store, job: &ErasureJob) -> Result<(), BufferError> {
    let mut queue = erasure_queue(store)?;
    if let Some(i) = queue.iter().position(|j| j == job) {
        queue.remove(i);
    }
    let mut fences: Vec<(ErasureJob, Vec<BufferFence>)> =
        get(store, ERASURE_FENCES)?.unwrap_or_default();
    if let Some(i) = fences.iter().position(|(j, _)| j == job) {
        fences.remove(i);
        put(store, ERASURE_FENCES, &fences)?;
    }
    put(store, ERASURE_QUEUE, &queue)
}

/// The pseudonym batches were last sent under: erasures for data already sent must
/// name it, even when the identity has changed since.
pub fn last_pseudonym(store: &Store) -> Result<Option<Pseudonym>, BufferError> {
    get(store, LAST_PSEUDONYM)
}

pub fn set_last_pseudonym(store: &Store, pseudonym: &Pseudonym) -> Result<(), BufferError> {
    if last_pseudonym(store)?.as_ref() == Some(pseudonym) {
        return Ok(());
    }
    put(store, LAST_PSEUDONYM, pseudonym)
}

pub fn sent_log(store: &Store) -> Result<Vec<SentBatch>, BufferError> {
    Ok(get(store, SENT_LOG)?.unwrap_or_default())
}

pub fn record_sent(store: &Store, entry: SentBatch) -> Result<(), BufferError> {
    let mut log = sent_log(store)?;
    log.push(entry);
    let excess = log.len().saturating_sub(SENT_LOG_LIMIT);
    log.drain(..excess);
    put(store, SENT_LOG, &log)
}

/// Forgets what was sent (the owner's erasure).
pub fn clear_sent_log(store: &Store) -> Result<(), BufferError> {
    put(store, SENT_LOG, &Vec::<SentBatch>::new())
}

pub fn metered_usage(store: &Store) -> Result<MeteredUsage, BufferError> {
    Ok(get(store, METERED_USAGE)?.unwrap_or_default())
}

pub fn add_metered_bytes(store: &Store, day: u64, bytes: u64) -> Result<MeteredUsage, BufferError> {
    let mut usage = metered_usage(store)?;
    if usage.day != day {
        usage = MeteredUsage { day, bytes: 0 };
    }
    usage.bytes = usage.bytes.saturating_add(bytes);
    put(store, METERED_USAGE, &usage)?;
    Ok(usage)
}
