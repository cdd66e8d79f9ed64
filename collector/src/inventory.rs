//! The complete package list of a device as of a received time, rebuilt from the
//! `packages` events any backend holds (docs/protocol.md, "Package inventories"): the
//! parts of a full snapshot are put together, deltas are applied in order, and every
//! step is checked against the list digest the device sent. A list with a part or a
//! delta missing is reported incomplete, never as a list.
//!
//! Works through [`Storage::export`] only, so both backends give the same answer.

use crate::storage::{Storage, StorageError};
use assent_platform::software::Package;
use assent_platform::Category;
use assent_wire::{
    package_hash, package_list_digest, PackageChange, PackageList, Pseudonym, MAX_PART_INFLATED,
};
use serde::Serialize;
use std::io::Read;

/// The event kind of package-list events.
pub const KIND: &str = "packages";

/// A list as rebuilt at one point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageListAt {
    pub list_id: u64,
    /// When the collector received the event that completed this list.
    pub received_at_ms: i64,
    pub package_count: u64,
    pub packages: Vec<Package>,
}

/// The answer of `assent-collector inventory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inventory {
    pub device: String,
    pub category: Category,
    /// The received time asked for (`None`: everything held).
    pub at_ms: Option<i64>,
    /// Whether `list` is the device's complete list as of `at_ms`.
    pub complete: bool,
    /// The complete list, when `complete`.
    pub list: Option<PackageListAt>,
    /// Why the list is not complete (a part or a delta was lost, or no list was sent).
    pub problem: Option<String>,
    /// The last complete list before the problem, when there was one.
    pub last_complete: Option<PackageListAt>,
}

struct Entry {
    received_at_ms: i64,
    buffer_id: u64,
    seq: u64,
    list: PackageList,
}

/// The package list of `device` as of the received time `at_ms`.
pub fn software_at(
    storage: &mut dyn Storage,
    device: &Pseudonym,
    at_ms: Option<i64>,
) -> Result<Inventory, StorageError> {
    let mut entries = Vec::new();
    let mut undecodable = 0u64;
    storage.export(device, Some(Category::Software), &mut |line| {
        if line.get("kind").and_then(|k| k.as_str()) != Some(KIND) {
            return Ok(());
        }
        let received_at_ms = line
            .get("received_at_ms")
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        if at_ms.is_some_and(|at| received_at_ms > at) {
            return Ok(());
        }
        let payload = line.get("payload").cloned().unwrap_or_default();
        match serde_json::from_value::<PackageList>(payload) {
            Ok(list) => entries.push(Entry {
                received_at_ms,
                buffer_id: line.get("buffer_id").and_then(|v| v.as_u64()).unwrap_or(0),
                seq: line.get("seq").and_then(|v| v.as_u64()).unwrap_or(0),
                list,
            }),
            Err(_) => undecodable += 1,
        }
        Ok(())
    })?;
    entries.sort_by_key(|e| (e.received_at_ms, e.buffer_id, e.seq));
    let mut rebuilt = rebuild(&entries);
    if undecodable > 0 && rebuilt.problem.is_none() {
        rebuilt.problem = Some(format!("{undecodable} package events could not be read"));
    }
    let complete = rebuilt.problem.is_none() && rebuilt.current.is_some();
    Ok(Inventory {
        device: device.to_string(),
        category: Category::Software,
        at_ms,
        complete,
        list: if complete { rebuilt.current } else { None },
        problem: if complete {
            None
        } else {
            Some(
                rebuilt
                    .problem
                    .unwrap_or_else(|| "no package list received".to_string()),
            )
        },
        last_complete: if complete {
            None
        } else {
            rebuilt.last_complete
        },
    })
}

/// A snapshot whose parts are arriving.
struct Pending {
    list_id: u64,
    digest: [u8; 32],
    package_count: u64,
    parts: Vec<Option<Vec<Package>>>,
}

#[derive(Default)]
struct Rebuilt {
    current: Option<PackageListAt>,
    last_complete: Option<PackageListAt>,
    problem: Option<String>,
}

impl Rebuilt {
    fn fail(&mut self, problem: String) {
        if let Some(current) = self.current.take() {
            self.last_complete = Some(current);
        }
        self.problem = Some(problem);
    }

    fn complete(&mut self, list: PackageListAt) {
        self.current = Some(list);
        self.problem = None;
    }
}

fn rebuild(entries: &[Entry]) -> Rebuilt {
    let mut out = Rebuilt::default();
    let mut pending: Option<Pending> = None;
    let mut broken: Option<u64> = None;
    for entry in entries {
        let list = &entry.list;
        match &list.change {
            PackageChange::Part {
                index,
                parts,
                packages_deflate,
            } => {
                // The other parts of a snapshot with a bad part change nothing.
                if broken == Some(list.list_id) {
                    continue;
                }
                let same = pending
                    .as_ref()
                    .is_some_and(|p| p.list_id == list.list_id && p.parts.len() == *parts as usize);
                if !same {
                    if let Some(p) = pending.take() {
                        out.fail(missing_parts(&p));
                    }
                    pending = Some(Pending {
                        list_id: list.list_id,
                        digest: list.digest,
                        package_count: list.package_count,
                        parts: vec![None; *parts as usize],
                    });
                }
                let Some(p) = pending.as_mut() else { continue };
                match inflate(packages_deflate) {
                    Ok(packages) => {
                        if let Some(slot) = p.parts.get_mut(*index as usize) {
                            *slot = Some(packages);
                        }
                    }
                    Err(e) => {
                        out.fail(format!("snapshot {:016x}: part {index}: {e}", list.list_id));
                        pending = None;
                        broken = Some(list.list_id);
                        continue;
                    }
                }
                if p.parts.iter().all(Option::is_some) {
                    let packages: Vec<Package> = p
                        .parts
                        .iter_mut()
                        .flat_map(|s| s.take().unwrap_or_default())
                        .collect();
                    let (list_id, digest, count) = (p.list_id, p.digest, p.package_count);
                    pending = None;
                    finish(
                        &mut out,
                        list_id,
                        digest,
                        count,
                        packages,
                        entry.received_at_ms,
                    );
                }
            }
            PackageChange::Delta {
                base,
                removed,
                added,
            } => {
                if let Some(p) = pending.take() {
                    out.fail(missing_parts(&p));
                }
                let Some(current) = out.current.as_ref().filter(|c| c.list_id == *base) else {
                    if out.problem.is_none() {
                        out.fail(format!(
                            "delta {:016x}: its base list {base:016x} was not received",
                            list.list_id
                        ));
                    }
                    continue;
                };
                let mut packages: Vec<Package> = current
                    .packages
                    .iter()
                    .filter(|p| !removed.contains(&package_hash(p)))
                    .cloned()
                    .collect();
                packages.extend(added.iter().cloned());
                packages.sort();
                finish(
                    &mut out,
                    list.list_id,
                    list.digest,
                    list.package_count,
                    packages,
                    entry.received_at_ms,
                );
            }
        }
    }
    if let Some(p) = pending {
        out.fail(missing_parts(&p));
    }
    out
}

fn finish(
    out: &mut Rebuilt,
    list_id: u64,
    digest: [u8; 32],
    package_count: u64,
    packages: Vec<Package>,
    received_at_ms: i64,
) {
    if package_list_digest(&packages) != digest || packages.len() as u64 != package_count {
        out.fail(format!(
            "list {list_id:016x}: the rebuilt list ({} packages) does not match the digest the \
             device sent ({package_count} packages)",
            packages.len()
        ));
        return;
    }
    out.complete(PackageListAt {
        list_id,
        received_at_ms,
        package_count,
        packages,
    });
}

fn missing_parts(p: &Pending) -> String {
    let have = p.parts.iter().filter(|s| s.is_some()).count();
    format!(
        "snapshot {:016x}: {} of {} parts missing (lost on the device: see its gap records)",
        p.list_id,
        p.parts.len() - have,
        p.parts.len()
    )
}

/// A part's packages: raw DEFLATE, at most [`MAX_PART_INFLATED`] bytes inflated, then
/// postcard with nothing after it.
fn inflate(bytes: &[u8]) -> Result<Vec<Package>, String> {
    let mut raw = Vec::new();
    flate2::read::DeflateDecoder::new(bytes)
        .take(MAX_PART_INFLATED + 1)
        .read_to_end(&mut raw)
        .map_err(|e| format!("invalid DEFLATE data: {e}"))?;
    if raw.len() as u64 > MAX_PART_INFLATED {
        return Err(format!("inflates beyond {MAX_PART_INFLATED} bytes"));
    }
    let (packages, rest) = postcard::take_from_bytes::<Vec<Package>>(&raw)
        .map_err(|e| format!("not a postcard package list: {e}"))?;
    if !rest.is_empty() {
        return Err(format!(
            "{} trailing bytes after the package list",
            rest.len()
        ));
    }
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn package(name: &str, version: &str) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            architecture: Some("amd64".into()),
        }
    }

    fn deflate(packages: &[Package]) -> Vec<u8> {
        let raw = postcard::to_stdvec(packages).unwrap();
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&raw).unwrap();
        e.finish().unwrap()
    }

    fn list() -> Vec<Package> {
        (0..10).map(|i| package(&format!("p{i}"), "1.0")).collect()
    }

    /// A snapshot of `packages` in parts of three, received at 1, 2, ...
    fn snapshot(list_id: u64, packages: &[Package], first_ms: i64) -> Vec<Entry> {
        let chunks: Vec<&[Package]> = packages.chunks(3).collect();
        let parts = chunks.len() as u32;
        (0u32..)
            .zip(chunks)
            .map(|(index, chunk)| Entry {
                received_at_ms: first_ms + i64::from(index),
                buffer_id: 1,
                seq: u64::from(index) + 1,
                list: PackageList {
                    list_id,
                    digest: package_list_digest(packages),
                    package_count: packages.len() as u64,
                    change: PackageChange::Part {
                        index,
                        parts,
                        packages_deflate: deflate(chunk),
                    },
                },
            })
            .collect()
    }

    fn delta(list_id: u64, base: u64, from: &[Package], to: &[Package], at_ms: i64) -> Entry {
        Entry {
            received_at_ms: at_ms,
            buffer_id: 1,
            seq: 100 + at_ms as u64,
            list: PackageList {
                list_id,
                digest: package_list_digest(to),
                package_count: to.len() as u64,
                change: PackageChange::Delta {
                    base,
                    removed: from
                        .iter()
                        .filter(|p| !to.contains(p))
                        .map(package_hash)
                        .collect(),
                    added: to.iter().filter(|p| !from.contains(p)).cloned().collect(),
                },
            },
        }
    }

    fn upgraded() -> Vec<Package> {
        let mut l = list();
        l[4] = package("p4", "2.0");
        l.remove(7);
        l.push(package("q", "0.1"));
        l.sort();
        l
    }

    #[test]
    fn parts_and_deltas_rebuild_the_list() {
        let mut entries = snapshot(7, &list(), 1);
        let out = rebuild(&entries);
        assert_eq!(out.problem, None);
        assert_eq!(out.current.unwrap().packages, list());

        entries.push(delta(8, 7, &list(), &upgraded(), 50));
        let out = rebuild(&entries);
        assert_eq!(out.problem, None);
        let current = out.current.unwrap();
        assert_eq!((current.list_id, current.packages), (8, upgraded()));
    }

    #[test]
    fn a_lost_part_is_reported_and_never_shown_as_the_list() {
        let mut entries = snapshot(7, &list(), 1);
        entries.remove(2);
        let out = rebuild(&entries);
        assert_eq!(out.current, None);
        assert!(
            out.problem.unwrap().contains("1 of 4 parts missing"),
            "{entries:?}",
            entries = entries.len()
        );

        // An earlier complete list stays visible as the last complete one.
        let mut entries = snapshot(6, &list(), 1);
        let mut partial = snapshot(7, &upgraded(), 10);
        partial.remove(0);
        entries.extend(partial);
        let out = rebuild(&entries);
        assert_eq!(out.current, None);
        assert_eq!(out.last_complete.unwrap().list_id, 6);
        // A later full snapshot heals it.
        entries.extend(snapshot(9, &upgraded(), 20));
        let out = rebuild(&entries);
        assert_eq!(out.problem, None);
        assert_eq!(out.current.unwrap().packages, upgraded());
    }

    #[test]
    fn a_delta_on_a_base_not_held_or_with_a_wrong_digest_is_refused() {
        let mut entries = snapshot(7, &list(), 1);
        entries.push(delta(8, 5, &list(), &upgraded(), 50));
        let out = rebuild(&entries);
        assert_eq!(out.current, None);
        assert!(out.problem.unwrap().contains("base list"));

        let mut entries = snapshot(7, &list(), 1);
        let mut wrong = delta(8, 7, &list(), &upgraded(), 50);
        wrong.list.digest[0] ^= 1;
        entries.push(wrong);
        let out = rebuild(&entries);
        assert_eq!(out.current, None);
        assert!(out.problem.unwrap().contains("does not match the digest"));
    }

    #[test]
    fn a_part_that_inflates_beyond_the_bound_or_is_not_deflate_is_refused() {
        let mut entries = snapshot(7, &list(), 1);
        if let PackageChange::Part {
            packages_deflate, ..
        } = &mut entries[0].list.change
        {
            *packages_deflate = vec![0xff; 40];
        }
        let out = rebuild(&entries);
        assert_eq!(out.current, None);
        assert!(out.problem.unwrap().contains("invalid DEFLATE"));

        let zeros = vec![0u8; (MAX_PART_INFLATED + 10) as usize];
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&zeros).unwrap();
        let bomb = e.finish().unwrap();
        assert!(inflate(&bomb).unwrap_err().contains("inflates beyond"));
    }
}
