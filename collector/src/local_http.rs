//! HTTP/1.1 listeners for operators (metrics, console): an accept loop that serves each
//! connection with hyper on the server's executor, over TLS when the listener has a
//! certificate (`tls_cert_file`, `tls_key_file`), else plain.
//!
//! These listeners default to loopback and are meant for a monitoring system or an
//! operator's browser (through an SSH tunnel when plain); they never share the devices'
//! listener or credentials. Each connection costs one task and hyper's buffers; there are
//! at most [`MAX_CONNECTIONS`] at once, with the same header timeout as the device API.

use futures_rustls::TlsAcceptor;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use smol::net::TcpListener;
use smol::Executor;
use smol_hyper::rt::{FuturesIo, SmolTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Most operator connections open at once per listener.
pub const MAX_CONNECTIONS: usize = 64;

/// A future answering one request.
pub type Answer = Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>;

/// What a listener does with each request.
pub type Handler = Arc<dyn Fn(Request<Incoming>, SocketAddr) -> Answer + Send + Sync>;

/// Binds `listen`; the error names what the listener is for.
pub async fn bind(listen: SocketAddr, what: &str) -> Result<TcpListener, String> {
    TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen} for {what}: {e}"))
}

/// Serves `listener` forever (until the executor is dropped); with `tls`, each
/// connection's handshake must finish within `header_timeout`.
pub async fn serve(
    ex: Arc<Executor<'static>>,
    listener: TcpListener,
    handler: Handler,
    header_timeout: Duration,
    tls: Option<TlsAcceptor>,
) {
    let slots = Arc::new(smol::lock::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = slots.acquire_arc().await;
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                log::warn!("accept failed: {e}");
                smol::Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handler = handler.clone();
        let tls = tls.clone();
        ex.spawn(async move {
            match tls {
                Some(acceptor) => {
                    let handshake =
                        smol::future::or(async { Some(acceptor.accept(stream).await) }, async {
                            smol::Timer::after(header_timeout).await;
                            None
                        });
                    match handshake.await {
                        Some(Ok(stream)) => {
                            connection(FuturesIo::new(stream), handler, peer, header_timeout).await;
                        }
                        Some(Err(e)) => log::debug!("{peer}: operator tls handshake failed: {e}"),
                        None => log::debug!("{peer}: operator tls handshake timed out"),
                    }
                }
                None => connection(FuturesIo::new(stream), handler, peer, header_timeout).await,
            }
            drop(permit);
        })
        .detach();
    }
}

async fn connection<I>(io: I, handler: Handler, peer: SocketAddr, header_timeout: Duration)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let answer = handler(req, peer);
        async move { Ok::<_, Infallible>(answer.await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(SmolTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(crate::server::MAX_HEADER_BUFFER_BYTES);
    if let Err(e) = builder.serve_connection(io, service).await {
        log::debug!("{peer}: operator connection ended: {e}");
    }
}
