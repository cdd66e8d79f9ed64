//! What each subcommand does, one file per group: `collect` (preview, dry run, store),
//! `check_config`, `consent`, `sync`, `daemon` (run, status, control, emit), `owner`
//! (export, erase, forget, reset-id). Each returns `Result<(), Failure>`; `cli::run`
//! prints the failure and exits with its status.

pub(crate) mod check_config;
pub(crate) mod collect;
pub(crate) mod consent;
pub(crate) mod daemon;
pub(crate) mod owner;
pub(crate) mod sync;

use crate::cli::exit::Failure;
use crate::config::{Config, DEFAULT_CONFIG_PATH};
use assent_platform::Category;
use std::path::PathBuf;

/// The config file: `--config`, else `ASSENT_CONFIG` when set and not empty, else
/// /etc/assent/assent.toml.
pub(crate) fn config_path(given: &Option<PathBuf>) -> PathBuf {
    if let Some(path) = given {
        return path.clone();
    }
    match std::env::var_os(CONFIG_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(DEFAULT_CONFIG_PATH),
    }
}

/// The environment variable naming the config file when `--config` is not given.
const CONFIG_ENV: &str = "ASSENT_CONFIG";

/// Loads the config, or fails with every diagnostic and EX_CONFIG. (Its `log_level` is
/// for the daemon; one-shot commands log warnings unless ASSENT_LOG says otherwise.)
/// A file that cannot be opened, when chosen by default, comes with how to pick another.
pub(crate) fn load_config(given: &Option<PathBuf>) -> Result<Config, Failure> {
    let path = config_path(given);
    Config::load(&path).map_err(|diagnostics| {
        let mut failure = Failure::config(diagnostics);
        if given.is_none() && std::fs::File::open(&path).is_err() {
            failure.message = format!(
                "{}\nassent: `--config PATH` picks another file, or set {CONFIG_ENV}=PATH \
                 (--config wins)",
                failure.message.trim_end()
            );
        }
        failure
    })
}

/// The categories named on the command line, in display order; all readable ones when
/// none is named.
pub(crate) fn parse_categories(names: &[String]) -> Result<Vec<Category>, Failure> {
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

pub(crate) fn parse_named_categories(names: &[String]) -> Result<Vec<Category>, Failure> {
    names
        .iter()
        .map(|n| n.parse::<Category>().map_err(Failure::usage))
        .collect()
}
