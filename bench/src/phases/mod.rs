//! One module per phase, each on a fresh database and fresh topics; each
//! returns what the report needs.

pub mod copy;
pub mod e2e;
pub mod kafka;
pub mod latency;
pub mod naive;
pub mod peer_sink;
pub mod peer_source;
pub mod replicated;
pub mod sink;
pub mod source;
pub mod verify;

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, to compare with times PostgreSQL stored
/// (`written_at`: the same machine clock).
pub fn epoch_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64())
}
