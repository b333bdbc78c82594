//! `orderstream-verify` (`make verify`): accounts for every line of every
//! export against PostgreSQL, so the pipeline can prove itself to its user.
//!
//! Each export is read again with the producer's own reader (same header
//! handling, validation, offsets and line numbers), its lines copied into a
//! temporary table, and one join with `orders` and `dead_letters` says what
//! became of each: stored, superseded (and by which line), dead-lettered,
//! in flight, altered, or missing.
//!
//! # Layout
//!
//! | module      | responsibility                                                    |
//! |-------------|-------------------------------------------------------------------|
//! | `config`    | flags and environment variables (the producer's, for reading)     |
//! | `account`   | the states and the rules that decide them (pure), a file's tally  |
//! | `store`     | `COPY` into `verify_lines`, the file's epoch, the one join         |
//! | `in_flight` | the producer's saved positions and the consumer group's lag       |
//! | `report`    | the text, the JSON, the exit code                                 |
//! | `periodic`  | `--every`: verify again and again, `orderstream_verify_*` metrics  |
//!
//! # What it promises
//!
//! Exit code 0 only when no line is missing and no row altered; every
//! missing line can be named (file, line, order id). It only reads: the
//! temporary table is its session's own. Memory does not grow with a file's
//! size: lines are streamed into `COPY` and their facts streamed back.

mod account;
mod config;
mod in_flight;
mod periodic;
mod report;
mod store;

use std::fs::File;
use std::path::Path;

use producer::export::{ExportReader, RecordOutcome};
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio_postgres::Client;

pub use account::{classify, FileAccount, InFlight, LineFacts, LineState, NamedLine, Progress};
pub use config::{Config, ConfigError, ListError};
pub use periodic::{run_every, VerifyMetrics};
pub use report::{Report, Unreadable, ALL_ACCOUNTED, CANNOT_VERIFY, LINES_MISSING};

use in_flight::Positions;
use store::{LineCopy, LineRow};

/// Records read from an export per turn.
const READ_BATCH: usize = 4_096;

/// Why verifying stopped before its verdict.
#[derive(Debug, Error)]
pub enum VerifyError {
    /// The inbox or archive could not be listed.
    #[error(transparent)]
    List(#[from] ListError),
    /// The database URL is unusable.
    #[error(transparent)]
    DatabaseConfig(#[from] clients::DatabaseConfigError),
    /// PostgreSQL could not be reached or refused a query.
    #[error("PostgreSQL ({url}): {}", clients::postgres::describe(source))]
    Database {
        /// The URL, password redacted.
        url: String,
        /// Its answer.
        source: tokio_postgres::Error,
    },
}

/// Why one export could not be verified.
#[derive(Debug, Error)]
enum FileError {
    /// The export could not be read: reported, the others still verified.
    #[error("{0}")]
    Read(#[from] std::io::Error),
    /// The database failed: verifying stops.
    #[error(transparent)]
    Database(#[from] tokio_postgres::Error),
}

/// Verifies every export `config` names; see the crate doc.
pub async fn verify(config: &Config) -> Result<Report, VerifyError> {
    let exports = config.exports()?;
    let database = clients::Database::from_args(&config.database)?;
    let url = database.redacted_url().to_string();
    let database_error = |source| VerifyError::Database { url: url.clone(), source };
    let client = database.connect().await.map_err(database_error)?;
    let positions = Positions::read(&config.producer_state_dir);
    let mut report = Report { consumer_lag: in_flight::consumer_lag(config, &client).await, ..Report::default() };
    for path in exports {
        match verify_file(&client, config, &path, &positions, report.consumer_lag).await {
            Ok(account) => report.push(account),
            Err(FileError::Read(error)) => {
                report.unreadable.push(Unreadable { file: path.display().to_string(), error: error.to_string() })
            }
            Err(FileError::Database(source)) => return Err(database_error(source)),
        }
    }
    Ok(report)
}

/// Accounts for every line of one export.
async fn verify_file(
    client: &Client,
    config: &Config,
    path: &Path,
    positions: &Positions,
    lag: Option<i64>,
) -> Result<FileAccount, FileError> {
    let tracked = positions.tracked(&File::open(path)?);
    let mut reader = ExportReader::open(path, config.reading())?;
    store::prepare(client).await?;
    copy_lines(client, &mut reader).await?;
    let file_name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let epoch = match tracked {
        Some(tracked) => Some(tracked.epoch),
        None => store::stored_epoch(client, &file_name).await?,
    };
    let delivered = match tracked {
        Some(tracked) => Some(tracked.delivered),
        // In the inbox but not followed yet: the producer has not read it.
        None if config.in_inbox(path) => Some(0),
        None => None,
    };
    let progress =
        Progress { epoch_base: epoch.map(|epoch| (epoch << schema::message::OFFSET_BITS) as i64), delivered, lag };
    let mut account = FileAccount::new(path.display().to_string(), epoch);
    store::each_line_facts(client, |line| account.count(&line, classify(&line, &progress), config.examples)).await?;
    if reader.partial_bytes() > 0 {
        account.count_unfinished_line();
    }
    Ok(account)
}

/// Streams the export's records (not its headers) into `verify_lines`.
async fn copy_lines(client: &Client, reader: &mut ExportReader) -> Result<(), FileError> {
    let mut copy = LineCopy::start(client).await?;
    loop {
        let records = reader.next_records(READ_BATCH)?;
        if records.is_empty() {
            break;
        }
        for record in &records {
            let (line, offset, end) = (record.line, record.offset, record.end.offset);
            let row = match &record.outcome {
                RecordOutcome::Header => continue,
                RecordOutcome::Order(order, _flags, extra) => LineRow::Order { line, offset, end, order, extra },
                RecordOutcome::Rejected(_) => {
                    LineRow::Rejected { line, offset, end, raw_sha256: hex::encode(Sha256::digest(&record.raw)) }
                }
            };
            copy.push(&row).await?;
        }
    }
    copy.finish(client).await?;
    Ok(())
}
