//! The owner's rights over what the device holds: `export`, `erase`, `forget`,
//! `reset-id`.

use super::load_config;
use crate::cli::args::{ExportArgs, ResetIdArgs};
use crate::cli::exit::Failure;
use crate::cli::render;
use crate::collect::identity::IdentityState;
use crate::config::Config;
use crate::control::{self, protocol::Request};
use crate::local::{buffer, owner};
use std::path::PathBuf;

pub(crate) fn export(args: ExportArgs) -> Result<(), Failure> {
    let config = load_config(&args.config)?;
    let store = buffer::open(&config).map_err(Failure::cant_create)?;
    let doc = owner::export(&config, &store).map_err(Failure::cant_create)?;
    let text = render::to_pretty(&doc)? + "\n";
    match args.out {
        Some(path) => {
            crate::unix::fsutil::write_atomic(&path, text.as_bytes(), 0o600)
                .map_err(|e| Failure::cant_create(format!("{}: {e}", path.display())))?;
            out!("exported to {}", path.display());
        }
        None => out_raw!("{text}"),
    }
    Ok(())
}

pub(crate) fn erase(config: Option<PathBuf>, remote: bool, forget: bool) -> Result<(), Failure> {
    let config = load_config(&config)?;
    let store = buffer::open(&config).map_err(Failure::cant_create)?;
    let erased = owner::erase(&config, &store, remote).map_err(Failure::cant_create)?;
    out!(
        "deleted {} queued events held on this device",
        erased.events_deleted
    );
    out!(
        "deleted the record of {} batches already sent and {} dead-lettered batch files",
        erased.sent_batches_forgotten,
        erased.dead_letter_files_deleted
    );
    if remote {
        if erased.remote_requested {
            out!("erasure of everything queued for the collector; it is sent before any further data");
            // A running daemon sends it now; without one, `assent sync --once` does.
            let _ = control::request(&config, &Request::Sync);
        } else {
            out!("nothing was ever sent, so the collector holds nothing to erase");
        }
    }
    if forget {
        IdentityState::rotate(&config.state_dir).map_err(Failure::cant_create)?;
        out!("device identity rotated: the new pseudonym cannot be linked to the old one");
    }
    for line in erase_kept(&config, remote, forget) {
        out!("{line}");
    }
    Ok(())
}

/// What `erase` leaves on purpose, and why.
fn erase_kept(config: &Config, remote: bool, forget: bool) -> Vec<String> {
    let mut kept = vec![
        "kept on purpose:".to_string(),
        format!(
            "  the consent file {} and the consent log: the record of the owner's decisions, \
             which must outlive the data they allowed",
            config.consent_file.display()
        ),
    ];
    if !forget {
        kept.push(
            "  the device identity: `assent forget` also replaces it with one that cannot be \
             linked to the old"
                .to_string(),
        );
    }
    if !remote {
        kept.push(
            "  what the collector already holds: `assent erase --remote` asks it to erase that"
                .to_string(),
        );
    }
    kept
}

pub(crate) fn reset_id(args: ResetIdArgs) -> Result<(), Failure> {
    let config = load_config(&args.config)?;
    crate::unix::fsutil::ensure_private_dir(&config.state_dir)
        .map_err(|e| Failure::cant_create(format!("{}: {e}", config.state_dir.display())))?;
    IdentityState::rotate(&config.state_dir).map_err(Failure::cant_create)?;
    out!("device identity rotated: the new pseudonym cannot be linked to the old one");
    Ok(())
}
