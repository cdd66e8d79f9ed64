//! The client side of the events socket, for `assent emit NAME [key=value...]`: builds
//! one message line, sends it, and waits (at most [`TIMEOUT`]) for the agent's answer.
//!
//! Values are typed the way a shell user means them: `true` / `false` are booleans,
//! `42` / `-7` integers, `1.5` / `2e3` floats, anything else text. `key:=value` forces
//! text (`version:=1.10` keeps the string "1.10"). Keys cannot contain `:`, so this is
//! never ambiguous.

use crate::events::parse::WordError;
use assent_wire::AttrValue;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the agent has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The longest answer line read; the agent's answers are far shorter.
const MAX_ANSWER_BYTES: u64 = 4096;

/// Why an event was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmitError {
    /// A command-line attribute is malformed (`key=value` expected).
    Argument(ArgumentError),
    /// The socket could not be used: `<path>: <what>`.
    Socket { path: PathBuf, what: String },
    /// The agent did not answer in time.
    NoAnswer(Duration),
    /// The agent refused the event, with its reason (without `error: `).
    Refused(String),
    /// The agent's answer is not `ok <seq>` or `error: <reason>`.
    BadAnswer(String),
}

impl std::fmt::Display for EmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmitError::Argument(e) => std::fmt::Display::fmt(e, f),
            EmitError::Refused(e) | EmitError::BadAnswer(e) => f.write_str(e),
            EmitError::Socket { path, what } => write!(f, "{}: {what}", path.display()),
            EmitError::NoAnswer(timeout) => write!(
                f,
                "no answer from the agent within {}",
                humantime::format_duration(*timeout)
            ),
        }
    }
}

impl std::error::Error for EmitError {}

/// Why a `key=value` argument is refused; each names the argument as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgumentError {
    NotAPair(String),
    Key { pair: String, error: WordError },
    KeyTwice { pair: String, key: String },
}

impl std::fmt::Display for ArgumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArgumentError::NotAPair(pair) => {
                write!(f, "`{pair}`: expected key=value or key:=text")
            }
            ArgumentError::Key { pair, error } => write!(f, "`{pair}`: key {error}"),
            ArgumentError::KeyTwice { pair, key } => {
                write!(f, "`{pair}`: key `{key}` given twice")
            }
        }
    }
}

impl std::error::Error for ArgumentError {}

/// Sends one event to the agent at `socket`; returns its seq once the agent has stored it
/// durably, or the agent's error text (without `error: `), or why it could not ask.
pub fn run(socket: &Path, name: &str, pairs: &[String]) -> Result<u64, EmitError> {
    run_with_timeout(socket, name, pairs, TIMEOUT)
}

fn run_with_timeout(
    socket: &Path,
    name: &str,
    pairs: &[String],
    timeout: Duration,
) -> Result<u64, EmitError> {
    let attrs = parse_pairs(pairs).map_err(EmitError::Argument)?;
    let line = message_line(name, &attrs);
    let at = |what: &str| EmitError::Socket {
        path: socket.to_path_buf(),
        what: what.to_string(),
    };
    let mut stream = UnixStream::connect(socket).map_err(|e| match e.kind() {
        ErrorKind::NotFound => at("no such socket; is the agent running?"),
        ErrorKind::ConnectionRefused => at("nothing listens on it; is the agent running?"),
        ErrorKind::PermissionDenied => at(
            "permission denied: the events socket is for root, the agent's user and members of \
             events.socket_group (or events.allowed_groups, with a socket_mode that lets them \
             connect)",
        ),
        _ => at(&e.to_string()),
    })?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| at(&e.to_string()))?;
    stream
        .write_all(&line)
        .map_err(|e| at(&format!("cannot send: {e}")))?;
    let mut answer = Vec::new();
    BufReader::new(stream.take(MAX_ANSWER_BYTES))
        .read_until(b'\n', &mut answer)
        .map_err(|e| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => EmitError::NoAnswer(timeout),
            _ => at(&format!("cannot read the answer: {e}")),
        })?;
    parse_answer(&answer)
}

/// The agent's answer line: `ok <seq>` or `error: <reason>`.
fn parse_answer(answer: &[u8]) -> Result<u64, EmitError> {
    let Some(text) = answer.strip_suffix(b"\n") else {
        return Err(EmitError::BadAnswer(if answer.is_empty() {
            "the agent closed the connection without answering".to_string()
        } else {
            "the agent's answer was cut short".to_string()
        }));
    };
    let text = String::from_utf8_lossy(text);
    if let Some(seq) = text.strip_prefix("ok ") {
        return seq.parse().map_err(|_| {
            EmitError::BadAnswer(format!("unexpected answer from the agent: {text:?}"))
        });
    }
    match text.strip_prefix("error: ") {
        Some(reason) => Err(EmitError::Refused(reason.to_string())),
        None => Err(EmitError::BadAnswer(format!(
            "unexpected answer from the agent: {text:?}"
        ))),
    }
}

/// Parses `key=value` and `key:=text` arguments. A key given twice is an error.
pub fn parse_pairs(pairs: &[String]) -> Result<BTreeMap<String, AttrValue>, ArgumentError> {
    let mut attrs = BTreeMap::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(ArgumentError::NotAPair(pair.clone()));
        };
        let (key, value) = match key.strip_suffix(':') {
            Some(key) => (key, AttrValue::Text(value.to_string())),
            None => (key, typed_value(value)),
        };
        crate::events::parse::check_key(key).map_err(|error| ArgumentError::Key {
            pair: pair.clone(),
            error,
        })?;
        if attrs.insert(key.to_string(), value).is_some() {
            return Err(ArgumentError::KeyTwice {
                pair: pair.clone(),
                key: key.to_string(),
            });
        }
    }
    Ok(attrs)
}

/// The value a command-line word stands for (see the module documentation).
pub fn typed_value(s: &str) -> AttrValue {
    match s {
        "true" => return AttrValue::Bool(true),
        "false" => return AttrValue::Bool(false),
        _ => {}
    }
    if let Ok(i) = s.parse::<i64>() {
        return AttrValue::Int(i);
    }
    // Only what looks like a number: Rust also parses `inf`, `NaN` and `infinity`.
    let numeric = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    match s.parse::<f64>() {
        Ok(f) if numeric && f.is_finite() => AttrValue::Float(f),
        _ => AttrValue::Text(s.to_string()),
    }
}

/// One message line, newline included. (A `Value` always serializes: its keys are
/// strings.)
fn message_line(name: &str, attrs: &BTreeMap<String, AttrValue>) -> Vec<u8> {
    let attrs: serde_json::Map<String, serde_json::Value> = attrs
        .iter()
        .map(|(k, v)| {
            let value = match v {
                AttrValue::Bool(b) => serde_json::Value::Bool(*b),
                AttrValue::Int(i) => serde_json::Value::from(*i),
                AttrValue::Float(f) => serde_json::Number::from_f64(*f)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number),
                AttrValue::Text(t) => serde_json::Value::String(t.clone()),
            };
            (k.clone(), value)
        })
        .collect();
    let message = serde_json::json!({ "name": name, "attrs": attrs });
    let mut line = message.to_string().into_bytes();
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::tests::Server;

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn values_are_typed_like_a_shell_user_means_them() {
        let cases = [
            ("true", AttrValue::Bool(true)),
            ("false", AttrValue::Bool(false)),
            ("True", AttrValue::Text("True".into())),
            ("42", AttrValue::Int(42)),
            ("-7", AttrValue::Int(-7)),
            ("+5", AttrValue::Int(5)),
            ("9223372036854775807", AttrValue::Int(i64::MAX)),
            (
                "9223372036854775808",
                AttrValue::Float(9_223_372_036_854_775_808.0),
            ),
            ("1.5", AttrValue::Float(1.5)),
            ("2e3", AttrValue::Float(2000.0)),
            ("1e999", AttrValue::Text("1e999".into())),
            ("inf", AttrValue::Text("inf".into())),
            ("NaN", AttrValue::Text("NaN".into())),
            ("1.10.2", AttrValue::Text("1.10.2".into())),
            ("", AttrValue::Text(String::new())),
            ("-", AttrValue::Text("-".into())),
            ("eth0", AttrValue::Text("eth0".into())),
            ("a=b", AttrValue::Text("a=b".into())),
        ];
        for (word, want) in cases {
            assert_eq!(typed_value(word), want, "{word:?}");
        }
    }

    #[test]
    fn pairs_parse_with_forced_text_and_clear_errors() {
        let attrs =
            parse_pairs(&strings(&["zone=3", "version:=1.10", "msg=a=b", "ok=true"])).unwrap();
        assert_eq!(
            attrs,
            BTreeMap::from([
                ("zone".to_string(), AttrValue::Int(3)),
                ("version".to_string(), AttrValue::Text("1.10".into())),
                ("msg".to_string(), AttrValue::Text("a=b".into())),
                ("ok".to_string(), AttrValue::Bool(true)),
            ])
        );
        let bad: &[(&str, &str)] = &[
            ("novalue", "`novalue`: expected key=value or key:=text"),
            ("=1", "`=1`: key must not be empty"),
            (":=1", "`:=1`: key must not be empty"),
            (
                "a b=1",
                "`a b=1`: key has the character ' ' (allowed: A-Z a-z 0-9 _ . -)",
            ),
            (
                "a::=1",
                "`a::=1`: key has the character ':' (allowed: A-Z a-z 0-9 _ . -)",
            ),
        ];
        for (pair, want) in bad {
            assert_eq!(
                parse_pairs(&strings(&[pair])).unwrap_err().to_string(),
                *want
            );
        }
        assert_eq!(
            parse_pairs(&strings(&["a=1", "a:=2"]))
                .unwrap_err()
                .to_string(),
            "`a:=2`: key `a` given twice"
        );
    }

    #[test]
    fn answers_are_read_strictly() {
        assert_eq!(parse_answer(b"ok 17\n"), Ok(17));
        assert_eq!(
            parse_answer(b"error: rate limit exceeded\n"),
            Err(EmitError::Refused("rate limit exceeded".to_string()))
        );
        for (bytes, want) in [
            (
                &b""[..],
                "the agent closed the connection without answering",
            ),
            (b"ok 17", "the agent's answer was cut short"),
            (b"ok x\n", "unexpected answer from the agent: \"ok x\""),
            (b"hello\n", "unexpected answer from the agent: \"hello\""),
        ] {
            assert_eq!(parse_answer(bytes).unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn emit_stores_an_event_through_a_real_server() {
        let server = Server::start(|_| {});
        let seq = run(
            &server.socket,
            "door.open",
            &strings(&["zone=3", "t=21.5", "who=front door", "id:=007"]),
        )
        .unwrap();
        let stored = server
            .store
            .export()
            .unwrap()
            .into_iter()
            .find(|r| r.seq() == seq)
            .unwrap();
        let assent_store::Record::Event(event) = stored else {
            panic!("not an event")
        };
        let assent_wire::Payload::AppEvent(app) = postcard::from_bytes(&event.payload).unwrap()
        else {
            panic!("not an app event")
        };
        assert_eq!(app.name, "door.open");
        assert_eq!(
            app.attrs,
            BTreeMap::from([
                ("zone".to_string(), AttrValue::Int(3)),
                ("t".to_string(), AttrValue::Float(21.5)),
                ("who".to_string(), AttrValue::Text("front door".into())),
                ("id".to_string(), AttrValue::Text("007".into())),
            ])
        );
        // The server's refusals come back as the error text.
        assert_eq!(
            run(&server.socket, "bad name", &[])
                .unwrap_err()
                .to_string(),
            "line 1: name: has the character ' ' (allowed: A-Z a-z 0-9 _ . : -)"
        );
        server
            .consent
            .store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            run(&server.socket, "x", &[]).unwrap_err().to_string(),
            "app_events consent is not granted"
        );
    }

    #[test]
    fn a_missing_or_silent_agent_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.sock");
        assert_eq!(
            run(&path, "x", &[]).unwrap_err().to_string(),
            format!("{}: no such socket; is the agent running?", path.display())
        );
        // Something listening that never answers.
        let silent = dir.path().join("silent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&silent).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(
            run_with_timeout(&silent, "x", &[], Duration::from_millis(300))
                .unwrap_err()
                .to_string(),
            "no answer from the agent within 300ms"
        );
        assert!(started.elapsed() >= Duration::from_millis(300));
        // A stale socket file nobody listens on.
        drop(_listener);
        assert_eq!(
            run(&silent, "x", &[]).unwrap_err().to_string(),
            format!(
                "{}: nothing listens on it; is the agent running?",
                silent.display()
            )
        );
    }
}
