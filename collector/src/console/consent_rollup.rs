//! The fleet's consent state per day as a roll-up (`daily_consent`), so the overview's
//! consent chart reads a few rows per day instead of replaying every consent record.
//!
//! Each (device, category) counts, from its first consent record on, in one of
//! [`super::pages::CONSENT_SERIES`]: that of its latest record in received order
//! (`received_at_ms`, `buffer_id`, `seq`). Its contribution to the chart is +1 in its
//! series on the day of its first record and, on the day of each later record that
//! moves it, -1 in the old series and +1 in the new. `daily_consent` holds the sum of all
//! contributions per (day, category); a series' count at the end of day D is the sum over
//! the days up to D ([`per_day`]).
//!
//! Contributions are per device, so a writer keeps the roll-up exact by recomputing the
//! device's contribution from its records whenever they change, under the device's lock
//! and inside the same transaction: ingest (the device's records before, and with, the new
//! ones), a full erasure (all of it subtracted), import, and the one-time rebuild of an
//! older database. Recomputing, rather than adding the step of the new record, keeps it
//! equal to the replay ([`super::pages::ConsentStates`]) when records arrive out of
//! received order (a clock stepped back, two buffers within one millisecond).
//! A device holds a few consent records (one per change), so this costs one indexed read
//! of them per batch that carries consent records.

use std::collections::BTreeMap;

const DAY_MS: i64 = 86_400_000;

/// Per-series counts, in [`super::pages::CONSENT_SERIES`] order.
pub type SeriesCounts = [i64; 4];

/// Which series a record puts its (device, category) in; `was_granted` says whether an
/// earlier record of it was active.
pub fn series(active: bool, state: &str, was_granted: bool) -> usize {
    if active {
        0
    } else if state == "refused" {
        1
    } else if was_granted {
        2
    } else {
        3
    }
}

/// One consent record as the roll-up orders and classifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentStep {
    pub category: String,
    pub received_at_ms: i64,
    /// As stored: the i64 with the bits of the u64.
    pub buffer_id: i64,
    pub seq: i64,
    pub active: bool,
    pub state: String,
}

impl ConsentStep {
    /// A record of a batch, received at `received_at_ms`.
    pub fn of(
        change: &assent_wire::ConsentChange,
        buffer_id: u64,
        received_at_ms: i64,
    ) -> ConsentStep {
        ConsentStep {
            category: change.category.name().to_string(),
            received_at_ms,
            buffer_id: i64::from_ne_bytes(buffer_id.to_ne_bytes()),
            seq: i64::from_ne_bytes(change.seq.to_ne_bytes()),
            active: change.active,
            state: change.state.clone(),
        }
    }

    fn order(&self) -> (&str, i64, i64, i64) {
        (
            &self.category,
            self.received_at_ms,
            self.buffer_id,
            self.seq,
        )
    }
}

/// Changes to add to `daily_consent`: (day, category) -> per-series change.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConsentDeltas(pub BTreeMap<(i64, String), SeriesCounts>);

impl ConsentDeltas {
    /// Adds `sign` (+1 or -1) times the contribution of one device's records (any order).
    pub fn add_device(&mut self, mut steps: Vec<ConsentStep>, sign: i64) {
        steps.sort_by(|a, b| a.order().cmp(&b.order()));
        // (series now, ever granted) of the category being walked.
        let mut current: Option<(usize, bool)> = None;
        let mut category: Option<&str> = None;
        for step in &steps {
            if category != Some(step.category.as_str()) {
                category = Some(step.category.as_str());
                current = None;
            }
            let was_granted = current.is_some_and(|(s, ever)| ever || s == 0);
            let now = series(step.active, &step.state, was_granted);
            if current.map(|(s, _)| s) != Some(now) {
                let day = step.received_at_ms.div_euclid(DAY_MS);
                let counts = self.0.entry((day, step.category.clone())).or_insert([0; 4]);
                if let Some((old, _)) = current {
                    counts[old] -= sign;
                }
                counts[now] += sign;
            }
            current = Some((now, was_granted || now == 0));
        }
    }

    /// What ingest adds: the device's contribution with the `added` records less that
    /// without them (`before`, its stored records). A record already stored is not
    /// counted twice.
    pub fn for_ingest(before: Vec<ConsentStep>, added: Vec<ConsentStep>) -> ConsentDeltas {
        let mut deltas = ConsentDeltas::default();
        if added.is_empty() {
            return deltas;
        }
        let mut after = before.clone();
        for step in added {
            if !after
                .iter()
                .any(|s| (s.buffer_id, s.seq) == (step.buffer_id, step.seq))
            {
                after.push(step);
            }
        }
        deltas.add_device(before, -1);
        deltas.add_device(after, 1);
        deltas
    }

    /// Adds another set of changes.
    pub fn merge(&mut self, other: ConsentDeltas) {
        for (key, counts) in other.0 {
            let mine = self.0.entry(key).or_insert([0; 4]);
            for (m, c) in mine.iter_mut().zip(counts) {
                *m += c;
            }
        }
    }

    /// The rows that change something, in (day, category) order: writers upsert in this
    /// order, so two transactions cannot deadlock on them.
    pub fn rows(&self) -> impl Iterator<Item = (i64, &str, SeriesCounts)> + '_ {
        self.0
            .iter()
            .filter(|(_, c)| c.iter().any(|n| *n != 0))
            .map(|((day, category), c)| (*day, category.as_str(), *c))
    }
}

/// The contributions of many devices' records, given ordered by device (a rebuild).
#[derive(Debug, Default)]
pub struct ByDevice {
    all: ConsentDeltas,
    device: Option<String>,
    steps: Vec<ConsentStep>,
}

impl ByDevice {
    pub fn push(&mut self, device: String, step: ConsentStep) {
        if self.device.as_ref() != Some(&device) {
            self.all.add_device(std::mem::take(&mut self.steps), 1);
            self.device = Some(device);
        }
        self.steps.push(step);
    }

    pub fn finish(mut self) -> ConsentDeltas {
        self.all.add_device(self.steps, 1);
        self.all
    }
}

/// A row of `daily_consent` summed per (day, category), as
/// [`super::queries::ConsoleQueries::consent_days`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentDay {
    pub day: i64,
    pub category: String,
    pub counts: SeriesCounts,
}

/// The consent state per category at the end of each day from `first_day` to `today`,
/// from the roll-up's rows up to `today` with those before `first_day` summed into one
/// row per category on `first_day - 1`. A category is shown from the first day a device
/// had a record of it, as the replay shows it.
pub fn per_day(
    rows: &[ConsentDay],
    first_day: i64,
    today: i64,
) -> BTreeMap<String, BTreeMap<i64, [u64; 4]>> {
    let mut by_category: BTreeMap<&str, BTreeMap<i64, SeriesCounts>> = BTreeMap::new();
    for row in rows {
        let counts = by_category
            .entry(&row.category)
            .or_default()
            .entry(row.day.max(first_day - 1))
            .or_insert([0; 4]);
        for (c, n) in counts.iter_mut().zip(row.counts) {
            *c += n;
        }
    }
    let mut out = BTreeMap::new();
    for (category, days) in by_category {
        let mut running: SeriesCounts = [0; 4];
        let mut shown = BTreeMap::new();
        let mut changes = days.range(..=today).peekable();
        for day in first_day - 1..=today {
            while let Some((_, c)) = changes.next_if(|(d, _)| **d <= day) {
                for (r, n) in running.iter_mut().zip(c) {
                    *r += n;
                }
            }
            if day >= first_day && running.iter().any(|n| *n > 0) {
                shown.insert(day, running.map(|n| u64::try_from(n).unwrap_or(0)));
            }
        }
        if !shown.is_empty() {
            out.insert(category.to_string(), shown);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(
        category: &str,
        day: i64,
        buffer: i64,
        seq: i64,
        active: bool,
        state: &str,
    ) -> ConsentStep {
        ConsentStep {
            category: category.into(),
            received_at_ms: day * DAY_MS + 5,
            buffer_id: buffer,
            seq,
            active,
            state: state.into(),
        }
    }

    #[test]
    fn a_device_contributes_its_series_changes() {
        let mut d = ConsentDeltas::default();
        // Given out of order: the replay order is by received time, then buffer, seq.
        d.add_device(
            vec![
                step("os", 3, 1, 3, true, "active"),
                step("os", 1, 1, 1, true, "active"),
                step("os", 2, 1, 2, false, "not_granted"),
                step("os", 2, 1, 9, false, "not_granted"),
                step("location", 2, 1, 4, false, "refused"),
            ],
            1,
        );
        let rows: Vec<_> = d.rows().collect();
        assert_eq!(
            rows,
            [
                (1, "os", [1, 0, 0, 0]),
                (2, "location", [0, 1, 0, 0]),
                (2, "os", [-1, 0, 1, 0]),
                (3, "os", [1, 0, -1, 0]),
            ]
        );
        let days = per_day(
            &d.rows()
                .map(|(day, c, counts)| ConsentDay {
                    day,
                    category: c.into(),
                    counts,
                })
                .collect::<Vec<_>>(),
            2,
            3,
        );
        assert_eq!(days["os"][&2], [0, 0, 1, 0]);
        assert_eq!(days["os"][&3], [1, 0, 0, 0]);
        assert_eq!(days["location"].keys().collect::<Vec<_>>(), [&2, &3]);
        // Taking it away again leaves nothing.
        let mut all = d.clone();
        let mut minus = ConsentDeltas::default();
        minus.add_device(
            vec![
                step("os", 1, 1, 1, true, "active"),
                step("os", 2, 1, 2, false, "not_granted"),
                step("os", 2, 1, 9, false, "not_granted"),
                step("os", 3, 1, 3, true, "active"),
                step("location", 2, 1, 4, false, "refused"),
            ],
            -1,
        );
        all.merge(minus);
        assert_eq!(all.rows().count(), 0);
    }
}
