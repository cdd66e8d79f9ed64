//! `assent check-config`: the config and the consent file, every problem at once.

use crate::cli::args::CheckConfigArgs;
use crate::cli::exit::Failure;
use crate::consent::{self, ConsentSource};

pub(crate) fn check_config(args: CheckConfigArgs) -> Result<(), Failure> {
    let config =
        crate::config::Config::check(&super::config_path(&args.config)).map_err(Failure::config)?;
    for warning in config.warnings() {
        out!("warning: {warning}");
    }
    let (source, view) = consent::load(&config);
    match &source {
        ConsentSource::Loaded(_) => {}
        ConsentSource::Missing(_) => {
            out!("{}: ok", config.path.display());
            if let Some(problem) = source.problem() {
                out!("{problem}");
            }
            return Ok(());
        }
        ConsentSource::Unreadable(..) | ConsentSource::Invalid(_) => {
            return Err(Failure::config(source.problem().unwrap_or_default()));
        }
    }
    out!("{}: ok", config.path.display());
    out!("{}: ok", config.consent_file.display());
    let active: Vec<&str> = view.active().iter().map(|c| c.name()).collect();
    if active.is_empty() {
        out!("no category is active");
    } else {
        out!("active: {}", active.join(", "));
    }
    Ok(())
}
