//! The store's error type.

use std::fmt;

/// Everything that can go wrong in the store.
///
/// It is `Clone` because one failed group commit is reported to every producer whose
/// event was in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// SQLite reported an error while doing `context`.
    Sqlite {
        /// What the store was doing.
        context: &'static str,
        /// SQLite's primary result code, when it gave one.
        code: Option<i32>,
        /// SQLite's message.
        message: String,
    },
    /// A filesystem operation failed while doing `context`.
    Io {
        /// What the store was doing.
        context: &'static str,
        /// The OS error text.
        message: String,
    },
    /// No room could be made: nothing evictable is left and the write still does not fit.
    Full,
    /// One event is larger than this store can ever hold.
    EventTooLarge {
        /// The event's record size.
        bytes: u64,
        /// The largest record size this store accepts.
        limit_bytes: u64,
    },
    /// The options cannot work (for example `max_bytes` below the minimum).
    InvalidOptions(&'static str),
    /// `ack` named a seq that was never assigned.
    AckBeyondEnd {
        /// The seq passed to `ack`.
        through_seq: u64,
        /// The highest seq assigned so far.
        last_seq: u64,
    },
    /// The database turned out to be corrupt while running; reopening the store
    /// quarantines it and starts a fresh one.
    Corrupt(String),
    /// The committer thread is gone (the store is shutting down).
    Closed,
    /// `submit`, `append` or `append_many` was called from inside a `submit` callback,
    /// which runs on the committer thread and would wait for itself.
    CalledFromCallback,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite {
                context,
                code: Some(code),
                message,
            } => write!(f, "sqlite error while {context}: {message} (code {code})"),
            Self::Sqlite {
                context,
                code: None,
                message,
            } => write!(f, "sqlite error while {context}: {message}"),
            Self::Io { context, message } => write!(f, "i/o error while {context}: {message}"),
            Self::Full => write!(f, "buffer full: nothing left to evict"),
            Self::EventTooLarge { bytes, limit_bytes } => {
                write!(
                    f,
                    "event of {bytes} bytes exceeds the limit of {limit_bytes} bytes"
                )
            }
            Self::InvalidOptions(why) => write!(f, "invalid store options: {why}"),
            Self::AckBeyondEnd {
                through_seq,
                last_seq,
            } => write!(
                f,
                "ack through seq {through_seq} beyond the last assigned seq {last_seq}"
            ),
            Self::Corrupt(why) => write!(f, "buffer database corrupt: {why}"),
            Self::Closed => write!(f, "store is closed"),
            Self::CalledFromCallback => {
                write!(f, "cannot append from inside a submit callback")
            }
        }
    }
}

impl std::error::Error for StoreError {}

/// Wraps a rusqlite error with what the store was doing.
pub(crate) fn sql(context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| from_sqlite(context, &e)
}

pub(crate) fn from_sqlite(context: &'static str, e: &rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(err, msg) => {
            let message = msg.clone().unwrap_or_else(|| err.to_string());
            match err.code {
                rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase => {
                    StoreError::Corrupt(format!("{context}: {message}"))
                }
                rusqlite::ErrorCode::DiskFull => StoreError::Full,
                _ => StoreError::Sqlite {
                    context,
                    code: Some(err.extended_code),
                    message,
                },
            }
        }
        other => StoreError::Sqlite {
            context,
            code: None,
            message: other.to_string(),
        },
    }
}

/// Wraps an I/O error with what the store was doing.
pub(crate) fn io(context: &'static str) -> impl Fn(std::io::Error) -> StoreError {
    move |e| StoreError::Io {
        context,
        message: e.to_string(),
    }
}
