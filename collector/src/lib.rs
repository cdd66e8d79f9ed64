//! The reference collector: receives batches from Assent devices over TLS, removes
//! duplicates, honours erasure requests and enforces retention. (Being built: see the
//! collector issue.)
