//! What the pipeline has not finished yet, so a line on its way is counted
//! in flight and not missing: the producer's saved positions (bytes of each
//! file delivered to Kafka) and the consumer group's lag (records on the
//! topic past the offsets stored in PostgreSQL, the truth).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::time::Duration;

use producer::SavedPositions;
use rdkafka::consumer::BaseConsumer;
use tokio_postgres::Client;

use crate::config::Config;

/// What the producer saved about one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    /// The epoch it gave the file.
    pub epoch: u64,
    /// Bytes delivered to Kafka.
    pub delivered: u64,
}

/// The producer's saved positions, if they can be read.
pub struct Positions {
    saved: Option<SavedPositions>,
}

impl Positions {
    /// Reads the store in `state_dir`, with the epochs the producer would
    /// resume with (a layout-1 store's upgraded); unreadable or absent,
    /// every file counts as not followed.
    pub fn read(state_dir: &Path) -> Positions {
        let saved = SavedPositions::read(state_dir).ok();
        Positions { saved: saved.map(|saved| saved.upgrade(schema::message::legacy_epoch)) }
    }

    /// What the producer saved about the file open as `file`, by identity
    /// (a renamed or archived file is still known).
    pub fn tracked(&self, file: &File) -> Option<Tracked> {
        let tracked = self.saved.as_ref()?.tracked(file).ok()??;
        Some(Tracked { epoch: tracked.epoch, delivered: tracked.delivered.offset })
    }
}

/// Records of the orders topic the group has not applied yet (high
/// watermark past the stored offset, summed over partitions); `None` when
/// Kafka does not answer within `--kafka-timeout`.
pub async fn consumer_lag(config: &Config, client: &Client) -> Option<i64> {
    let stored = stored_offsets(client, &config.group.name, &config.topic.name).await.ok()?;
    let mut kafka = config.kafka.clone();
    kafka.load_password_file().ok()?;
    let (topic, timeout) = (config.topic.name.clone(), config.kafka_timeout);
    let watermarks = tokio::task::spawn_blocking(move || watermarks(&kafka, &topic, timeout)).await.ok()?.ok()?;
    Some(lag(&watermarks, &stored))
}

/// Σ over partitions of what lies between the stored offset (or the
/// partition's start) and its end.
fn lag(watermarks: &BTreeMap<i32, (i64, i64)>, stored: &BTreeMap<i32, i64>) -> i64 {
    watermarks
        .iter()
        .map(|(partition, (low, high))| {
            let applied = stored.get(partition).copied().unwrap_or(0).max(*low);
            (high - applied).max(0)
        })
        .sum()
}

async fn stored_offsets(
    client: &Client,
    group: &str,
    topic: &str,
) -> Result<BTreeMap<i32, i64>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT partition, next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2",
            &[&group, &topic],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

fn watermarks(
    kafka: &clients::KafkaArgs,
    topic: &str,
    timeout: Duration,
) -> Result<BTreeMap<i32, (i64, i64)>, rdkafka::error::KafkaError> {
    let consumer: BaseConsumer = kafka.client_config().create()?;
    clients::partitions::topic_watermarks(&consumer, topic, timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_stored_offset_or_the_partitions_start() {
        let watermarks = BTreeMap::from([(0, (0, 10)), (1, (5, 8)), (2, (0, 4))]);
        let stored = BTreeMap::from([(0, 10), (2, 1)]);
        assert_eq!(lag(&watermarks, &stored), 3 + 3);
    }
}
