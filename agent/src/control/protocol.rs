//! The control protocol's messages, shared by the daemon (which answers them) and the
//! CLI (which sends them): one JSON request per line, one JSON answer per line, then the
//! daemon closes the connection. Documented for other clients (a kiosk, a local web UI)
//! in `docs/control.md`.
//!
//! Pure data: no I/O here.

use assent_platform::Category;
use serde::Serialize;

/// The longest request line the daemon reads.
pub const MAX_REQUEST_BYTES: u64 = 4096;

/// One request, tagged by its `command` field. Read and written by hand over
/// `serde_json::Value` rather than derived: serde's internally tagged enums cost about
/// 10 KiB of the device binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The daemon's status (the object `assent status --json` prints).
    Status,
    /// Wake the uploader now.
    Sync,
    /// Delete everything queued; with `remote`, queue an erasure for the collector.
    Erase { remote: bool },
    /// Rotate the device identity.
    ResetId,
    /// Every category with its purpose and consent state.
    ConsentShow,
    /// Grant these categories, as `assent consent grant` does.
    ConsentGrant { categories: Vec<Category> },
    /// Withdraw these categories, as `assent consent revoke` does.
    ConsentWithdraw { categories: Vec<Category> },
}

impl Request {
    /// The request as one JSON object (without the newline).
    pub fn to_json(&self) -> String {
        let names = |categories: &[Category]| -> Vec<&'static str> {
            categories.iter().map(|c| c.name()).collect()
        };
        let value = match self {
            Request::Status => serde_json::json!({"command": "status"}),
            Request::Sync => serde_json::json!({"command": "sync"}),
            Request::Erase { remote } => serde_json::json!({"command": "erase", "remote": remote}),
            Request::ResetId => serde_json::json!({"command": "reset-id"}),
            Request::ConsentShow => serde_json::json!({"command": "consent-show"}),
            Request::ConsentGrant { categories } => {
                serde_json::json!({"command": "consent-grant", "categories": names(categories)})
            }
            Request::ConsentWithdraw { categories } => {
                serde_json::json!({"command": "consent-withdraw", "categories": names(categories)})
            }
        };
        value.to_string()
    }

    /// Parses one request line strictly: an unknown command, a missing or unknown field,
    /// or an unknown category is an error naming it.
    pub fn from_json(line: &str) -> Result<Request, RequestError> {
        let value: serde_json::Value = serde_json::from_str(line).map_err(RequestError::Json)?;
        let object = value.as_object().ok_or(RequestError::NotAnObject)?;
        let command = object
            .get("command")
            .ok_or(RequestError::Missing("command"))?
            .as_str()
            .ok_or(RequestError::CommandNotAString)?;
        let fields: &[&str] = match command {
            "erase" => &["command", "remote"],
            "consent-grant" | "consent-withdraw" => &["command", "categories"],
            _ => &["command"],
        };
        if let Some(unknown) = object.keys().find(|k| !fields.contains(&k.as_str())) {
            return Err(RequestError::UnknownField {
                field: unknown.clone(),
                command: command.to_string(),
            });
        }
        let categories = || -> Result<Vec<Category>, RequestError> {
            let list = object
                .get("categories")
                .ok_or(RequestError::Missing("categories"))?
                .as_array()
                .ok_or(RequestError::CategoriesNotAnArray)?;
            list.iter()
                .map(|v| {
                    let name = v.as_str().unwrap_or_default();
                    Category::ALL
                        .into_iter()
                        .find(|c| c.name() == name)
                        .ok_or_else(|| RequestError::UnknownCategory(v.to_string()))
                })
                .collect()
        };
        Ok(match command {
            "status" => Request::Status,
            "sync" => Request::Sync,
            "erase" => Request::Erase {
                remote: match object.get("remote") {
                    None => false,
                    Some(v) => v.as_bool().ok_or(RequestError::RemoteNotABool)?,
                },
            },
            "reset-id" => Request::ResetId,
            "consent-show" => Request::ConsentShow,
            "consent-grant" => Request::ConsentGrant {
                categories: categories()?,
            },
            "consent-withdraw" => Request::ConsentWithdraw {
                categories: categories()?,
            },
            other => return Err(RequestError::UnknownCommand(other.to_string())),
        })
    }
}

/// Why a request line is refused; its `Display` is the answer's reason.
#[derive(Debug)]
pub enum RequestError {
    Json(serde_json::Error),
    NotAnObject,
    Missing(&'static str),
    CommandNotAString,
    UnknownField {
        field: String,
        command: String,
    },
    CategoriesNotAnArray,
    /// Not a category name: the JSON text of the value given (not the value itself,
    /// whose clone costs half a kilobyte of the device binary).
    UnknownCategory(String),
    RemoteNotABool,
    UnknownCommand(String),
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Json(e) => std::fmt::Display::fmt(e, f),
            RequestError::NotAnObject => f.write_str("a request is a JSON object"),
            RequestError::Missing(field) => write!(f, "missing field `{field}`"),
            RequestError::CommandNotAString => f.write_str("`command` must be a string"),
            RequestError::UnknownField { field, command } => {
                write!(f, "unknown field `{field}` for `{command}`")
            }
            RequestError::CategoriesNotAnArray => {
                f.write_str("`categories` must be an array of names")
            }
            RequestError::UnknownCategory(v) => write!(f, "unknown category {v}"),
            RequestError::RemoteNotABool => f.write_str("`remote` must be true or false"),
            RequestError::UnknownCommand(command) => write!(f, "unknown command `{command}`"),
        }
    }
}

impl std::error::Error for RequestError {}

/// One answer. `ok` says whether the request was carried out; `error` says why not.
/// Each request fills at most one of the other fields. Only serialized: the CLI reads
/// the fields it needs from the JSON (`ok`, `error`, `status`), which keeps derived
/// decoders out of the device binary.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Answer {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For `status`: the daemon's status object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
    /// For `erase`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erased: Option<Erased>,
    /// For `consent-show`, `consent-grant` and `consent-withdraw`: the state afterwards.
    #[serde(skip_serializing_if = "Option::is_none")]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Erased {
    pub events_deleted: u64,
    pub remote_requested: bool,
}

/// The consent decisions as a settings screen shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentState {
    pub policy_version: u32,
    /// Why nothing is active, when the consent file is missing or invalid.
    pub problem: Option<String>,
    pub categories: Vec<CategoryConsent>,
    /// For `consent-withdraw`: unsent events deleted, per category.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub purged: Vec<(Category, u64)>,
}

/// One category: what it is for and whether it is collected now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
            let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
            assert_eq!(json(&request.to_json()), json(line));
            assert_eq!(Request::from_json(line).unwrap(), request);
        }
        assert_eq!(
            Request::from_json(r#"{"command":"erase"}"#).unwrap(),
            Request::Erase { remote: false }
        );
    }

    #[test]
    fn bad_requests_are_refused() {
        for (line, error) in [
            (
                r#"{"command":"format-disk"}"#,
                "unknown command `format-disk`",
            ),
            (
                r#"{"command":"consent-grant"}"#,
                "missing field `categories`",
            ),
            (
                r#"{"command":"consent-grant","categories":["no_such"]}"#,
                "unknown category \"no_such\"",
            ),
            (
                r#"{"command":"erase","remote":true,"extra":1}"#,
                "unknown field `extra` for `erase`",
            ),
            (
                r#"{"command":"status","remote":true}"#,
                "unknown field `remote` for `status`",
            ),
            (
                r#"{"command":"erase","remote":"yes"}"#,
                "`remote` must be true or false",
            ),
            (r#"{"remote":true}"#, "missing field `command`"),
            ("[]", "a request is a JSON object"),
        ] {
            assert_eq!(
                Request::from_json(line).unwrap_err().to_string(),
                error,
                "{line}"
            );
        }
        assert!(Request::from_json("not json").is_err());
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
    }
}
