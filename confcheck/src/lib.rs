//! `assent-confcheck`: reads TOML configuration files and reports every problem at once,
//! each as `file:line:column: message`.
//!
//! This crate owns no schema. A caller parses a [`Document`], then walks it with
//! [`Table`], asking for each key it knows with a typed getter (`string`, `bool`, `u64`
//! with a range, `path`, `table`, `string_array`, `choice`, `string_or_table`). A wrong
//! type, an out-of-range value or a failed check is recorded, never returned on its own:
//! the walk goes on, so one run reports everything. When a [`Table`] is dropped, every
//! key in it that nobody asked about is reported as unknown, with the nearest known key
//! suggested when one is close, so a typo is never silently ignored. [`Document::finish`]
//! then returns all diagnostics, sorted by position.
//!
//! It never panics on outside data, spawns no threads and keeps no global state. The only
//! file access is [`read_text`], which is bounded and refuses anything but a regular file.

use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::fmt;
use std::io::Read;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// The size above which [`read_text`] callers usually refuse a config file: real ones are
/// a few kilobytes, and a bound keeps a wrong path (a log, a device) from filling memory.
pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024;

/// One problem in one file.
///
/// `line` and `column` are 1-based; `column` counts characters, not bytes. A `line` of 0
/// means the problem concerns the whole file (it could not be read), and `Display` then
/// leaves the position out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// The file as the caller named it.
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic about a whole file rather than a position in it.
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
        }
    }

    /// A diagnostic at byte `offset` of `text` (clamped to the text).
    pub fn at_offset(file: &Path, text: &str, offset: usize, message: impl Into<String>) -> Self {
        let (line, column) = line_column(text, offset);
        Diagnostic {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// Every problem found in one check, in file order. Displays one diagnostic per line.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many problems were found.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Adds the diagnostics of another check (for example the consent file after the
    /// config), keeping each file's own order.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Why [`read_text`] failed. `kind` lets a caller treat a missing file differently (the
/// consent file's absence is a state, not an error), `diagnostic` is what to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub kind: std::io::ErrorKind,
    pub diagnostic: Diagnostic,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.diagnostic.fmt(f)
    }
}

impl std::error::Error for ReadError {}

impl From<ReadError> for Diagnostics {
    fn from(e: ReadError) -> Self {
        e.diagnostic.into()
    }
}

/// Reads a text file of at most `max_bytes` bytes.
///
/// Refuses anything that is not a regular file before opening it, so a FIFO at the path
/// cannot block the caller (a file swapped for a FIFO between the check and the open is
/// the one case left; configs live in root-owned directories). Non-UTF-8 content is an
/// error at the position of the first bad byte.
pub fn read_text(path: &Path, max_bytes: u64) -> Result<String, ReadError> {
    let fail = |kind: std::io::ErrorKind, message: String| ReadError {
        kind,
        diagnostic: Diagnostic::whole_file(path, message),
    };
    let io_fail = |e: std::io::Error| {
        let message = match e.kind() {
            std::io::ErrorKind::NotFound => "cannot read: no such file".to_string(),
            std::io::ErrorKind::PermissionDenied => "cannot read: permission denied".to_string(),
            _ => format!("cannot read: {e}"),
        };
        fail(e.kind(), message)
    };
    let meta = std::fs::metadata(path).map_err(io_fail)?;
    if !meta.is_file() {
        return Err(fail(
            std::io::ErrorKind::InvalidInput,
            "cannot read: not a regular file".to_string(),
        ));
    }
    let file = std::fs::File::open(path).map_err(io_fail)?;
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_fail)?;
    if bytes.len() as u64 > max_bytes {
        return Err(fail(
            std::io::ErrorKind::InvalidData,
            format!("file is larger than {max_bytes} bytes"),
        ));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            // The prefix up to `valid` is UTF-8 by definition of `valid_up_to`.
            let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]);
            Err(ReadError {
                kind: std::io::ErrorKind::InvalidData,
                diagnostic: Diagnostic::at_offset(path, &prefix, valid, "not valid UTF-8"),
            })
        }
    }
}

/// 1-based line and character column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    for (i, ch) in text.char_indices() {
        if i >= offset {
            break;
        }
        if ch == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

/// The edit distance between two strings (optimal string alignment: insertions,
/// deletions, substitutions and swaps of neighbours each cost 1), over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows are enough: the current one, and two back for swaps.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The candidate nearest to `word`, if it is close enough to be a likely typo: at most
/// one edit for short names, up to a third of the candidate's length, never more than 3.
/// Case is ignored when measuring, so `Info` suggests `info`.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let distance = edit_distance(&word, &candidate.to_lowercase());
        let allowed = (candidate.chars().count() / 3).clamp(1, 3);
        if distance <= allowed && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// "a string", "an integer": TOML type names with their article, for messages.
fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Where diagnostics go while a document is walked. Shared by every [`Table`] of one
/// document; interior mutability lets table views borrow it side by side.
#[derive(Debug)]
struct Sink<'i> {
    file: PathBuf,
    text: &'i str,
    base_dir: PathBuf,
    found: RefCell<Vec<Diagnostic>>,
}

impl Sink<'_> {
    fn report(&self, offset: usize, message: String) {
        let d = Diagnostic::at_offset(&self.file, self.text, offset, message);
        self.found.borrow_mut().push(d);
    }
}

/// A parsed TOML document and the diagnostics recorded while walking it.
#[derive(Debug)]
pub struct Document<'i> {
    sink: Sink<'i>,
    root: Spanned<DeTable<'i>>,
}

impl<'i> Document<'i> {
    /// Parses `text`; `file` names it in messages and anchors relative paths (see
    /// [`Table::path`]). A syntax error gives one diagnostic at its position: after one,
    /// the rest of the file cannot be trusted to mean what it seems to.
    pub fn parse(file: &Path, text: &'i str) -> Result<Self, Diagnostics> {
        let root = DeTable::parse(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            Diagnostics::from(Diagnostic::at_offset(
                file,
                text,
                offset,
                format!("invalid TOML: {}", e.message().trim_end_matches('.')),
            ))
        })?;
        let parent = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // Made absolute now so a later change of working directory cannot change what a
        // relative path in the file means; canonical where the directory exists, so that
        // `../state` can be printed without the `..` (see `join_below`).
        let base_dir = std::fs::canonicalize(parent)
            .or_else(|_| std::path::absolute(parent))
            .unwrap_or_else(|_| parent.to_path_buf());
        Ok(Document {
            sink: Sink {
                file: file.to_path_buf(),
                text,
                base_dir,
                found: RefCell::new(Vec::new()),
            },
            root,
        })
    }

    /// The top-level table. Keys are shown without a prefix.
    pub fn root(&self) -> Table<'_> {
        Table {
            sink: &self.sink,
            table: self.root.get_ref(),
            span: self.root.span(),
            path: String::new(),
            noun: None,
            asked: Vec::new(),
        }
    }

    /// Records a problem at byte `offset` that no [`Table`] method covers.
    pub fn report(&self, offset: usize, message: impl Into<String>) {
        self.sink.report(offset, message.into());
    }

    /// Every diagnostic recorded, sorted by position, or `Ok` if there were none. All
    /// [`Table`] views must be gone by now, so their unknown keys are included.
    pub fn finish(self) -> Result<(), Diagnostics> {
        let mut found = self.sink.found.into_inner();
        if found.is_empty() {
            return Ok(());
        }
        found.sort_by_key(|d| (d.line, d.column));
        Err(Diagnostics(found))
    }
}

/// What a key holding "a string or a table" held.
#[derive(Debug)]
pub enum StringOrTable<'d> {
    /// The string, to be checked by the caller (report with [`Table::error`]).
    String(String),
    /// The table, to be walked like any other.
    Table(Table<'d>),
}

/// A view of one table that reads typed keys and records every problem.
///
/// Every getter returns `None` both when the key is absent and when its value is wrong;
/// in the second case a diagnostic has been recorded, so the caller can go on with its
/// default and rely on [`Document::finish`] to fail. On drop, every key no getter asked
/// about is reported as unknown.
#[derive(Debug)]
pub struct Table<'d> {
    sink: &'d Sink<'d>,
    table: &'d DeTable<'d>,
    span: Range<usize>,
    /// Dotted path from the root (`sync`, `categories.hardware`), empty for the root.
    path: String,
    /// What an unknown key is called in messages, when not "key".
    noun: Option<&'static str>,
    asked: Vec<String>,
}

impl<'d> Table<'d> {
    /// Calls keys of this table something else than "key" in unknown-key messages, and
    /// shows them without the table's prefix: `unknown category `hardwar``.
    pub fn with_noun(mut self, noun: &'static str) -> Self {
        self.noun = Some(noun);
        self
    }

    /// The dotted path of this table from the root, empty for the root.
    pub fn name(&self) -> &str {
        &self.path
    }

    /// Whether the key is present, without asking for it.
    pub fn contains(&self, key: &str) -> bool {
        self.table.get(key).is_some()
    }

    /// The names of the keys present, in the order the parser keeps them (sorted).
    pub fn keys(&self) -> Vec<&'d str> {
        self.table.keys().map(|k| k.get_ref().as_ref()).collect()
    }

    /// Records `message` about `key`: at its value if present, else at this table.
    pub fn error(&self, key: &str, message: &str) {
        let offset = self
            .table
            .get(key)
            .map_or(self.span.start, |v| v.span().start);
        self.sink
            .report(offset, format!("key `{}`: {message}", self.qualified(key)));
    }

    /// Records `message` about this table as a whole, at its start (its header, or the
    /// opening brace of an inline table).
    pub fn error_here(&self, message: &str) {
        self.sink.report(self.span.start, message.to_string());
    }

    /// Records that a key this table must have is missing.
    pub fn missing(&self, key: &str) {
        let message = format!("missing key `{}`", self.qualified(key));
        self.sink.report(self.span.start, message);
    }

    /// A string.
    pub fn string(&mut self, key: &str) -> Option<String> {
        self.string_with(key, |s| Ok::<_, std::convert::Infallible>(s.to_string()))
    }

    /// A string passed through `check`, whose error message is recorded at the value as
    /// ``key `name`: message``.
    pub fn string_with<T, E: std::fmt::Display>(
        &mut self,
        key: &str,
        check: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        let value = self.lookup(key)?;
        match value.get_ref() {
            DeValue::String(s) => match check(s) {
                Ok(t) => Some(t),
                Err(message) => {
                    self.value_error(key, value, &message.to_string());
                    None
                }
            },
            other => {
                self.type_error(key, "a string", value, other);
                None
            }
        }
    }

    /// A boolean.
    pub fn bool(&mut self, key: &str) -> Option<bool> {
        let value = self.lookup(key)?;
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.type_error(key, "a boolean (`true` or `false`)", value, other);
                None
            }
        }
    }

    /// An integer within `range`. Negative values, and zero when the range starts at 1,
    /// are out of range like any other value.
    pub fn u64(&mut self, key: &str, range: RangeInclusive<u64>) -> Option<u64> {
        let value = self.lookup(key)?;
        let expected = if *range.start() >= 1 {
            "a positive integer"
        } else {
            "a non-negative integer"
        };
        let DeValue::Integer(int) = value.get_ref() else {
            self.type_error(key, expected, value, value.get_ref());
            return None;
        };
        match int_in_range(int.as_str(), int.radix(), &range) {
            Ok(n) => Some(n),
            Err(message) => {
                self.value_error(key, value, &message);
                None
            }
        }
    }

    /// An array of integers, each within `range`; every bad element is reported at the
    /// element as ``key `name`: item N: message``.
    pub fn u64_array(&mut self, key: &str, range: RangeInclusive<u64>) -> Option<Vec<u64>> {
        let value = self.lookup(key)?;
        let DeValue::Array(items) = value.get_ref() else {
            self.type_error(key, "an array of integers", value, value.get_ref());
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let problem = match item.get_ref() {
                DeValue::Integer(int) => match int_in_range(int.as_str(), int.radix(), &range) {
                    Ok(n) => {
                        out.push(n);
                        continue;
                    }
                    Err(message) => message,
                },
                other => format!("expected an integer, found {}", type_name(other)),
            };
            ok = false;
            let message = format!("key `{}`: item {}: {problem}", self.qualified(key), i + 1);
            self.sink.report(item.span().start, message);
        }
        ok.then_some(out)
    }

    /// A file system path: a non-empty string without NUL characters. A relative path is
    /// resolved against the directory of the file being checked, never against the
    /// working directory, so the same file means the same paths wherever it is run from.
    pub fn path(&mut self, key: &str) -> Option<PathBuf> {
        let base = &self.sink.base_dir;
        self.string_with(key, |s| {
            if s.is_empty() {
                Err("must not be empty".to_string())
            } else if s.contains('\0') {
                Err("must not contain a NUL character".to_string())
            } else {
                Ok(join_below(base, s))
            }
        })
    }

    /// A sub-table (a `[header]` table, a dotted-key table or an inline table).
    pub fn table(&mut self, key: &str) -> Option<Table<'d>> {
        let value = self.lookup(key)?;
        match value.get_ref() {
            DeValue::Table(t) => Some(self.child(key, t, value.span())),
            other => {
                self.type_error(key, "a table", value, other);
                None
            }
        }
    }

    /// An array of strings. Each element of the wrong type is reported at the element.
    pub fn string_array(&mut self, key: &str) -> Option<Vec<String>> {
        self.string_array_with(key, |s| Ok::<_, std::convert::Infallible>(s.to_string()))
    }

    /// An array of strings, each passed through `check`; every bad element is reported
    /// at the element as ``key `name`: item N: message``.
    pub fn string_array_with<T, E: std::fmt::Display>(
        &mut self,
        key: &str,
        mut check: impl FnMut(&str) -> Result<T, E>,
    ) -> Option<Vec<T>> {
        let value = self.lookup(key)?;
        let DeValue::Array(items) = value.get_ref() else {
            self.type_error(key, "an array of strings", value, value.get_ref());
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let problem = match item.get_ref() {
                DeValue::String(s) => match check(s) {
                    Ok(t) => {
                        out.push(t);
                        continue;
                    }
                    Err(message) => message.to_string(),
                },
                other => format!("expected a string, found {}", type_name(other)),
            };
            ok = false;
            let message = format!("key `{}`: item {}: {problem}", self.qualified(key), i + 1);
            self.sink.report(item.span().start, message);
        }
        ok.then_some(out)
    }

    /// A string that must be one of `choices` (exactly, case included).
    pub fn choice(&mut self, key: &str, choices: &[&'static str]) -> Option<&'static str> {
        let list = choices
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let value = self.lookup(key)?;
        let DeValue::String(s) = value.get_ref() else {
            let expected = format!("one of {list}");
            self.type_error(key, &expected, value, value.get_ref());
            return None;
        };
        if let Some(c) = choices.iter().find(|c| **c == s.as_ref()) {
            return Some(c);
        }
        let mut message = format!("expected one of {list}, found `{s}`");
        if let Some(near) = nearest(s, choices.iter().copied()) {
            message.push_str(&format!("; did you mean `{near}`?"));
        }
        self.value_error(key, value, &message);
        None
    }

    /// A value that may be a string or a table (`metered = "defer"` or
    /// `metered = { max_bytes_per_day = 1000 }`). `what` describes the accepted forms for
    /// the type error, for example ``"`allow`, `defer` or a table"``.
    pub fn string_or_table(&mut self, key: &str, what: &str) -> Option<StringOrTable<'d>> {
        let value = self.lookup(key)?;
        match value.get_ref() {
            DeValue::String(s) => Some(StringOrTable::String(s.to_string())),
            DeValue::Table(t) => Some(StringOrTable::Table(self.child(key, t, value.span()))),
            other => {
                self.type_error(key, what, value, other);
                None
            }
        }
    }

    fn lookup(&mut self, key: &str) -> Option<&'d Spanned<DeValue<'d>>> {
        if !self.asked.iter().any(|k| k == key) {
            self.asked.push(key.to_string());
        }
        self.table.get(key)
    }

    fn child(&self, key: &str, table: &'d DeTable<'d>, span: Range<usize>) -> Table<'d> {
        Table {
            sink: self.sink,
            table,
            span,
            path: self.qualified(key),
            noun: None,
            asked: Vec::new(),
        }
    }

    fn qualified(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn type_error(
        &self,
        key: &str,
        expected: &str,
        at: &Spanned<DeValue<'_>>,
        found: &DeValue<'_>,
    ) {
        let message = format!(
            "key `{}`: expected {expected}, found {}",
            self.qualified(key),
            type_name(found)
        );
        self.sink.report(at.span().start, message);
    }

    fn value_error(&self, key: &str, at: &Spanned<DeValue<'_>>, message: &str) {
        let message = format!("key `{}`: {message}", self.qualified(key));
        self.sink.report(at.span().start, message);
    }
}

/// Checks a TOML integer (its digits and radix) against `range`; the error says what the
/// range is and what was found.
fn int_in_range(digits: &str, radix: u32, range: &RangeInclusive<u64>) -> Result<u64, String> {
    let bounds = match (*range.start(), *range.end()) {
        (0, u64::MAX) => "must not be negative".to_string(),
        (lo, u64::MAX) => format!("must be at least {lo}"),
        (0, hi) => format!("must be at most {hi}"),
        (lo, hi) => format!("must be between {lo} and {hi}"),
    };
    // TOML integers are 64-bit signed; i128 holds every one of them and their sign.
    match i128::from_str_radix(digits, radix) {
        Ok(n) if n >= i128::from(*range.start()) && n <= i128::from(*range.end()) => {
            u64::try_from(n).map_err(|_| format!("{bounds}, found {n}"))
        }
        Ok(n) => Err(format!("{bounds}, found {n}")),
        Err(_) => Err(format!("{bounds}, found a number too large")),
    }
}

impl Drop for Table<'_> {
    /// Reports every key that no getter asked about: the check that makes typos loud.
    fn drop(&mut self) {
        for (key, _) in self.table.iter() {
            let name: &str = key.get_ref();
            if self.asked.iter().any(|k| k == name) {
                continue;
            }
            let suggestion = nearest(name, self.asked.iter().map(String::as_str));
            let message = match self.noun {
                Some(noun) => {
                    let mut m = format!("unknown {noun} `{name}`");
                    if let Some(s) = suggestion {
                        m.push_str(&format!("; did you mean `{s}`?"));
                    }
                    m
                }
                None => {
                    let mut m = format!("unknown key `{}`", self.qualified(name));
                    if let Some(s) = suggestion {
                        m.push_str(&format!("; did you mean `{}`?", self.qualified(s)));
                    }
                    m
                }
            };
            self.sink.report(key.span().start, message);
        }
    }
}

/// `base` joined with `relative`, the leading `..` and `.` taken off `base`'s end, so
/// `/etc/assent` and `../state` give `/etc/state`, not `/etc/assent/../state`. Only the
/// leading ones: `base` is canonical (no symlinks) whenever the directory exists, so its
/// parent is its lexical parent, while a `..` after another component may follow a
/// symlink and is kept. (A directory that does not exist holds no file to read.)
fn join_below(base: &Path, relative: &str) -> PathBuf {
    let mut out = base.to_path_buf();
    let mut rest = Path::new(relative).components().peekable();
    while let Some(c) = rest.peek() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            _ => break,
        }
        rest.next();
    }
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests;
