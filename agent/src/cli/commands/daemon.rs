//! The commands that run or talk to the daemon: `run`, `status`, `control` (one raw
//! control-protocol request) and `emit` (an event through the events socket).

use super::load_config;
use crate::cli::args::{ControlArgs, EmitArgs, RunArgs, StatusArgs};
use crate::cli::exit::{Exit, Failure};
use crate::cli::render;
use crate::control::{self, protocol::Request};
use crate::daemon;
use crate::unix::logger;
use serde_json::Value;

pub(crate) fn run_daemon(args: RunArgs) -> Result<(), Failure> {
    // The daemon refuses to start on an invalid config, with the same messages as
    // check-config.
    let config = load_config(&args.config)?;
    logger::set_level(config.log_level);
    for warning in config.warnings() {
        log::warn!("{warning}");
    }
    daemon::run(config).map_err(|e| Failure {
        code: Exit::Failure,
        message: format!("assent: {e}"),
    })
}

pub(crate) fn status(args: StatusArgs) -> Result<(), Failure> {
    let config = load_config(&args.config)?;
    let answer = control::request(&config, &Request::Status).map_err(Failure::unavailable)?;
    let status = &answer["status"];
    if args.json {
        out!("{}", render::to_pretty(status)?);
        return Ok(());
    }
    let text = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let connectivity = match &status["connectivity"] {
        Value::Null => "unknown".to_string(),
        c if c["online"] == true => format!(
            "online via {}{}",
            text(&c["route_interface"]),
            if c["metered"] == true {
                " (metered)"
            } else {
                ""
            }
        ),
        _ => "offline".to_string(),
    };
    let active: Vec<String> = status["active_categories"]
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    out!("running since     {}", text(&status["started_at"]));
    out!(
        "active categories {}",
        if active.is_empty() {
            "none".to_string()
        } else {
            active.join(", ")
        }
    );
    if let Some(problem) = status["consent_problem"].as_str() {
        out!("consent           {problem}");
    }
    out!("connectivity      {connectivity}");
    out!("last sync         {}", text(&status["last_sync"]));
    out!("last result       {}", text(&status["last_sync_result"]));
    out!(
        "next attempt in   {} s",
        text(&status["next_attempt_in_seconds"])
    );
    out!(
        "backoff           {} s",
        text(&status["backoff_ceiling_seconds"])
    );
    out!(
        "queue             {} events, {} gap records, {} bytes on disk",
        text(&status["queued_events"]),
        text(&status["queued_gaps"]),
        text(&status["buffer_file_bytes"])
    );
    Ok(())
}

pub(crate) fn control_request(args: ControlArgs) -> Result<(), Failure> {
    let config = load_config(&args.config)?;
    let request = Request::from_json(&args.request)
        .map_err(|e| Failure::usage(format!("control: bad request: {e}")))?;
    let answer = control::request(&config, &request).map_err(Failure::unavailable)?;
    let line = serde_json::to_string(&answer).map_err(Failure::config)?;
    out!("{line}");
    Ok(())
}

pub(crate) fn emit(args: EmitArgs) -> Result<(), Failure> {
    let config = load_config(&args.config)?;
    let seq =
        crate::events::emit::run(&config.events.socket, &args.name, &args.attrs).map_err(|e| {
            Failure {
                code: Exit::Failure,
                message: format!("assent: emit: {e}"),
            }
        })?;
    out!("ok {seq}");
    Ok(())
}
