//! HTML text: escaping, dates, and the page frame with its stylesheet.
//!
//! Everything from a database is device data and hostile: it reaches a page only through
//! [`escape`], in element content or double-quoted attributes, never in a script, style
//! or URL (pseudonyms in links are checked by `Pseudonym::parse` first).

use std::fmt::Write as _;

/// Escapes text for element content and double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The UTC date of a day number (days since 1970-01-01), `YYYY-MM-DD`.
pub fn date(day: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A UTC timestamp of milliseconds since the epoch, `YYYY-MM-DD HH:MM:SS`.
pub fn time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let day = secs.div_euclid(86_400);
    let s = secs.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}:{:02}",
        date(day),
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// The stylesheet, served as `/static/console.css` (the CSP allows no inline style).
pub const STYLESHEET: &str = "\
body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#23395d;color:#fff;padding:.6em 1.2em;display:flex;gap:2em;align-items:center}
header a{color:#fff}
main{padding:1em 1.2em;max-width:70em}
h1{font-size:1.3em;margin:.2em 0}
h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.9em}
td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
pre{white-space:pre-wrap;word-break:break-all;max-height:24em;overflow:auto;background:#fff;border:1px solid #ddd;padding:.5em;font-size:.85em}
.tick{font-size:11px;fill:#444}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:1em;font-size:.85em}
.totals{display:flex;gap:2em}
.totals div{background:#fff;border:1px solid #ddd;padding:.5em 1em}
.danger{background:#fff3f3;border:1px solid #d62728;padding:.8em}
button.erase{background:#d62728;color:#fff;border:0;padding:.4em 1em}
.notice{background:#eef7ee;border:1px solid #2ca02c;padding:.5em}
";

/// A small icon, served as `/static/icon.svg` so the browser asks for nothing else.
pub const ICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">\
<rect width=\"16\" height=\"16\" rx=\"3\" fill=\"#23395d\"/></svg>";

/// A whole page around `body`; `title` is escaped here.
pub fn page(title: &str, operator: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{} · Assent console</title>\
         <link rel=\"stylesheet\" href=\"/static/console.css\">\
         <link rel=\"icon\" href=\"/static/icon.svg\" type=\"image/svg+xml\"></head><body>\
         <header><strong>Assent console</strong><a href=\"/\">Overview</a>\
         <form method=\"get\" action=\"/device\"><label>Device <input name=\"pseudonym\" \
         size=\"30\" required></label> <button>Open</button></form>\
         <span>operator: {}</span></header><main>{body}</main></body></html>",
        escape(title),
        escape(operator)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("\"><img src=x onerror='a'>&"),
            "&quot;&gt;&lt;img src=x onerror=&#39;a&#39;&gt;&amp;"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(20_454), "2026-01-01");
        assert_eq!(time(1_767_225_600_000 + 3_723_000), "2026-01-01 01:02:03");
    }
}
