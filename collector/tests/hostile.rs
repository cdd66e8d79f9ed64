//! Clients that misbehave: garbage and truncated bodies, a huge Content-Length, one byte
//! per second, a thousand idle connections. The collector must stay up, keep serving
//! well-behaved clients, and keep its memory bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assent_testkit::collector::*;
use assent_wire::{Encoding, PATH_BATCHES};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const HEADER_TIMEOUT_SECONDS: u64 = 2;
const BODY_TIMEOUT_SECONDS: u64 = 3;

fn head(content_length: u64, content_type: &str) -> String {
    format!(
        "POST {PATH_BATCHES} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n\
         Content-Length: {content_length}\r\n\r\n"
    )
}

#[test]
fn hostile_clients_leave_the_collector_serving_others_with_bounded_memory() {
    let mut c = Collector::start_with(Options {
        limits: format!(
            "header_timeout_seconds = {HEADER_TIMEOUT_SECONDS}\n\
             body_timeout_seconds = {BODY_TIMEOUT_SECONDS}\nmax_body_bytes = 1048576\n\
             max_connections = 1100"
        ),
        ..Options::default()
    });
    let cert = c.pki.client("hostile");
    let dev = device(1);
    let mut warm_up = c.client(Some(&cert), None);
    assert_eq!(
        warm_up.ack(&app_batch(&dev, 1, 1, 10), Encoding::Postcard),
        10
    );
    let rss_before = c.vm_rss_kib();

    // A thousand connections that never say anything (not even a TLS hello).
    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(c.addr).unwrap())
        .collect();

    // Slow clients, in their own threads: one byte per second in the headers, and in
    // the body.
    let slow_head = {
        let (addr, ca, cert) = (c.addr, c.pki.ca_file.clone(), cert.clone());
        std::thread::spawn(move || {
            let mut raw = RawTls::connect(addr, &ca, Some(&cert));
            let started = Instant::now();
            let request = head(10, "application/json");
            for byte in request.as_bytes() {
                if raw.write(&[*byte]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            (raw.read_status(), started.elapsed())
        })
    };
    let slow_body = {
        let (addr, ca, cert) = (c.addr, c.pki.ca_file.clone(), cert.clone());
        std::thread::spawn(move || {
            let mut raw = RawTls::connect(addr, &ca, Some(&cert));
            let started = Instant::now();
            raw.write(head(100, "application/json").as_bytes()).unwrap();
            let mut trickled = 0;
            for _ in 0..100 {
                // Once the server has answered, more bytes would only reset the
                // connection and lose the answer.
                if raw.server_spoke() || raw.write(b" ").is_err() {
                    break;
                }
                trickled += 1;
                std::thread::sleep(Duration::from_secs(1));
                if started.elapsed() > Duration::from_secs(BODY_TIMEOUT_SECONDS + 2) {
                    break;
                }
            }
            (raw.read_status(), started.elapsed(), trickled)
        })
    };

    // Garbage: 400 with the reason, connection kept.
    let mut other = c.client(Some(&cert), None);
    let reply = other
        .request(
            "POST",
            PATH_BATCHES,
            "application/vnd.assent.batch+postcard",
            vec![0x01; 300],
        )
        .unwrap();
    assert_eq!(reply.status, 400);
    let reply = other
        .request(
            "POST",
            PATH_BATCHES,
            "application/json",
            b"\x00\xff{{{".to_vec(),
        )
        .unwrap();
    assert_eq!(reply.status, 400);

    // Truncated: the client promises 1000 bytes, sends 10 and closes its side.
    let mut raw = c.raw_tls(Some(&cert));
    raw.write(head(1000, "application/json").as_bytes())
        .unwrap();
    raw.write(b"{\"version\"").unwrap();
    raw.stream.conn.send_close_notify();
    raw.stream.flush().unwrap();
    assert_eq!(raw.read_status(), Some(400));

    // A huge Content-Length is refused before any body is sent.
    let mut raw = c.raw_tls(Some(&cert));
    raw.write(head(1 << 40, "application/json").as_bytes())
        .unwrap();
    assert_eq!(raw.read_status(), Some(413));
    // And a chunked body that grows past the limit is cut off once it passes it.
    let mut raw = c.raw_tls(Some(&cert));
    raw.write(
        format!(
            "POST {PATH_BATCHES} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
    let mut refused_mid_body = false;
    for _ in 0..1024 {
        if raw.write(chunk.as_bytes()).is_err() {
            refused_mid_body = true;
            break;
        }
    }
    // The server answers 413 and closes with our data unread, so the kernel resets the
    // connection and the answer is usually lost to us: check that writing was cut off
    // well before 64 MiB went through, and that the server said why.
    assert!(
        refused_mid_body,
        "64 MiB of chunks accepted over a 1 MiB limit"
    );
    let _ = raw.read_status();
    let log = c.log();
    assert!(
        log.contains(": 413 body larger than 1048576 bytes"),
        "{log}"
    );

    // Meanwhile well-behaved clients are served, two requests on one kept-alive
    // connection.
    let mut fresh = c.client(Some(&cert), None);
    assert_eq!(fresh.ack(&app_batch(&dev, 1, 11, 20), Encoding::Json), 20);
    assert_eq!(
        fresh.ack(&app_batch(&dev, 1, 21, 30), Encoding::Postcard),
        30
    );
    let rss_during = c.vm_rss_kib();

    // The idle connections are closed by the server once the handshake time is up.
    let mut first = idle.into_iter().next().unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(HEADER_TIMEOUT_SECONDS + 5)))
        .unwrap();
    let mut buf = [0u8; 16];
    let started = Instant::now();
    assert_eq!(
        first.read(&mut buf).unwrap(),
        0,
        "idle connection not closed"
    );
    assert!(started.elapsed() < Duration::from_secs(HEADER_TIMEOUT_SECONDS + 3));

    let (status, took) = slow_head.join().unwrap();
    // hyper closes a connection whose headers do not arrive in time without answering.
    assert_eq!(status, None);
    assert!(
        took < Duration::from_secs(HEADER_TIMEOUT_SECONDS + 4),
        "{took:?}"
    );
    let (status, took, trickled) = slow_body.join().unwrap();
    assert_eq!(status, Some(408));
    // The body kept trickling until the deadline: the cut-off is a deadline for the
    // whole body, not an idle timeout a byte a second would keep resetting.
    assert!(
        trickled >= BODY_TIMEOUT_SECONDS - 1,
        "{trickled} bytes trickled"
    );
    assert!(
        took < Duration::from_secs(BODY_TIMEOUT_SECONDS + 4),
        "{took:?}"
    );

    assert!(c.is_running());
    let mut after = c.client(Some(&cert), None);
    assert_eq!(
        after.ack(&app_batch(&dev, 1, 31, 40), Encoding::Postcard),
        40
    );
    assert_eq!(c.event_seqs(&dev), (1..=40).collect::<Vec<u64>>());
    let rss_after = c.vm_rss_kib();
    // A memory bound, generous: 1,000 connections must not cost more than 64 MiB.
    let bound = rss_before + 64 * 1024;
    assert!(
        rss_during < bound && rss_after < bound,
        "VmRSS before {rss_before} KiB, during {rss_during} KiB, after {rss_after} KiB"
    );
}
