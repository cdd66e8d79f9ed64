//! `assent collect`: `--preview` (everything that could be collected, ignoring
//! consent), `--dry-run` (what would be collected now) and the default, which stores
//! one collection in the buffer.

use super::{load_config, parse_categories};
use crate::cli::args::CollectArgs;
use crate::cli::exit::Failure;
use crate::cli::render;
use crate::collect::identity::{Identity, LoadError};
use crate::collect::{self, preview, Outcome, PlatformReaders};
use crate::config::Config;
use crate::consent;
use crate::local::buffer;
use assent_platform::location::GpsdOptions;
use assent_platform::{Category, ReadOptions, Root};
use serde_json::{json, Map, Value};
use std::net::SocketAddr;

pub(crate) fn collect(args: CollectArgs) -> Result<(), Failure> {
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
        out!("{}", render::to_pretty(&doc)?);
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
        out!("{}", render::to_pretty(&Value::Object(preview))?);
    } else {
        out_raw!("{}", preview::render_human(root, &categories, &preview));
    }
    Ok(())
}
