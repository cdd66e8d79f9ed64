//! The events server over real Unix sockets, a real store in a temp dir, and `serve`
//! running on a smol executor in its own thread.

use super::*;
use assent_store::{Record, StoreOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream as StdStream;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running server with its store; shuts down and joins on drop.
pub(crate) struct Server {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub store: Arc<Store>,
    pub consent: Arc<AtomicBool>,
    pub ctx: Arc<EventsContext>,
    pub woken: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(adjust: impl FnOnce(&mut EventsConfig)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run/events.sock");
        let mut config = EventsConfig {
            socket: socket.clone(),
            ..EventsConfig::default()
        };
        adjust(&mut config);
        let (store, _) = Store::open(&dir.path().join("state"), StoreOptions::default()).unwrap();
        let store = Arc::new(store);
        let consent = Arc::new(AtomicBool::new(true));
        let woken = Arc::new(AtomicU64::new(0));
        let w = Arc::clone(&woken);
        let ctx = Arc::new(EventsContext::new(
            Arc::clone(&store),
            Arc::clone(&consent),
            config.clone(),
            Box::new(move || {
                w.fetch_add(1, Ordering::SeqCst);
            }),
            Arc::new(AtomicBool::new(false)),
        ));
        let listener = bind(&config).unwrap();
        assert_eq!(listener.path(), socket);
        let c = Arc::clone(&ctx);
        let thread = std::thread::spawn(move || smol::block_on(serve(listener, c)));
        Server {
            dir,
            socket,
            store,
            consent,
            ctx,
            woken,
            thread: Some(thread),
        }
    }

    pub fn connect(&self) -> Client {
        Client::new(StdStream::connect(&self.socket).unwrap())
    }

    /// Seqs of the app events held by the store now.
    fn stored_seqs(&self) -> Vec<u64> {
        self.store
            .export()
            .unwrap()
            .into_iter()
            .filter_map(|r| match r {
                Record::Event(e) if e.category == "app_events" => Some(e.seq),
                _ => None,
            })
            .collect()
    }

    /// Stops the server and waits for `serve` to return.
    fn stop(&mut self) {
        self.ctx.shut_down();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) struct Client {
    writer: StdStream,
    reader: BufReader<StdStream>,
}

impl Client {
    fn new(stream: StdStream) -> Client {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Client {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    pub fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).unwrap();
        assert!(n > 0, "connection closed without an answer");
        assert!(line.ends_with('\n'), "{line:?}");
        line.pop();
        line
    }

    pub fn ask(&mut self, line: &str) -> String {
        self.send(format!("{line}\n").as_bytes());
        self.line()
    }

    /// True when the server closed the connection (end of stream).
    fn closed(&mut self) -> bool {
        let mut line = String::new();
        matches!(self.reader.read_line(&mut line), Ok(0))
    }
}

fn seq_of(answer: &str) -> u64 {
    answer
        .strip_prefix("ok ")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an ok answer: {answer:?}"))
}

#[test]
fn accepted_events_are_answered_only_once_committed() {
    let server = Server::start(|_| {});
    let mut client = server.connect();
    let mut last = 0;
    for i in 0..20 {
        let answer = client.ask(&format!(
            r#"{{"name":"door.open","attrs":{{"zone":{i},"ok":true,"who":"front"}}}}"#
        ));
        let seq = seq_of(&answer);
        assert!(seq > last, "seqs grow: {seq} after {last}");
        last = seq;
        // The ok is only written after the commit, so the event is already there.
        assert!(
            server.stored_seqs().contains(&seq),
            "seq {seq} not stored yet"
        );
    }
    let record = server
        .store
        .export()
        .unwrap()
        .into_iter()
        .find(|r| r.seq() == last)
        .unwrap();
    let Record::Event(event) = record else {
        panic!("not an event: {record:?}")
    };
    assert_eq!(event.category, "app_events");
    assert_eq!(event.kind, "door.open");
    let payload: Payload = postcard::from_bytes(&event.payload).unwrap();
    let Payload::AppEvent(app) = payload else {
        panic!("not an app event: {payload:?}")
    };
    assert_eq!(app.attrs["zone"], assent_wire::AttrValue::Int(19));
    assert_eq!(
        app.attrs["who"],
        assent_wire::AttrValue::Text("front".into())
    );
    drop(client);
    let stats = server.ctx.stats();
    assert_eq!(stats.accepted, 20);
    assert_eq!(server.woken.load(Ordering::SeqCst), 20);
}

#[test]
fn a_thousand_pipelined_messages_get_a_thousand_answers_in_order() {
    let server = Server::start(|c| {
        c.rate_per_second = 100_000;
        c.burst = 100_000;
    });
    let mut client = server.connect();
    let mut batch = Vec::new();
    for i in 0..1000 {
        if i % 100 == 99 {
            // Malformed lines in the middle keep their place in the order.
            batch.extend_from_slice(b"{\"name\": 5}\n");
        } else {
            batch.extend_from_slice(
                format!("{{\"name\":\"tick\",\"attrs\":{{\"i\":{i}}}}}\n").as_bytes(),
            );
        }
    }
    // Written from another thread: the server stops reading while 64 answers are
    // unread, so one thread writing everything first could block.
    let mut writer = client.writer.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&batch).unwrap());
    let mut seqs = Vec::new();
    for i in 0..1000 {
        let answer = client.line();
        if i % 100 == 99 {
            assert_eq!(
                answer,
                format!(
                    "error: line {}: name: expected a string, found a number",
                    i + 1
                )
            );
        } else {
            seqs.push(seq_of(&answer));
        }
    }
    sender.join().unwrap();
    assert_eq!(seqs.len(), 990);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "answers out of order");
    let stored = server.stored_seqs();
    assert!(seqs.iter().all(|s| stored.contains(s)));
    // Each stored event carries the counter it was sent with, in seq order.
    let counters: Vec<i64> = server
        .store
        .export()
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            Record::Event(e) if e.category == "app_events" => {
                match postcard::from_bytes::<Payload>(&e.payload).ok()? {
                    Payload::AppEvent(a) => match a.attrs.get("i")? {
                        assent_wire::AttrValue::Int(i) => Some(*i),
                        _ => None,
                    },
                    _ => None,
                }
            }
            _ => None,
        })
        .collect();
    let want: Vec<i64> = (0..1000).filter(|i| i % 100 != 99).collect();
    assert_eq!(counters, want);
}

/// Runs a Python client as `nobody` (uid 65534) with the given supplementary groups; it
/// sends one message and prints every line it gets back.
fn ask_as_nobody(socket: &Path, groups: &str) -> String {
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(b'{"name":"from.nobody"}\n')
data = b''
while True:
    c = s.recv(4096)
    if not c:
        break
    data += c
    if data.endswith(b'\n') and not data.startswith(b'error: uid'):
        break
sys.stdout.write(data.decode())
"#;
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534"]);
    if groups.is_empty() {
        cmd.arg("--clear-groups");
    } else {
        cmd.arg(format!("--groups={groups}"));
    }
    let out = cmd
        .args(["/usr/bin/python3", "-c", script])
        .arg(socket)
        .output()
        .unwrap_or_else(|e| panic!("this test needs setpriv and /usr/bin/python3: {e}"));
    assert!(
        out.status.success(),
        "client as nobody failed (the test must run as root to switch users): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn peers_are_checked_by_uid_and_groups() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs a client as another user and needs root"
    );
    let users = socket::group_id("users").expect("the test needs the `users` group");
    let video = socket::group_id("video").expect("the test needs the `video` group");
    let open_dir = |server: &Server| {
        for d in [
            server.dir.path().to_path_buf(),
            server.dir.path().join("run"),
        ] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    };

    // Not listed: refused with one line, then closed, and nothing stored.
    let server = Server::start(|c| {
        c.socket_mode = 0o666;
        c.allowed_uids = vec![1000];
        c.allowed_groups = vec!["users".into()];
    });
    open_dir(&server);
    assert_eq!(
        ask_as_nobody(&server.socket, &video.to_string()),
        "error: uid 65534 is not allowed to send events\n"
    );
    assert_eq!(server.ctx.stats().connections_refused_peer, 1);
    // A supplementary group in allowed_groups (read from /proc/<pid>/status).
    let answer = ask_as_nobody(&server.socket, &format!("{video},{users}"));
    assert!(answer.starts_with("ok "), "{answer}");
    assert!(server.stored_seqs().contains(&seq_of(answer.trim_end())));
    drop(server);

    // Listed by uid.
    let server = Server::start(|c| {
        c.socket_mode = 0o666;
        c.allowed_uids = vec![65534];
    });
    open_dir(&server);
    let answer = ask_as_nobody(&server.socket, "");
    assert!(answer.starts_with("ok "), "{answer}");
    drop(server);

    // Member of socket_group, which counts as allowed; the socket gets that group.
    let server = Server::start(|c| {
        c.socket_mode = 0o660;
        c.socket_group = Some("users".into());
    });
    open_dir(&server);
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&server.socket).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.gid()), (0o660, users));
    let answer = ask_as_nobody(&server.socket, &users.to_string());
    assert!(answer.starts_with("ok "), "{answer}");
    // Root is always allowed.
    assert!(server
        .connect()
        .ask(r#"{"name":"root"}"#)
        .starts_with("ok "));
}

#[test]
fn oversized_and_malformed_messages_get_one_error_each_and_the_connection_goes_on() {
    let server = Server::start(|c| c.max_message_bytes = 256);
    let mut client = server.connect();
    // Oversized: answered at once, the rest of the line is skipped, even sent in pieces.
    client.send(format!("{{\"name\":\"x\",\"attrs\":{{\"s\":\"{}", "a".repeat(300)).as_bytes());
    assert_eq!(client.line(), "error: message larger than 256 bytes");
    client.send("b".repeat(100_000).as_bytes());
    client.send(b"\"}}\n");
    assert!(client.ask(r#"{"name":"after.big"}"#).starts_with("ok "));
    // A line of exactly the limit is accepted.
    let base = r#"{"name":"x","attrs":{"s":""}}"#;
    let exact = format!(
        r#"{{"name":"x","attrs":{{"s":"{}"}}}}"#,
        "a".repeat(256 - base.len())
    );
    assert_eq!(exact.len(), 256);
    assert!(client.ask(&exact).starts_with("ok "));
    let cases: &[(&str, &str)] = &[
        (
            "{\"name\":\"x\"",
            "invalid JSON at column 11: EOF while parsing an object",
        ),
        ("not json", "invalid JSON at column 2: expected ident"),
        ("", "empty message"),
        (
            r#"{"name":"x","attrs":{"temp":{"c":1}}}"#,
            "attrs.temp: expected a number, string or bool, found an object",
        ),
        (
            r#"{"name":"x","extra":1}"#,
            "unknown key `extra` (only `name` and `attrs` are accepted)",
        ),
        (
            r#"{"name":"bad name"}"#,
            "name: has the character ' ' (allowed: A-Z a-z 0-9 _ . : -)",
        ),
    ];
    // Line numbers count every line of the connection: 3 so far.
    for (i, (line, want)) in cases.iter().enumerate() {
        assert_eq!(
            client.ask(line),
            format!("error: line {}: {want}", i + 4),
            "{line}"
        );
    }
    // Non-UTF-8 and a raw NUL.
    client.send(b"{\"name\":\"\xff\"}\n");
    let answer = client.line();
    assert!(
        answer.starts_with("error: line 10: invalid JSON"),
        "{answer}"
    );
    client.send(b"{\"name\":\"a\0\"}\n");
    let answer = client.line();
    assert!(
        answer.starts_with("error: line 11: invalid JSON"),
        "{answer}"
    );
    assert!(client.ask(r#"{"name":"still.fine"}"#).starts_with("ok "));
    let stats = server.ctx.stats();
    assert_eq!((stats.rejected_too_large, stats.rejected_malformed), (1, 8));
    assert_eq!(server.stored_seqs().len(), 3);
}

#[test]
fn a_flood_is_rate_limited_while_another_connection_is_served() {
    let server = Server::start(|c| {
        c.rate_per_second = 50;
        c.burst = 20;
    });
    let mut flood = server.connect();
    let mut writer = flood.writer.try_clone().unwrap();
    let line = b"{\"name\":\"flood\"}\n".repeat(3000);
    let sender = std::thread::spawn(move || writer.write_all(&line).unwrap());
    // Read the flood's answers concurrently so it never stalls on its own output.
    let reader = std::thread::spawn(move || {
        let mut ok = 0;
        let mut limited = 0;
        for _ in 0..3000 {
            match flood.line().as_str() {
                "error: rate limit exceeded" => limited += 1,
                a if a.starts_with("ok ") => ok += 1,
                other => panic!("unexpected answer {other:?}"),
            }
        }
        (ok, limited)
    });
    // Meanwhile a second client is served promptly, with its own bucket.
    let mut other = server.connect();
    for _ in 0..10 {
        let start = Instant::now();
        assert!(other.ask(r#"{"name":"calm"}"#).starts_with("ok "));
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the second connection waited {:?}",
            start.elapsed()
        );
    }
    sender.join().unwrap();
    let (ok, limited) = reader.join().unwrap();
    assert_eq!(ok + limited, 3000);
    assert!(limited > 2000, "only {limited} of 3000 were limited");
    assert!(ok >= 20, "the burst was not accepted: {ok}");
    assert_eq!(server.ctx.stats().rejected_rate, limited);
}

#[test]
fn without_app_events_consent_nothing_is_stored() {
    let server = Server::start(|_| {});
    let mut client = server.connect();
    server.consent.store(false, Ordering::SeqCst);
    assert_eq!(
        client.ask(r#"{"name":"x"}"#),
        "error: app_events consent is not granted"
    );
    // Even a malformed message is refused for consent first: its content is not read.
    assert_eq!(
        client.ask("garbage"),
        "error: app_events consent is not granted"
    );
    assert!(server.stored_seqs().is_empty());
    server.consent.store(true, Ordering::SeqCst);
    assert!(client.ask(r#"{"name":"x"}"#).starts_with("ok "));
    assert_eq!(server.ctx.stats().rejected_consent, 2);
}

#[test]
fn connections_beyond_the_limit_are_refused() {
    let server = Server::start(|c| c.max_connections = 2);
    let mut a = server.connect();
    let mut b = server.connect();
    // Make sure both are being served before the third arrives.
    assert!(a.ask(r#"{"name":"a"}"#).starts_with("ok "));
    assert!(b.ask(r#"{"name":"b"}"#).starts_with("ok "));
    let mut c = server.connect();
    assert_eq!(c.line(), "error: too many connections (limit 2)");
    assert!(c.closed());
    drop(a);
    // The slot is freed once the server saw the close.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.ctx.stats().connections_open > 1 {
        assert!(Instant::now() < deadline, "connection not released");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(server.connect().ask(r#"{"name":"d"}"#).starts_with("ok "));
    assert_eq!(server.ctx.stats().connections_refused_limit, 1);
}

#[test]
fn shutdown_answers_what_is_in_flight_then_stops_accepting() {
    let mut server = Server::start(|c| {
        c.rate_per_second = 100_000;
        c.burst = 100_000;
    });
    let mut client = server.connect();
    assert!(client.ask(r#"{"name":"before"}"#).starts_with("ok "));
    // Many lines sent, then shutdown right away: every line read gets its answer, and
    // each ok is stored.
    client.send(&b"{\"name\":\"racing\"}\n".repeat(200));
    std::thread::sleep(Duration::from_millis(20));
    server.stop();
    let mut answered = 0;
    loop {
        let mut line = String::new();
        match client.reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {
                let line = line.trim_end();
                if let Some(seq) = line.strip_prefix("ok ") {
                    let seq: u64 = seq.parse().unwrap();
                    assert!(server.stored_seqs().contains(&seq));
                } else {
                    assert_eq!(line, "error: the agent is shutting down");
                }
                answered += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(answered <= 200);
    // Nothing listens any more.
    let e = StdStream::connect(&server.socket).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
}

#[test]
fn token_bucket_refills_at_the_rate_up_to_the_burst() {
    let start = Instant::now();
    let mut bucket = TokenBucket::new(10, 3);
    bucket.last = start;
    assert!((0..3).all(|_| bucket.take(start)));
    assert!(!bucket.take(start));
    assert!(!bucket.take(start + Duration::from_millis(50)));
    assert!(bucket.take(start + Duration::from_millis(100)));
    assert!(!bucket.take(start + Duration::from_millis(100)));
    // A long pause refills only up to the burst.
    let later = start + Duration::from_secs(60);
    assert!((0..3).all(|_| bucket.take(later)));
    assert!(!bucket.take(later));
}

#[test]
fn bind_refuses_unknown_groups() {
    let dir = tempfile::tempdir().unwrap();
    let config = EventsConfig {
        socket: dir.path().join("e.sock"),
        socket_group: Some("no-such-group-assent".into()),
        ..EventsConfig::default()
    };
    assert_eq!(
        bind(&config).unwrap_err().to_string(),
        "events.socket_group: no group named `no-such-group-assent`"
    );
    let config = EventsConfig {
        socket: dir.path().join("e.sock"),
        allowed_groups: vec!["users".into(), "no-such-group-assent".into()],
        ..EventsConfig::default()
    };
    assert_eq!(
        bind(&config).unwrap_err().to_string(),
        "events.allowed_groups: no group named `no-such-group-assent`"
    );
    assert!(!dir.path().join("e.sock").exists());
}
