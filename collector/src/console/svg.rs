//! Charts drawn on the server as inline SVG: stacked day bars and horizontal bars.
//!
//! Every number a chart shows is also in the markup (`data-series`, `data-day`,
//! `data-value` on each bar and a `<title>` for the tooltip), so tests read the values
//! back and screen readers get them. All text passes through [`super::html::escape`].

use super::html::escape;
use std::fmt::Write as _;

/// Colours for series, in order (distinguishable in grey scale too).
const COLOURS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 8.0;

/// One stacked series: a name and a value per day.
#[derive(Debug)]
pub struct Series {
    pub name: String,
    pub values: Vec<u64>,
}

/// A colour for series `i`.
pub fn colour(i: usize) -> &'static str {
    COLOURS[i % COLOURS.len()]
}

/// Stacked vertical bars, one per day; `days` are ISO dates labelling the x axis.
pub fn day_bars(id: &str, label: &str, days: &[String], series: &[Series]) -> String {
    let totals: Vec<u64> = (0..days.len())
        .map(|d| {
            series
                .iter()
                .map(|s| s.values.get(d).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let plot_w = WIDTH - LEFT - 4.0;
    let plot_h = HEIGHT - BOTTOM - TOP;
    let slot = plot_w / days.len().max(1) as f64;
    let bar_w = (slot * 0.8).max(1.0);
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg id=\"{}\" class=\"chart\" role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" xmlns=\"http://www.w3.org/2000/svg\">",
        escape(id),
        escape(label)
    );
    axes(&mut out, max, plot_h);
    for (d, day) in days.iter().enumerate() {
        let x = LEFT + d as f64 * slot + (slot - bar_w) / 2.0;
        let mut y = TOP + plot_h;
        for (i, s) in series.iter().enumerate() {
            let v = s.values.get(d).copied().unwrap_or(0);
            if v == 0 {
                continue;
            }
            let h = v as f64 / max as f64 * plot_h;
            y -= h;
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{h:.1}\" fill=\"{}\" \
                 data-series=\"{}\" data-day=\"{}\" data-value=\"{v}\"><title>{} {}: {v}</title></rect>",
                colour(i),
                escape(&s.name),
                escape(day),
                escape(day),
                escape(&s.name)
            );
        }
    }
    if let (Some(first), Some(last)) = (days.first(), days.last()) {
        let y = HEIGHT - 6.0;
        let _ = write!(
            out,
            "<text x=\"{LEFT}\" y=\"{y}\" class=\"tick\">{}</text>\
             <text x=\"{}\" y=\"{y}\" text-anchor=\"end\" class=\"tick\">{}</text>",
            escape(first),
            WIDTH - 4.0,
            escape(last)
        );
    }
    out.push_str("</svg>");
    out
}

fn axes(out: &mut String, max: u64, plot_h: f64) {
    let base = TOP + plot_h;
    let _ = write!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{base}\" stroke=\"#888\"/>\
         <line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#888\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"tick\">{max}</text>\
         <text x=\"{}\" y=\"{base}\" text-anchor=\"end\" class=\"tick\">0</text>",
        WIDTH - 4.0,
        LEFT - 4.0,
        TOP + 10.0,
        LEFT - 4.0,
    );
}

/// Horizontal bars, one per row (label, value, note shown after the value).
pub fn hbars(id: &str, label: &str, rows: &[(String, u64, String)]) -> String {
    let row_h = 22.0;
    let label_w = 140.0;
    let height = (rows.len().max(1) as f64) * row_h + 8.0;
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let plot_w = WIDTH - label_w - 160.0;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg id=\"{}\" class=\"chart\" role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {WIDTH} {height}\" \
         width=\"{WIDTH}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\">",
        escape(id),
        escape(label)
    );
    if rows.is_empty() {
        out.push_str("<text x=\"4\" y=\"16\" class=\"tick\">none</text>");
    }
    for (i, (name, value, note)) in rows.iter().enumerate() {
        let y = 4.0 + i as f64 * row_h;
        let w = (*value as f64 / max as f64 * plot_w).max(1.0);
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"tick\">{}</text>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\" \
             data-series=\"{}\" data-value=\"{value}\"><title>{}: {value}</title></rect>\
             <text x=\"{}\" y=\"{}\" class=\"tick\">{value} {}</text>",
            label_w - 6.0,
            y + 14.0,
            escape(name),
            row_h - 6.0,
            colour(i),
            escape(name),
            escape(name),
            label_w + w + 6.0,
            y + 14.0,
            escape(note)
        );
    }
    out.push_str("</svg>");
    out
}

/// A legend for `series` as HTML.
pub fn legend(names: &[String]) -> String {
    let mut out = String::from("<ul class=\"legend\">");
    for (i, name) in names.iter().enumerate() {
        let _ = write!(
            out,
            "<li><svg width=\"10\" height=\"10\" aria-hidden=\"true\"><rect width=\"10\" height=\"10\" fill=\"{}\"/></svg> {}</li>",
            colour(i),
            escape(name)
        );
    }
    out.push_str("</ul>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_carry_their_values_and_escape_names() {
        let svg = day_bars(
            "c",
            "l",
            &["2026-01-01".into(), "2026-01-02".into()],
            &[Series {
                name: "<b>".into(),
                values: vec![3, 0],
            }],
        );
        assert!(svg.contains("data-series=\"&lt;b&gt;\" data-day=\"2026-01-01\" data-value=\"3\""));
        assert_eq!(svg.matches("<rect").count(), 1);
        assert!(!svg.contains("<b>"));
    }
}
