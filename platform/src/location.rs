//! Placeholder: the `location` reader is being written.

use crate::Root;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// Where gpsd listens and how long to wait for a fix.
#[derive(Debug, Clone)]
pub struct GpsdOptions {
    pub address: SocketAddr,
    pub timeout: Duration,
}

impl Default for GpsdOptions {
    fn default() -> Self {
        GpsdOptions {
            address: SocketAddr::from(([127, 0, 0, 1], 2947)),
            timeout: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {}

pub fn read(_root: &Root, _gpsd: &GpsdOptions) -> Location {
    Location {}
}
