//! The owner's rights over what is held on the device: a readable export of everything,
//! and erasure (local, and optionally at the collector).

use crate::consent;
use crate::local::buffer::{self, BufferError};
use crate::local::outbox::{self, ErasureJob};
use assent_store::{Record, Store};
use assent_wire::Payload;
use serde_json::{json, Value};
use std::time::SystemTime;

/// Everything held locally, as one JSON document a person can read: queued events with
/// their data, the consent decisions and their history, what was sent and when, pending
/// erasure requests and dead-lettered batches.
pub fn export(config: &crate::config::Config, store: &Store) -> Result<Value, BufferError> {
    let (_, view) = consent::load(config);
    let records = store.export().map_err(buffer::store_error)?;
    let queued: Vec<Value> = records.into_iter().map(record_json).collect();
    let stats = store.stats().map_err(buffer::store_error)?;
    let dead_letter: Vec<String> = std::fs::read_dir(config.state_dir.join("dead-letter"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path().display().to_string()))
                .collect()
        })
        .unwrap_or_default();
    Ok(json!({
        "exported_at": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        "note": "everything Assent holds on this device; raw hardware identifiers are never stored",
        "device": {
            "pseudonym_last_sent": outbox::last_pseudonym(store)?,
        },
        "consent": {
            "current": view,
            "history": consent::log::read_all(&config.state_dir)
                .map_err(|e| BufferError::Io(config.state_dir.clone(), e))?,
        },
        "buffer": {
            "queued_events": stats.count,
            "gap_records": stats.gaps,
            "file_bytes": stats.file_bytes,
            "acked_through": stats.acked_through,
        },
        "queued": queued,
        "sent_batches": outbox::sent_log(store)?,
        "pending_erasure_requests": outbox::erasure_queue(store)?,
        "dead_letter_batches": dead_letter,
    }))
}

fn record_json(record: Record) -> Value {
    match record {
        Record::Event(e) => {
            let data = if e.category == buffer::CONSENT_CATEGORY {
                buffer::decode_consent(&e.payload)
                    .map(|c| json!(c))
                    .unwrap_or_else(|err| json!({ "undecodable": err.to_string() }))
            } else {
                Payload::from_postcard(&e.payload)
                    .map(|p| p.to_json())
                    .unwrap_or_else(|err| json!({ "undecodable": err.to_string() }))
            };
            json!({
                "seq": e.seq,
                "category": e.category,
                "kind": e.kind,
                "recorded_at": format_ms(e.wall_time_ms),
                "data": data,
            })
        }
        Record::Gap(g) => json!({
            "seq": g.seq,
            "gap": {
                "first_seq": g.first_seq,
                "last_seq": g.last_seq,
                "count": g.count,
                "reason": format!("{:?}", g.reason).to_lowercase(),
                "category": g.category,
            }
        }),
    }
}

fn format_ms(ms: i64) -> String {
    let secs = u64::try_from(ms / 1000).unwrap_or(0);
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

/// What an erasure did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Erased {
    pub events_deleted: u64,
    /// Entries of the log of batches already sent (what `export` lists as sent).
    pub sent_batches_forgotten: u64,
    /// Batch files the collector refused for good, kept for inspection until now.
    pub dead_letter_files_deleted: u64,
    pub remote_requested: bool,
}

/// Deletes every queued event (gap records say so to the collector, so its accounting
/// stays whole), the log of sent batches and dead-lettered batches. With `remote`, an
/// erasure of everything is queued for the collector under the pseudonym data was sent
/// with. The consent file and its history are kept: they are the legal basis.
pub fn erase(
    config: &crate::config::Config,
    store: &Store,
    remote: bool,
) -> Result<Erased, BufferError> {
    let mut erased = Erased::default();
    if remote {
        if let Some(device) = outbox::last_pseudonym(store)? {
            outbox::queue_erasure(
                store,
                ErasureJob {
                    device,
                    categories: None,
                    queued_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
                },
            )?;
            erased.remote_requested = true;
        }
    }
    let categories: Vec<String> = store
        .stats()
        .map_err(buffer::store_error)?
        .per_category
        .into_keys()
        .collect();
    for category in categories {
        erased.events_deleted += store
            .purge_category(&category)
            .map_err(buffer::store_error)?;
    }
    erased.sent_batches_forgotten = outbox::sent_log(store)?.len() as u64;
    outbox::clear_sent_log(store)?;
    let dead = config.state_dir.join("dead-letter");
    if let Ok(files) = std::fs::read_dir(&dead) {
        erased.dead_letter_files_deleted = files.count() as u64;
        std::fs::remove_dir_all(&dead).map_err(|e| BufferError::Io(dead.clone(), e))?;
    }
    Ok(erased)
}
