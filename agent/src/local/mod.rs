//! The buffer side of the agent: what is held on the device and what is remembered
//! about sending it.
//!
//! - `buffer`: opening the store from the config, events from payloads, and applying
//!   consent to what is held (log, consent records, purge, erasure queue).
//! - `outbox`: durable sending state in the store's `meta` table (erasure queue, last
//!   pseudonym, sent-batch log, metered usage).
//! - `owner`: the owner's export and erasure.
//!
//! Never touches the network and never reads device facts: the uploader (`sync`) sends
//! what is here, and `collect` produces what goes in.

pub mod buffer;
pub mod outbox;
pub mod owner;
