//! The on-device queue of events waiting to be sent: one SQLite file, `buffer.db`, in
//! the state directory.
//!
//! It knows nothing of the network or of consent rules: it is told what to append, what
//! was acknowledged and what to purge. (Being built: see the store issue.)
