//! What every orderstream process shares with the operator: its logs, its
//! shutdown signal, and its HTTP endpoints, so that all of them are seen and
//! stopped the same way.
//!
//! - [`init_logging`]: key/value logs on standard error, filtered by `RUST_LOG`
//!   (default `info`), coloured only on a terminal.
//! - [`shutdown_signal`]: resolves on `SIGINT` or `SIGTERM`.
//!
//! - `GET /metrics`: the process's Prometheus registry, in the text format.
//! - `GET /healthz`: 200 while the process is alive (a liveness probe).
//! - `GET /readyz`: 200 once the process is connected and working, 503 with
//!   the reason otherwise (a readiness probe).
//! - `GET /status`: what the process is doing, as JSON, for people and
//!   `orderstream-status` (see [`serve_with_status`]); 404 where a process
//!   has none. Built from a snapshot the process keeps, so a request costs
//!   no more than a `stat`.
//!
//! [`LastError`] keeps the last error a process met, with its time, for its
//! `/status`; [`Rate`] measures a counter's rate over a sliding window, for
//! `/status` and the progress logs alike; [`write_ready_file`] publishes the
//! bound address, and [`write_final_report`] what a process did by the time
//! it stopped, so a harness never reads either from a log line; a
//! [`Registrar`] (module `metrics`) declares a process's metrics, the same
//! way in every process.
//!
//! [`allocator`]: mimalloc for the producer, glibc without fastbins for the rest.
//!
//! [`startup`] (module `startup`) starts every binary the same way: the
//! environment aliases of [`env`](mod@env), logging, the deprecation warnings, clap's
//! parse and the validation; [`ObservabilityArgs`] are the flags every
//! service shares; [`duration`] reads every duration flag the same way.
//!
//! The server binds loopback by default (see each binary's `--metrics-addr`):
//! metrics are for the local Prometheus, not the network, unless configured.

pub mod allocator;
pub mod duration;
pub mod env;
mod metrics;
mod startup;

pub use metrics::Registrar;
pub use startup::{startup, startup_from, Configuration, Logging, ObservabilityArgs, ServiceEndpoints};

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, Registry, TextEncoder};
use thiserror::Error;
use tokio::net::TcpListener;
use tracing::info;

/// Sets up logging for a binary; call once, first thing in `main`.
pub fn init_logging() {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// A future that resolves on SIGINT or SIGTERM, so that either stops a
/// process cleanly (an orchestrator sends SIGTERM, a person at a terminal
/// SIGINT).
///
/// The handlers are installed by this call, not when the future is first
/// polled: a process polls it only once its start-up is done, and a SIGTERM
/// that came before would otherwise kill it where it stood, mid-work, with
/// the signal's default action. Call it first thing, inside the runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).expect("SIGINT handler can be installed");
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler can be installed");
    async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    }
}

/// Whether the process is ready, and if not, why: shared between the
/// process's work (which sets it) and the `/readyz` endpoint (which reads it).
#[derive(Clone, Debug)]
pub struct Readiness {
    not_ready: Arc<Mutex<Option<String>>>,
}

impl Readiness {
    /// Starts not ready, with the reason given.
    pub fn new(reason: &str) -> Self {
        Readiness { not_ready: Arc::new(Mutex::new(Some(reason.to_string()))) }
    }

    /// The process is connected and working.
    pub fn ready(&self) {
        *self.not_ready.lock().expect("readiness lock") = None;
    }

    /// The process is not working, for this reason (shown by `/readyz`).
    pub fn not_ready(&self, reason: &str) {
        *self.not_ready.lock().expect("readiness lock") = Some(reason.to_string());
    }

    /// `None` when ready, else the reason.
    pub(crate) fn reason(&self) -> Option<String> {
        self.not_ready.lock().expect("readiness lock").clone()
    }
}

/// The endpoint could not be opened.
#[derive(Debug, Error)]
#[error("cannot serve metrics on {addr}")]
pub struct ServeError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// Why binding failed.
    pub source: std::io::Error,
}

/// What `/status` answers: a JSON document built from the process's own
/// snapshot (cheap: it runs on every request).
pub type StatusReport = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

#[derive(Clone)]
struct Endpoints {
    registry: Registry,
    readiness: Readiness,
    status: Option<StatusReport>,
}

/// Binds `addr` and serves the endpoints in a background task; returns the
/// bound address (useful with port 0).
pub async fn serve(addr: SocketAddr, registry: Registry, readiness: Readiness) -> Result<SocketAddr, ServeError> {
    serve_endpoints(addr, Endpoints { registry, readiness, status: None }).await
}

/// Like [`serve`], with `GET /status` answered by `status`.
pub async fn serve_with_status(
    addr: SocketAddr,
    registry: Registry,
    readiness: Readiness,
    status: StatusReport,
) -> Result<SocketAddr, ServeError> {
    serve_endpoints(addr, Endpoints { registry, readiness, status: Some(status) }).await
}

async fn serve_endpoints(addr: SocketAddr, endpoints: Endpoints) -> Result<SocketAddr, ServeError> {
    let listener = TcpListener::bind(addr).await.map_err(|source| ServeError { addr, source })?;
    let bound = listener.local_addr().map_err(|source| ServeError { addr, source })?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/status", get(status))
        .with_state(endpoints);
    tokio::spawn(async move {
        // The server only ends with the runtime; an error here is logged by axum.
        let _ = axum::serve(listener, app).await;
    });
    info!(message = "Serving /metrics, /healthz, /readyz, /status.", addr = %bound);
    Ok(bound)
}

/// What a ready file holds: where the process serves its endpoints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct ReadyFile {
    /// The bound address of `/metrics`, `/healthz`, `/readyz`, `/status`.
    pub addr: SocketAddr,
    /// The process id, so a harness can tell a stale file from a live one.
    pub pid: u32,
}

/// Writes `{"addr": "...", "pid": N}` to `path` atomically (a temporary
/// file renamed over it), so a reader sees the whole file or none: the
/// `--ready-file` of every binary. Written once the endpoints are bound;
/// `/readyz` says when the process is ready to work.
pub fn write_ready_file(path: &Path, addr: SocketAddr) -> std::io::Result<()> {
    write_json_atomically(path, &ReadyFile { addr, pid: std::process::id() })
}

/// Where a process started with `--ready-file PATH` writes its final report
/// at a clean shutdown: `PATH.final.json`, beside the ready file, so a
/// harness that knows one knows the other.
pub fn final_report_path(ready_file: &Path) -> PathBuf {
    let mut path = ready_file.as_os_str().to_owned();
    path.push(".final.json");
    PathBuf::from(path)
}

/// Writes `report` as JSON to [`final_report_path`], atomically: what a
/// process did, published for a harness once the process can no longer be
/// asked (the consumer's totals), instead of a log line to be parsed.
pub fn write_final_report(ready_file: &Path, report: &impl serde::Serialize) -> std::io::Result<()> {
    write_json_atomically(&final_report_path(ready_file), report)
}

/// Writes `content` to a temporary file renamed over `path`, so a reader
/// sees the whole file or none.
fn write_json_atomically(path: &Path, content: &impl serde::Serialize) -> std::io::Result<()> {
    let text = serde_json::to_string(content).map_err(std::io::Error::other)?;
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    std::fs::write(&partial, text + "\n")?;
    std::fs::rename(&partial, path)
}

/// The last error a process met, and when, for its `/status`: shared between
/// the work (which sets it) and the endpoint (which reads it).
#[derive(Clone, Debug, Default)]
pub struct LastError {
    last: Arc<Mutex<Option<TimedError>>>,
}

/// An error's message and when it happened.
type TimedError = (String, chrono::DateTime<chrono::Utc>);

impl LastError {
    /// Notes `error` as the last one, at the current time.
    pub fn set(&self, error: &dyn std::fmt::Display) {
        *self.last.lock().expect("last error lock") = Some((error.to_string(), chrono::Utc::now()));
    }

    /// `{"message": ..., "at": RFC 3339}`, or `null` when there was none.
    pub fn to_json(&self) -> serde_json::Value {
        match &*self.last.lock().expect("last error lock") {
            Some((message, at)) => serde_json::json!({ "message": message, "at": at.to_rfc3339() }),
            None => serde_json::Value::Null,
        }
    }
}

/// A counter's rate over a sliding window: samples of the running total,
/// the oldest dropped once past the window.
#[derive(Debug)]
pub struct Rate {
    window: Duration,
    samples: VecDeque<(Instant, u64)>,
}

impl Rate {
    /// A rate measured over `window`.
    pub fn new(window: Duration) -> Self {
        Rate { window, samples: VecDeque::new() }
    }

    /// Notes the counter's running total now.
    pub fn record(&mut self, total: u64) {
        self.record_at(Instant::now(), total);
    }

    /// Notes the counter's running total at `at` (tests give the time).
    pub(crate) fn record_at(&mut self, at: Instant, total: u64) {
        self.samples.push_back((at, total));
        // One sample older than the window stays: the rate spans the whole window.
        while self.samples.len() > 2 && self.samples.get(1).is_some_and(|(time, _)| at - *time >= self.window) {
            self.samples.pop_front();
        }
    }

    /// Per second between the oldest and newest samples; 0 with fewer than two.
    pub fn per_second(&self) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some((first, from)), Some((last, to))) if last > first => {
                to.saturating_sub(*from) as f64 / (*last - *first).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

async fn metrics(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    let mut body = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&endpoints.registry.gather(), &mut body) {
        Ok(()) => (StatusCode::OK, [(header::CONTENT_TYPE, encoder.format_type().to_string())], body),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain".to_string())],
            error.to_string().into_bytes(),
        ),
    }
}

async fn status(State(endpoints): State<Endpoints>) -> Response {
    match &endpoints.status {
        Some(report) => axum::Json(report()).into_response(),
        None => (StatusCode::NOT_FOUND, "no status for this process\n").into_response(),
    }
}

async fn ready(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    match endpoints.readiness.reason() {
        None => (StatusCode::OK, "ready\n".to_string()),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::IntCounter;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A SIGTERM that arrives before the future is first polled (a process
    /// still starting up) is held for it, not fatal: without the handler
    /// installed by the call, this test process would die here.
    #[tokio::test]
    async fn a_signal_before_the_first_poll_is_held_not_fatal() {
        let shutdown = shutdown_signal();
        let sent =
            std::process::Command::new("kill").args(["-TERM", &std::process::id().to_string()]).status().unwrap();
        assert!(sent.success());
        tokio::time::timeout(std::time::Duration::from_secs(10), shutdown)
            .await
            .expect("the SIGTERM sent before the first poll was not seen");
    }

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn endpoints_serve_metrics_liveness_and_readiness() {
        let registry = Registry::new();
        let counter = IntCounter::new("orderstream_test_events_total", "Events.").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc_by(3);
        let readiness = Readiness::new("connecting to Kafka");
        let addr = serve("127.0.0.1:0".parse().unwrap(), registry, readiness.clone()).await.unwrap();

        let metrics = get(addr, "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(metrics.contains("orderstream_test_events_total 3"), "{metrics}");
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));

        let not_ready = get(addr, "/readyz").await;
        assert!(not_ready.starts_with("HTTP/1.1 503"), "{not_ready}");
        assert!(not_ready.contains("connecting to Kafka"));
        readiness.ready();
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/status").await.starts_with("HTTP/1.1 404"), "no status given");
    }

    #[tokio::test]
    async fn status_serves_the_snapshot_and_the_ready_file_the_bound_address() {
        let last_error = LastError::default();
        let shown = last_error.clone();
        let report: StatusReport = Arc::new(move || serde_json::json!({ "last_error": shown.to_json() }));
        let addr = serve_with_status("127.0.0.1:0".parse().unwrap(), Registry::new(), Readiness::new("x"), report)
            .await
            .unwrap();
        assert!(get(addr, "/status").await.contains(r#"{"last_error":null}"#));
        last_error.set(&"disk full");
        assert!(get(addr, "/status").await.contains(r#""message":"disk full""#));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ready.json");
        write_ready_file(&path, addr).unwrap();
        let written: ReadyFile = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(written, ReadyFile { addr, pid: std::process::id() });
    }

    #[test]
    fn rate_spans_the_window_and_forgets_older_samples() {
        let start = Instant::now();
        let mut rate = Rate::new(Duration::from_secs(10));
        assert_eq!(rate.per_second(), 0.0);
        rate.record_at(start, 0);
        rate.record_at(start + Duration::from_secs(5), 500);
        assert_eq!(rate.per_second(), 100.0);
        rate.record_at(start + Duration::from_secs(20), 500);
        rate.record_at(start + Duration::from_secs(30), 1500);
        assert_eq!(rate.per_second(), 100.0, "from 20 s to 30 s: the samples before are past the window");
    }
}
