//! The control protocol's messages, shared by the daemon (which answers them) and the
//! CLI (which sends them): one JSON request per line, one JSON answer per line, then the
//! daemon closes the connection. Documented for other clients (a kiosk, a local web UI)
//! in `docs/control.md`.
//!
//! Pure data: no I/O here.

use assent_platform::Category;
use serde::{Deserialize, Serialize};

/// The longest request line the daemon reads.
pub const MAX_REQUEST_BYTES: u64 = 4096;

/// One request, tagged by its `command` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// The daemon's status (the object `assent status --json` prints).
    Status,
    /// Wake the uploader now.
    Sync,
    /// Delete everything queued; with `remote`, queue an erasure for the collector.
    Erase {
        #[serde(default)]
        remote: bool,
    },
    /// Rotate the device identity.
    ResetId,
    /// Every category with its purpose and consent state.
    ConsentShow,
    /// Grant these categories, as `assent consent grant` does.
    ConsentGrant { categories: Vec<Category> },
    /// Withdraw these categories, as `assent consent revoke` does.
    ConsentWithdraw { categories: Vec<Category> },
}

/// One answer. `ok` says whether the request was carried out; `error` says why not.
/// Each request fills at most one of the other fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For `status`: the daemon's status object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
    /// For `erase`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased: Option<Erased>,
    /// For `consent-show`, `consent-grant` and `consent-withdraw`: the state afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<ConsentState>,
}

impl Answer {
    /// Carried out, with nothing more to say.
    pub fn done() -> Answer {
        Answer {
            ok: true,
            ..Answer::default()
        }
    }

    /// Refused or failed, with the reason.
    pub fn failed(error: impl Into<String>) -> Answer {
        Answer {
            ok: false,
            error: Some(error.into()),
            ..Answer::default()
        }
    }
}

/// What an erasure did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erased {
    pub events_deleted: u64,
    pub remote_requested: bool,
}

/// The consent decisions as a settings screen shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentState {
    pub policy_version: u32,
    /// Why nothing is active, when the consent file is missing or invalid.
    pub problem: Option<String>,
    pub categories: Vec<CategoryConsent>,
    /// For `consent-withdraw`: unsent events deleted, per category.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purged: Vec<(Category, u64)>,
}

/// One category: what it is for and whether it is collected now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryConsent {
    pub category: Category,
    pub required: bool,
    pub purpose: String,
    /// Whether it is collected now.
    pub active: bool,
    /// The state name: `active`, `not_granted`, `refused`, `lapsed`,
    /// `blocked_by_required`, `no_valid_consent_file`.
    pub state: String,
    /// The state for a person.
    pub reason: String,
    /// Who made the last decision, and when.
    pub by: Option<String>,
    pub at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_keep_their_wire_form() {
        let cases = [
            (Request::Status, r#"{"command":"status"}"#),
            (Request::Sync, r#"{"command":"sync"}"#),
            (
                Request::Erase { remote: true },
                r#"{"command":"erase","remote":true}"#,
            ),
            (Request::ResetId, r#"{"command":"reset-id"}"#),
            (Request::ConsentShow, r#"{"command":"consent-show"}"#),
            (
                Request::ConsentGrant {
                    categories: vec![Category::Hardware, Category::Os],
                },
                r#"{"command":"consent-grant","categories":["hardware","os"]}"#,
            ),
            (
                Request::ConsentWithdraw {
                    categories: vec![Category::Location],
                },
                r#"{"command":"consent-withdraw","categories":["location"]}"#,
            ),
        ];
        for (request, line) in cases {
            assert_eq!(serde_json::to_string(&request).unwrap(), line);
            assert_eq!(serde_json::from_str::<Request>(line).unwrap(), request);
        }
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"command":"erase"}"#).unwrap(),
            Request::Erase { remote: false }
        );
    }

    #[test]
    fn bad_requests_are_refused() {
        for line in [
            r#"{"command":"format-disk"}"#,
            r#"{"command":"consent-grant"}"#,
            r#"{"command":"consent-grant","categories":["no_such"]}"#,
            r#"{"command":"erase","remote":true,"extra":1}"#,
            r#"{"remote":true}"#,
            "not json",
        ] {
            assert!(serde_json::from_str::<Request>(line).is_err(), "{line}");
        }
    }

    #[test]
    fn answers_round_trip_and_omit_empty_fields() {
        assert_eq!(
            serde_json::to_string(&Answer::done()).unwrap(),
            r#"{"ok":true}"#
        );
        let failed = Answer::failed("uid 7 may not use the control socket");
        let line = serde_json::to_string(&failed).unwrap();
        assert_eq!(
            line,
            r#"{"ok":false,"error":"uid 7 may not use the control socket"}"#
        );
        assert_eq!(serde_json::from_str::<Answer>(&line).unwrap(), failed);
    }
}
