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
//!
//! The server binds loopback by default (see each binary's `--metrics-addr`):
//! metrics are for the local Prometheus, not the network, unless configured.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
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

/// Resolves on SIGINT or SIGTERM, so that either stops a process cleanly
/// (an orchestrator sends SIGTERM, a person at a terminal SIGINT).
pub async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler can be installed");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
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
    pub fn reason(&self) -> Option<String> {
        self.not_ready.lock().expect("readiness lock").clone()
    }
}

/// The endpoint could not be opened.
#[derive(Debug, Error)]
#[error("cannot serve metrics on {addr}: {source}")]
pub struct ServeError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// Why binding failed.
    pub source: std::io::Error,
}

#[derive(Clone)]
struct Endpoints {
    registry: Registry,
    readiness: Readiness,
}

/// Binds `addr` and serves the endpoints in a background task; returns the
/// bound address (useful with port 0).
pub async fn serve(addr: SocketAddr, registry: Registry, readiness: Readiness) -> Result<SocketAddr, ServeError> {
    let listener = TcpListener::bind(addr).await.map_err(|source| ServeError { addr, source })?;
    let bound = listener.local_addr().map_err(|source| ServeError { addr, source })?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(Endpoints { registry, readiness });
    tokio::spawn(async move {
        // The server only ends with the runtime; an error here is logged by axum.
        let _ = axum::serve(listener, app).await;
    });
    info!(message = "Serving /metrics, /healthz, /readyz.", addr = %bound);
    Ok(bound)
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
    }
}
