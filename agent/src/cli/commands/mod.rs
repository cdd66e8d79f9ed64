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

pub(crate) fn config_path(given: &Option<PathBuf>) -> PathBuf {
    given
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

/// Loads the config, or fails with every diagnostic and EX_CONFIG. (Its `log_level` is
/// for the daemon; one-shot commands log warnings unless ASSENT_LOG says otherwise.)
pub(crate) fn load_config(given: &Option<PathBuf>) -> Result<Config, Failure> {
    Config::load(&config_path(given)).map_err(Failure::config)
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
