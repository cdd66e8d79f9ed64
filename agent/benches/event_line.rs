//! The events socket's work per line outside I/O, on the bench clients' ~170-byte line:
//! parsing it on the plain-line path beside the general (serde_json) parser, and
//! encoding it as a stored event.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use assent::events::parse::{parse_event_line, parse_general, Limits};
use assent::local::buffer::{payload_event, Timestamp};
use assent_wire::{AppEvent, Payload};
use std::time::{Duration, Instant};

const LINES: usize = 200_000;
const ROUNDS: usize = 3;

fn main() {
    let note = "x".repeat(120);
    let lines: Vec<String> = (0..LINES)
        .map(|i| {
            format!(
                "{{\"name\":\"bench\",\"attrs\":{{\"client\":3,\"i\":{i},\"note\":\"{note}\"}}}}"
            )
        })
        .collect();
    let limits = Limits {
        max_message_bytes: 4096,
        max_attributes: 32,
    };
    let parse_all = |parse: fn(&[u8], &Limits) -> Result<AppEvent, _>| {
        let start = Instant::now();
        for line in &lines {
            std::hint::black_box(parse(line.as_bytes(), &limits).unwrap());
        }
        start.elapsed()
    };
    let at = Timestamp::now();
    let (mut plain, mut general, mut encode) = (Duration::MAX, Duration::MAX, Duration::MAX);
    let mut bytes = 0;
    // In turns, the best of each: the machine's other load slows one round, not one path.
    for _ in 0..ROUNDS {
        plain = plain.min(parse_all(parse_event_line));
        general = general.min(parse_all(parse_general));
        let events: Vec<AppEvent> = lines
            .iter()
            .take(LINES / 10)
            .map(|l| parse_event_line(l.as_bytes(), &limits).unwrap())
            .collect();
        let start = Instant::now();
        for event in events {
            let kind = event.name.clone();
            let stored = payload_event(&Payload::AppEvent(event), &kind, at).unwrap();
            bytes = stored.payload.len();
            std::hint::black_box(stored);
        }
        encode = encode.min(start.elapsed() * 10);
    }
    let per = |d: Duration| d.as_secs_f64() * 1e9 / LINES as f64;
    println!("events socket, per line of {} bytes:", lines[0].len());
    println!(
        "  parse, plain-line path   {:6.0} ns   general parser (serde_json) {:6.0} ns   ratio {:.2}",
        per(plain),
        per(general),
        per(plain) / per(general)
    );
    println!(
        "  encode as a stored event {:6.0} ns   ({bytes} bytes of postcard)",
        per(encode)
    );
}
