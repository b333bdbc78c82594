//! `orderstream-status`: what the pipeline is doing, on one screen or as
//! JSON, without SQL — Kafka Connect's `/connectors/x/status` and
//! `vector top` for orderstream.
//!
//! # Layout
//!
//! | module       | responsibility                                                             |
//! |--------------|----------------------------------------------------------------------------|
//! | `config`     | flags and environment variables (the same as the other binaries)           |
//! | `gather`     | asking each part: the processes' `/status`, Kafka, PostgreSQL              |
//! | `inbox`      | the inbox's matching files and their sizes                                  |
//! | `saved`      | each inbox file's delivery from the producer's saved positions, when it is down |
//! | `report`     | the verdict (caught up, behind, unreachable), the screen, the exit code    |
//! | `progress`   | `--progress`: one line of orders loaded, rate and time left per call       |
//! | `alerts`     | the alerts firing now, from Alertmanager; shown, never part of the verdict |
//!
//! # What it promises
//!
//! The exit code says the pipeline's state: 0 when the producer and the
//! consumer answer and everything is delivered and applied (lag from the
//! offsets stored in PostgreSQL, the truth, against Kafka's high
//! watermarks, for the orders and the dead-letter intake); 1 when anything
//! waits or is missing, each named: a process down, a file not delivered or
//! that the producer cannot open, a last line waiting for its file to be
//! finished, records not applied, records retention deleted before they
//! were applied; 2 when Kafka or PostgreSQL cannot be reached, saying which
//! and how to start it.
//! It only reads: nothing it does changes the pipeline.

mod alerts;
mod config;
mod gather;
mod inbox;
mod progress;
mod report;
mod saved;

pub use alerts::{ask as ask_alertmanager, AlertsView};
pub use config::Config;
pub use config::Topics;
pub use gather::gather;
pub use progress::progress_line;
pub use report::Report;
