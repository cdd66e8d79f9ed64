//! How results are shown to a person: pretty JSON and aligned tables. Pure functions
//! returning text; the commands print it.

use crate::cli::exit::{Exit, Failure};
use serde_json::Value;
use std::fmt::Write;

pub(crate) fn to_pretty(value: &Value) -> Result<String, Failure> {
    serde_json::to_string_pretty(value).map_err(|e| Failure {
        code: Exit::Software,
        message: format!("assent: cannot encode JSON: {e}"),
    })
}

/// The header and rows as lines, each column as wide as its widest cell, two spaces
/// between columns, no trailing blanks.
pub(crate) fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> Vec<String> {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let mut out = String::new();
        for (cell, w) in cells.iter().zip(widths) {
            out.push_str(&format!("{cell:<w$}  "));
        }
        out.trim_end().to_string()
    };
    let mut lines = vec![line(header)];
    lines.extend(
        rows.iter()
            .map(|row| line(std::array::from_fn(|i| row[i].as_str()))),
    );
    lines
}

/// A span of time as a person reads it: `9.2 s`, `3 min`, `2.5 h`, `4.0 days`.
pub(crate) fn duration(seconds: f64) -> String {
    let seconds = seconds.max(0.0);
    if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if seconds < 86_400.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else {
        format!("{:.1} days", seconds / 86_400.0)
    }
}

/// `assent status` for a person, from the daemon's status object (docs/control.md):
/// words where a value is absent, counts that say what they count.
pub(crate) fn status(status: &Value) -> Vec<String> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let count = |key: &str| status[key].as_u64().unwrap_or(0);
    let mut lines = Vec::new();
    let mut row = |label: &str, value: String| {
        let mut line = String::new();
        let _ = write!(line, "{label:<18}{value}");
        lines.push(line);
    };
    row("running since", text(&status["started_at"]));
    let active: Vec<String> = status["active_categories"]
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default();
    let problem = status["consent_problem"].as_str();
    row(
        "active categories",
        match (active.is_empty(), problem) {
            (false, _) => active.join(", "),
            (true, Some(problem)) => format!("none: {problem}"),
            (true, None) => {
                "none: a required category is not granted (`assent consent show` says which)"
                    .to_string()
            }
        },
    );
    if let (false, Some(problem)) = (active.is_empty(), problem) {
        row("consent", problem.to_string());
    }
    let connectivity = match &status["connectivity"] {
        Value::Null => "not checked yet".to_string(),
        c if c["online"] == true => format!(
            "online via {}{}",
            text(&c["route_interface"]),
            if c["metered"] == true {
                " (metered)"
            } else {
                ""
            }
        ),
        _ => "offline: no interface up with a default route".to_string(),
    };
    row("connectivity", connectivity);
    row(
        "last sync",
        status["last_sync"]
            .as_str()
            .map_or("none since the daemon started".to_string(), str::to_string),
    );
    row(
        "last result",
        status["last_sync_result"]
            .as_str()
            .map_or("no attempt yet".to_string(), str::to_string),
    );
    let queued = count("queued_events");
    row(
        "next attempt",
        match status["next_attempt_in_seconds"].as_f64() {
            Some(s) => format!("in {}", duration(s)),
            None if queued == 0 => "no attempt due: queue empty".to_string(),
            None => "when new data, a request or connectivity wakes the uploader".to_string(),
        },
    );
    row(
        "backoff",
        match status["backoff_ceiling_seconds"].as_f64() {
            Some(s) => format!("{} after the last failure", duration(s)),
            None => "none: the last attempt did not fail".to_string(),
        },
    );
    let consent_records = count("queued_consent_records");
    row(
        "queue",
        format!(
            "{} events, {consent_records} consent records, {} gap records; {} bytes on disk",
            queued.saturating_sub(consent_records),
            count("queued_gaps"),
            count("buffer_file_bytes"),
        ),
    );
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_read_as_a_person_says_them() {
        assert_eq!(duration(9.24), "9.2 s");
        assert_eq!(duration(180.0), "3 min");
        assert_eq!(duration(5400.0), "1.5 h");
        assert_eq!(duration(2.0 * 86_400.0), "2.0 days");
    }

    #[test]
    fn status_says_in_words_what_is_absent_and_names_what_it_counts() {
        let idle = json!({
            "started_at": "2026-12-02T20:00:00Z",
            "active_categories": [],
            "consent_problem": null,
            "connectivity": {"online": true, "route_interface": "eth0", "metered": false},
            "last_sync": null,
            "last_sync_result": null,
            "next_attempt_in_seconds": null,
            "backoff_ceiling_seconds": null,
            "queued_events": 0,
            "queued_consent_records": 0,
            "queued_gaps": 0,
            "buffer_file_bytes": 4096
        });
        let text = status(&idle).join("\n");
        assert!(!text.contains(" - ") && !text.ends_with('-'), "{text}");
        assert!(
            text.contains("none: a required category is not granted"),
            "{text}"
        );
        assert!(text.contains("no attempt due: queue empty"), "{text}");
        assert!(text.contains("online via eth0"), "{text}");
        assert!(
            text.contains("0 events, 0 consent records, 0 gap records; 4096 bytes on disk"),
            "{text}"
        );

        let busy = json!({
            "active_categories": ["hardware", "os"],
            "next_attempt_in_seconds": 9.24,
            "backoff_ceiling_seconds": 180.0,
            "queued_events": 12,
            "queued_consent_records": 5,
            "queued_gaps": 1
        });
        let text = status(&busy).join("\n");
        assert!(text.contains("next attempt      in 9.2 s"), "{text}");
        assert!(
            text.contains("backoff           3 min after the last failure"),
            "{text}"
        );
        assert!(
            text.contains("7 events, 5 consent records, 1 gap records"),
            "{text}"
        );
        assert!(text.contains("active categories hardware, os"), "{text}");
    }
}
