//! A TLS-terminating fault proxy, as nginx would stand in front of a collector: it
//! accepts the agent's TLS connections with the test PKI's server certificate, forwards
//! each HTTP/1.1 request to a plain-HTTP collector, and injects faults on a schedule:
//! dropped connections (before and after the collector stored the batch), stalls,
//! truncated responses and 500/503/429 answers with Retry-After.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Close the connection without forwarding.
    DropBeforeForward,
    /// Forward (the collector stores the batch), then close without an answer.
    DropAfterForward,
    /// Answer this status with `Retry-After: 1` without forwarding.
    Status(u16),
    /// Forward, then send only half of the answer and close.
    Truncate,
    /// Wait before forwarding.
    Stall(Duration),
    /// Forward (the collector stores the batch), then answer 200 with this many bytes
    /// of garbage instead of the collector's acknowledgement.
    GarbageAfterForward(usize),
    /// Read the request and never answer; hold the connection until the client leaves.
    NeverAnswer,
    /// Forward (the collector stores the batch), then send the answer's head and one
    /// byte of its body per this interval.
    Trickle(Duration),
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    pub injected: Arc<Mutex<Vec<Fault>>>,
    /// When each request arrived (monotonic), for timing the agent's retries.
    pub arrivals: Arc<Mutex<Vec<Instant>>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Starts the proxy on a free port, forwarding to `upstream`.
    pub fn start(
        cert: &Path,
        key: &Path,
        upstream: SocketAddr,
        schedule: Vec<Fault>,
    ) -> FaultProxy {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let injected = Arc::new(Mutex::new(Vec::new()));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let schedule = Arc::new(schedule);
        {
            let (requests, injected, stop) = (requests.clone(), injected.clone(), stop.clone());
            let arrivals = arrivals.clone();
            std::thread::spawn(move || {
                for tcp in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(tcp) = tcp else { continue };
                    let (config, schedule) = (config.clone(), schedule.clone());
                    let (requests, injected) = (requests.clone(), injected.clone());
                    let arrivals = arrivals.clone();
                    std::thread::spawn(move || {
                        let conn = rustls::ServerConnection::new(config).unwrap();
                        let mut tls = rustls::StreamOwned::new(conn, tcp);
                        let _ = serve(
                            &mut tls, upstream, &schedule, &requests, &injected, &arrivals,
                        );
                    });
                }
            });
        }
        FaultProxy {
            addr,
            injected,
            arrivals,
            stop,
        }
    }

    pub fn faults_injected(&self) -> Vec<Fault> {
        self.injected.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(
    client: &mut impl ReadWrite,
    upstream: SocketAddr,
    schedule: &[Fault],
    requests: &AtomicUsize,
    injected: &Mutex<Vec<Fault>>,
    arrivals: &Mutex<Vec<Instant>>,
) -> std::io::Result<()> {
    loop {
        let Some(request) = read_message(client)? else {
            return Ok(());
        };
        arrivals.lock().unwrap().push(Instant::now());
        let n = requests.fetch_add(1, Ordering::SeqCst);
        let fault = schedule[n % schedule.len()];
        if fault != Fault::None {
            injected.lock().unwrap().push(fault);
        }
        match fault {
            Fault::DropBeforeForward => return Ok(()),
            Fault::Status(code) => {
                let body = br#"{"error":"injected by the fault proxy"}"#;
                let head = format!(
                    "HTTP/1.1 {code} Injected\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                client.write_all(head.as_bytes())?;
                client.write_all(body)?;
                client.flush()?;
                continue;
            }
            Fault::Stall(d) => std::thread::sleep(d),
            Fault::NeverAnswer => {
                let mut sink = [0u8; 512];
                while client.read(&mut sink)? > 0 {}
                return Ok(());
            }
            _ => {}
        }
        let mut up = TcpStream::connect(upstream)?;
        up.set_read_timeout(Some(Duration::from_secs(30)))?;
        up.write_all(&request)?;
        let Some(response) = read_message(&mut up)? else {
            return Ok(());
        };
        match fault {
            Fault::DropAfterForward => return Ok(()),
            Fault::Truncate => {
                client.write_all(&response[..response.len() / 2])?;
                client.flush()?;
                return Ok(());
            }
            Fault::GarbageAfterForward(n) => {
                let body: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(151) | 0x80).collect();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.assent.batch+postcard\r\nContent-Length: {n}\r\n\r\n"
                );
                client.write_all(head.as_bytes())?;
                client.write_all(&body)?;
                client.flush()?;
            }
            Fault::Trickle(interval) => {
                let head_end = response
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map_or(response.len(), |i| i + 4);
                client.write_all(&response[..head_end])?;
                client.flush()?;
                for byte in &response[head_end..] {
                    std::thread::sleep(interval);
                    client.write_all(std::slice::from_ref(byte))?;
                    client.flush()?;
                }
            }
            _ => {
                client.write_all(&response)?;
                client.flush()?;
            }
        }
    }
}

pub trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Reads one HTTP/1.1 message (head and a Content-Length body); `None` at EOF.
fn read_message(stream: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut data = Vec::new();
    let mut byte = [0u8; 1];
    while !data.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Ok(None);
        }
        data.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&data).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap_or(0));
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    data.extend_from_slice(&body);
    Ok(Some(data))
}
