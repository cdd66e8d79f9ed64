//! Placeholder: the `device_id` reader is being written.

use crate::Root;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceIds {}

pub fn read(_root: &Root) -> DeviceIds {
    DeviceIds {}
}
