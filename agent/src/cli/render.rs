//! How results are shown to a person: pretty JSON and aligned tables. Pure functions
//! returning text; the commands print it.

use crate::cli::exit::{Exit, Failure};
use serde_json::Value;

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
