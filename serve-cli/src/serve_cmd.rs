//! `twotower serve`: recommendations over HTTP (axum on hyper). Requests read one snapshot of model and
//! index each; a watcher thread follows the index directory's CURRENT and swaps a fully loaded new
//! version in atomically, so a rebuild never fails a request or shows a half-loaded index. Handlers
//! parse and render only: the recommender's errors carry their HTTP status. Every error body the
//! routes and middleware make is JSON; the HTTP layer's own answers to requests that are not valid
//! HTTP (400, 414, 431 before any route sees them) have none, as the README lists. A request's body
//! is read within `--body-timeout-ms`, and at most `--max-connections` connections are served.

use crate::engine_args::EngineArgs;
use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Args;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_http::limit::RequestBodyLimitLayer;
use twotower_cli::recommender::{Answer, Limits, Poll, QueryOpts, RecError, Recommender, ReloadGate};

/// The widest search an HTTP request may ask for.
const MAX_EF: usize = 10_000;

/// Longest request target accepted (414 beyond).
const MAX_URI: usize = 8 * 1024;
/// Largest request head accepted, all header lines together (431 beyond).
const MAX_HEADERS_BYTES: usize = 32 * 1024;
/// Most header lines accepted (431 beyond).
const MAX_HEADERS: usize = 100;

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Address to listen on. Loopback by default: put a reverse proxy in front, or pass
    /// `--addr 0.0.0.0:8080`, to expose it.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// How often to look for a new index version (ms).
    #[arg(long, default_value_t = 500)]
    pub watch_ms: u64,
    /// Default HNSW search breadth.
    #[arg(long, default_value_t = 64)]
    pub ef: usize,
    /// Largest k a request may ask for.
    #[arg(long, default_value_t = 1000)]
    pub max_k: usize,
    /// Largest request body, bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_body: usize,
    /// HTTP worker threads (default: all cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// A connection that has not sent a complete request head this long after it began one is
    /// closed (ms): a client that stalls mid-request cannot hold the server.
    #[arg(long, default_value_t = 5000)]
    pub header_timeout_ms: u64,
    /// On SIGTERM or Ctrl-C, in-flight requests get this long to finish (ms); connections still open
    /// after it are closed.
    #[arg(long, default_value_t = 5000)]
    pub shutdown_timeout_ms: u64,
    /// A request body must arrive whole within this long of its head (ms), or the request is
    /// answered 408 and its connection closed: a client that stalls mid-body cannot hold the server.
    #[arg(long, default_value_t = 10_000)]
    pub body_timeout_ms: u64,
    /// Most connections served at once. Beyond it a connection gets 503 (`/healthz` still answers
    /// 200) and is closed. Default: the open-file limit (`ulimit -n`) less a reserve for the index's
    /// files and those 503 answers, so the server never runs out of file descriptors.
    #[arg(long)]
    pub max_connections: Option<usize>,
}

/// Connections answered 503 (or `/healthz`) at once beyond `--max-connections`; more are closed
/// unanswered.
const OVERFLOW_CONNECTIONS: usize = 64;

/// An over-the-bound connection must send its request head within this long, and gets as long
/// again to take its answer and hang up: a flood cannot hold the answers' places (`/healthz`'s).
const OVERFLOW_DEADLINE: Duration = Duration::from_secs(2);

/// How long a closing connection waits for the client to stop sending (see `linger_close`); the
/// connection keeps its place in `--max-connections` meanwhile.
const LINGER: Duration = Duration::from_secs(10);

/// `--max-connections` by default: the soft open-file limit less a reserve for the process's other
/// files and the overflow answers, at least 16.
fn default_max_connections() -> usize {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0
            && lim.rlim_cur != libc::RLIM_INFINITY
        {
            let n = usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX);
            return n.saturating_sub(128 + OVERFLOW_CONNECTIONS).clamp(16, 1 << 16);
        }
    }
    1 << 16
}

/// Prometheus instruments.
struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    index_version: IntGauge,
    catalog_items: IntGauge,
    reloads: IntCounter,
    reload_failures: IntCounter,
    watch_ticks: IntCounter,
    backend: prometheus::IntGaugeVec,
}

impl Metrics {
    fn new() -> Result<Metrics> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("twotower_requests_total", "HTTP requests by route and status"),
            &["route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("twotower_request_seconds", "Request latency by route").buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            &["route"],
        )?;
        let index_version = IntGauge::new("twotower_index_version", "Index version being served")?;
        let catalog_items = IntGauge::new("twotower_catalog_items", "Rows in the served index")?;
        let reloads = IntCounter::new("twotower_index_reloads_total", "Index versions swapped in")?;
        let reload_failures = IntCounter::new(
            "twotower_index_reload_failures_total",
            "New index versions that failed to load",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(index_version.clone()))?;
        registry.register(Box::new(catalog_items.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        let watch_ticks = IntCounter::new(
            "twotower_index_watch_ticks_total",
            "Times the watcher looked at the index directory",
        )?;
        let backend = prometheus::IntGaugeVec::new(
            Opts::new(
                "twotower_backend_info",
                "The search backend being served (value 1)",
            ),
            &["kind", "path", "version"],
        )?;
        registry.register(Box::new(reload_failures.clone()))?;
        registry.register(Box::new(watch_ticks.clone()))?;
        registry.register(Box::new(backend.clone()))?;
        Ok(Metrics {
            watch_ticks,
            backend,
            registry,
            requests,
            latency,
            index_version,
            catalog_items,
            reloads,
            reload_failures,
        })
    }

    fn observe_index(&self, engine: &Recommender) {
        let b = engine.backend();
        self.index_version.set(b.version.0 as i64);
        self.catalog_items.set(b.items as i64);
        self.backend.reset();
        self.backend
            .with_label_values(&[b.kind, b.path.as_str(), &b.version.to_string()])
            .set(1);
    }
}

struct App {
    engine: Recommender,
    metrics: Metrics,
    ef: usize,
    max_k: usize,
    ready: AtomicBool,
}

/// An HTTP error with a JSON body `{"error": …}`.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

impl From<RecError> for ApiError {
    fn from(e: RecError) -> ApiError {
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError(status, e.to_string())
    }
}

/// The query parameters of the GET routes, parsed by axum's `Query` (a value of the wrong type is a
/// 400 naming the parameter; unknown parameters are ignored).
#[derive(Debug, Deserialize)]
struct RecParams {
    k: Option<usize>,
    ef: Option<usize>,
    exclude_seen: Option<bool>,
    genre: Option<String>,
    fallback: Option<bool>,
}

impl App {
    fn opts(
        &self,
        k: Option<usize>,
        ef: Option<usize>,
        exclude_seen: Option<bool>,
        genre: Option<String>,
    ) -> QueryOpts {
        // Checked once, by the recommender, against these limits.
        QueryOpts {
            k: k.unwrap_or(10),
            ef: ef.unwrap_or(self.ef),
            exact: false,
            exclude_seen: exclude_seen.unwrap_or(true),
            genre,
            fallback: false,
            limits: Limits {
                max_k: self.max_k,
                max_ef: MAX_EF,
            },
        }
    }

    /// Times and counts a handler's outcome.
    fn finish(&self, route: &str, started: Instant, r: Result<Response, ApiError>) -> Response {
        let resp = r.unwrap_or_else(IntoResponse::into_response);
        self.metrics
            .requests
            .with_label_values(&[route, resp.status().as_str()])
            .inc();
        self.metrics
            .latency
            .with_label_values(&[route])
            .observe(started.elapsed().as_secs_f64());
        resp
    }
}

/// Runs a handler's work where it may block (a Milvus search waits on the network): the runtime moves
/// its other tasks off this worker meanwhile.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

fn answer_json(ans: &Answer) -> Response {
    Json(ans).into_response()
}

async fn user_recs(
    State(app): State<Arc<App>>,
    UrlPath(id): UrlPath<String>,
    Query(p): Query<RecParams>,
) -> Response {
    let t = Instant::now();
    let r = blocking(|| {
        let mut opts = app.opts(p.k, p.ef, p.exclude_seen, p.genre);
        opts.fallback = p.fallback.unwrap_or(false);
        Ok(answer_json(&app.engine.recommend_user(&id, &opts)?))
    });
    app.finish("user_recommendations", t, r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecentBody {
    recent_items: Vec<String>,
    k: Option<usize>,
    ef: Option<usize>,
    exclude_seen: Option<bool>,
    genre: Option<String>,
}

async fn recent_recs(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let t = Instant::now();
    let r = blocking(|| {
        let b: RecentBody =
            serde_json::from_slice(&body).map_err(|e| bad(format!("request body is not valid: {e}")))?;
        if b.recent_items.len() > 1000 {
            return Err(bad("recent_items has more than 1000 items"));
        }
        let opts = app.opts(b.k, b.ef, b.exclude_seen, b.genre);
        Ok(answer_json(&app.engine.recommend_recent(&b.recent_items, &opts)?))
    });
    app.finish("recent_recommendations", t, r)
}

async fn similar(
    State(app): State<Arc<App>>,
    UrlPath(id): UrlPath<String>,
    Query(p): Query<RecParams>,
) -> Response {
    let t = Instant::now();
    let r = blocking(|| {
        let opts = app.opts(p.k, p.ef, Some(true), p.genre);
        Ok(answer_json(&app.engine.similar(&id, &opts)?))
    });
    app.finish("similar_items", t, r)
}

async fn item(State(app): State<Arc<App>>, UrlPath(id): UrlPath<String>) -> Response {
    let t = Instant::now();
    let r = app
        .engine
        .item(&id)
        .map(|info| Json(info).into_response())
        .map_err(ApiError::from);
    app.finish("item", t, r)
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when listening and the backend answers (a Milvus server that is down makes this 503, so a
/// load balancer sends traffic to replicas that can answer).
async fn readyz(State(app): State<Arc<App>>) -> Response {
    let backend = app.engine.backend();
    if app.ready.load(Ordering::Acquire) {
        match blocking(|| app.engine.snapshot().index.check_health()) {
            Ok(()) => Json(json!({"status": "ready", "backend": backend})).into_response(),
            Err(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "backend": backend, "error": e.to_string()})),
            )
                .into_response(),
        }
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "loading", "backend": backend})),
        )
            .into_response()
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut buf = Vec::new();
    let enc = prometheus::TextEncoder::new();
    match enc.encode(&app.metrics.registry.gather(), &mut buf) {
        Ok(()) => ([(header::CONTENT_TYPE, enc.format_type().to_string())], buf).into_response(),
        Err(e) => ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "no such endpoint (see `twotower serve --help`)".into(),
    )
}

fn router(app: Arc<App>, max_body: usize, body_timeout: Duration) -> Router {
    Router::new()
        .route("/v1/users/{id}/recommendations", get(user_recs))
        .route("/v1/recommendations", post(recent_recs))
        .route("/v1/items/{id}/similar", get(similar))
        .route("/v1/items/{id}", get(item))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        // The body is read (and limited) by the layers below, before a handler runs.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(move |req, next| {
            read_body_in_time(req, next, max_body, body_timeout)
        }))
        // 413 from the declared Content-Length before any of the body is read, so a client that waits
        // for the verdict (or sends `Expect: 100-continue`) gets it without uploading megabytes;
        // a chunked body is cut at the limit while `read_body_in_time` reads it.
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(axum::middleware::from_fn(reject_oversized_head))
        .layer(axum::middleware::from_fn(move |req, next| {
            json_errors(req, next, max_body)
        }))
        .with_state(app)
}

/// Every error answer has a JSON body: responses the framework makes itself (405, a path that is not
/// UTF-8, a chunked body cut at the limit) come as plain text or empty, and are rewritten here as
/// `{"error": …}` with their status kept.
async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next, max_body: usize) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let msg = if status == StatusCode::PAYLOAD_TOO_LARGE {
        // The body limit layer's own text does not say which limit or how to change it.
        format!("request body is over {max_body} bytes; the limit is {max_body} (raise it with --max-body)")
    } else if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let mut out = (status, Json(json!({ "error": msg }))).into_response();
    for (k, v) in &parts.headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

/// 414 for a request target over [`MAX_URI`] and 431 for a head over [`MAX_HEADERS_BYTES`] or
/// [`MAX_HEADERS`] lines, with JSON bodies (the connection layer's own limits sit far above these).
async fn reject_oversized_head(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI {
        return ApiError(
            StatusCode::URI_TOO_LONG,
            format!("request target is {uri_len} bytes; the limit is {MAX_URI}"),
        )
        .into_response();
    }
    let headers = req.headers();
    let bytes: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADERS_BYTES {
        return ApiError(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "{} header lines, {bytes} bytes; the limits are {MAX_HEADERS} lines and {MAX_HEADERS_BYTES} bytes",
                headers.len()
            ),
        )
        .into_response();
    }
    next.run(req).await
}

/// An error answer after which the connection is closed (the rest of the request was not read).
fn closing(status: StatusCode, msg: String) -> Response {
    let mut r = ApiError(status, msg).into_response();
    r.headers_mut()
        .insert(header::CONNECTION, header::HeaderValue::from_static("close"));
    r
}

/// Whether a body error is [`RequestBodyLimitLayer`]'s cut at the limit (somewhere in its chain).
fn is_length_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Reads the whole request body (of every route) before the handler runs, within `timeout` of the
/// head: a body that does not arrive in time is answered 408, one over `max_body` 413, and the
/// connection is closed either way. (The head itself is bounded by `--header-timeout-ms`.)
async fn read_body_in_time(
    req: axum::extract::Request,
    next: axum::middleware::Next,
    max_body: usize,
    timeout: Duration,
) -> Response {
    use axum::body::HttpBody;
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if !has_body {
        return next.run(req).await;
    }
    let (parts, mut body) = req.into_parts();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx));
        match tokio::time::timeout_at(deadline, frame).await {
            Err(_) => {
                return closing(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the request body did not arrive within {} ms ({} bytes received; raise the limit with --body-timeout-ms)",
                        timeout.as_millis(),
                        buf.len()
                    ),
                )
            }
            Ok(None) => break,
            Ok(Some(Err(e))) if is_length_limit(&e) => {
                return closing(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body is over {max_body} bytes; the limit is {max_body} (raise it with --max-body)"),
                )
            }
            Ok(Some(Err(e))) => {
                return closing(
                    StatusCode::BAD_REQUEST,
                    format!("the request body could not be read: {e}"),
                )
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(buf),
    ))
    .await
}

/// Follows CURRENT until `stop`: a new version is loaded beside the live one and swapped in whole. A
/// failed reload is retried only when the files it reads change, with backoff ([`ReloadGate`]).
fn watch(app: Arc<App>, every: Duration, stop: Arc<AtomicBool>) {
    let mut gate = ReloadGate::new(every, Duration::from_secs(5).max(every));
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(every);
        match gate.poll(&app.engine) {
            Poll::Reloaded(v) => {
                app.metrics.reloads.inc();
                app.metrics.observe_index(&app.engine);
                eprintln!("serving index version {v}");
            }
            Poll::Unchanged | Poll::Waiting => {}
            Poll::Failed(e) => {
                app.metrics.reload_failures.inc();
                eprintln!(
                    "index reload failed, still serving the previous version (retried when the index changes): {}",
                    crate::term::text(&e.to_string())
                );
            }
        }
        app.metrics.watch_ticks.inc();
    }
}

/// Loads the recommender, binds, and serves until SIGTERM or Ctrl-C: in-flight requests get
/// `--shutdown-timeout-ms` to finish, then remaining connections are closed.
pub fn run(a: ServeArgs) -> Result<()> {
    let engine = a.engine.open()?;
    let app = Arc::new(App {
        engine,
        metrics: Metrics::new()?,
        ef: a.ef,
        max_k: a.max_k,
        ready: AtomicBool::new(false),
    });
    app.metrics.observe_index(&app.engine);
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(w) = a.workers.filter(|&w| w > crate::MAX_THREADS) {
        anyhow::bail!("--workers must be at most {}, not {w}", crate::MAX_THREADS);
    }
    if let Some(w) = a.workers {
        rt.worker_threads(w.max(1));
    }
    let rt = rt.enable_all().build().context("starting the async runtime")?;
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (app, stop) = (app.clone(), stop.clone());
        std::thread::spawn(move || watch(app, Duration::from_millis(a.watch_ms.max(10)), stop))
    };
    let result = rt.block_on(async {
        // Handlers first: a SIGTERM that arrives right after the address is printed must reach
        // them, not the default action (which kills the process mid-request).
        let signals = Signals::install()?;
        let listener = tokio::net::TcpListener::bind(a.addr)
            .await
            .with_context(|| format!("binding {}", a.addr))?;
        let local = listener.local_addr()?;
        app.ready.store(true, Ordering::Release);
        // The first line on stdout is the address (tests and scripts read it to find an ephemeral port).
        println!("listening on http://{local}");
        eprintln!("{}", app.engine.banner());
        let limits = ConnLimits {
            header_timeout: Duration::from_millis(a.header_timeout_ms.max(1)),
            shutdown_timeout: Duration::from_millis(a.shutdown_timeout_ms),
            max_connections: a.max_connections.unwrap_or_else(default_max_connections).max(1),
        };
        let body_timeout = Duration::from_millis(a.body_timeout_ms.max(1));
        serve(
            listener,
            router(app.clone(), a.max_body, body_timeout),
            limits,
            signals,
        )
        .await;
        Ok(())
    });
    stop.store(true, Ordering::Release);
    let _ = watcher.join();
    // Connection tasks cut at the deadline may still hold sockets; do not wait for them.
    rt.shutdown_timeout(Duration::from_millis(100));
    result
}

/// Connection timeouts.
#[derive(Debug, Clone, Copy)]
struct ConnLimits {
    header_timeout: Duration,
    shutdown_timeout: Duration,
    max_connections: usize,
}

/// What a connection beyond `--max-connections` is answered: `/healthz` as usual (a load balancer's
/// probe must not fail because of a flood), everything else 503; the connection is closed after.
fn overflow_router(max: usize) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .fallback(move || async move {
            ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the server is at its connection limit ({max}, --max-connections); try again later"),
            )
        })
        .layer(axum::middleware::map_response(|mut r: Response| async move {
            r.headers_mut()
                .insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            r
        }))
}

/// Closes a connection the way HTTP servers must to deliver an error answer sent before the request
/// was read to its end: send FIN, then read and discard what the client still sends (for at most
/// `linger` and 16 MiB) so that closing does not reset the connection and destroy the answer in
/// flight.
async fn linger_close(mut stream: tokio::net::TcpStream, linger: Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.shutdown().await;
    let mut buf = vec![0u8; 16 * 1024];
    let mut left: usize = 16 << 20;
    let drain = async {
        while left > 0 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(linger, drain).await;
}

/// The accept loop: one hyper HTTP/1 connection per task, each with a header-read timeout. On a
/// shutdown signal it stops accepting, asks every connection to finish its current request, and
/// closes whatever is left once the deadline passes.
async fn serve(listener: tokio::net::TcpListener, router: Router, limits: ConnLimits, signals: Signals) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let overflow_permits = Arc::new(tokio::sync::Semaphore::new(OVERFLOW_CONNECTIONS));
    let overflow = overflow_router(limits.max_connections);
    let signal = signals.recv();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((s, _)) => s,
                    Err(e) => {
                        // Out of file descriptors and the like: back off briefly, keep serving.
                        eprintln!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let permit = match permits.clone().try_acquire_owned() {
                    Ok(p) => p,
                    Err(_) => {
                        // Over the bound: a short answer (503, or /healthz) if there is room for
                        // one, else closed at once. Never an accept that fails for want of files.
                        if let Ok(p) = overflow_permits.clone().try_acquire_owned() {
                            let svc = TowerToHyperService::new(overflow.clone());
                            conns.spawn(async move {
                                let _p = p;
                                let mut stream = stream;
                                let mut b = hyper::server::conn::http1::Builder::new();
                                b.timer(TokioTimer::new())
                                    .header_read_timeout(limits.header_timeout.min(OVERFLOW_DEADLINE))
                                    .keep_alive(false);
                                let conn = b.serve_connection(TokioIo::new(&mut stream), svc);
                                let _ = tokio::time::timeout(OVERFLOW_DEADLINE * 2, conn).await;
                                linger_close(stream, OVERFLOW_DEADLINE).await;
                            });
                        }
                        continue;
                    }
                };
                let svc = TowerToHyperService::new(router.clone());
                let mut rx = rx.clone();
                conns.spawn(async move {
                    let _permit = permit;
                    let mut stream = stream;
                    let mut b = hyper::server::conn::http1::Builder::new();
                    b.timer(TokioTimer::new())
                        .header_read_timeout(limits.header_timeout)
                        .max_headers(MAX_HEADERS * 4)
                        .max_buf_size(MAX_URI + MAX_HEADERS_BYTES * 4);
                    {
                        let conn = b.serve_connection(TokioIo::new(&mut stream), svc);
                        tokio::pin!(conn);
                        tokio::select! {
                            _ = conn.as_mut() => {}
                            _ = rx.changed() => {
                                conn.as_mut().graceful_shutdown();
                                let _ = conn.await;
                            }
                        }
                    }
                    linger_close(stream, LINGER).await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = &mut signal => break,
        }
    }
    drop(listener);
    let _ = tx.send(true);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.shutdown_timeout, drain)
        .await
        .is_err()
    {
        eprintln!(
            "shutdown deadline passed: closing {} connection(s) still open",
            conns.len()
        );
        conns.abort_all();
    }
}
/// SIGTERM and SIGINT (Ctrl-C), registered before the server announces itself.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
                int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Waits for the first of them.
    async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! { _ = self.term.recv() => {}, _ = self.int.recv() => {} }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        eprintln!("shutting down: finishing in-flight requests");
    }
}
