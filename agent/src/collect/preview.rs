//! `collect --preview`: everything the readers can see now, ignoring consent.

use assent_platform::{Category, ReadOptions, Root};
use serde_json::{Map, Value};

/// Runs the readers of `categories` and returns one JSON object keyed by category name.
pub fn collect(root: &Root, categories: &[Category], options: &ReadOptions) -> Map<String, Value> {
    categories
        .iter()
        .filter_map(|c| assent_platform::read(*c, root, options))
        .map(|facts| (facts.category().name().to_string(), facts.to_json()))
        .collect()
}

/// Renders the preview for a person: one group per category, one aligned line per field.
pub fn render_human(root: &Root, categories: &[Category], preview: &Map<String, Value>) -> String {
    let mut out = String::new();
    out.push_str("PREVIEW: what Assent could collect now, ignoring consent.\n");
    out.push_str("Nothing is stored or sent. Hardware identifiers are masked.\n");
    out.push_str(&format!("Root: {}\n", root.base().display()));
    out.push_str(&render_groups(categories, preview));
    out
}

/// One `[category]` group per category present in `values`, fields aligned.
pub fn render_groups(categories: &[Category], values: &Map<String, Value>) -> String {
    let mut out = String::new();
    for category in categories {
        let Some(value) = values.get(category.name()) else {
            continue;
        };
        let mut rows = Vec::new();
        flatten(String::new(), value, &mut rows);
        out.push_str(&format!("\n[{}]\n", category.name()));
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, text) in rows {
            out.push_str(&format!("  {key:<width$}  {text}\n"));
        }
    }
    out
}

/// Flattens a facts value into `(dotted.path, text)` rows. Field states (`{"present": v}`,
/// `"absent"`, `"denied"`, `{"malformed": r}`) are shown as the value or as `(state)`.
fn flatten(path: String, value: &Value, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("present") => {
            if let Some(inner) = map.get("present") {
                flatten_value(path, inner, rows);
            }
        }
        Value::Object(map) if map.len() == 1 && map.contains_key("malformed") => {
            let reason = map.get("malformed").and_then(Value::as_str).unwrap_or("");
            rows.push((path, format!("(malformed: {reason})")));
        }
        Value::String(s) if s == "absent" || s == "denied" => {
            rows.push((path, format!("({s})")));
        }
        other => flatten_value(path, other, rows),
    }
}

fn flatten_value(path: String, value: &Value, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) if map.is_empty() => rows.push((path, "(none)".to_string())),
        Value::Object(map) => {
            for (key, inner) in map {
                flatten(join(&path, key), inner, rows);
            }
        }
        Value::Array(items) if items.is_empty() => rows.push((path, "(none)".to_string())),
        Value::Array(items) if items.iter().all(is_scalar) => {
            let texts: Vec<String> = items.iter().map(scalar_text).collect();
            rows.push((path, texts.join(", ")));
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                flatten(format!("{path}[{i}]"), inner, rows);
            }
        }
        scalar => rows.push((path, scalar_text(scalar))),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Object(_) | Value::Array(_))
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.escape_debug().to_string(),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flatten_shows_values_and_states() {
        let value = json!({
            "model": {"present": "Pi"},
            "serial": "denied",
            "memory_total_bytes": {"malformed": "not a number"},
            "interfaces": {"present": [{"name": "eth0", "operstate": {"present": "up"}}]},
            "compatible": {"present": ["a", "b"]},
        });
        let mut rows = Vec::new();
        flatten(String::new(), &value, &mut rows);
        let text: Vec<String> = rows.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            text,
            vec![
                "compatible=a, b",
                "interfaces[0].name=eth0",
                "interfaces[0].operstate=up",
                "memory_total_bytes=(malformed: not a number)",
                "model=Pi",
                "serial=(denied)",
            ]
        );
    }
}
