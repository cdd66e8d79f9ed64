//! Readers for every data category Assent can collect: hardware, OS, network,
//! network detail (Wi-Fi), location (gpsd), software and the raw device identifiers.
//!
//! This crate only reads. It never writes, and it knows nothing of consent, storage or
//! the network beyond the local sources it reads (netlink, gpsd on loopback). Every
//! reader takes a [`Root`] so tests run against fixture trees; every parser is a pure
//! function over bytes. No reader panics, and one bad file never fails a whole category:
//! each value is a [`Field`] that says whether it was present, absent, denied or
//! malformed. File contents, command lines, environments and user names are never read:
//! the only per-process fact is the program name from `/proc/<pid>/comm`.
//!
//! It spawns no threads. Readers are synchronous and bounded: every file read stops at a
//! size limit and refuses anything that is not a regular file (FIFOs, devices), and every
//! socket has a timeout.

pub mod category;
pub mod cellular;
mod dbus;
pub mod device_id;
pub mod field;
pub mod hardware;
pub mod location;
mod netlink;
pub mod network;
pub mod network_detail;
pub mod os;
pub mod read;
pub mod software;

pub use category::Category;
pub use field::Field;
pub use read::Root;

use serde::{Deserialize, Serialize};

/// What one category's reader returned.
// A `Facts` value is built once per category per collection and moved a few times; the
// size difference between variants costs nothing worth a `Box`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Facts {
    DeviceId(device_id::DeviceIds),
    Hardware(hardware::Hardware),
    Os(os::Os),
    Network(network::Network),
    NetworkDetail(network_detail::NetworkDetail),
    Location(location::Location),
    Software(software::Software),
}

/// Settings for sources that are not files.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub gpsd: location::GpsdOptions,
    pub cellular: cellular::CellularOptions,
    /// Whether `network_detail` lists the access points of the last Wi-Fi scan.
    pub wifi_list: bool,
}

impl Default for ReadOptions {
    fn default() -> ReadOptions {
        ReadOptions {
            gpsd: location::GpsdOptions::default(),
            cellular: cellular::CellularOptions::default(),
            wifi_list: true,
        }
    }
}

/// Calls the reader of one category. `AppEvents` has no reader and gives `None`.
pub fn read(category: Category, root: &Root, options: &ReadOptions) -> Option<Facts> {
    Some(match category {
        Category::DeviceId => Facts::DeviceId(device_id::read(root)),
        Category::Hardware => Facts::Hardware(hardware::read(root)),
        Category::Os => Facts::Os(os::read(root)),
        Category::Network => {
            let mut facts = network::read(root);
            facts.modems = cellular::read_modems(root, &options.cellular);
            Facts::Network(facts)
        }
        Category::NetworkDetail => Facts::NetworkDetail(network_detail::read(
            root,
            options.wifi_list,
            &options.cellular,
        )),
        Category::Location => Facts::Location(location::read(root, &options.gpsd)),
        Category::Software => Facts::Software(software::read(root)),
        Category::AppEvents => return None,
    })
}

impl Facts {
    pub fn category(&self) -> Category {
        match self {
            Facts::DeviceId(_) => Category::DeviceId,
            Facts::Hardware(_) => Category::Hardware,
            Facts::Os(_) => Category::Os,
            Facts::Network(_) => Category::Network,
            Facts::NetworkDetail(_) => Category::NetworkDetail,
            Facts::Location(_) => Category::Location,
            Facts::Software(_) => Category::Software,
        }
    }

    /// The facts alone as JSON, without the category tag.
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            Facts::DeviceId(f) => serde_json::to_value(f),
            Facts::Hardware(f) => serde_json::to_value(f),
            Facts::Os(f) => serde_json::to_value(f),
            Facts::Network(f) => serde_json::to_value(f),
            Facts::NetworkDetail(f) => serde_json::to_value(f),
            Facts::Location(f) => serde_json::to_value(f),
            Facts::Software(f) => serde_json::to_value(f),
        };
        // Serializing plain structs of strings and numbers into a Value cannot fail.
        value.unwrap_or(serde_json::Value::Null)
    }
}
