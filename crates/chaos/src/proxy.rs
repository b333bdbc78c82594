//! A TCP proxy between the consumer and PostgreSQL that misbehaves on demand:
//! adds latency, drops every open connection, or cuts a connection right
//! after a `COMMIT` was sent, before its answer comes back (an ambiguous
//! commit: the client cannot know whether it happened).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The simple-query message a `COMMIT` is sent as: `Q`, length 11, the text.
const COMMIT_MESSAGE: &[u8] = b"Q\0\0\0\x0bCOMMIT\0";

/// What the proxy does to traffic now.
#[derive(Debug, Default)]
struct Faults {
    latency_ms: AtomicU64,
    cut_after_commit: AtomicBool,
    commits_cut: AtomicU64,
    connections: AtomicU64,
}

/// A running proxy; stops accepting when dropped.
pub struct Proxy {
    /// The address to connect to instead of the server.
    pub port: u16,
    faults: Arc<Faults>,
    drop_all: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free local port and forwards to `target` (`host:port`).
    pub async fn start(target: &str) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let faults = Arc::new(Faults::default());
        let (drop_all, generation) = watch::channel(0);
        let task = tokio::spawn(accept_forever(listener, target.to_string(), faults.clone(), generation));
        Ok(Proxy { port, faults, drop_all, task })
    }

    /// Delays every chunk forwarded, both ways, by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.faults.latency_ms.store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    /// Closes every connection open now.
    pub fn drop_connections(&self) {
        self.drop_all.send_modify(|generation| *generation += 1);
    }

    /// Cuts the next connection that sends a `COMMIT`, after forwarding it
    /// and before the server's answer reaches the client.
    pub fn cut_after_next_commit(&self) {
        self.faults.cut_after_commit.store(true, Ordering::SeqCst);
    }

    /// How many connections were cut after a `COMMIT`.
    pub fn commits_cut(&self) -> u64 {
        self.faults.commits_cut.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.faults.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.drop_connections();
    }
}

async fn accept_forever(listener: TcpListener, target: String, faults: Arc<Faults>, generation: watch::Receiver<u64>) {
    while let Ok((client, _)) = listener.accept().await {
        faults.connections.fetch_add(1, Ordering::SeqCst);
        let (target, faults, mut generation) = (target.clone(), faults.clone(), generation.clone());
        generation.mark_unchanged();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(&target).await else { return };
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            let (cut, cut_signal) = watch::channel(false);
            let upstream = forward(client_read, server_write, faults.clone(), Some(cut), cut_signal.clone());
            let downstream = forward(server_read, client_write, faults.clone(), None, cut_signal);
            tokio::select! {
                _ = async { tokio::join!(upstream, downstream) } => {}
                _ = generation.changed() => {}
            }
        });
    }
}

/// Copies one direction; `cut` is set on the client-to-server side, which
/// watches for `COMMIT`; both sides stop once a cut is signalled.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    faults: Arc<Faults>,
    cut: Option<watch::Sender<bool>>,
    mut cut_signal: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            _ = cut_signal.changed() => return,
        };
        let Ok(count) = read else { return };
        if count == 0 {
            let _ = to.shutdown().await;
            return;
        }
        let latency = faults.latency_ms.load(Ordering::SeqCst);
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        if *cut_signal.borrow() {
            return;
        }
        if to.write_all(&buffer[..count]).await.is_err() {
            return;
        }
        let commits = cut.is_some() && buffer[..count].windows(COMMIT_MESSAGE.len()).any(|w| w == COMMIT_MESSAGE);
        if commits && faults.cut_after_commit.swap(false, Ordering::SeqCst) {
            faults.commits_cut.fetch_add(1, Ordering::SeqCst);
            if let Some(cut) = &cut {
                let _ = cut.send(true);
            }
            return;
        }
    }
}
