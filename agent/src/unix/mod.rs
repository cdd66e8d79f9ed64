//! Operating-system glue shared by the subsystems: the Unix socket server's binding
//! and peer policy (`socket`), atomic private files (`fsutil`), the stderr logger
//! (`logger`) and sd_notify (`notify`).
//!
//! Knows nothing of consent, collection or the protocol; holds no thread and no task.

pub mod fsutil;
pub mod logger;
pub mod notify;
pub mod socket;
