//! The operators' side of the collector: the metrics listener and the web console.
//!
//! The console serves read-only HTML pages on `[console] listen` (loopback by default):
//! the fleet overview (`/`) and a page per device (`/devices/<pseudonym>`), with charts
//! drawn here as SVG ([`svg`]), a strict Content-Security-Policy (no script at all, styles
//! and images from the console only) and nothing fetched from elsewhere. Operators sign in
//! with HTTP Basic (name and token from `[console] operators_file`, the devices'
//! tokens-file format; a device's token is never accepted here) or a bearer token.
//!
//! The one action, erasing a device's data, is a POST with a CSRF token (an HMAC of the
//! operator and the device under a key made at start-up), refused from another origin,
//! and a confirmation step where the operator types the pseudonym. It goes through the
//! writer queue to [`crate::storage::Storage::erase_by_operator`], which logs it with
//! the operator's name. No GET changes anything.
//!
//! Reads run on a blocking thread ([`smol::unblock`]) against the backend's
//! [`queries::ConsoleQueries`], one request at a time (a mutex), so the console can never
//! take more than one database connection.

pub mod consent_rollup;
pub mod html;
pub mod pages;
pub mod pg;
pub mod queries;
pub mod sqlite;
pub mod svg;

use crate::auth::{Principal, Tokens};
use crate::config::Config;
use crate::local_http::{self, Handler};
use crate::server::{now_ms, Eraser, ServerError};
use assent_platform::Category;
use assent_wire::{ErasureRequest, Pseudonym, PROTOCOL_VERSION};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use queries::{ConsoleQueries, DEVICE_LIST_LIMIT};
use ring::hmac;
use smol::Executor;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The console's Content-Security-Policy: no script, nothing from elsewhere.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The largest form body accepted.
const MAX_FORM_BYTES: usize = 4096;

/// Loads the metrics token file and the operators file, as `check-config` does.
pub fn check_files(config: &Config) -> assent_confcheck::Diagnostics {
    let mut all = assent_confcheck::Diagnostics::default();
    if let Some(path) = config
        .operator
        .metrics
        .as_ref()
        .and_then(|m| m.token_file.as_ref())
    {
        if let Err(d) = crate::metrics::load_token(path) {
            all.extend(d);
        }
    }
    if let Some(c) = &config.operator.console {
        if let Err(d) = Tokens::load(&c.operators_file) {
            all.extend(d);
        }
    }
    for tls in [
        config
            .operator
            .metrics
            .as_ref()
            .and_then(|m| m.tls.as_ref()),
        config
            .operator
            .console
            .as_ref()
            .and_then(|c| c.tls.as_ref()),
    ]
    .into_iter()
    .flatten()
    {
        if let Err(d) = crate::tls::operator_server_config(tls) {
            all.extend(d);
        }
    }
    all
}

/// The TLS acceptor of an operator listener, when it has a certificate.
fn acceptor(
    tls: Option<&crate::config::OperatorTls>,
) -> Result<Option<futures_rustls::TlsAcceptor>, ServerError> {
    tls.map(|t| {
        crate::tls::operator_server_config(t)
            .map(futures_rustls::TlsAcceptor::from)
            .map_err(ServerError::Config)
    })
    .transpose()
}

/// `http` or `https`, for the log line saying where a listener is.
fn scheme(tls: &Option<futures_rustls::TlsAcceptor>) -> &'static str {
    if tls.is_some() {
        "https"
    } else {
        "http"
    }
}

/// The operators' listeners as configured, loaded but not yet bound.
pub struct OperatorListeners {
    /// (listen, bearer token, TLS).
    metrics: Option<(
        std::net::SocketAddr,
        Option<String>,
        Option<futures_rustls::TlsAcceptor>,
    )>,
    console: Option<ConsoleSetup>,
    header_timeout: Duration,
}

impl std::fmt::Debug for OperatorListeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorListeners")
            .field("metrics", &self.metrics.as_ref().map(|m| m.0))
            .field("console", &self.console.as_ref().map(|c| c.listen))
            .finish()
    }
}

struct ConsoleSetup {
    listen: std::net::SocketAddr,
    tls: Option<futures_rustls::TlsAcceptor>,
    operators: Tokens,
    queries: Box<dyn ConsoleQueries>,
}

impl OperatorListeners {
    /// Loads the metrics token and the operators file; `queries` is the backend's, needed
    /// when `[console]` is configured.
    pub fn load(
        config: &Config,
        queries: Option<Box<dyn ConsoleQueries>>,
    ) -> Result<OperatorListeners, ServerError> {
        let metrics = match &config.operator.metrics {
            Some(m) => {
                let token = match &m.token_file {
                    Some(path) => {
                        Some(crate::metrics::load_token(path).map_err(ServerError::Config)?)
                    }
                    None => None,
                };
                Some((m.listen, token, acceptor(m.tls.as_ref())?))
            }
            None => None,
        };
        let console = match (&config.operator.console, queries) {
            (Some(c), Some(queries)) => Some(ConsoleSetup {
                listen: c.listen,
                tls: acceptor(c.tls.as_ref())?,
                operators: Tokens::load(&c.operators_file).map_err(ServerError::Config)?,
                queries,
            }),
            (Some(_), None) => {
                return Err(ServerError::Io(
                    "[console] is configured but this database backend has no console queries"
                        .into(),
                ))
            }
            (None, _) => None,
        };
        Ok(OperatorListeners {
            metrics,
            console,
            header_timeout: Duration::from_secs(config.limits.header_timeout_seconds),
        })
    }

    /// Binds the configured listeners and serves them on `ex`.
    pub async fn spawn(
        self,
        ex: &Arc<Executor<'static>>,
        eraser: Eraser,
    ) -> Result<(), ServerError> {
        if let Some((listen, token, tls)) = self.metrics {
            let listener = local_http::bind(listen, "metrics")
                .await
                .map_err(ServerError::Io)?;
            let local = listener
                .local_addr()
                .map_err(|e| ServerError::Io(e.to_string()))?;
            log::info!("metrics at {}://{local}/metrics", scheme(&tls));
            ex.spawn(local_http::serve(
                ex.clone(),
                listener,
                crate::metrics::handler(token),
                self.header_timeout,
                tls,
            ))
            .detach();
        }
        if let Some(setup) = self.console {
            let listener = local_http::bind(setup.listen, "the console")
                .await
                .map_err(ServerError::Io)?;
            let local = listener
                .local_addr()
                .map_err(|e| ServerError::Io(e.to_string()))?;
            log::info!("console at {}://{local}/", scheme(&setup.tls));
            let console = Arc::new(Console::new(
                setup.operators,
                setup.queries,
                eraser,
                scheme(&setup.tls),
            )?);
            ex.spawn(local_http::serve(
                ex.clone(),
                listener,
                handler(console),
                self.header_timeout,
                setup.tls,
            ))
            .detach();
        }
        Ok(())
    }
}

struct Console {
    /// `http` or `https`: the scheme of this console's own origin.
    scheme: &'static str,
    operators: Tokens,
    queries: Arc<Mutex<Box<dyn ConsoleQueries>>>,
    eraser: Eraser,
    csrf_key: hmac::Key,
}

impl Console {
    fn new(
        operators: Tokens,
        queries: Box<dyn ConsoleQueries>,
        eraser: Eraser,
        scheme: &'static str,
    ) -> Result<Console, ServerError> {
        let rng = ring::rand::SystemRandom::new();
        let csrf_key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .map_err(|_| ServerError::Io("cannot make the console's csrf key".into()))?;
        Ok(Console {
            operators,
            queries: Arc::new(Mutex::new(queries)),
            eraser,
            csrf_key,
            scheme,
        })
    }

    /// The operator a request is from: Basic `name:token` whose token is that name's,
    /// or a bearer token; never a device's token.
    fn operator(&self, req: &Request<Incoming>) -> Option<String> {
        let value = req.headers().get(header::AUTHORIZATION)?.as_bytes();
        let (claimed, principal) = match value.strip_prefix(b"Basic ") {
            Some(encoded) => {
                let decoded = base64_decode(encoded.trim_ascii())?;
                let text = String::from_utf8(decoded).ok()?;
                let (name, token) = text.split_once(':')?;
                let mut bearer = b"Bearer ".to_vec();
                bearer.extend_from_slice(token.as_bytes());
                (Some(name.to_string()), self.operators.check(Some(&bearer)))
            }
            None => (None, self.operators.check(Some(value))),
        };
        match principal? {
            Principal::Fleet(label) if claimed.as_ref().is_none_or(|c| *c == label) => Some(label),
            _ => None,
        }
    }

    fn csrf(&self, operator: &str, device: &Pseudonym) -> String {
        let tag = hmac::sign(&self.csrf_key, csrf_message(operator, device).as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn csrf_ok(&self, operator: &str, device: &Pseudonym, token: &str) -> bool {
        let Some(bytes) = hex_decode(token) else {
            return false;
        };
        hmac::verify(
            &self.csrf_key,
            csrf_message(operator, device).as_bytes(),
            &bytes,
        )
        .is_ok()
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn ConsoleQueries) -> Result<T, crate::storage::StorageError>
            + Send
            + 'static,
    ) -> Result<T, String> {
        let queries = self.queries.clone();
        smol::unblock(move || {
            let mut q = queries
                .lock()
                .map_err(|_| "the console's database connection is unusable".to_string())?;
            f(q.as_mut()).map_err(|e| e.to_string())
        })
        .await
    }
}

fn csrf_message(operator: &str, device: &Pseudonym) -> String {
    format!("erase\n{operator}\n{device}")
}

fn handler(console: Arc<Console>) -> Handler {
    Arc::new(move |req, peer| {
        let console = console.clone();
        Box::pin(async move {
            let (status, content_type, body, extra) = route(&console, req).await;
            log::debug!("{peer}: console {}", status.as_u16());
            respond(status, content_type, body, extra)
        })
    })
}

type Extra = Vec<(header::HeaderName, HeaderValue)>;
type Answer = (StatusCode, &'static str, String, Extra);

const HTML: &str = "text/html; charset=utf-8";

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: String,
    extra: Extra,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for (name, value) in extra {
        h.insert(name, value);
    }
    response
}

fn text(status: StatusCode, message: &str) -> Answer {
    (
        status,
        "text/plain; charset=utf-8",
        format!("{message}\n"),
        Vec::new(),
    )
}

async fn route(console: &Console, req: Request<Incoming>) -> Answer {
    let path = req.uri().path().to_string();
    // Static files need no sign-in: they hold nothing, and the browser asks for them
    // without credentials on some paths.
    match (req.method(), path.as_str()) {
        (&Method::GET, "/static/console.css") => {
            return (
                StatusCode::OK,
                "text/css; charset=utf-8",
                html::STYLESHEET.into(),
                Vec::new(),
            )
        }
        (&Method::GET, "/static/icon.svg" | "/favicon.ico") => {
            return (
                StatusCode::OK,
                "image/svg+xml",
                html::ICON.into(),
                Vec::new(),
            )
        }
        _ => {}
    }
    let Some(operator) = console.operator(&req) else {
        let mut answer = text(
            StatusCode::UNAUTHORIZED,
            "sign in with your operator name and token",
        );
        answer.3.push((
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"assent console\", charset=\"UTF-8\""),
        ));
        return answer;
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (req.method(), segments.as_slice()) {
        (&Method::GET, [""]) => overview(console, &operator).await,
        (&Method::GET, ["device"]) => {
            // The header's search form: `/device?pseudonym=...` goes to the device page.
            let query = req.uri().query().unwrap_or("");
            let wanted = form_field(query, "pseudonym").unwrap_or_default();
            match Pseudonym::parse(wanted.trim()) {
                Ok(p) => (
                    StatusCode::SEE_OTHER,
                    HTML,
                    String::new(),
                    vec![(header::LOCATION, location(&format!("/devices/{p}")))],
                ),
                Err(_) => (
                    StatusCode::NOT_FOUND,
                    HTML,
                    pages::problem(
                        "No such device",
                        "that is not a device pseudonym",
                        &operator,
                    ),
                    Vec::new(),
                ),
            }
        }
        (&Method::GET, ["devices", p]) => match Pseudonym::parse(p) {
            Ok(device) => {
                let notice = req
                    .uri()
                    .query()
                    .and_then(|q| form_field(q, "erased"))
                    .and_then(|n| n.parse::<u64>().ok())
                    .map(|n| format!("Erasure committed: {n} events deleted."));
                device_page(console, &operator, device, notice).await
            }
            Err(_) => not_found(&operator),
        },
        (&Method::POST, ["devices", p, "erase"]) => match Pseudonym::parse(p) {
            Ok(device) => erase(console, &operator, device, req).await,
            Err(_) => not_found(&operator),
        },
        (_, ["" | "device"] | ["devices", _]) => {
            let mut answer = text(StatusCode::METHOD_NOT_ALLOWED, "use GET");
            answer
                .3
                .push((header::ALLOW, HeaderValue::from_static("GET")));
            answer
        }
        (_, ["devices", _, "erase"]) => {
            let mut answer = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "use POST from the device page",
            );
            answer
                .3
                .push((header::ALLOW, HeaderValue::from_static("POST")));
            answer
        }
        _ => not_found(&operator),
    }
}

fn location(path: &str) -> HeaderValue {
    HeaderValue::from_str(path).unwrap_or(HeaderValue::from_static("/"))
}

fn not_found(operator: &str) -> Answer {
    (
        StatusCode::NOT_FOUND,
        HTML,
        pages::problem("Not found", "no such page", operator),
        Vec::new(),
    )
}

fn failed(operator: &str, e: &str) -> Answer {
    log::error!("console: {e}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        HTML,
        pages::problem(
            "Database error",
            "the database could not be read; see the log",
            operator,
        ),
        Vec::new(),
    )
}

/// The overview page for `operator` at `now_ms`, read through `q`: what `GET /` serves
/// (public for the bench).
pub fn render_overview(
    q: &mut dyn ConsoleQueries,
    now_ms: i64,
    operator: &str,
) -> Result<String, crate::storage::StorageError> {
    let today = now_ms.div_euclid(86_400_000);
    let since = (today - pages::OVERVIEW_DAYS + 1) * 86_400_000;
    let first_day = today - pages::OVERVIEW_DAYS + 1;
    let consent = consent_rollup::per_day(&q.consent_days(first_day, today)?, first_day, today);
    let overview = pages::Overview {
        today,
        totals: q.totals()?,
        devices_per_day: q.devices_per_day(since)?,
        events_per_day: q.events_per_day(since)?,
        consent,
        gaps: q.gaps_by_reason()?,
        erasures_per_day: q.erasures_per_day(since)?,
        erasures: q.erasures(None, 20)?,
    };
    Ok(pages::overview(&overview, operator))
}

/// The device's data as its page shows it, `None` when the collector never heard of it.
pub fn read_device(
    q: &mut dyn ConsoleQueries,
    d: &Pseudonym,
) -> Result<Option<pages::DevicePage>, crate::storage::StorageError> {
    let Some(row) = q.device(d)? else {
        return Ok(None);
    };
    Ok(Some(pages::DevicePage {
        row,
        held: q.categories_held(d)?,
        latest: q.latest_per_category(d)?,
        consent: q.consent_history(d, DEVICE_LIST_LIMIT)?,
        gaps: q.device_gaps(d, DEVICE_LIST_LIMIT)?,
        erasures: q.erasures(Some(d), DEVICE_LIST_LIMIT)?,
        device: d.clone(),
    }))
}

async fn overview(console: &Console, operator: &str) -> Answer {
    let now = now_ms();
    let name = operator.to_string();
    match console.read(move |q| render_overview(q, now, &name)).await {
        Ok(html) => (StatusCode::OK, HTML, html, Vec::new()),
        Err(e) => failed(operator, &e),
    }
}

async fn device_page(
    console: &Console,
    operator: &str,
    device: Pseudonym,
    notice: Option<String>,
) -> Answer {
    let d = device.clone();
    let result = console.read(move |q| read_device(q, &d)).await;
    match result {
        Ok(Some(page)) => {
            let csrf = console.csrf(operator, &device);
            (
                StatusCode::OK,
                HTML,
                pages::device(&page, operator, &csrf, notice.as_deref()),
                Vec::new(),
            )
        }
        Ok(None) => (
            StatusCode::NOT_FOUND,
            HTML,
            pages::problem(
                "No such device",
                "this collector holds nothing from that device",
                operator,
            ),
            Vec::new(),
        ),
        Err(e) => failed(operator, &e),
    }
}

/// Whether the request comes from the console's own pages, as far as the browser says:
/// `Sec-Fetch-Site` and `Origin`, when sent, must name this origin. (Pages are served
/// with `Referrer-Policy: same-origin`: under `no-referrer` a browser sends `Origin:
/// null` even for the console's own forms.)
fn same_origin(req: &Request<Incoming>, scheme: &str) -> bool {
    let h = req.headers();
    if let Some(site) = h.get("sec-fetch-site") {
        if site.as_bytes() != b"same-origin" {
            return false;
        }
    }
    if let Some(origin) = h.get(header::ORIGIN) {
        let host = h.get(header::HOST).map(|v| v.as_bytes()).unwrap_or(b"");
        let mut want = format!("{scheme}://").into_bytes();
        want.extend_from_slice(host);
        if origin.as_bytes() != want.as_slice() {
            return false;
        }
    }
    true
}

async fn erase(
    console: &Console,
    operator: &str,
    device: Pseudonym,
    req: Request<Incoming>,
) -> Answer {
    let refused = |message: &str| {
        (
            StatusCode::FORBIDDEN,
            HTML,
            pages::problem("Not erased", message, operator),
            Vec::new(),
        )
    };
    if !same_origin(&req, console.scheme) {
        return refused("the request did not come from the console's own page; nothing was erased");
    }
    let body = match read_form(req.into_body()).await {
        Ok(body) => body,
        Err(message) => {
            return (
                StatusCode::BAD_REQUEST,
                HTML,
                pages::problem("Not erased", &message, operator),
                Vec::new(),
            )
        }
    };
    let csrf = form_field(&body, "csrf").unwrap_or_default();
    if !console.csrf_ok(operator, &device, &csrf) {
        return refused(
            "the form's token is not valid for you and this device; reload the device page",
        );
    }
    let scope = form_field(&body, "scope").unwrap_or_else(|| "all".into());
    let categories = if scope == "all" {
        None
    } else {
        match Category::ALL.iter().find(|c| c.name() == scope) {
            Some(c) => Some(vec![*c]),
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    HTML,
                    pages::problem("Not erased", "unknown category", operator),
                    Vec::new(),
                )
            }
        }
    };
    let Some(confirmation) = form_field(&body, "confirm") else {
        // The first POST only asks for confirmation.
        let d = device.clone();
        let chosen = categories.clone();
        let held = console.read(move |q| q.categories_held(&d)).await;
        let events = match held {
            Ok(held) => held
                .iter()
                .filter(|h| {
                    chosen
                        .as_ref()
                        .is_none_or(|c| c.iter().any(|c| c.name() == h.category))
                })
                .map(|h| h.events)
                .sum(),
            Err(e) => return failed(operator, &e),
        };
        let token = console.csrf(operator, &device);
        return (
            StatusCode::OK,
            HTML,
            pages::confirm(&device, &scope, events, operator, &token),
            Vec::new(),
        );
    };
    if confirmation.trim() != device.as_str() {
        return (
            StatusCode::BAD_REQUEST,
            HTML,
            pages::problem(
                "Not erased",
                "the pseudonym typed does not match this device; nothing was erased",
                operator,
            ),
            Vec::new(),
        );
    }
    let request = ErasureRequest {
        version: PROTOCOL_VERSION,
        device: device.clone(),
        categories,
    };
    match console.eraser.erase(request, operator.to_string()).await {
        Ok(n) => (
            StatusCode::SEE_OTHER,
            HTML,
            String::new(),
            vec![(
                header::LOCATION,
                location(&format!("/devices/{device}?erased={n}")),
            )],
        ),
        Err(e) => failed(operator, &e),
    }
}

async fn read_form(mut body: Incoming) -> Result<String, String> {
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("cannot read the form: {e}"))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > MAX_FORM_BYTES {
                return Err(format!("form larger than {MAX_FORM_BYTES} bytes"));
            }
            bytes.extend_from_slice(&data);
        }
    }
    String::from_utf8(bytes).map_err(|_| "form is not UTF-8".to_string())
}

/// The value of `name` in an `application/x-www-form-urlencoded` string.
fn form_field(form: &str, name: &str) -> Option<String> {
    form.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k)? == name)
            .then(|| percent_decode(v))
            .flatten()
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Standard base64 (with or without padding), for the Basic header.
fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let trimmed: &[u8] = match input {
        [rest @ .., b'=', b'='] => rest,
        [rest @ .., b'='] => rest,
        _ => input,
    };
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    for chunk in trimmed.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms_and_basic_credentials() {
        assert_eq!(
            form_field("csrf=ab&scope=app_events&confirm=x+y%21", "confirm").as_deref(),
            Some("x y!")
        );
        assert_eq!(form_field("a=1", "b"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(base64_decode(b"YWxpY2U6c2VjcmV0").unwrap(), b"alice:secret");
        assert_eq!(base64_decode(b"YQ==").unwrap(), b"a");
        assert_eq!(base64_decode(b"YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode(b"Y"), None);
        assert_eq!(hex_decode("0aff").unwrap(), vec![10, 255]);
    }
}
