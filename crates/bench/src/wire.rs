//! What one order costs on the topic: the bytes the broker stores per
//! record (compressed batches, as written to its log segments) and the
//! bytes a consumer holds once they are decompressed (key, value and
//! headers, names included). Headers that repeat on every record cost
//! little of the first and much of the second.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Bytes per record of a topic.
#[derive(Debug, Clone, Copy, Default)]
pub struct WireBytes {
    /// In the broker's log segments (compressed record batches), per record.
    pub stored: f64,
    /// Key, value and headers (names and values) once decompressed, per record.
    pub decompressed: f64,
}

/// Measures `topic`, which holds `records` records in `partitions`
/// partitions, on the broker whose log folder is `log_dir`.
pub fn measure(brokers: &str, log_dir: &Path, topic: &str, partitions: i32, records: i64) -> anyhow::Result<WireBytes> {
    let stored = stored_bytes(log_dir, topic, partitions)?;
    let decompressed = decompressed_bytes(brokers, topic, partitions, records)?;
    Ok(WireBytes { stored: stored as f64 / records as f64, decompressed: decompressed as f64 / records as f64 })
}

fn stored_bytes(log_dir: &Path, topic: &str, partitions: i32) -> anyhow::Result<u64> {
    let mut total = 0;
    for partition in 0..partitions {
        let folder = log_dir.join(format!("{topic}-{partition}"));
        for entry in std::fs::read_dir(&folder).with_context(|| format!("read {}", folder.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|extension| extension == "log") {
                total += std::fs::metadata(&path)?.len();
            }
        }
    }
    Ok(total)
}

fn decompressed_bytes(brokers: &str, topic: &str, partitions: i32, records: i64) -> anyhow::Result<u64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench-wire")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut read, mut bytes) = (0_i64, 0_u64);
    while read < records {
        ensure!(Instant::now() < deadline, "read {read} of {records} records of {topic} in 300 s");
        let Some(message) = consumer.poll(Duration::from_millis(500)) else { continue };
        let message = message?;
        let headers = message.headers().map_or(0, |headers| {
            headers.iter().map(|header| header.key.len() + header.value.map_or(0, <[u8]>::len)).sum::<usize>()
        });
        bytes += (message.key().map_or(0, <[u8]>::len) + message.payload().map_or(0, <[u8]>::len) + headers) as u64;
        read += 1;
    }
    Ok(bytes)
}
