//! Placeholder: the `network` reader is being written.

use crate::Root;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {}

pub fn read(_root: &Root) -> Network {
    Network {}
}
