//! Many devices at once, and shutdown under load.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assent_testkit::collector::*;
use assent_wire::{encode, Encoding, PATH_BATCHES};
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::time::{Duration, Instant};

const DEVICES: u64 = 50;
const SECONDS: u64 = 30;

#[test]
fn fifty_devices_for_thirty_seconds_lose_nothing_and_duplicate_nothing() {
    let c = Collector::start();
    let cert = c.pki.client("fleet");
    let until = Instant::now() + Duration::from_secs(SECONDS);
    let threads: Vec<_> = (0..DEVICES)
        .map(|n| {
            let (addr, ca, cert) = (c.addr, c.pki.ca_file.clone(), cert.clone());
            std::thread::spawn(move || {
                let dev = device(1000 + n);
                let mut client = Client::connect(addr, &ca, Some(&cert), None).unwrap();
                let mut acked = 0u64;
                let mut round = 0u64;
                let mut answers = 0u64;
                while Instant::now() < until {
                    round += 1;
                    let encoding = if (round + n) % 2 == 0 {
                        Encoding::Postcard
                    } else {
                        Encoding::Json
                    };
                    let size = 1 + (round * 7 + n) % 20;
                    let batch = app_batch(&dev, 1, acked + 1, acked + size);
                    let reply = client.post_batch(&batch, encoding).unwrap();
                    if reply.status == 429 {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                    assert_eq!(reply.status, 200);
                    answers += 1;
                    let ack = assent_wire::decode_batch_ack(&reply.body, encoding).unwrap();
                    assert_eq!(ack.acked_through, acked + size);
                    // Every third round the same batch goes again (a lost ack), every
                    // fifth an overlapping one: neither may store anything twice.
                    if round % 3 == 0 {
                        assert_eq!(client.ack(&batch, encoding), acked + size);
                    }
                    if round % 5 == 0 && acked > 2 {
                        let overlap = app_batch(&dev, 1, acked - 2, acked + size);
                        assert_eq!(client.ack(&overlap, encoding), acked + size);
                    }
                    acked += size;
                }
                (dev, acked, answers)
            })
        })
        .collect();
    let sent: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();

    let db = rusqlite::Connection::open(&c.database).unwrap();
    let stored: BTreeMap<String, (u64, u64, u64, u64)> = db
        .prepare(
            "SELECT device, COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM events \
             GROUP BY device",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(stored.len(), DEVICES as usize);
    let mut total = 0;
    for (dev, acked, answers) in &sent {
        assert!(
            *answers > 10,
            "{dev}: only {answers} batches in {SECONDS} s"
        );
        assert_eq!(
            stored[dev.as_str()],
            (*acked, *acked, 1, *acked),
            "{dev}: (count, distinct seqs, min, max)"
        );
        total += acked;
    }
    // The export agrees with the database for a sample device.
    let (dev, acked, _) = &sent[0];
    assert_eq!(c.event_seqs(dev), (1..=*acked).collect::<Vec<u64>>());
    assert!(total > 0);
}

#[test]
fn sigterm_lets_requests_in_flight_finish_then_exits_0() {
    let mut c = Collector::start();
    let cert = c.pki.client("fleet");
    // Five requests in flight: headers and half of each body sent.
    let mut in_flight: Vec<_> = (0..5)
        .map(|n| {
            let dev = device(500 + n);
            let body = encode(&app_batch(&dev, 1, 1, 40), Encoding::Json).unwrap();
            let mut raw = c.raw_tls(Some(&cert));
            let head = format!(
                "POST {PATH_BATCHES} HTTP/1.1\r\nHost: localhost\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            raw.write(head.as_bytes()).unwrap();
            raw.write(&body[..body.len() / 2]).unwrap();
            (dev, body, raw)
        })
        .collect();
    // An idle kept-alive connection is closed by the shutdown.
    let mut idle = c.mtls_client();
    assert_eq!(
        idle.ack(&app_batch(&device(600), 1, 1, 1), Encoding::Postcard),
        1
    );

    std::thread::sleep(Duration::from_millis(300));
    c.sigterm();
    // The listener closes: new connections are refused.
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(c.addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        c.is_running(),
        "exited with requests in flight:\n{}",
        c.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    for (_, body, raw) in &mut in_flight {
        raw.write(&body[body.len() / 2..]).unwrap();
    }
    for (_, _, raw) in &mut in_flight {
        assert_eq!(raw.read_status(), Some(200));
    }
    let status = c.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", c.log());
    assert!(idle
        .post_batch(&app_batch(&device(600), 1, 2, 2), Encoding::Postcard)
        .is_err());
    for (dev, _, _) in &in_flight {
        assert_eq!(c.event_seqs(dev), (1..=40).collect::<Vec<u64>>());
    }
    let log = c.log();
    assert!(log.contains("SIGTERM") || log.contains("Term"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}
