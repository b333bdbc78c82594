//! `orderstream-consumer redrive`: re-publishes the consumer's dead letters
//! to the main topic once their cause is fixed, and marks them redriven.
//! The producer's (bad CSV lines, `stage = 'producer'`) are never taken:
//! their bytes are not an order and would only be dead-lettered again; the
//! fix is a corrected export, then `dead-letters resolve`.
//!
//! Rows go in batches of `--batch-size` (memory and lock time stay bounded
//! whatever the backlog): each batch is locked (`FOR UPDATE SKIP LOCKED`, so
//! two redrives never publish the same row), published with its original
//! key and headers (exact bytes from `raw_headers`, the readable `headers`
//! for rows older than that column), and marked in its own transaction
//! after Kafka confirmed every record. A crash in between publishes that
//! batch again next time: harmless, the consumer's version guard makes the
//! second copy a no-op. Only rows that existed when the redrive started are
//! taken, so records that fail again and come back as new dead letters
//! cannot keep it running.

use std::collections::BTreeMap;

use deadpool_postgres::Pool;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use schema::message::headers;
use thiserror::Error;
use tracing::info;

use crate::config::Config;
use crate::db::{self, DbError};
use crate::dead_letters::decode_raw_headers;
use crate::kafka::dead_letter_producer;

/// Why a redrive failed; nothing is marked redriven then.
#[derive(Debug, Error)]
pub enum RedriveError {
    /// The database URL is unusable.
    #[error("invalid database configuration")]
    DatabaseConfig(#[from] clients::DatabaseConfigError),
    /// Reading or marking the dead letters failed.
    #[error(transparent)]
    Database(#[from] DbError),
    /// Kafka refused a record.
    #[error("Kafka")]
    Kafka(#[from] KafkaError),
}

crate::db::from_db_errors!(RedriveError);

/// Redrives the pending dead letters (with `reason`, if given) in batches
/// of `batch_size`; returns how many were re-published.
pub async fn redrive(config: &Config, reason: Option<&str>, batch_size: i64) -> Result<u64, RedriveError> {
    let pool = db::pool(&config.database, 1)?;
    let producer = dead_letter_producer(config)?;
    let count = redrive_with(&pool, &producer, &config.topic.name, reason, batch_size).await?;
    info!(message = "Dead letters redriven.", count, reason = reason.unwrap_or("any"), topic = %config.topic.name);
    Ok(count)
}

async fn redrive_with(
    pool: &Pool,
    producer: &FutureProducer,
    topic: &str,
    reason: Option<&str>,
    batch_size: i64,
) -> Result<u64, RedriveError> {
    let client = pool.get().await?;
    let last_id: Option<i64> = client.query_one("SELECT max(id) FROM dead_letters", &[]).await?.get(0);
    drop(client);
    let Some(last_id) = last_id else { return Ok(0) };
    let mut total = 0;
    let mut after_id = 0;
    while let Some((highest, published)) =
        redrive_batch(pool, producer, topic, reason, (after_id, last_id), batch_size).await?
    {
        total += published;
        after_id = highest;
    }
    Ok(total)
}

/// Redrives one batch: the pending rows with ids in `(after, last]`, at most
/// `batch_size`, in one transaction. `None` when no row was left, otherwise
/// the batch's highest id and how many it published.
async fn redrive_batch(
    pool: &Pool,
    producer: &FutureProducer,
    topic: &str,
    reason: Option<&str>,
    (after, last): (i64, i64),
    batch_size: i64,
) -> Result<Option<(i64, u64)>, RedriveError> {
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    let rows = transaction
        .query(
            "SELECT id, record_key, payload, headers::text, raw_headers FROM dead_letters
             WHERE stage = 'consumer' AND redriven_at IS NULL AND ($1::text IS NULL OR reason = $1)
               AND id > $2 AND id <= $3
             ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED",
            &[&reason, &after, &last, &batch_size],
        )
        .await?;
    let Some(highest) = rows.last().map(|row| row.get::<_, i64>(0)) else { return Ok(None) };
    let mut ids = Vec::with_capacity(rows.len());
    let mut sends = Vec::with_capacity(rows.len());
    for row in &rows {
        ids.push(row.get::<_, i64>(0));
        let key: Option<Vec<u8>> = row.get(1);
        let payload: Vec<u8> = row.get(2);
        let original = row
            .get::<_, Option<&[u8]>>(4)
            .and_then(decode_raw_headers)
            .unwrap_or_else(|| readable_headers(row.get::<_, &str>(3)));
        sends.push(async move {
            let mut kafka_headers = OwnedHeaders::new();
            for (name, value) in &original {
                kafka_headers = kafka_headers.insert(Header { key: name, value: value.as_deref() });
            }
            let mut record = FutureRecord::to(topic).payload(&payload).headers(kafka_headers);
            if let Some(key) = &key {
                record = record.key(key);
            }
            producer.send(record, rdkafka::util::Timeout::Never).await.map(|_| ()).map_err(|(error, _)| error)
        });
    }
    for result in futures::future::join_all(sends).await {
        result?;
    }
    transaction.execute("UPDATE dead_letters SET redriven_at = clock_timestamp() WHERE id = ANY($1)", &[&ids]).await?;
    transaction.commit().await?;
    Ok(Some((highest, ids.len() as u64)))
}

/// The readable `headers` column as Kafka headers (rows written before
/// `raw_headers` existed).
fn readable_headers(json: &str) -> Vec<(String, Option<Vec<u8>>)> {
    original_headers(json).into_iter().map(|(name, value)| (name, Some(value.into_bytes()))).collect()
}

/// The stored headers without the dead-letter ones: a redriven record must
/// look like the original.
pub fn original_headers(json: &str) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = serde_json::from_str(json).unwrap_or_default();
    map.remove(headers::ERROR_KIND);
    map.remove(headers::ERROR_MESSAGE);
    map.remove(headers::STAGE);
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_headers_are_not_redriven() {
        let headers = original_headers(r#"{"line":"3","error_kind":"x","error_message":"y","source_version":"9"}"#);
        assert_eq!(headers, BTreeMap::from([("line".into(), "3".into()), ("source_version".into(), "9".into())]));
    }
}
