//! The console's pages, rendered from query results into HTML strings.

use super::html::{date, escape, page, time};
use super::queries::{
    CategoryHeld, ConsentPoint, ConsentRow, DayCount, DeviceRow, ErasureRow, GapRow, GapTotal,
    LatestEvent, Totals,
};
use super::svg::{day_bars, hbars, legend, Series};
use assent_wire::Pseudonym;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Days the overview's charts cover, today included.
pub const OVERVIEW_DAYS: i64 = 30;

/// The consent states the fleet chart tells apart.
pub const CONSENT_SERIES: [&str; 4] = ["granted", "refused", "withdrawn", "not granted"];

/// Everything the overview shows.
#[derive(Debug)]
pub struct Overview {
    pub today: i64,
    pub totals: Totals,
    pub devices_per_day: Vec<DayCount>,
    pub events_per_day: Vec<DayCount>,
    /// (category, day) -> devices per consent series ([`ConsentStates`] defines it).
    pub consent: BTreeMap<String, BTreeMap<i64, [u64; 4]>>,
    pub gaps: Vec<GapTotal>,
    pub erasures_per_day: Vec<DayCount>,
    pub erasures: Vec<ErasureRow>,
}

/// The fleet's consent state per category at the end of each of the `days` ending with
/// `today`, from the timeline in received order: each (device, category) counts in the
/// series of its latest record. This replay defines what the overview's consent chart
/// shows; the overview reads the same numbers from the roll-up
/// ([`super::consent_rollup`]), and the tests and the bench check the two agree.
#[derive(Debug)]
pub struct ConsentStates {
    first_day: i64,
    today: i64,
    /// A 64-bit hash of (device, category) -> (series, ever granted). A hash, not the
    /// strings: the timeline has a record per device and category, 800,000 for 100,000
    /// devices, and a collision (odds about n²/2^65) would move one device in a count.
    current: HashMap<u64, (usize, bool)>,
    /// category -> counts per series now.
    counts: BTreeMap<String, [u64; 4]>,
    out: BTreeMap<String, BTreeMap<i64, [u64; 4]>>,
    day: i64,
}

impl ConsentStates {
    pub fn new(today: i64, days: i64) -> ConsentStates {
        let first_day = today - days + 1;
        ConsentStates {
            first_day,
            today,
            current: HashMap::new(),
            counts: BTreeMap::new(),
            out: BTreeMap::new(),
            day: i64::MIN,
        }
    }

    /// Records the counts as they stand at the end of every day before `day`.
    fn close_days_before(&mut self, day: i64) {
        if self.day == i64::MIN {
            self.day = day;
            return;
        }
        let until = day.min(self.today + 1);
        while self.day < until {
            if self.day >= self.first_day {
                for (category, counts) in &self.counts {
                    self.out
                        .entry(category.clone())
                        .or_default()
                        .insert(self.day, *counts);
                }
            }
            self.day += 1;
        }
        self.day = self.day.max(day);
    }

    pub fn add(&mut self, point: ConsentPoint) {
        let day = point.received_at_ms.div_euclid(86_400_000);
        self.close_days_before(day);
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (&point.device, &point.category).hash(&mut h);
            h.finish()
        };
        let previous = self.current.get(&key).copied();
        let was_granted = previous.is_some_and(|(s, ever)| ever || s == 0);
        let series = super::consent_rollup::series(point.active, &point.state, was_granted);
        let counts = match self.counts.get_mut(&point.category) {
            Some(counts) => counts,
            None => self.counts.entry(point.category).or_insert([0; 4]),
        };
        if let Some((old, _)) = previous {
            counts[old] = counts[old].saturating_sub(1);
        }
        counts[series] += 1;
        self.current
            .insert(key, (series, was_granted || series == 0));
    }

    pub fn finish(mut self) -> BTreeMap<String, BTreeMap<i64, [u64; 4]>> {
        if self.day == i64::MIN {
            return self.out;
        }
        self.close_days_before(self.today + 1);
        self.out
    }
}

fn days(today: i64) -> Vec<i64> {
    (today - OVERVIEW_DAYS + 1..=today).collect()
}

fn keyed_series(rows: &[DayCount], days: &[i64]) -> Vec<Series> {
    let mut by_key: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for row in rows {
        if let Some(i) = days.iter().position(|d| *d == row.day) {
            by_key
                .entry(row.key.as_str())
                .or_insert_with(|| vec![0; days.len()])[i] += row.count;
        }
    }
    by_key
        .into_iter()
        .map(|(name, values)| Series {
            name: name.to_string(),
            values,
        })
        .collect()
}

fn device_link(device: &str) -> String {
    // Only parsed pseudonyms become links: their alphabet needs no URL escaping.
    match Pseudonym::parse(device) {
        Ok(p) => format!("<a href=\"/devices/{p}\">{p}</a>"),
        Err(_) => escape(device),
    }
}

fn erasure_table(rows: &[ErasureRow], with_device: bool) -> String {
    if rows.is_empty() {
        return "<p>No erasures.</p>".into();
    }
    let mut out = String::from("<table class=\"erasures\"><tr><th>When (UTC)</th>");
    if with_device {
        out.push_str("<th>Device</th>");
    }
    out.push_str("<th>What</th><th>Events erased</th><th>Asked by</th></tr>");
    for r in rows {
        let _ = write!(out, "<tr><td>{}</td>", time(r.at_ms));
        if with_device {
            let _ = write!(out, "<td>{}</td>", device_link(&r.device));
        }
        let by = match &r.operator {
            Some(op) => format!("operator {}", escape(op)),
            None => "the device".into(),
        };
        let _ = write!(
            out,
            "<td>{}</td><td class=\"erased\">{}</td><td class=\"by\">{by}</td></tr>",
            escape(&r.categories),
            r.erased_events
        );
    }
    out.push_str("</table>");
    out
}

/// The fleet overview.
pub fn overview(o: &Overview, operator: &str) -> String {
    let days = days(o.today);
    let labels: Vec<String> = days.iter().map(|d| date(*d)).collect();
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Fleet overview</h1><div class=\"totals\">\
         <div>Devices <strong id=\"total-devices\">{}</strong></div>\
         <div>Events held <strong id=\"total-events\">{}</strong></div>\
         <div>Gap records <strong id=\"total-gaps\">{}</strong></div>\
         <div>Erasures <strong id=\"total-erasures\">{}</strong></div></div>",
        o.totals.devices, o.totals.events, o.totals.gaps, o.totals.erasures
    );
    let _ = write!(
        body,
        "<h2>Devices seen per day</h2><p>Devices that sent a batch each UTC day, last \
         {OVERVIEW_DAYS} days.</p>{}",
        day_bars(
            "devices-per-day",
            "devices seen per day",
            &labels,
            &keyed_series(&o.devices_per_day, &days)
                .into_iter()
                .map(|mut s| {
                    s.name = "devices".into();
                    s
                })
                .collect::<Vec<_>>()
        )
    );
    let events = keyed_series(&o.events_per_day, &days);
    let names: Vec<String> = events.iter().map(|s| s.name.clone()).collect();
    let _ = write!(
        body,
        "<h2>Events per category</h2><p>Events received per UTC day, counted on arrival \
         (erasure and retention do not lower these counts).</p>{}{}",
        legend(&names),
        day_bars(
            "events-per-day",
            "events per category per day",
            &labels,
            &events
        )
    );
    body.push_str(
        "<h2>Consent per category</h2><p>Devices per consent state at the end of each day, \
         from the consent records received (withdrawn: inactive after having been granted).</p>",
    );
    let consent_names: Vec<String> = CONSENT_SERIES.iter().map(|s| s.to_string()).collect();
    body.push_str(&legend(&consent_names));
    if o.consent.is_empty() {
        body.push_str("<p>No consent records.</p>");
    }
    for (category, per_day) in &o.consent {
        let series: Vec<Series> = CONSENT_SERIES
            .iter()
            .enumerate()
            .map(|(i, name)| Series {
                name: (*name).to_string(),
                values: days
                    .iter()
                    .map(|d| per_day.get(d).map_or(0, |c| c[i]))
                    .collect(),
            })
            .collect();
        let _ = write!(
            body,
            "<h3>{}</h3>{}",
            escape(category),
            day_bars(
                &format!("consent-{category}"),
                &format!("consent state of {category}"),
                &labels,
                &series
            )
        );
    }
    let gap_rows: Vec<(String, u64, String)> = o
        .gaps
        .iter()
        .map(|g| {
            (
                g.reason.clone(),
                g.events,
                format!("events in {} gap records", g.records),
            )
        })
        .collect();
    let _ = write!(
        body,
        "<h2>Gaps by reason</h2><p>Events the devices report lost before sending, over \
         everything held.</p>{}",
        hbars("gaps-by-reason", "events lost by reason", &gap_rows)
    );
    let erasures = keyed_series(&o.erasures_per_day, &days);
    let pick = |key: &str| -> Vec<Series> {
        erasures
            .iter()
            .filter(|s| s.name == key)
            .map(|s| Series {
                name: s.name.clone(),
                values: s.values.clone(),
            })
            .collect()
    };
    let _ = write!(
        body,
        "<h2>Erasures processed</h2><p>Erasures committed per UTC day (asked by devices \
         or by operators here)</p>{}<p>Events they deleted</p>{}<h3>Latest erasures</h3>{}",
        day_bars(
            "erasures-per-day",
            "erasures per day",
            &labels,
            &pick("erasures")
        ),
        day_bars(
            "events-erased-per-day",
            "events erased per day",
            &labels,
            &pick("events")
        ),
        erasure_table(&o.erasures, true)
    );
    page("Overview", operator, &body)
}

/// Everything a device page shows.
#[derive(Debug)]
pub struct DevicePage {
    pub device: Pseudonym,
    pub row: DeviceRow,
    pub held: Vec<CategoryHeld>,
    pub latest: Vec<LatestEvent>,
    pub consent: Vec<ConsentRow>,
    pub gaps: Vec<GapRow>,
    pub erasures: Vec<ErasureRow>,
}

/// Pretty-prints stored JSON for display; text that is not JSON is shown as it is.
fn pretty(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| json.to_string())
}

/// A device's page, with the erase form carrying `csrf`.
pub fn device(d: &DevicePage, operator: &str, csrf: &str, notice: Option<&str>) -> String {
    let p = d.device.as_str();
    let mut body = String::new();
    let _ = write!(body, "<h1>Device <span id=\"pseudonym\">{p}</span></h1>");
    if let Some(notice) = notice {
        let _ = write!(
            body,
            "<p class=\"notice\" id=\"notice\">{}</p>",
            escape(notice)
        );
    }
    let _ = write!(
        body,
        "<p>First seen {} UTC, last seen {} UTC, {} buffers.</p>",
        time(d.row.first_seen_ms),
        time(d.row.last_seen_ms),
        d.row.buffers
    );
    body.push_str("<h2>Categories held</h2>");
    if d.held.is_empty() {
        body.push_str("<p>No events held.</p>");
    } else {
        body.push_str(
            "<table id=\"held\"><tr><th>Category</th><th>Events</th><th>First received</th>\
             <th>Last received</th></tr>",
        );
        for h in &d.held {
            let _ = write!(
                body,
                "<tr><td>{}</td><td class=\"count\">{}</td><td>{}</td><td>{}</td></tr>",
                escape(&h.category),
                h.events,
                time(h.first_received_ms),
                time(h.last_received_ms)
            );
        }
        body.push_str("</table>");
    }
    body.push_str("<h2>Latest per category</h2>");
    for e in &d.latest {
        let _ = write!(
            body,
            "<h3>{} <small>({}, device time {}, received {})</small></h3>\
             <pre class=\"payload\" data-category=\"{}\">{}</pre>",
            escape(&e.category),
            escape(&e.kind),
            time(e.wall_time_ms),
            time(e.received_at_ms),
            escape(&e.category),
            escape(&pretty(&e.payload_json))
        );
    }
    body.push_str("<h2>Consent history</h2>");
    if d.consent.is_empty() {
        body.push_str("<p>No consent records.</p>");
    } else {
        body.push_str(
            "<table id=\"consent\"><tr><th>Observed</th><th>Category</th><th>Active</th>\
             <th>State</th><th>By</th><th>At</th><th>Policy</th></tr>",
        );
        for c in &d.consent {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&c.observed_at),
                escape(&c.category),
                if c.active { "yes" } else { "no" },
                escape(&c.state),
                escape(c.by.as_deref().unwrap_or("")),
                escape(c.at.as_deref().unwrap_or("")),
                c.policy_version
            );
        }
        body.push_str("</table>");
    }
    body.push_str("<h2>Gaps</h2>");
    if d.gaps.is_empty() {
        body.push_str("<p>No gaps.</p>");
    } else {
        body.push_str(
            "<table id=\"gaps\"><tr><th>Seqs</th><th>Events lost</th><th>Reason</th>\
             <th>Category</th><th>Received</th></tr>",
        );
        for g in &d.gaps {
            let _ = write!(
                body,
                "<tr><td>{}–{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                g.first_seq,
                g.last_seq,
                g.count,
                escape(&g.reason),
                escape(g.category.as_deref().unwrap_or("")),
                time(g.received_at_ms)
            );
        }
        body.push_str("</table>");
    }
    let _ = write!(
        body,
        "<h2>Erasures</h2>{}",
        erasure_table(&d.erasures, false)
    );
    let _ = write!(
        body,
        "<h2>Erase this device's data</h2><form class=\"danger\" method=\"post\" \
         action=\"/devices/{p}/erase\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label>What <select name=\"scope\"><option value=\"all\">everything held</option>",
        escape(csrf)
    );
    for h in &d.held {
        let _ = write!(
            body,
            "<option value=\"{0}\">{0} only</option>",
            escape(&h.category)
        );
    }
    body.push_str(
        "</select></label> <button class=\"erase\" id=\"erase\">Erase…</button> \
         <small>You will be asked to confirm.</small></form>",
    );
    page(&format!("Device {p}"), operator, &body)
}

/// The confirmation step of an erasure: nothing is deleted until it is submitted.
pub fn confirm(device: &Pseudonym, scope: &str, events: u64, operator: &str, csrf: &str) -> String {
    let p = device.as_str();
    let body = format!(
        "<h1>Confirm erasure</h1><div class=\"danger\"><p>This permanently deletes \
         <strong id=\"confirm-events\">{events}</strong> events ({}) of device {p}, logged \
         in the erasure log under operator {}. It cannot be undone.</p>\
         <form method=\"post\" action=\"/devices/{p}/erase\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"scope\" value=\"{}\">\
         <label>Type the device's pseudonym to confirm <input name=\"confirm\" id=\"confirm\" \
         size=\"30\" autocomplete=\"off\" required></label> \
         <button class=\"erase\" id=\"erase-confirmed\">Erase permanently</button></form>\
         <p><a href=\"/devices/{p}\">Cancel</a></p></div>",
        escape(scope),
        escape(operator),
        escape(csrf),
        escape(scope)
    );
    page("Confirm erasure", operator, &body)
}

/// A page saying what went wrong.
pub fn problem(title: &str, message: &str, operator: &str) -> String {
    page(
        title,
        operator,
        &format!(
            "<h1>{}</h1><p id=\"problem\">{}</p><p><a href=\"/\">Overview</a></p>",
            escape(title),
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(device: &str, active: bool, state: &str, day: i64) -> ConsentPoint {
        ConsentPoint {
            device: device.into(),
            category: "os".into(),
            active,
            state: state.into(),
            received_at_ms: day * 86_400_000 + 1,
        }
    }

    #[test]
    fn consent_states_per_day() {
        let mut s = ConsentStates::new(12, 3);
        s.add(point("a", true, "active", 5));
        s.add(point("b", false, "refused", 10));
        s.add(point("a", false, "not_granted", 11));
        s.add(point("c", true, "active", 12));
        let out = s.finish();
        let os = &out["os"];
        assert_eq!(os[&10], [1, 1, 0, 0]);
        assert_eq!(os[&11], [0, 1, 1, 0]);
        assert_eq!(os[&12], [1, 1, 1, 0]);
        assert_eq!(os.len(), 3);
    }
}
