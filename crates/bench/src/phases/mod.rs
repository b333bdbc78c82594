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
pub mod warmup;
