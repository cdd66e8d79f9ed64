//! Placeholder: the `os` reader is being written.

use crate::Root;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Os {}

pub fn read(_root: &Root) -> Os {
    Os {}
}
