//! The package list of the `software` category, sent so that it arrives whole whatever
//! the buffer size: a full snapshot split into parts that each fit the store's event
//! limit, then deltas against the last list, with a full snapshot again whenever the
//! base may not reach the collector (docs/protocol.md, "Package inventories").
//!
//! The agent only compresses (raw DEFLATE, the code its gzip bodies already link) and
//! never inflates. It remembers the last list as one 64-bit hash per package (8 bytes a
//! package in the buffer's `meta`), which is enough to compute a delta: the collector
//! names removed packages by the same hash.

use crate::local::buffer::{self, BufferError, Timestamp};
use assent_platform::software::{Package, Software};
use assent_platform::Field;
use assent_store::{NewEvent, Store};
use assent_wire::{package_hash, package_list_digest, PackageChange, PackageList, Payload};
use std::io::Write;

/// The `meta` key of the last list's state.
pub const STATE_KEY: &str = "inventory:software";
/// The event kind of package-list events.
pub const KIND: &str = "packages";
/// After this many deltas the next change is sent as a full snapshot, so a collector
/// never needs a long chain.
const MAX_DELTAS: u32 = 32;
/// A full snapshot is sent at least this often even when deltas would do.
const FULL_EVERY_S: u64 = 7 * 24 * 3600;
/// Bytes of an event beyond its packages: fixed fields, category, kind, the list header.
const EVENT_OVERHEAD: u64 = 192;

/// What the agent keeps of the last list it stored. Encoded by hand (fixed fields, then
/// the two u64 arrays) rather than with serde: the derived code costs flash.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    buffer_id: u64,
    pseudonym: String,
    list_id: u64,
    digest: [u8; 32],
    /// The seqs of the last full snapshot's parts and of every delta since: all must
    /// reach the collector for the next delta to apply.
    seqs: Vec<u64>,
    full_at_s: u64,
    deltas: u32,
    /// [`package_hash`] of each package of the list, sorted.
    hashes: Vec<u64>,
}

/// The software facts without their package list (which travels apart), built field by
/// field: cloning the whole payload would copy the list, and `Payload`'s `Clone` costs
/// flash the agent otherwise never spends.
fn without_packages(software: &Software) -> Payload {
    Payload::Software(Box::new(Software {
        package_manager: software.package_manager.clone(),
        packages: Field::Absent,
        package_count: software.package_count.clone(),
        malformed_entries: software.malformed_entries.clone(),
        running_programs: software.running_programs.clone(),
        process_count: software.process_count.clone(),
        malformed_process_names: software.malformed_process_names.clone(),
    }))
}

/// Package-list events to store, and the state to remember once they are.
#[derive(Debug)]
pub struct PackageEvents {
    pub events: Vec<NewEvent>,
    /// Whether `events` are a full snapshot (else one delta).
    pub full: bool,
    state: State,
}

/// The events that bring the collector's list to `packages` (sorted as the platform
/// sorts them), each within `max_event_bytes`; `None` when the list is unchanged.
pub fn plan(
    store: &Store,
    pseudonym: &str,
    packages: &[Package],
    at: Timestamp,
    max_event_bytes: u64,
) -> Result<Option<PackageEvents>, InventoryError> {
    let buffer_id = store.buffer_id().map_err(buffer::store_error)?;
    let previous = load(store)?;
    let digest = package_list_digest(packages);
    let now_s = u64::try_from(at.wall_time_ms / 1000).unwrap_or(0);
    let mut hashes: Vec<u64> = packages.iter().map(package_hash).collect();
    assent_platform::read::sort_by(&mut hashes, |a, b| a < b);
    let list_id = random_id()?;
    let budget = max_event_bytes.saturating_sub(EVENT_OVERHEAD);

    let base = match previous {
        Some(p)
            if p.buffer_id == buffer_id
                && p.pseudonym == pseudonym
                && p.deltas < MAX_DELTAS
                && now_s >= p.full_at_s
                && now_s - p.full_at_s < FULL_EVERY_S
                && store.seqs_intact(&p.seqs).map_err(buffer::store_error)? =>
        {
            Some(p)
        }
        _ => None,
    };
    if let Some(base) = base {
        if base.digest == digest {
            return Ok(None);
        }
        let removed: Vec<u64> = base
            .hashes
            .iter()
            .copied()
            .filter(|h| hashes.binary_search(h).is_err())
            .collect();
        let added: Vec<Package> = packages
            .iter()
            .filter(|p| base.hashes.binary_search(&package_hash(p)).is_err())
            .cloned()
            .collect();
        let payload = Payload::Packages(Box::new(PackageList {
            list_id,
            digest,
            package_count: packages.len() as u64,
            change: PackageChange::Delta {
                base: base.list_id,
                removed,
                added,
            },
        }));
        let event = buffer::payload_event(&payload, KIND, at)?;
        // A delta larger than a part is no cheaper than a snapshot: send the snapshot.
        if (event.payload.len() as u64) <= budget {
            let seqs = base.seqs;
            return Ok(Some(PackageEvents {
                events: vec![event],
                full: false,
                state: State {
                    buffer_id,
                    pseudonym: pseudonym.to_string(),
                    list_id,
                    digest,
                    seqs,
                    full_at_s: base.full_at_s,
                    deltas: base.deltas + 1,
                    hashes,
                },
            }));
        }
    }

    let chunks = split(packages, budget)?;
    let parts = u32::try_from(chunks.len())
        .ok()
        .filter(|parts| *parts <= assent_wire::MAX_PACKAGE_PARTS)
        .ok_or(InventoryError::TooManyParts(chunks.len()))?;
    let mut events = Vec::with_capacity(chunks.len());
    for (index, packages_deflate) in (0u32..).zip(chunks) {
        let payload = Payload::Packages(Box::new(PackageList {
            list_id,
            digest,
            package_count: packages.len() as u64,
            change: PackageChange::Part {
                index,
                parts,
                packages_deflate,
            },
        }));
        events.push(buffer::payload_event(&payload, KIND, at)?);
    }
    Ok(Some(PackageEvents {
        events,
        full: true,
        state: State {
            buffer_id,
            pseudonym: pseudonym.to_string(),
            list_id,
            digest,
            seqs: Vec::new(),
            full_at_s: now_s,
            deltas: 0,
            hashes,
        },
    }))
}

/// A collection's events, ready for one `append_many`.
#[derive(Debug)]
pub struct ToStore {
    /// The payloads' events, then the package-list events.
    pub events: Vec<NewEvent>,
    first_package: usize,
    packages: Option<PackageEvents>,
}

/// Why the package list could not be turned into events.
#[derive(Debug)]
pub enum InventoryError {
    /// The buffer failed.
    Buffer(BufferError),
    /// The list needs more parts than the protocol allows.
    TooManyParts(usize),
    /// One package alone does not fit an event of the buffer.
    PackageTooLarge(String),
    /// No randomness for a package list id.
    NoRandomness,
    /// Compressing a part failed.
    Compress(std::io::Error),
}

impl std::fmt::Display for InventoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InventoryError::Buffer(e) => std::fmt::Display::fmt(e, f),
            InventoryError::TooManyParts(parts) => write!(
                f,
                "the package list needs {parts} parts, more than {}",
                assent_wire::MAX_PACKAGE_PARTS
            ),
            InventoryError::PackageTooLarge(name) => {
                write!(f, "package {name} does not fit an event of the buffer")
            }
            InventoryError::NoRandomness => f.write_str("no randomness for a package list id"),
            InventoryError::Compress(e) => write!(f, "compressing the package list: {e}"),
        }
    }
}

impl std::error::Error for InventoryError {}

impl From<BufferError> for InventoryError {
    fn from(e: BufferError) -> InventoryError {
        InventoryError::Buffer(e)
    }
}

impl ToStore {
    /// Remembers the package list once `events` are stored under `seqs` (in order).
    pub fn stored(self, store: &Store, seqs: &[u64]) -> Result<(), BufferError> {
        match self.packages {
            Some(p) => p.stored(store, seqs.get(self.first_package..).unwrap_or_default()),
            None => Ok(()),
        }
    }
}

/// Every collected payload as an event, the software payload without its package list,
/// which becomes package-list events at the end. `keep` decides, per category, whether
/// a payload's event is stored (the daemon skips unchanged snapshots); the package list
/// has its own change rules.
pub fn events_of(
    store: &Store,
    collection: &super::Collection,
    at: Timestamp,
    max_bytes: u64,
    keep: &mut dyn FnMut(assent_platform::Category, &NewEvent) -> Result<bool, BufferError>,
) -> Result<ToStore, InventoryError> {
    let mut events = Vec::new();
    let mut packages = None;
    for (category, payload) in collection.collected() {
        let event = match payload {
            Payload::Software(software) => match &software.packages {
                Field::Present(list) => {
                    packages = plan(
                        store,
                        &collection.pseudonym_name(),
                        list,
                        at,
                        assent_store::max_event_bytes(max_bytes).unwrap_or(0),
                    )?;
                    buffer::payload_event(&without_packages(software), "snapshot", at)?
                }
                // A list that could not be read stays in the payload, as before.
                _ => buffer::payload_event(payload, "snapshot", at)?,
            },
            _ => buffer::payload_event(payload, "snapshot", at)?,
        };
        if keep(category, &event)? {
            events.push(event);
        }
    }
    let first_package = events.len();
    if let Some(p) = &mut packages {
        events.append(&mut p.events);
    }
    Ok(ToStore {
        events,
        first_package,
        packages,
    })
}

impl PackageEvents {
    /// Remembers the list once its events are stored under `seqs`.
    pub fn stored(self, store: &Store, seqs: &[u64]) -> Result<(), BufferError> {
        let mut state = self.state;
        state.seqs.extend_from_slice(seqs);
        store
            .set_meta(STATE_KEY, &state.encode())
            .map_err(buffer::store_error)
    }
}

impl State {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + 8 * (self.seqs.len() + self.hashes.len()));
        for n in [self.buffer_id, self.list_id, self.full_at_s] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.extend_from_slice(&self.digest);
        out.extend_from_slice(&self.deltas.to_be_bytes());
        for n in [self.pseudonym.len(), self.seqs.len(), self.hashes.len()] {
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        out.extend_from_slice(self.pseudonym.as_bytes());
        for n in self.seqs.iter().chain(&self.hashes) {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<State> {
        let mut rest = bytes;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = rest.split_at_checked(n)?;
            rest = tail;
            Some(head)
        };
        let mut u64s = [0u64; 3];
        for n in &mut u64s {
            *n = u64::from_be_bytes(take(8)?.try_into().ok()?);
        }
        let digest: [u8; 32] = take(32)?.try_into().ok()?;
        let mut u32s = [0u32; 4];
        for n in &mut u32s {
            *n = u32::from_be_bytes(take(4)?.try_into().ok()?);
        }
        let pseudonym = String::from_utf8(take(u32s[1] as usize)?.to_vec()).ok()?;
        let mut array = |len: u32| -> Option<Vec<u64>> {
            let bytes = take((len as usize).checked_mul(8)?)?;
            Some(
                bytes
                    .chunks_exact(8)
                    .map(|c| u64::from_be_bytes(c.try_into().unwrap_or_default()))
                    .collect(),
            )
        };
        let seqs = array(u32s[2])?;
        let hashes = array(u32s[3])?;
        if !rest.is_empty() {
            return None;
        }
        Some(State {
            buffer_id: u64s[0],
            list_id: u64s[1],
            full_at_s: u64s[2],
            digest,
            deltas: u32s[0],
            pseudonym,
            seqs,
            hashes,
        })
    }
}

/// Forgets the last list, so the next one is a full snapshot: called when the
/// collector is asked to erase the device's software.
pub fn forget(store: &Store) -> Result<(), BufferError> {
    store.set_meta(STATE_KEY, &[]).map_err(buffer::store_error)
}

fn load(store: &Store) -> Result<Option<State>, BufferError> {
    let bytes = store.get_meta(STATE_KEY).map_err(buffer::store_error)?;
    // An empty or undecodable state (forgotten, or from another version) means a full
    // snapshot next.
    Ok(bytes.and_then(|b| State::decode(&b)))
}

fn random_id() -> Result<u64, InventoryError> {
    let mut bytes = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| InventoryError::NoRandomness)?;
    Ok(u64::from_be_bytes(bytes))
}

/// The list in consecutive runs, each compressed to at most `budget` bytes. A run
/// starts at three times the budget of raw bytes (package lists deflate about four
/// times) and is halved until it fits.
fn split(packages: &[Package], budget: u64) -> Result<Vec<Vec<u8>>, InventoryError> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < packages.len() || (packages.is_empty() && out.is_empty()) {
        let mut end = start;
        let mut raw = 0u64;
        while end < packages.len() && (end == start || raw < budget.saturating_mul(3)) {
            raw += encoded_len(&packages[end]);
            end += 1;
        }
        loop {
            let compressed = deflate(&packages[start..end])?;
            if compressed.len() as u64 <= budget {
                out.push(compressed);
                break;
            }
            if end - start <= 1 {
                return Err(InventoryError::PackageTooLarge(
                    packages[start].name.clone(),
                ));
            }
            end = start + (end - start) / 2;
        }
        if packages.is_empty() {
            break;
        }
        start = end;
    }
    Ok(out)
}

fn encoded_len(p: &Package) -> u64 {
    let arch = p.architecture.as_ref().map_or(0, String::len);
    (p.name.len() + p.version.len() + arch + 8) as u64
}

fn deflate(packages: &[Package]) -> Result<Vec<u8>, InventoryError> {
    let mut raw = Vec::with_capacity(packages.len() * 40);
    assent_wire::encode_packages(packages, &mut raw);
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(&raw)
        .and_then(|()| encoder.finish())
        .map_err(InventoryError::Compress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use assent_store::StoreOptions;
    use std::io::Read;

    const SMALL_BUFFER: u64 = 256 * 1024;

    fn store(dir: &std::path::Path) -> Store {
        let options = StoreOptions {
            max_bytes: SMALL_BUFFER,
            ..StoreOptions::default()
        };
        Store::open(dir, options).unwrap().0
    }

    fn packages(n: usize) -> Vec<Package> {
        let mut list: Vec<Package> = (0..n)
            .map(|i| Package {
                name: format!(
                    "lib{}-{}{}",
                    ["ssl", "curl", "glib", "pam"][i % 4],
                    i,
                    "-dev"
                ),
                version: format!("{}.{}.{}-{}", i % 7, i % 13, i % 3, i % 5 + 1),
                architecture: Some("amd64".into()),
            })
            .collect();
        list.sort();
        list
    }

    fn at(day: i64) -> Timestamp {
        Timestamp {
            wall_time_ms: 1_795_000_000_000 + day * 86_400_000,
            boot_id: [1; 16],
            monotonic_ns: 0,
        }
    }

    fn limit() -> u64 {
        assent_store::max_event_bytes(SMALL_BUFFER).unwrap()
    }

    /// Plans and stores; returns the planned package lists.
    fn send(store: &Store, who: &str, list: &[Package], day: i64) -> Option<Vec<PackageList>> {
        let mut planned = plan(store, who, list, at(day), limit()).unwrap()?;
        let events = std::mem::take(&mut planned.events);
        let lists = events
            .iter()
            .map(|e| match Payload::from_postcard(&e.payload).unwrap() {
                Payload::Packages(l) => *l,
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(events.iter().all(|e| e.kind == KIND));
        let seqs = store.append_many(events).unwrap();
        planned.stored(store, &seqs).unwrap();
        Some(lists)
    }

    fn unpack(lists: &[PackageList]) -> Vec<Package> {
        let mut out = Vec::new();
        for l in lists {
            let PackageChange::Part {
                packages_deflate, ..
            } = &l.change
            else {
                panic!("not a part")
            };
            let mut raw = Vec::new();
            flate2::read::DeflateDecoder::new(&packages_deflate[..])
                .read_to_end(&mut raw)
                .unwrap();
            out.extend(postcard::from_bytes::<Vec<Package>>(&raw).unwrap());
        }
        out
    }

    #[test]
    fn the_state_round_trips_and_refuses_damage() {
        let state = State {
            buffer_id: 1,
            pseudonym: "abcdefghijklmnopqrstuvwxyz".into(),
            list_id: u64::MAX,
            digest: [7; 32],
            seqs: vec![3, 4, 9],
            full_at_s: 1_795_000_000,
            deltas: 2,
            hashes: vec![1, 2, u64::MAX],
        };
        let bytes = state.encode();
        assert_eq!(State::decode(&bytes), Some(state));
        for cut in 0..bytes.len() {
            assert_eq!(State::decode(&bytes[..cut]), None, "{cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(State::decode(&longer), None);
    }

    #[test]
    fn a_large_list_is_split_into_parts_that_fit_the_event_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let list = packages(3000);
        let mut planned = plan(&store, "p", &list, at(0), limit()).unwrap().unwrap();
        assert!(planned.full && planned.events.len() > 1);
        for e in &planned.events {
            assert!(e.payload.len() as u64 + 64 < limit(), "{}", e.payload.len());
        }
        let events = std::mem::take(&mut planned.events);
        let lists: Vec<PackageList> = events
            .iter()
            .map(|e| match Payload::from_postcard(&e.payload).unwrap() {
                Payload::Packages(l) => *l,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(unpack(&lists), list);
        assert!(lists.iter().all(|l| l.digest == package_list_digest(&list)));
        // The store takes them (each under its limit).
        store.append_many(events).unwrap();
    }

    #[test]
    fn a_change_is_a_delta_and_no_change_is_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let list = packages(500);
        let full = send(&store, "p", &list, 0).unwrap();
        assert!(send(&store, "p", &list, 1).is_none());

        let mut upgraded = list.clone();
        upgraded[10].version.push_str("+deb12u1");
        upgraded.remove(20);
        upgraded.sort();
        let delta = send(&store, "p", &upgraded, 1).unwrap();
        assert_eq!(delta.len(), 1);
        let PackageChange::Delta {
            base,
            removed,
            added,
        } = &delta[0].change
        else {
            panic!("{delta:?}")
        };
        assert_eq!(*base, full[0].list_id);
        assert_eq!(removed.len(), 2);
        assert_eq!(added, &vec![upgraded[10].clone()]);
        assert_eq!(delta[0].digest, package_list_digest(&upgraded));
    }

    #[test]
    fn a_base_that_may_not_arrive_gives_a_full_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let list = packages(500);
        let mut changed = list.clone();
        changed.pop();
        let is_full = |l: &Option<Vec<PackageList>>| {
            matches!(l.as_ref().unwrap()[0].change, PackageChange::Part { .. })
        };

        // Purged unsent (consent withdrawn, or evicted): the base is gone.
        send(&store, "p", &list, 0).unwrap();
        store.purge_category("software").unwrap();
        assert!(is_full(&send(&store, "p", &changed, 0)));

        // Sent and acknowledged, then erased at the collector: forgotten.
        let last = store.stats().unwrap().last_seq;
        store.ack(last).unwrap();
        assert!(!is_full(&send(&store, "p", &list, 0)));
        forget(&store).unwrap();
        assert!(is_full(&send(&store, "p", &changed, 0)));

        // Another pseudonym is another device to the collector.
        assert!(is_full(&send(&store, "q", &list, 0)));

        // At most MAX_DELTAS deltas, and a full snapshot every week.
        for i in 0..MAX_DELTAS {
            let l = if i % 2 == 0 { &changed } else { &list };
            assert!(!is_full(&send(&store, "q", l, 0)), "delta {i}");
        }
        assert!(is_full(&send(&store, "q", &changed, 0)));
        assert!(!is_full(&send(&store, "q", &list, 6)));
        assert!(is_full(&send(&store, "q", &changed, 8)));
    }
}
