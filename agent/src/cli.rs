//! The command line: argument parsing and everything the binary prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use crate::{logger, preview};
use argh::FromArgs;
use assent_platform::location::GpsdOptions;
use assent_platform::{Category, ReadOptions, Root};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status for a command-line usage error (EX_USAGE).
const EXIT_USAGE: u8 = 64;

#[derive(FromArgs, Debug)]
/// Assent: a consent-gated telemetry agent for Linux devices.
struct Args {
    /// print the version and exit
    #[argh(switch, short = 'V')]
    version: bool,

    #[argh(subcommand)]
    command: Option<Command>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum Command {
    Collect(CollectArgs),
}

#[derive(FromArgs, Debug)]
/// Collect device facts. With --preview: print everything Assent could collect now,
/// ignoring consent; nothing is stored or sent.
#[argh(subcommand, name = "collect")]
struct CollectArgs {
    /// print what could be collected, ignoring consent (identifiers masked)
    #[argh(switch)]
    preview: bool,

    /// print one JSON object keyed by category name
    #[argh(switch)]
    json: bool,

    /// read from this root filesystem instead of / (live sources such as netlink and
    /// gpsd are used only for /)
    #[argh(option)]
    root: Option<PathBuf>,

    /// only this category; repeat for several (default: all)
    #[argh(option)]
    category: Vec<String>,

    /// gpsd address for the location category (default 127.0.0.1:2947)
    #[argh(option)]
    gpsd: Option<SocketAddr>,
}

pub fn main() -> ExitCode {
    logger::init(log::LevelFilter::Warn);
    let args: Args = argh::from_env();
    if args.version {
        println!("assent {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    match args.command {
        Some(Command::Collect(c)) => collect(c),
        None => {
            eprintln!("assent: no command given; run `assent --help` to see them");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn collect(args: CollectArgs) -> ExitCode {
    if !args.preview {
        eprintln!(
            "assent: collecting under consent is not available in this build; \
             use `assent collect --preview` to see what could be collected"
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let categories = match parse_categories(&args.category) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("assent: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let root = match &args.root {
        Some(path) if !path.is_dir() => {
            eprintln!("assent: --root {}: not a directory", path.display());
            return ExitCode::from(EXIT_USAGE);
        }
        Some(path) => Root::at(path),
        None => Root::live(),
    };
    let mut options = ReadOptions::default();
    if let Some(address) = args.gpsd {
        options.gpsd = GpsdOptions {
            address,
            ..GpsdOptions::default()
        };
    }
    let preview = preview::collect(&root, &categories, &options);
    if args.json {
        eprintln!("assent: preview: ignores consent; nothing is stored or sent");
        match serde_json::to_string_pretty(&preview) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("assent: cannot encode the preview: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", preview::render_human(&root, &categories, &preview));
    }
    ExitCode::SUCCESS
}

/// The categories named on the command line, in display order; all readable ones when
/// none is named.
fn parse_categories(names: &[String]) -> Result<Vec<Category>, String> {
    if names.is_empty() {
        return Ok(Category::READABLE.to_vec());
    }
    let mut chosen = Vec::new();
    for name in names {
        let category: Category = name.parse().map_err(|e| format!("--category: {e}"))?;
        if category == Category::AppEvents {
            return Err(
                "--category app_events: these events come from local programs; there is nothing to preview"
                    .to_string(),
            );
        }
        chosen.push(category);
    }
    chosen.sort();
    chosen.dedup();
    Ok(chosen)
}
