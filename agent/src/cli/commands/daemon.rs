//! The commands that run or talk to the daemon: `run`, `status`, `control` (one raw
//! control-protocol request) and `emit` (an event through the events socket).

use super::load_config;
use crate::cli::args::{ControlArgs, EmitArgs, RunArgs, StatusArgs};
use crate::cli::exit::{Exit, Failure};
use crate::cli::render;
use crate::control::{self, protocol::Request};
use crate::daemon;
use crate::unix::logger;

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
    for line in render::status(status) {
        out!("{line}");
    }
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
