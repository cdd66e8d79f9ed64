//! The command line's shape: every subcommand, flag and option as argh types. Parsing
//! only; what each command does is in `commands/`.

use argh::FromArgs;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(FromArgs, Debug)]
/// Assent: a consent-gated telemetry agent for Linux devices.
pub(crate) struct Args {
    /// print the version and exit
    #[argh(switch, short = 'V')]
    pub(crate) version: bool,

    #[argh(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub(crate) enum Command {
    Collect(CollectArgs),
    CheckConfig(CheckConfigArgs),
    Consent(ConsentArgs),
    ResetId(ResetIdArgs),
    Sync(SyncArgs),
    Run(RunArgs),
    Status(StatusArgs),
    Export(ExportArgs),
    Erase(EraseArgs),
    Forget(ForgetArgs),
    Emit(EmitArgs),
    Control(ControlArgs),
}

#[derive(FromArgs, Debug)]
/// Send one control-protocol request (a JSON line, see docs/control.md) to the running
/// daemon and print its answer, e.g. '{"command":"consent-show"}'.
#[argh(subcommand, name = "control")]
pub(crate) struct ControlArgs {
    /// the request as JSON
    #[argh(positional)]
    pub(crate) request: String,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    pub(crate) config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Report an event through the running daemon, as a local program would: NAME and
/// key=value attributes (true/false, integers and decimals are typed; key:=value forces
/// text). Answered once the event is stored durably.
#[argh(subcommand, name = "emit")]
pub(crate) struct EmitArgs {
    /// the event name
    #[argh(positional)]
    pub(crate) name: String,

    /// attributes as key=value
    #[argh(positional)]
    pub(crate) attrs: Vec<String>,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    pub(crate) config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Run the daemon in the foreground (as systemd does).
#[argh(subcommand, name = "run")]
pub(crate) struct RunArgs {
    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    pub(crate) config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Show the running daemon's state: last sync, next attempt, backoff, queue,
/// connectivity, active categories.
#[argh(subcommand, name = "status")]
pub(crate) struct StatusArgs {
    /// print JSON
    #[argh(switch)]
    pub(crate) json: bool,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    pub(crate) config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Write everything held on this device as one JSON document a person can read.
#[argh(subcommand, name = "export")]
pub(crate) struct ExportArgs {
    /// write to this file (mode 0600) instead of standard output
    #[argh(option)]
    pub(crate) out: Option<PathBuf>,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    pub(crate) config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Delete everything held locally; with --remote also ask the collector to erase
/// everything it holds for this device.
#[argh(subcommand, name = "erase")]
pub(crate) struct EraseArgs {
    /// also send an erasure request for all categories
    #[argh(switch)]
    pub(crate) remote: bool,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    pub(crate) config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Forget this device: erase --remote, then reset-id.
#[argh(subcommand, name = "forget")]
pub(crate) struct ForgetArgs {
    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    pub(crate) config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Upload the queued events to the collector. With --once: the whole queue now, in the
/// foreground, without a running daemon; prints what was sent, acked and what remains.
#[argh(subcommand, name = "sync")]
pub(crate) struct SyncArgs {
    /// upload everything queued now and exit (no daemon needed)
    #[argh(switch)]
    pub(crate) once: bool,

    /// send even over a metered link (a technician's explicit flush)
    #[argh(switch)]
    pub(crate) allow_metered: bool,

    /// most events per batch (default 1000; halved when the collector says 413)
    #[argh(option, default = "crate::sync::DEFAULT_BATCH_EVENTS")]
    pub(crate) batch_events: usize,

    /// give up after this many failed attempts in a row (default 3)
    #[argh(option, default = "3")]
    pub(crate) attempts: u32,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    pub(crate) config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Collect device facts: --preview shows everything that could be collected, ignoring
/// consent; --dry-run shows what would be collected under the current consent.
#[argh(subcommand, name = "collect")]
pub(crate) struct CollectArgs {
    /// print what could be collected, ignoring consent (identifiers masked)
    #[argh(switch)]
    pub(crate) preview: bool,

    /// print what would be collected now under the current consent, de-identified as it
    /// would be sent; nothing is stored
    #[argh(switch)]
    pub(crate) dry_run: bool,

    /// print JSON
    #[argh(switch)]
    pub(crate) json: bool,

    /// read from this root filesystem instead of / (live sources such as netlink and
    /// gpsd are used only for /)
    #[argh(option)]
    pub(crate) root: Option<PathBuf>,

    /// only this category; repeat for several (default: all)
    #[argh(option)]
    pub(crate) category: Vec<String>,

    /// gpsd address for the location category (default from the config, else
    /// 127.0.0.1:2947)
    #[argh(option)]
    pub(crate) gpsd: Option<SocketAddr>,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    pub(crate) config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Validate the config and the consent file; exit 78 with every error when invalid.
#[argh(subcommand, name = "check-config")]
pub(crate) struct CheckConfigArgs {
    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    pub(crate) config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Show or change the owner's consent.
#[argh(subcommand, name = "consent")]
pub(crate) struct ConsentArgs {
    #[argh(subcommand)]
    pub(crate) command: ConsentCommand,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub(crate) enum ConsentCommand {
    Show(ConsentShowArgs),
    Grant(ConsentGrantArgs),
    Revoke(ConsentRevokeArgs),
}

#[derive(FromArgs, Debug)]
/// Show each category: required or optional, purpose, state, who decided and when.
#[argh(subcommand, name = "show")]
pub(crate) struct ConsentShowArgs {
    /// print JSON (with --history: one JSON object per line)
    #[argh(switch)]
    pub(crate) json: bool,

    /// print the consent log instead: every change, when and by whom
    #[argh(switch)]
    pub(crate) history: bool,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    pub(crate) config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Grant categories under the current policy version.
#[argh(subcommand, name = "grant")]
pub(crate) struct ConsentGrantArgs {
    /// categories to grant
    #[argh(positional)]
    pub(crate) categories: Vec<String>,

    /// grant every category the operator marks required
    #[argh(switch)]
    pub(crate) all_required: bool,

    /// who grants: "owner", "guardian", "technician:ops-17" (default owner)
    #[argh(option, default = "String::from(\"owner\")")]
    pub(crate) by: String,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    pub(crate) config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Withdraw consent for categories; collection stops and unsent data is deleted.
#[argh(subcommand, name = "revoke")]
pub(crate) struct ConsentRevokeArgs {
    /// categories to revoke
    #[argh(positional)]
    pub(crate) categories: Vec<String>,

    /// revoke every category
    #[argh(switch)]
    pub(crate) all: bool,

    /// who revokes (default owner)
    #[argh(option, default = "String::from(\"owner\")")]
    pub(crate) by: String,

    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    pub(crate) config: Option<PathBuf>,
}

#[derive(FromArgs, Debug)]
/// Rotate the device secret and install id, so old and new pseudonyms cannot be linked.
#[argh(subcommand, name = "reset-id")]
pub(crate) struct ResetIdArgs {
    /// config file (default /etc/assent/assent.toml)
    #[argh(option)]
    pub(crate) config: Option<PathBuf>,
}
