//! `assent consent show | grant | revoke`.

use super::{load_config, parse_named_categories};
use crate::cli::args::{ConsentArgs, ConsentCommand, ConsentShowArgs};
use crate::cli::exit::Failure;
use crate::cli::render;
use crate::config::{Config, DEFAULT_CONFIG_PATH};
use crate::consent::{self, Decision};
use crate::local::buffer;
use assent_platform::Category;
use serde_json::json;

pub(crate) fn consent(args: ConsentArgs) -> Result<(), Failure> {
    match args.command {
        ConsentCommand::Show(a) => consent_show(a),
        ConsentCommand::Grant(a) => {
            let config = load_config(&a.config)?;
            let mut categories = parse_named_categories(&a.categories)?;
            if a.all_required {
                categories.extend(
                    config
                        .categories
                        .iter()
                        .filter(|(_, p)| p.required)
                        .map(|(c, _)| *c),
                );
            }
            if categories.is_empty() {
                return Err(Failure::usage(
                    "consent grant: name categories or pass --all-required",
                ));
            }
            consent_edit(&config, categories, Decision::Grant, &a.by)
        }
        ConsentCommand::Revoke(a) => {
            let config = load_config(&a.config)?;
            let mut categories = parse_named_categories(&a.categories)?;
            if a.all {
                categories.extend(Category::ALL);
            }
            if categories.is_empty() {
                return Err(Failure::usage(
                    "consent revoke: name categories or pass --all",
                ));
            }
            consent_edit(&config, categories, Decision::Revoke, &a.by)
        }
    }
}

fn consent_edit(
    config: &Config,
    mut categories: Vec<Category>,
    decision: Decision,
    by: &str,
) -> Result<(), Failure> {
    categories.sort();
    categories.dedup();
    let store = buffer::open(config).map_err(Failure::cant_create)?;
    let _lock = consent::DecisionLock::acquire(&config.state_dir).map_err(Failure::cant_create)?;
    let (view, applied) = buffer::decide_consent(config, &store, categories.clone(), decision, by)
        .map_err(Failure::cant_create)?;
    for (category, count) in &applied.purged {
        out!("deleted {count} unsent events of {category}");
    }
    let verb = match decision {
        Decision::Grant => "granted",
        Decision::Revoke => "revoked",
    };
    let names: Vec<&str> = categories.iter().map(|c| c.name()).collect();
    out!("{verb}: {}", names.join(", "));
    if decision == Decision::Revoke {
        for line in required_revoked(config, &categories) {
            out!("{line}");
        }
    }
    let active: Vec<&str> = view.active().iter().map(|c| c.name()).collect();
    if active.is_empty() {
        out!("active now: none");
        for status in &view.categories {
            if let consent::CategoryState::BlockedByRequired { .. } = status.state {
                out!("{}: {}", status.category, status.state.reason());
                break;
            }
        }
    } else {
        out!("active now: {}", active.join(", "));
    }
    Ok(())
}

fn consent_show(args: ConsentShowArgs) -> Result<(), Failure> {
    let config = load_config(&args.config)?;
    if args.history {
        let entries = consent::log::read_all(&config.state_dir)
            .map_err(|e| Failure::config(format!("{}: {e}", config.state_dir.display())))?;
        if args.json {
            for entry in entries {
                let line = serde_json::to_string(&entry).map_err(Failure::config)?;
                out!("{line}");
            }
        } else if entries.is_empty() {
            out!("no consent change recorded yet");
        } else {
            for line in history_table(&entries) {
                out!("{line}");
            }
        }
        return Ok(());
    }
    let (source, view) = consent::load(&config);
    if let Some(problem) = source.problem() {
        log::warn!("{problem}");
    }
    if args.json {
        out!("{}", render::to_pretty(&json!(view))?);
        return Ok(());
    }
    out!(
        "consent file: {} (policy version {})",
        config.consent_file.display(),
        view.policy_version
    );
    if let Some(problem) = &view.problem {
        out!("{problem}");
    }
    let rows: Vec<[String; 5]> = view
        .categories
        .iter()
        .map(|s| {
            [
                s.category.name().to_string(),
                if s.required { "required" } else { "optional" }.to_string(),
                s.state.reason(),
                s.by.clone().unwrap_or_else(|| "-".into()),
                s.at.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let header = ["CATEGORY", "NEEDED", "STATE", "BY", "AT"];
    let lines = render::table(header, &rows);
    out!("{}", lines[0]);
    for (line, status) in lines[1..].iter().zip(&view.categories) {
        out!("{line}");
        out!("    purpose: {}", status.purpose);
    }
    Ok(())
}

/// The consent log for a person: one change per row, oldest first.
fn history_table(entries: &[consent::log::ConsentLogEntry]) -> Vec<String> {
    let rows: Vec<[String; 6]> = entries
        .iter()
        .map(|e| {
            [
                e.observed_at.clone(),
                e.category.name().to_string(),
                e.previous_state.clone().unwrap_or_else(|| "-".into()),
                e.state.clone(),
                e.by.clone().unwrap_or_else(|| "-".into()),
                e.policy_version.to_string(),
            ]
        })
        .collect();
    render::table(["WHEN", "CATEGORY", "FROM", "TO", "BY", "POLICY"], &rows)
}

/// When a revocation includes required categories, the whole service stops: say so and
/// how to undo it.
fn required_revoked(config: &Config, revoked: &[Category]) -> Vec<String> {
    let required: Vec<Category> = config
        .categories
        .iter()
        .filter(|(_, p)| p.required)
        .map(|(c, _)| *c)
        .collect();
    let hit: Vec<&str> = revoked
        .iter()
        .filter(|c| required.contains(c))
        .map(|c| c.name())
        .collect();
    if hit.is_empty() {
        return Vec::new();
    }
    let undo = if required.iter().all(|c| revoked.contains(c)) {
        "--all-required".to_string()
    } else {
        hit.join(" ")
    };
    let config_flag = if config.path == std::path::Path::new(DEFAULT_CONFIG_PATH) {
        String::new()
    } else {
        format!(" --config {}", config.path.display())
    };
    vec![
        format!(
            "{} {} required: nothing at all is collected or sent now, except the record of \
             this decision and the erasure it asks for",
            hit.join(", "),
            if hit.len() == 1 { "is" } else { "are" }
        ),
        format!("to turn the service back on: assent consent grant {undo}{config_flag}"),
    ]
}
