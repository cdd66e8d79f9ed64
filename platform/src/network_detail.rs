//! Placeholder: the `network_detail` reader is being written.

use crate::Root;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDetail {}

pub fn read(_root: &Root) -> NetworkDetail {
    NetworkDetail {}
}
