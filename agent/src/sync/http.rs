//! A small HTTP/1.1 client over TLS for the collector: one connection, reused while it
//! stays open, with a timeout on every stage and a bound on the response body.

use futures_rustls::TlsConnector;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use rustls::pki_types::ServerName;
use smol::future::FutureExt;
use smol::net::TcpStream;
use smol_hyper::rt::FuturesIo;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

/// Request bodies at least this large are sent gzip-compressed: measured in
/// docs/protocol.md, gzip halves inventory batches and shrinks app-event batches
/// sevenfold, while for a single small event its header costs more than it saves.
pub const GZIP_THRESHOLD_BYTES: usize = 1024;

/// The largest response body read; anything longer is an error.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// How long each stage of a request may take.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub handshake: Duration,
    /// Sending the request and receiving the response head.
    pub request: Duration,
    /// Receiving the response body.
    pub response: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            handshake: Duration::from_secs(10),
            request: Duration::from_secs(30),
            response: Duration::from_secs(30),
        }
    }
}

/// An answer from the collector.
#[derive(Debug)]
pub struct Response {
    /// Bytes of the request body as sent (after compression).
    pub sent_bytes: u64,
    pub status: u16,
    pub content_type: Option<String>,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum TransportError {
    Resolve(String),
    Connect(std::io::Error),
    /// The TLS handshake failed: an untrusted or expired certificate, a wrong host name.
    Tls(std::io::Error),
    Timeout(&'static str),
    Http(String),
    BodyTooLarge,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Resolve(e) => write!(f, "cannot resolve the collector: {e}"),
            TransportError::Connect(e) => write!(f, "cannot connect: {e}"),
            TransportError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            TransportError::Timeout(stage) => write!(f, "timed out during {stage}"),
            TransportError::Http(e) => write!(f, "HTTP: {e}"),
            TransportError::BodyTooLarge => {
                write!(f, "response body larger than {MAX_RESPONSE_BYTES} bytes")
            }
        }
    }
}

/// hyper's side of one open connection: it reads and writes only while polled.
type Connection = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// The client for one collector.
pub struct HttpClient {
    host: String,
    port: u16,
    base_path: String,
    connector: TlsConnector,
    timeouts: Timeouts,
    open: Option<(SendRequest<Full<Bytes>>, Connection)>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HttpClient({}:{})", self.host, self.port)
    }
}

async fn within<T>(
    limit: Duration,
    stage: &'static str,
    fut: impl Future<Output = T>,
) -> Result<T, TransportError> {
    async { Ok(fut.await) }
        .or(async {
            smol::Timer::after(limit).await;
            Err(TransportError::Timeout(stage))
        })
        .await
}

impl HttpClient {
    pub fn new(
        host: &str,
        port: u16,
        base_path: &str,
        tls: Arc<rustls::ClientConfig>,
        timeouts: Timeouts,
    ) -> HttpClient {
        HttpClient {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            base_path: base_path.trim_end_matches('/').to_string(),
            connector: TlsConnector::from(tls),
            timeouts,
            open: None,
        }
    }

    /// Drops the connection, so the next request opens a new one.
    pub fn disconnect(&mut self) {
        self.open = None;
    }

    async fn connect(&mut self) -> Result<(SendRequest<Full<Bytes>>, Connection), TransportError> {
        let target = (self.host.clone(), self.port);
        let addrs = within(
            self.timeouts.connect,
            "name resolution",
            Self::resolve(target),
        )
        .await?
        .map_err(|e| TransportError::Resolve(e.to_string()))?;
        let mut last_error = None;
        let mut stream = None;
        for addr in addrs {
            match within(self.timeouts.connect, "connect", TcpStream::connect(addr)).await? {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        let tcp = match (stream, last_error) {
            (Some(s), _) => s,
            (None, Some(e)) => return Err(TransportError::Connect(e)),
            (None, None) => return Err(TransportError::Resolve("no address".to_string())),
        };
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(self.host.clone())
            .map_err(|e| TransportError::Resolve(format!("{}: {e}", self.host)))?;
        let tls = within(
            self.timeouts.handshake,
            "TLS handshake",
            self.connector.connect(name, tcp),
        )
        .await?
        .map_err(TransportError::Tls)?;
        let (sender, connection) = within(
            self.timeouts.handshake,
            "HTTP handshake",
            hyper::client::conn::http1::handshake(FuturesIo::new(tls)),
        )
        .await?
        .map_err(|e| TransportError::Http(e.to_string()))?;
        Ok((sender, Box::pin(connection)))
    }

    /// Resolves on a thread of its own that ends with the lookup. `getaddrinfo` can block for
    /// as long as the system resolver's timeouts and must hold up neither the executor nor
    /// the workers; `smol::net::resolve` would leave an idle `blocking` thread behind that
    /// wakes twice a second for the life of the daemon.
    async fn resolve(target: (String, u16)) -> std::io::Result<Vec<std::net::SocketAddr>> {
        use std::net::ToSocketAddrs;
        let (tx, rx) = smol::channel::bounded(1);
        std::thread::Builder::new()
            .name("assent-resolve".into())
            .spawn(move || {
                let _ = tx.send_blocking(target.to_socket_addrs().map(Iterator::collect));
            })?;
        rx.recv().await.unwrap_or_else(|_| {
            Err(std::io::Error::other(
                "the resolver thread ended without an answer",
            ))
        })
    }

    /// POSTs `body` to `path` under the collector URL's path.
    pub async fn post(
        &mut self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        bearer_token: Option<&str>,
    ) -> Result<Response, TransportError> {
        let reusable = match self.open.take() {
            // Between requests nothing polls the connection: one the collector has closed
            // since shows it now, and this request opens a new one instead of failing.
            Some((s, mut c)) if !s.is_closed() => match smol::future::poll_once(c.as_mut()).await {
                None => Some((s, c)),
                Some(end) => {
                    if let Err(e) = end {
                        log::debug!("collector connection closed: {e}");
                    }
                    None
                }
            },
            _ => None,
        };
        let (mut sender, connection) = match reusable {
            Some(open) => open,
            None => self.connect().await?,
        };
        let authority = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut request = hyper::Request::post(format!("{}{path}", self.base_path))
            .header(hyper::header::HOST, authority)
            .header(hyper::header::CONTENT_TYPE, content_type)
            .header(hyper::header::ACCEPT, content_type)
            .header(
                hyper::header::USER_AGENT,
                concat!("assent/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(token) = bearer_token {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = if body.len() >= GZIP_THRESHOLD_BYTES {
            request = request.header(hyper::header::CONTENT_ENCODING, "gzip");
            gzip(&body).map_err(|e| TransportError::Http(format!("compressing: {e}")))?
        } else {
            body
        };
        let sent_bytes = body.len() as u64;
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| TransportError::Http(e.to_string()))?;
        let timeouts = self.timeouts;
        let exchange = async {
            within(timeouts.request, "request", sender.ready())
                .await?
                .map_err(|e| TransportError::Http(e.to_string()))?;
            let response = within(timeouts.request, "request", sender.send_request(request))
                .await?
                .map_err(|e| TransportError::Http(e.to_string()))?;
            let status = response.status().as_u16();
            let header = |name: hyper::header::HeaderName| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let content_type = header(hyper::header::CONTENT_TYPE);
            let retry_after = header(hyper::header::RETRY_AFTER)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let keep_alive = !response
                .headers()
                .get(hyper::header::CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
            let collected = within(
                timeouts.response,
                "response body",
                Limited::new(response.into_body(), MAX_RESPONSE_BYTES).collect(),
            )
            .await?
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    TransportError::BodyTooLarge
                } else {
                    TransportError::Http(e.to_string())
                }
            })?;
            let response = Response {
                sent_bytes,
                status,
                content_type,
                retry_after,
                body: collected.to_bytes().to_vec(),
            };
            Ok::<_, TransportError>((response, keep_alive))
        };
        let mut connection = Some(connection);
        let (response, keep_alive) = with_connection(&mut connection, exchange).await?;
        if let (true, Some(connection)) = (keep_alive, connection) {
            self.open = Some((sender, connection));
        }
        Ok(response)
    }
}

/// Runs `exchange` (a request on the connection's `SendRequest`) while polling the
/// connection, which does the reading and writing. The connection has no task of its own:
/// one would need an executor beside the daemon's (smol's global one is one more thread,
/// with its stack, for the daemon's life). A connection that ends is dropped at once,
/// which fails a request still waiting on it; `connection` is then `None`.
async fn with_connection<T>(
    connection: &mut Option<Connection>,
    exchange: impl Future<Output = T>,
) -> T {
    let mut exchange = std::pin::pin!(exchange);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(value) = exchange.as_mut().poll(cx) {
            return Poll::Ready(value);
        }
        if let Some(open) = connection.as_mut() {
            if let Poll::Ready(end) = open.as_mut().poll(cx) {
                if let Err(e) = end {
                    log::debug!("collector connection closed: {e}");
                }
                *connection = None;
                return exchange.as_mut().poll(cx);
            }
        }
        Poll::Pending
    })
    .await
}

/// A gzip member (RFC 1952) around flate2's raw deflate. flate2's own `GzEncoder` brings
/// crc32fast, whose tables cost 24 KiB of flash on every device; `crc`'s one 1 KiB table
/// checksums one batch per sync fast enough.
fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    // Magic, deflate, no flags, no mtime, no extra flags, OS unknown.
    const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut out = Vec::with_capacity(bytes.len() / 2 + 18);
    out.extend_from_slice(&HEADER);
    let mut encoder = flate2::write::DeflateEncoder::new(out, flate2::Compression::default());
    encoder.write_all(bytes)?;
    let mut out = encoder.finish()?;
    out.extend_from_slice(&CRC32.checksum(bytes).to_le_bytes());
    // ISIZE is the input's length modulo 2^32.
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::gzip;
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| format!("{{\"seq\":{i},\"name\":\"event-{}\"}}\n", i % 97).into_bytes())
            .collect()
    }

    #[test]
    fn gzip_members_decode_with_flate2_and_the_gzip_tool() {
        for input in [Vec::new(), b"x".to_vec(), sample()] {
            let packed = gzip(&input).unwrap();
            // flate2's decoder checks the CRC-32 and the length in the trailer.
            let mut unpacked = Vec::new();
            flate2::read::GzDecoder::new(&packed[..])
                .read_to_end(&mut unpacked)
                .unwrap();
            assert_eq!(unpacked, input);

            let mut child = Command::new("gzip")
                .arg("-dc")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("gzip(1) must be installed");
            let mut stdin = child.stdin.take().unwrap();
            let writer = std::thread::spawn(move || stdin.write_all(&packed));
            let out = child.wait_with_output().unwrap();
            writer.join().unwrap().unwrap();
            assert!(out.status.success());
            assert_eq!(out.stdout, input);
        }
    }

    #[test]
    fn a_wrong_checksum_is_caught_by_the_decoder() {
        let mut packed = gzip(&sample()).unwrap();
        let at = packed.len() - 8;
        packed[at] ^= 1;
        let mut unpacked = Vec::new();
        assert!(flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut unpacked)
            .is_err());
    }

    /// A collector (or a proxy) may close a kept-alive connection between two requests.
    /// Nothing polls the connection between them; the next request must notice the close
    /// and open a new connection, not fail on the old one.
    #[test]
    fn a_connection_the_server_closed_between_requests_is_replaced() {
        use super::{HttpClient, Timeouts};
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use std::sync::Arc;

        let pki = tempfile::tempdir().unwrap();
        let made = Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scripts/make-certs.sh"
        ))
        .arg(pki.path())
        .status()
        .expect("scripts/make-certs.sh needs openssl");
        assert!(made.success());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(pki.path().join("server.pem"))
                .unwrap()
                .map(Result::unwrap)
                .collect();
        let key = PrivateKeyDer::from_pem_file(pki.path().join("server.key")).unwrap();
        let server_config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(pki.path().join("ca.pem")).unwrap() {
            roots.add(ca.unwrap()).unwrap();
        }
        let client_config = Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        );

        // Each connection gets one answer, kept alive as far as its headers say, and is
        // then closed by the server.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for _ in 0..2 {
                let (tcp, _) = listener.accept().unwrap();
                let connection = rustls::ServerConnection::new(server_config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(connection, tcp);
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\nhello") {
                    tls.read_exact(&mut byte).unwrap();
                    request.push(byte[0]);
                }
                tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .unwrap();
                tls.flush().unwrap();
                // After the client has its answer: the connection is idle when it closes.
                std::thread::sleep(std::time::Duration::from_millis(100));
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });

        let mut client =
            HttpClient::new("localhost", port, "/", client_config, Timeouts::default());
        smol::block_on(async {
            for attempt in 0..2 {
                let response = client
                    .post("/v1/test", "text/plain", b"hello".to_vec(), None)
                    .await
                    .unwrap_or_else(|e| panic!("request {attempt}: {e}"));
                assert_eq!((response.status, response.body), (200, b"ok".to_vec()));
                // The close reaches the client before its next request.
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
        });
        server.join().unwrap();
    }
}
