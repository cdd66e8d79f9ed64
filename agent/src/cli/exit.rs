//! Every exit status `assent` uses, in one place: sysexits(3) where one fits, 1 for a
//! command that ran and failed, 141 for a closed stdout pipe (as SIGPIPE would); and
//! [`Failure`], a failed command's message with its status.

use std::process::ExitCode;

/// Why `assent` exits unsuccessfully.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command ran and failed (the daemon stopped on an error, an event refused).
    Failure,
    /// EX_USAGE: a command-line usage error.
    Usage,
    /// EX_SOFTWARE: an internal error (JSON that cannot be encoded).
    Software,
    /// EX_CANTCREAT: a needed file cannot be written.
    CantCreate,
    /// EX_IOERR: standard output cannot be written.
    IoError,
    /// EX_TEMPFAIL: the daemon or the collector could not be reached, or refused.
    TempFail,
    /// EX_CONFIG: the configuration is invalid.
    Config,
    /// The reader of standard output went away.
    BrokenPipe,
}

impl Exit {
    /// The status number.
    pub fn code(self) -> u8 {
        match self {
            Exit::Failure => 1,
            Exit::Usage => 64,
            Exit::Software => 70,
            Exit::CantCreate => 73,
            Exit::IoError => 74,
            Exit::TempFail => 75,
            Exit::Config => 78,
            Exit::BrokenPipe => 141,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

/// A failed command: what to print and the exit status.
pub(crate) struct Failure {
    pub(crate) code: Exit,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn usage(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: Exit::Usage,
            message: format!("assent: {message}"),
        }
    }

    pub(crate) fn config(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: Exit::Config,
            message: message.to_string(),
        }
    }

    pub(crate) fn unavailable(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: Exit::TempFail,
            message: format!("assent: {message}"),
        }
    }

    pub(crate) fn cant_create(message: impl std::fmt::Display) -> Failure {
        Failure {
            code: Exit::CantCreate,
            message: format!("assent: {message}"),
        }
    }
}
