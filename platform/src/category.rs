//! The data categories, named as in the consent file and on the wire.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A category of data, each read, stored and sent only under its own consent.
///
/// `AppEvents` has no reader here: those events come from local programs through the
/// agent's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    DeviceId,
    Hardware,
    Os,
    Network,
    NetworkDetail,
    Location,
    Software,
    AppEvents,
}

impl Category {
    /// Every category, in the order they are shown to the owner.
    pub const ALL: [Category; 8] = [
        Category::DeviceId,
        Category::Hardware,
        Category::Os,
        Category::Network,
        Category::NetworkDetail,
        Category::Location,
        Category::Software,
        Category::AppEvents,
    ];

    /// The categories this crate has a reader for.
    pub const READABLE: [Category; 7] = [
        Category::DeviceId,
        Category::Hardware,
        Category::Os,
        Category::Network,
        Category::NetworkDetail,
        Category::Location,
        Category::Software,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::DeviceId => "device_id",
            Category::Hardware => "hardware",
            Category::Os => "os",
            Category::Network => "network",
            Category::NetworkDetail => "network_detail",
            Category::Location => "location",
            Category::Software => "software",
            Category::AppEvents => "app_events",
        }
    }

    /// Whether a category is required by default (an operator's config may override).
    pub fn required_by_default(self) -> bool {
        !matches!(
            self,
            Category::NetworkDetail | Category::Location | Category::Software
        )
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a name that is not a category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCategory(pub String);

impl fmt::Display for UnknownCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Category::ALL.iter().map(|c| c.name()).collect();
        write!(
            f,
            "unknown category `{}` (expected one of: {})",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownCategory {}

impl FromStr for Category {
    type Err = UnknownCategory;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| UnknownCategory(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for c in Category::ALL {
            assert_eq!(c.name().parse::<Category>(), Ok(c));
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.name())
            );
        }
        assert!("hardwar".parse::<Category>().is_err());
    }
}
