//! Placeholder: the `hardware` reader is being written.

use crate::Root;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hardware {}

pub fn read(_root: &Root) -> Hardware {
    Hardware {}
}
