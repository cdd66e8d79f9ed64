//! Collection under consent: which readers run, and what their output becomes before it
//! may be stored or sent.
//!
//! A reader for an inactive category is never called. The `device_id` reader's raw
//! identifiers never leave this module: they are turned into the pseudonym here, and only
//! the pseudonym and the names of the sources it came from are kept.

pub mod identity;
pub mod inventory;
pub mod preview;

use crate::config::Config;
use crate::consent::ConsentView;
use assent_platform::cellular::CellularOptions;
use assent_platform::location::GpsdOptions;
use assent_platform::{Category, Facts, ReadOptions, Root};
pub use assent_wire::{DeviceIdentity, Payload};
pub use identity::Derivation;
use identity::{Identity, IdentityError, Pseudonym};
use std::time::Duration;

/// The source of facts: the platform readers, or a test double that counts calls.
pub trait Readers {
    fn read(&self, category: Category) -> Option<Facts>;
}

/// The real readers under a root.
#[derive(Debug)]
pub struct PlatformReaders {
    pub root: Root,
    pub options: ReadOptions,
}

impl PlatformReaders {
    pub fn new(root: Root, config: &Config) -> PlatformReaders {
        PlatformReaders {
            root,
            options: ReadOptions {
                gpsd: GpsdOptions {
                    address: config.location.gpsd_address,
                    timeout: Duration::from_secs(config.location.fix_timeout_seconds),
                },
                cellular: CellularOptions {
                    cell_ids: config.network_detail.cell_ids,
                    ..CellularOptions::default()
                },
                wifi_list: config.network_detail.wifi_list,
            },
        }
    }
}

impl Readers for PlatformReaders {
    fn read(&self, category: Category) -> Option<Facts> {
        log::debug!("reader ran: {category}");
        assent_platform::read(category, &self.root, &self.options)
    }
}

/// A reader's facts as an event payload (`device_id` is handled apart: it never becomes
/// a payload with raw values).
fn payload_of(facts: Facts) -> Option<Payload> {
    Some(match facts {
        Facts::DeviceId(_) => return None,
        Facts::Hardware(f) => Payload::Hardware(Box::new(f)),
        Facts::Os(f) => Payload::Os(Box::new(f)),
        Facts::Network(f) => Payload::Network(Box::new(f)),
        Facts::NetworkDetail(f) => Payload::NetworkDetail(Box::new(f)),
        Facts::Location(f) => Payload::Location(Box::new(f)),
        Facts::Software(f) => Payload::Software(Box::new(f)),
    })
}

/// The result of one category in a collection run.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Collected(Payload),
    NotCollected(String),
}

/// Why no pseudonym could be established in a collection run. Serialized as its
/// message (the reason `collect --preview --json` shows).
#[derive(Debug)]
pub enum NoPseudonym {
    /// No identity exists yet, and a preview may not create one.
    NoIdentity,
    Identity(IdentityError),
}

impl std::fmt::Display for NoPseudonym {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoPseudonym::NoIdentity => {
                f.write_str("no identity yet: it is created on the first collection")
            }
            NoPseudonym::Identity(e) => std::fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for NoPseudonym {}

impl serde::Serialize for NoPseudonym {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One collection run under consent.
#[derive(Debug)]
pub struct Collection {
    /// The pseudonym batches would carry now, when it could be established.
    pub pseudonym: Result<(Pseudonym, Derivation), NoPseudonym>,
    pub outcomes: Vec<(Category, Outcome)>,
}

impl Collection {
    /// The pseudonym as text, empty when none could be established.
    pub fn pseudonym_name(&self) -> String {
        self.pseudonym
            .as_ref()
            .map(|(p, _)| p.as_str().to_string())
            .unwrap_or_default()
    }

    /// The collected data, in category order.
    pub fn collected(&self) -> impl Iterator<Item = (Category, &Payload)> {
        self.outcomes.iter().filter_map(|(c, o)| match o {
            Outcome::Collected(d) => Some((*c, d)),
            Outcome::NotCollected(_) => None,
        })
    }
}

/// Runs the readers of the active categories among `categories` and de-identifies the
/// result. `identity` is `None` when no identity exists yet (nothing may be created).
pub fn collect(
    view: &ConsentView,
    categories: &[Category],
    readers: &dyn Readers,
    identity: Option<&Identity>,
) -> Collection {
    let device_id_active = view.is_active(Category::DeviceId);
    let mut outcomes = Vec::new();
    let mut pseudonym = Err(NoPseudonym::NoIdentity);
    if let Some(identity) = identity {
        if !device_id_active {
            pseudonym = identity.pseudonym(None).map_err(NoPseudonym::Identity);
        }
    }
    for category in categories.iter().copied() {
        if category == Category::AppEvents {
            continue;
        }
        if !view.is_active(category) {
            let reason = view
                .status(category)
                .map(|s| s.state.reason())
                .unwrap_or_else(|| "unknown category".to_string());
            outcomes.push((category, Outcome::NotCollected(reason)));
            continue;
        }
        let Some(facts) = readers.read(category) else {
            continue;
        };
        let outcome = match facts {
            Facts::DeviceId(ids) => match identity {
                Some(identity) => match identity.pseudonym(Some(&ids)) {
                    Ok((p, derivation)) => {
                        pseudonym = Ok((p.clone(), derivation));
                        Outcome::Collected(Payload::DeviceId(DeviceIdentity {
                            pseudonym: p,
                            derivation,
                            sources: ids.source_names(),
                        }))
                    }
                    Err(e) => Outcome::NotCollected(e.to_string()),
                },
                None => Outcome::NotCollected(NoPseudonym::NoIdentity.to_string()),
            },
            other => match payload_of(other) {
                Some(payload) => Outcome::Collected(payload),
                None => continue,
            },
        };
        outcomes.push((category, outcome));
    }
    Collection {
        pseudonym,
        outcomes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{evaluate, ConsentFile, ConsentRecord, ConsentSource};
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// Counts reader calls per category and returns the fixture's facts.
    struct CountingReaders {
        inner: PlatformReaders,
        calls: RefCell<BTreeMap<Category, u32>>,
    }

    impl Readers for CountingReaders {
        fn read(&self, category: Category) -> Option<Facts> {
            *self.calls.borrow_mut().entry(category).or_default() += 1;
            self.inner.read(category)
        }
    }

    fn config() -> Config {
        Config::parse(std::path::Path::new("/etc/assent/assent.toml"), "").unwrap()
    }

    /// The identity of a device whose state directory is `dir`.
    fn identity_in(dir: &std::path::Path) -> Identity {
        let mut config = config();
        config.state_dir = dir.to_path_buf();
        Identity::load(&config).unwrap()
    }

    fn readers() -> CountingReaders {
        let root = Root::at(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/roots/x86-gateway"
        ));
        CountingReaders {
            inner: PlatformReaders::new(root, &config()),
            calls: RefCell::new(BTreeMap::new()),
        }
    }

    fn granted(categories: &[Category]) -> ConsentSource {
        let mut file = ConsentFile::default();
        for c in categories {
            file.records.insert(
                *c,
                ConsentRecord {
                    granted: true,
                    policy_version: 1,
                    at: "2026-11-22T10:00:00Z".into(),
                    by: "owner".into(),
                },
            );
        }
        ConsentSource::Loaded(file)
    }

    fn required() -> Vec<Category> {
        Category::ALL
            .into_iter()
            .filter(|c| c.required_by_default())
            .collect()
    }

    fn calls_under(source: ConsentSource) -> BTreeMap<Category, u32> {
        let config = config();
        let view = evaluate(&config, &source);
        let readers = readers();
        let dir = tempfile::tempdir().unwrap();
        let identity = identity_in(dir.path());
        let collection = collect(&view, &Category::ALL, &readers, Some(&identity));
        // Every category is accounted for, collected or not.
        assert_eq!(collection.outcomes.len(), Category::READABLE.len());
        readers.calls.into_inner()
    }

    #[test]
    fn no_reader_runs_without_a_valid_consent_file() {
        assert!(calls_under(ConsentSource::Missing("/x".into())).is_empty());
        assert!(calls_under(ConsentSource::Unreadable("/x".into(), "EACCES".into())).is_empty());
        assert!(calls_under(ConsentSource::Loaded(ConsentFile::default())).is_empty());
    }

    /// What the daemon does when the network changes: the connectivity check (its own
    /// link and route check, no reader), then a collection of `network` under consent.
    fn calls_on_network_change(source: ConsentSource) -> BTreeMap<Category, u32> {
        let config = config();
        let view = evaluate(&config, &source);
        let readers = readers();
        let now = crate::sync::connectivity::Connectivity::read(&readers.inner.root, &config);
        assert!(now.online, "{now:?}");
        let dir = tempfile::tempdir().unwrap();
        let identity = identity_in(dir.path());
        collect(&view, &[Category::Network], &readers, Some(&identity));
        readers.calls.into_inner()
    }

    #[test]
    fn a_network_change_reads_the_network_only_while_it_is_active() {
        let without_network: Vec<Category> = required()
            .into_iter()
            .filter(|c| *c != Category::Network)
            .collect();
        assert!(calls_on_network_change(granted(&without_network)).is_empty());
        assert!(calls_on_network_change(ConsentSource::Missing("/x".into())).is_empty());
        assert_eq!(
            calls_on_network_change(granted(&required())),
            BTreeMap::from([(Category::Network, 1)])
        );
    }

    #[test]
    fn only_active_categories_are_read_once_each() {
        let mut cats = required();
        cats.push(Category::Software);
        let calls = calls_under(granted(&cats));
        let expected: BTreeMap<Category, u32> = cats
            .iter()
            .filter(|c| **c != Category::AppEvents)
            .map(|c| (*c, 1))
            .collect();
        assert_eq!(calls, expected);
    }

    #[test]
    fn a_refused_required_category_stops_every_reader() {
        let mut cats = required();
        cats.retain(|c| *c != Category::Network);
        cats.push(Category::Location);
        assert!(calls_under(granted(&cats)).is_empty());
    }

    #[test]
    fn device_id_becomes_a_pseudonym_and_never_raw_values() {
        let config = config();
        let view = evaluate(&config, &granted(&required()));
        let readers = readers();
        let dir = tempfile::tempdir().unwrap();
        let identity = identity_in(dir.path());
        let collection = collect(&view, &Category::ALL, &readers, Some(&identity));
        let (pseudonym, derivation) = collection.pseudonym.as_ref().unwrap().clone();
        assert_eq!(derivation, Derivation::HardwareDeviceSecret);
        let raw = assent_platform::device_id::read(&readers.inner.root);
        let raw_values = raw.exposed_values();
        assert!(!raw_values.is_empty());
        let all: Vec<String> = collection
            .collected()
            .map(|(_, d)| d.to_json().to_string())
            .collect();
        let text = all.join("\n");
        assert!(text.contains(pseudonym.as_str()));
        for value in raw_values {
            assert!(
                !text.to_lowercase().contains(&value.to_lowercase()),
                "{value} leaked"
            );
        }
    }

    #[test]
    fn without_device_id_the_pseudonym_comes_from_the_install_id() {
        let config = config();
        let mut cats = required();
        cats.retain(|c| *c != Category::DeviceId);
        let mut config_opt = config.clone();
        if let Some(p) = config_opt.categories.get_mut(&Category::DeviceId) {
            p.required = false;
        }
        let view = evaluate(&config_opt, &granted(&cats));
        let readers = readers();
        let dir = tempfile::tempdir().unwrap();
        let identity = identity_in(dir.path());
        let collection = collect(&view, &Category::ALL, &readers, Some(&identity));
        assert_eq!(
            collection.pseudonym.unwrap(),
            (identity.state.install_pseudonym(), Derivation::InstallId)
        );
        assert!(!readers.calls.borrow().contains_key(&Category::DeviceId));
    }
}
