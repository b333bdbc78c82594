//! Applies one batch in one PostgreSQL transaction: offsets locked and
//! checked, the files' headers recorded (a refused one isolated by
//! bisection, and passed), rows upserted (bad rows found by bisection), dead
//! letters recorded (a refused one isolated the same way), offsets stored,
//! then commit.
//!
//! Everything the batch changes commits together, so the database never
//! holds rows without the offsets that cover them, or the reverse. No
//! record's content can stop the batch: a row the database refuses becomes a
//! dead letter, and a dead letter the table refuses too (its text is made
//! [`crate::storable`] first, so none is known to) is published to the
//! dead-letter topic, reported as unrecorded and passed, its offset stored
//! like any other: a refusal that no retry can fix must not loop.

use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::time::Instant;

use deadpool_postgres::{Pool, Transaction};
use futures::future::BoxFuture;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;
use thiserror::Error;

use crate::batch::{last_per_id, OrderRecord};
use crate::bisect::Bisection;
use crate::db::DbError;
use crate::dead_letters::{self, reasons, DeadLetter};
use crate::decode::Decoded;
use crate::offsets::{self, offset_ranges, OffsetPlan};
use crate::source_files;
use crate::upsert::{
    count, insert_new, lock_existing, row_outcome, write_rows, NextWritePath, RowOutcome, UpsertOutcome, WritePath,
};

/// Where a batch goes.
pub struct Target<'a> {
    /// The pool to take the transaction's connection from.
    pub pool: &'a Pool,
    /// Consumer group: the offsets' owner.
    pub group: &'a str,
    /// The topic read.
    pub topic: &'a str,
    /// The dead-letter topic.
    pub dlq_topic: &'a str,
    /// Publishes dead letters.
    pub dlq_producer: &'a FutureProducer,
    /// The write path of the next batch, from how the last one went.
    pub write_path: &'a NextWritePath,
}

impl Target<'_> {
    /// Test builds: `FAILPOINTS=consumer-dlq-producer-fatal=return` puts the
    /// dead-letter producer in librdkafka's fatal state before a batch's dead
    /// letters are published, so that the end-to-end tests see the consumer
    /// stop on a fatal client (nothing outside the process can cause one on
    /// demand). Inert unless set, and absent from release builds.
    fn dead_letter_producer_fatal_failpoint(&self) {
        fail::fail_point!("consumer-dlq-producer-fatal", |_| clients::faults::raise_fatal_error(
            self.dlq_producer.client(),
            "failpoint consumer-dlq-producer-fatal"
        ));
    }
}

/// Why a batch could not be applied.
#[derive(Debug, Error)]
pub enum ApplyError {
    /// The database failed; see [`DbError::is_transient`].
    #[error(transparent)]
    Database(#[from] DbError),
    /// A dead letter could not be published to the dead-letter topic.
    #[error("dead letter not published")]
    DeadLetterTopic(#[source] KafkaError),
    /// The dead-letter producer hit a fatal error (e.g. its idempotence
    /// guarantee broke): that client will never publish again, so retrying
    /// on it would wait forever.
    #[error("dead-letter producer failed fatally ({code:?}): {reason}")]
    DeadLetterProducerFatal {
        /// librdkafka's code of the underlying fatal error.
        code: RDKafkaErrorCode,
        /// librdkafka's description.
        reason: String,
    },
}

crate::db::from_db_errors!(ApplyError);

impl ApplyError {
    /// Whether trying the same batch again later may succeed. A dead letter
    /// that cannot be published is retried, never skipped: the batch (and
    /// every offset after the record) waits until the topic takes it again.
    pub fn is_transient(&self) -> bool {
        match self {
            ApplyError::Database(error) => error.is_transient(),
            ApplyError::DeadLetterTopic(_) => true,
            ApplyError::DeadLetterProducerFatal { .. } => false,
        }
    }

    /// What is unavailable while this error is retried, for logs and `/readyz`.
    pub fn unavailable(&self) -> &'static str {
        match self {
            ApplyError::Database(_) => "database unavailable; retrying",
            ApplyError::DeadLetterTopic(_) => "dead-letter topic unwritable; retrying",
            ApplyError::DeadLetterProducerFatal { .. } => "dead-letter producer failed fatally; exiting",
        }
    }
}

/// Classifies a failed dead-letter publish, given the producer's fatal error
/// if it has one (`Client::fatal_error`): after a fatal error every send
/// fails, the first ones possibly with the original code rather than
/// `Fatal`, so the client's own state decides, and a `Fatal` code alone too.
pub fn publish_failure(error: KafkaError, fatal: Option<(RDKafkaErrorCode, String)>) -> ApplyError {
    match fatal {
        Some((code, reason)) => ApplyError::DeadLetterProducerFatal { code, reason },
        None if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) => {
            ApplyError::DeadLetterProducerFatal { code: RDKafkaErrorCode::Fatal, reason: error.to_string() }
        }
        None => ApplyError::DeadLetterTopic(error),
    }
}

/// What a committed batch did.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Records accepted by the offset check (applied or dead-lettered).
    pub accepted: usize,
    /// Upsert outcomes.
    pub outcome: UpsertOutcome,
    /// Reasons of the records dead-lettered.
    pub dead_letter_reasons: Vec<&'static str>,
    /// Dead letters the `dead_letters` table refused (source, the database's
    /// reason): published to the topic only, and passed.
    pub unrecorded: Vec<(String, String)>,
    /// File headers `source_files` refused (file, the database's reason):
    /// the batch's orders are written all the same, only that side-table
    /// row is missing.
    pub unrecorded_headers: Vec<(String, String)>,
    /// Partition → offsets skipped because they no longer exist in Kafka
    /// (see [`OffsetPlan::skipped`]).
    pub skipped_offsets: BTreeMap<i32, i64>,
    /// Records skipped because already applied.
    pub already_applied: u64,
    /// Offsets stored, to commit to Kafka too.
    pub next_offsets: BTreeMap<i32, i64>,
    /// Partitions to move back to their stored offset.
    pub seeks: BTreeMap<i32, i64>,
    /// Seconds from begin to commit.
    pub seconds: f64,
    /// When the producer read each applied order, for end-to-end latency.
    pub read_at: Vec<DateTime<Utc>>,
}

/// Applies the batch (records of assigned partitions only) in one transaction.
pub async fn apply_batch(
    target: &Target<'_>,
    batch: &[Decoded],
    seeked: &BTreeMap<i32, i64>,
) -> Result<BatchReport, ApplyError> {
    let started = Instant::now();
    let mut client = target.pool.get().await?;
    let mut transaction = client.transaction().await?;
    let ranges = offset_ranges(batch.iter().map(|d| (d.message.partition(), d.message.offset())));
    let stored = offsets::lock_stored(&transaction, target.group, target.topic, &ranges).await?;
    let plan = offsets::plan(&ranges, &stored, seeked);

    let (records, mut letters, already_applied) = accepted(batch, &plan);
    let accepted = records.len() + letters.len();
    let read_at = records.iter().map(|record| record.source.read_at).collect();
    let file_headers = source_files::file_headers(records.iter().copied());
    let unrecorded_headers = record_file_headers(&mut transaction, &file_headers).await?;
    let path = target.write_path.get();
    let upserted = upsert_with_bisection(&mut transaction, records, path).await?;
    let (outcome, rejected) = (upserted.outcome, upserted.rejected);
    if !rejected.is_empty() {
        let by_position: HashMap<(i32, i64), &Decoded> =
            batch.iter().map(|d| ((d.message.partition(), d.message.offset()), d)).collect();
        for (position, reason) in rejected {
            if let Some(decoded) = by_position.get(&position) {
                letters.push(DeadLetter::from_message(&decoded.message, reasons::REJECTED_BY_DATABASE, reason));
            }
        }
    }

    let (refused, stored_before) = record_dead_letters(&mut transaction, &letters).await?;
    let unrecorded = refused.into_iter().map(|(index, reason)| (letters[index].source.clone(), reason)).collect();
    let letters = new_letters(letters, &stored_before);
    let next_offsets = plan.next_offsets();
    offsets::store(&transaction, target.group, target.topic, &next_offsets).await?;
    if !letters.is_empty() {
        target.dead_letter_producer_fatal_failpoint();
    }
    dead_letters::publish_all(target.dlq_producer, target.dlq_topic, &letters)
        .await
        .map_err(|error| publish_failure(error, target.dlq_producer.client().fatal_error()))?;
    transaction.commit().await?;
    target.write_path.set(path.next(upserted.stored, upserted.rows));
    Ok(BatchReport {
        accepted,
        outcome,
        dead_letter_reasons: letters.iter().map(|letter| letter.reason).collect(),
        unrecorded,
        unrecorded_headers: unrecorded_headers
            .into_iter()
            .map(|(index, reason)| (file_headers[index].file.clone(), reason))
            .collect(),
        skipped_offsets: plan.skipped.clone(),
        already_applied,
        next_offsets,
        seeks: plan.seeks(),
        seconds: started.elapsed().as_secs_f64(),
        read_at,
    })
}

/// Splits the batch by the offset plan: decoded records and dead letters to
/// apply, and how many records were already applied.
fn accepted<'a>(batch: &'a [Decoded], plan: &OffsetPlan) -> (Vec<&'a OrderRecord>, Vec<DeadLetter>, u64) {
    let seeks = plan.seeks();
    let mut records = Vec::with_capacity(batch.len());
    let mut letters = Vec::new();
    let mut already_applied = 0;
    for decoded in batch {
        let (partition, offset) = (decoded.message.partition(), decoded.message.offset());
        if !plan.accepts(partition, offset) {
            if !seeks.contains_key(&partition) {
                already_applied += 1;
            }
            continue;
        }
        match &decoded.record {
            Ok(record) => records.push(record),
            Err(letter) => letters.push(letter.clone()),
        }
    }
    (records, letters, already_applied)
}

/// What [`upsert_with_bisection`] did.
#[derive(Debug)]
pub struct Upserted {
    /// How the rows landed.
    pub outcome: UpsertOutcome,
    /// Rows the database refused: (partition, offset, reason).
    pub rejected: Vec<((i32, i64), String)>,
    /// Distinct ids written (the newest record of each).
    pub rows: usize,
    /// Of those, the ids stored before this write: what picks the next
    /// batch's [`WritePath`].
    pub stored: usize,
}

/// Upserts the newest record per id along `path` (see [`crate::upsert`]):
/// insert-first writes the new ids in one statement, then the known ones
/// under the version guard; lock-first puts every row under the guard.
/// Both reach the same rows and the same counts. Rows the database refuses
/// are isolated by bisection in savepoints and returned.
pub async fn upsert_with_bisection(
    transaction: &mut Transaction<'_>,
    records: Vec<&OrderRecord>,
    path: WritePath,
) -> Result<Upserted, ApplyError> {
    let accepted = records.len();
    let rows = last_per_id(records);
    let mut outcome = UpsertOutcome { unchanged: (accepted - rows.records.len()) as u64, ..Default::default() };
    let known = match path {
        WritePath::InsertFirst => insert_new_rows(transaction, &rows.records, &mut outcome).await?,
        WritePath::LockFirst => rows.records.clone(),
    };

    let ids: Vec<i64> = known.iter().map(|record| record.order.id).collect();
    let existing = lock_existing(&**transaction, &ids).await?;
    let mut to_write: Vec<(&OrderRecord, RowOutcome)> = Vec::with_capacity(known.len());
    for record in known {
        let row = row_outcome(record, existing.get(&record.order.id));
        if row.writes() {
            to_write.push((record, row));
        } else {
            count(&mut outcome, row);
        }
    }

    let refused = write_in_savepoints(
        transaction,
        "batch_rows",
        &to_write,
        |savepoint, rows| {
            let records: Vec<&OrderRecord> = rows.iter().map(|(record, _)| *record).collect();
            Box::pin(async move { write_rows(savepoint, &records).await })
        },
        |range, ()| to_write[range].iter().for_each(|(_, row)| count(&mut outcome, *row)),
    )
    .await?;
    let rejected = refused.into_iter().map(|(index, reason)| (place(to_write[index].0), reason)).collect();
    Ok(Upserted { outcome, rejected, rows: rows.records.len(), stored: existing.len() })
}

/// Inserts the rows whose ids are not stored and counts them; returns the
/// others (ascending) for the version guard. A row the database refuses here
/// goes there too, so it meets the same rule as before this step existed:
/// not newer than the stored row, it is unchanged; otherwise its write is
/// refused again and dead-lettered.
async fn insert_new_rows<'a>(
    transaction: &mut Transaction<'_>,
    rows: &[&'a OrderRecord],
    outcome: &mut UpsertOutcome,
) -> Result<Vec<&'a OrderRecord>, ApplyError> {
    // Each id comes back at most once: rows have unique ids, and a range
    // the database refuses is rolled back before its halves are tried.
    let mut inserted: Vec<i64> = Vec::with_capacity(rows.len());
    write_in_savepoints(
        transaction,
        "new_rows",
        rows,
        |savepoint, rows| Box::pin(async move { insert_new(savepoint, rows).await }),
        |_, ids: Vec<i64>| inserted.extend(ids),
    )
    .await?;
    outcome.inserted += inserted.len() as u64;
    if inserted.len() == rows.len() {
        return Ok(Vec::new());
    }
    inserted.sort_unstable();
    Ok(rows.iter().copied().filter(|record| inserted.binary_search(&record.order.id).is_err()).collect())
}

/// Where a record was read from Kafka: (partition, offset).
fn place(record: &OrderRecord) -> (i32, i64) {
    (record.partition, record.offset)
}

/// Inserts the dead letters; ones the table refuses are isolated by
/// bisection in savepoints, like refused rows, and returned as (index,
/// reason) instead of failing the batch. Also returns the indexes of those
/// stored before (the topic replayed): they are neither published again
/// nor counted, and their rows stay as they are (a redriven one redriven).
async fn record_dead_letters(
    transaction: &mut Transaction<'_>,
    letters: &[DeadLetter],
) -> Result<(Vec<(usize, String)>, Vec<usize>), ApplyError> {
    let mut stored_before = Vec::new();
    let refused = write_in_savepoints(
        transaction,
        "dead_letters",
        letters,
        |savepoint, letters| {
            let letters: Vec<&DeadLetter> = letters.iter().collect();
            Box::pin(async move { dead_letters::insert_all(savepoint, &letters).await })
        },
        |range, inserted: Vec<bool>| {
            stored_before.extend(range.zip(inserted).filter(|(_, new)| !new).map(|(index, _)| index));
        },
    )
    .await?;
    Ok((refused, stored_before))
}

/// The dead letters not stored before: only those are published and
/// counted.
fn new_letters(letters: Vec<DeadLetter>, stored_before: &[usize]) -> Vec<DeadLetter> {
    letters
        .into_iter()
        .enumerate()
        .filter(|(index, _)| !stored_before.contains(index))
        .map(|(_, letter)| letter)
        .collect()
}

/// Records the files' headers in `source_files`; headers the table refuses
/// are isolated by bisection in savepoints and returned as (index, reason):
/// a side table's row never costs the batch its orders.
async fn record_file_headers(
    transaction: &mut Transaction<'_>,
    headers: &[source_files::FileHeader],
) -> Result<Vec<(usize, String)>, ApplyError> {
    write_in_savepoints(
        transaction,
        "file_headers",
        headers,
        |savepoint, headers| {
            let headers: Vec<&source_files::FileHeader> = headers.iter().collect();
            Box::pin(async move { source_files::record(savepoint, &headers).await })
        },
        |_, ()| {},
    )
    .await
}

/// Writes `items` in one savepoint, or, when the database refuses them for
/// a record-specific reason ([`DbError::is_record_specific`]), in halves,
/// each in its own savepoint, until the refused items stand alone (see
/// [`Bisection`]). `written` is told each range that committed and what its
/// write returned. Returns the refused items as (index, the database's
/// reason); any other error fails the whole write.
pub(crate) async fn write_in_savepoints<T: Sync, O>(
    transaction: &mut Transaction<'_>,
    savepoint_name: &str,
    items: &[T],
    write: impl for<'a> Fn(&'a Transaction<'a>, &'a [T]) -> BoxFuture<'a, Result<O, tokio_postgres::Error>>,
    mut written: impl FnMut(Range<usize>, O),
) -> Result<Vec<(usize, String)>, ApplyError> {
    let mut bisection = Bisection::new(items.len());
    while let Some(range) = bisection.next_range() {
        let savepoint = transaction.savepoint(savepoint_name).await?;
        match write(&savepoint, &items[range.clone()]).await.map_err(DbError::Statement) {
            Ok(output) => {
                savepoint.commit().await?;
                written(range, output);
            }
            Err(error) if error.is_record_specific() => {
                savepoint.rollback().await?;
                bisection.failed(range, refusal(&error));
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(bisection.into_rejected())
}

/// The database's own sentence about a refused row.
fn refusal(error: &DbError) -> String {
    match error {
        DbError::Statement(statement) => match statement.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => statement.to_string(),
        },
        other => clients::postgres::describe(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode;

    #[test]
    fn an_unwritable_dead_letter_topic_is_retried_never_skipped() {
        let refused = ApplyError::DeadLetterTopic(KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge));
        assert!(refused.is_transient(), "skipping it would commit offsets past a record that was never dead-lettered");
        assert_eq!(refused.unavailable(), "dead-letter topic unwritable; retrying");
    }

    #[test]
    fn a_producer_in_fatal_state_is_not_retried() {
        let timed_out = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        let fatal = Some((RDKafkaErrorCode::OutOfOrderSequenceNumber, "sequence desynchronised".to_string()));
        let error = publish_failure(timed_out, fatal);
        assert!(
            matches!(
                error,
                ApplyError::DeadLetterProducerFatal { code: RDKafkaErrorCode::OutOfOrderSequenceNumber, .. }
            ),
            "{error:?}"
        );
        assert!(!error.is_transient(), "a fatal client never publishes again");
    }

    #[test]
    fn a_fatal_code_alone_is_fatal_and_anything_else_is_retried() {
        let fatal_code = publish_failure(KafkaError::MessageProduction(RDKafkaErrorCode::Fatal), None);
        assert!(matches!(fatal_code, ApplyError::DeadLetterProducerFatal { code: RDKafkaErrorCode::Fatal, .. }));
        let broker_down = publish_failure(KafkaError::MessageProduction(RDKafkaErrorCode::AllBrokersDown), None);
        assert!(matches!(broker_down, ApplyError::DeadLetterTopic(_)) && broker_down.is_transient());
    }
}
