//! `twotower serve`: recommendations over HTTP (axum). Requests read one snapshot of model and index
//! each; a watcher thread follows the index directory's CURRENT and swaps a fully loaded new version
//! in atomically, so a rebuild never fails a request or shows a half-loaded index.

use crate::engine::{Answer, Engine, EngineArgs, QueryOpts, Source};
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
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        registry.register(Box::new(reload_failures.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            index_version,
            catalog_items,
            reloads,
            reload_failures,
        })
    }

    fn observe_index(&self, engine: &Engine) {
        let st = engine.state();
        self.index_version.set(st.live.index.version().0 as i64);
        self.catalog_items.set(st.live.index.live_len() as i64);
    }
}

struct App {
    engine: Engine,
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

fn internal(e: anyhow::Error) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
}

type Params = HashMap<String, String>;

fn param<T: std::str::FromStr>(p: &Params, name: &str) -> Result<Option<T>, ApiError> {
    p.get(name)
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| bad(format!("query parameter {name}={v:?} is not valid")))
        })
        .transpose()
}

impl App {
    fn opts(
        &self,
        k: Option<usize>,
        ef: Option<usize>,
        exclude_seen: Option<bool>,
        genre: Option<String>,
    ) -> Result<QueryOpts, ApiError> {
        let k = k.unwrap_or(10);
        if k == 0 || k > self.max_k {
            return Err(bad(format!("k must be between 1 and {}, not {k}", self.max_k)));
        }
        let ef = ef.unwrap_or(self.ef);
        if ef == 0 || ef > 10_000 {
            return Err(bad(format!("ef must be between 1 and 10000, not {ef}")));
        }
        if let Some(g) = &genre {
            if !self.engine.has_genre(g) {
                return Err(bad(format!("unknown genre {g:?}")));
            }
        }
        Ok(QueryOpts {
            k,
            ef,
            exact: false,
            exclude_seen: exclude_seen.unwrap_or(true),
            genre,
        })
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

fn answer_json(ans: &Answer, query: serde_json::Value) -> Response {
    let results: Vec<_> = ans
        .results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({"rank": i + 1, "item": r.info.id, "title": r.info.title, "genres": r.info.genres, "score": r.score})
        })
        .collect();
    Json(json!({
        "query": query,
        "source": ans.source.as_str(),
        "index_version": ans.index_version,
        "took_ms": ans.elapsed_ms(),
        "results": results,
    }))
    .into_response()
}

async fn user_recs(
    State(app): State<Arc<App>>,
    UrlPath(id): UrlPath<String>,
    Query(p): Query<Params>,
) -> Response {
    let t = Instant::now();
    let r = (|| {
        let opts = app.opts(
            param(&p, "k")?,
            param(&p, "ef")?,
            param(&p, "exclude_seen")?,
            p.get("genre").cloned(),
        )?;
        let fallback: bool = param(&p, "fallback")?.unwrap_or(false);
        let ans = app.engine.recommend_user(&id, &opts).map_err(internal)?;
        if ans.source == Source::Popularity && !fallback {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("unknown user {id:?} (add fallback=true for popular items)"),
            ));
        }
        Ok(answer_json(&ans, json!({"user": id})))
    })();
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
    let r = (|| {
        let b: RecentBody =
            serde_json::from_slice(&body).map_err(|e| bad(format!("request body is not valid: {e}")))?;
        if b.recent_items.is_empty() {
            return Err(bad("recent_items is empty"));
        }
        if b.recent_items.len() > 1000 {
            return Err(bad("recent_items has more than 1000 items"));
        }
        // One snapshot validates and answers, so an index swap in between cannot turn a checked
        // request into an internal error.
        let st = app.engine.state();
        let unknown = st.unknown_items(&b.recent_items);
        if !unknown.is_empty() {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("unknown item ids: {}", unknown.join(", ")),
            ));
        }
        let opts = app.opts(b.k, b.ef, b.exclude_seen, b.genre)?;
        let ans = st.recommend_recent(&b.recent_items, &opts).map_err(internal)?;
        Ok(answer_json(&ans, json!({"recent_items": b.recent_items})))
    })();
    app.finish("recent_recommendations", t, r)
}

async fn similar(
    State(app): State<Arc<App>>,
    UrlPath(id): UrlPath<String>,
    Query(p): Query<Params>,
) -> Response {
    let t = Instant::now();
    let r = (|| {
        let opts = app.opts(
            param(&p, "k")?,
            param(&p, "ef")?,
            Some(true),
            p.get("genre").cloned(),
        )?;
        let st = app.engine.state();
        if !st.unknown_items(std::slice::from_ref(&id)).is_empty() {
            return Err(ApiError(StatusCode::NOT_FOUND, format!("unknown item {id:?}")));
        }
        let ans = st.similar(&id, &opts).map_err(internal)?;
        Ok(answer_json(&ans, json!({"item": id})))
    })();
    app.finish("similar_items", t, r)
}

async fn item(State(app): State<Arc<App>>, UrlPath(id): UrlPath<String>) -> Response {
    let t = Instant::now();
    let r = match app.engine.item(&id) {
        Some(info) => Ok(Json(info).into_response()),
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("unknown item {id:?}"))),
    };
    app.finish("item", t, r)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.ready.load(Ordering::Acquire) {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "loading\n").into_response()
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut buf = Vec::new();
    let enc = prometheus::TextEncoder::new();
    match enc.encode(&app.metrics.registry.gather(), &mut buf) {
        Ok(()) => ([(header::CONTENT_TYPE, enc.format_type().to_string())], buf).into_response(),
        Err(e) => internal(e.into()).into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "no such endpoint (see `twotower serve --help`)".into(),
    )
}

fn router(app: Arc<App>, max_body: usize) -> Router {
    Router::new()
        .route("/v1/users/{id}/recommendations", get(user_recs))
        .route("/v1/recommendations", post(recent_recs))
        .route("/v1/items/{id}/similar", get(similar))
        .route("/v1/items/{id}", get(item))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(move |req, next| {
            reject_declared_oversize(req, next, max_body)
        }))
        .with_state(app)
}

/// Answers 413 from the declared Content-Length alone, before any of the body is read, so a client
/// that waits for the verdict (or sends `Expect: 100-continue`) gets it without uploading megabytes
/// and without racing the connection close. Chunked bodies are still cut at the limit by
/// `DefaultBodyLimit` while they are read.
async fn reject_declared_oversize(
    req: axum::extract::Request,
    next: axum::middleware::Next,
    max_body: usize,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > max_body as u64 => ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is {n} bytes; the limit is {max_body} (raise it with --max-body)"),
        )
        .into_response(),
        _ => next.run(req).await,
    }
}

/// Follows CURRENT until `stop`: a new version is loaded beside the live one and swapped in whole.
fn watch(app: Arc<App>, every: Duration, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(every);
        match app.engine.reload_if_changed() {
            Ok(Some(v)) => {
                app.metrics.reloads.inc();
                app.metrics.observe_index(&app.engine);
                eprintln!("serving index version {v}");
            }
            Ok(None) => {}
            Err(e) => {
                app.metrics.reload_failures.inc();
                eprintln!("index reload failed, still serving the previous version: {e:#}");
            }
        }
    }
}

/// Loads the engine, binds, and serves until SIGTERM or Ctrl-C (in-flight requests finish first).
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
        let listener = tokio::net::TcpListener::bind(a.addr)
            .await
            .with_context(|| format!("binding {}", a.addr))?;
        let local = listener.local_addr()?;
        app.ready.store(true, Ordering::Release);
        // The first line on stdout is the address (tests and scripts read it to find an ephemeral port).
        println!("listening on http://{local}");
        eprintln!("{}", app.engine.banner());
        axum::serve(listener, router(app.clone(), a.max_body))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving")
    });
    stop.store(true, Ordering::Release);
    let _ = watcher.join();
    result
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    eprintln!("shutting down: finishing in-flight requests");
}
