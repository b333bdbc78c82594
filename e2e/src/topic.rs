//! Reads a topic from its beginning, accumulating records across calls, so a
//! test can wait for "N records" with a deadline.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::PARTITIONS;

/// One record read back from a topic.
#[derive(Debug, Clone)]
pub struct TopicRecord {
    /// The key, as text.
    pub key: Option<String>,
    /// The value's bytes.
    pub payload: Vec<u8>,
    /// Header name → value, as text.
    pub headers: BTreeMap<String, String>,
}

impl TopicRecord {
    /// The value as JSON (orders topic).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|error| panic!("not JSON ({error}): {self:?}"))
    }
}

/// A reader of every partition of one topic, from the beginning.
pub struct TopicReader {
    consumer: BaseConsumer,
    /// Everything read so far, in arrival order.
    pub records: Vec<TopicRecord>,
}

impl TopicReader {
    /// Starts reading `topic` on `brokers` from its first record.
    pub fn new(brokers: &str, topic: &str) -> TopicReader {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("reader-{topic}"))
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut assignment = TopicPartitionList::new();
        for partition in 0..PARTITIONS {
            assignment.add_partition_offset(topic, partition, Offset::Beginning).unwrap();
        }
        consumer.assign(&assignment).unwrap();
        TopicReader { consumer, records: Vec::new() }
    }

    /// Reads until at least `count` records were read in all, or `timeout`
    /// passed; returns whether the count was reached.
    pub fn wait_for(&mut self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.records.len() < count && Instant::now() < deadline {
            if let Some(Ok(message)) = self.consumer.poll(Duration::from_millis(50)) {
                let headers = message
                    .headers()
                    .map(|headers| {
                        headers
                            .iter()
                            .map(|h| (h.key.to_string(), String::from_utf8_lossy(h.value.unwrap_or_default()).into()))
                            .collect()
                    })
                    .unwrap_or_default();
                self.records.push(TopicRecord {
                    key: message.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    payload: message.payload().unwrap_or_default().to_vec(),
                    headers,
                });
            }
        }
        self.records.len() >= count
    }
}
