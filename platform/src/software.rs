//! Placeholder: the `software` reader is being written.

use crate::Root;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Software {}

pub fn read(_root: &Root) -> Software {
    Software {}
}
