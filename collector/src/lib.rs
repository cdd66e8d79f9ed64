//! `assent-collector`: the reference receiving server for Assent devices.
//!
//! It owns the server side of the wire protocol (docs/protocol.md, v1): it accepts
//! batches over HTTPS, stores each record once under the high-water rule, answers with
//! the highest seq durably stored, and carries out erasure requests. It never decides
//! what a device may collect (that is the device owner's consent) and never talks to
//! devices except in answer to them.
//!
//! Modules: [`config`] (the TOML config), [`auth`] (bearer tokens), [`tls`] (rustls
//! setup), [`storage`] (the backend trait and the high-water rule), [`sqlite`] (the
//! default backend), [`pg`] (PostgreSQL, for fleets), [`server`] (HTTP, threads, shutdown),
//! [`metrics`] (Prometheus exposition), [`console`] (the operators' web pages), [`inventory`] (package lists rebuilt from
//! parts and deltas). Nothing here
//! prints; the binary's `cli` module does.

pub mod auth;
pub mod config;
pub mod console;
pub mod inventory;
mod local_http;
pub mod metrics;
pub mod pg;
pub mod server;
pub mod sqlite;
pub mod storage;
pub mod tls;
