//! Reads a topic from its beginning, accumulating records across calls, so a
//! test can wait for "N records" with a deadline.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::PARTITIONS;

/// One record read back from a topic.
#[derive(Debug, Clone)]
pub struct TopicRecord {
    /// The key, as text.
    pub key: Option<String>,
    /// The value's bytes.
    pub payload: Vec<u8>,
    /// Header name → value, as text; a packed `provenance` header's fields
    /// also under their own names (`source_file`, `line`, …), so a test
    /// reads either wire version the same way.
    pub headers: BTreeMap<String, String>,
    /// The headers' bytes as they were on the wire: names, values and two
    /// length bytes each.
    pub header_bytes: usize,
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
                let (headers, header_bytes) = read_headers(&message);
                self.records.push(TopicRecord {
                    key: message.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    payload: message.payload().unwrap_or_default().to_vec(),
                    headers,
                    header_bytes,
                });
            }
        }
        self.records.len() >= count
    }
}

/// A record's headers as text, with a packed provenance's fields under
/// their own names, and their size on the wire.
fn read_headers(message: &impl Message) -> (BTreeMap<String, String>, usize) {
    let pairs: Vec<(&str, Option<&[u8]>)> = clients::headers::header_pairs(message.headers()).collect();
    let text = |value: Option<&[u8]>| String::from_utf8_lossy(value.unwrap_or_default()).into_owned();
    let mut headers: BTreeMap<String, String> =
        pairs.iter().map(|(name, value)| (name.to_string(), text(*value))).collect();
    if headers.contains_key(schema::message::headers::PROVENANCE) {
        for (name, value) in schema::FoundProvenance::find(pairs.iter().copied()).fields() {
            headers.insert(name.to_string(), text(Some(value)));
        }
    }
    let bytes = pairs.iter().map(|(name, value)| name.len() + value.map_or(0, <[u8]>::len) + 2).sum();
    (headers, bytes)
}

/// Sets one configuration value of a topic (replacing its other dynamic
/// values) and waits until the broker reports it, so what follows meets it.
pub async fn set_topic_config(brokers: &str, topic: &str, name: &str, value: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().expect("admin client");
    let change = AlterConfig::new(ResourceSpecifier::Topic(topic)).set(name, value);
    for result in admin.alter_configs(&[change], &AdminOptions::new()).await.expect("alter configs") {
        result.expect("topic config changed");
    }
    let applied = crate::poll_until(Duration::from_secs(30), || async {
        let described = admin.describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new()).await;
        described
            .ok()
            .and_then(|mut resources| resources.pop())
            .and_then(Result::ok)
            .is_some_and(|resource| resource.get(name).and_then(|entry| entry.value.as_deref()) == Some(value))
    })
    .await;
    assert!(applied, "topic {topic} never reported {name}={value}");
}

/// Deletes the records of one partition below offset `before`, as Kafka's
/// retention would (the broker's DeleteRecords), so a test can make offsets
/// disappear before a consumer read them; returns the partition's new low
/// watermark.
pub async fn delete_records_before(brokers: &str, topic: &str, partition: i32, before: i64) -> i64 {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().expect("admin client");
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset(topic, partition, Offset::Offset(before)).unwrap();
    let deleted = admin.delete_records(&offsets, &AdminOptions::new()).await.expect("delete records");
    let element = deleted.find_partition(topic, partition).expect("the partition in the answer");
    element.error().expect("records deleted");
    match element.offset() {
        Offset::Offset(low_watermark) => low_watermark,
        other => panic!("DeleteRecords answered {other:?} for {topic}/{partition}"),
    }
}

impl TopicRecord {
    /// About how many bytes the record takes in a batch of its own, before
    /// compression: key, value, headers, and the batch's and record's framing.
    pub fn batch_bytes(&self) -> usize {
        const BATCH_HEADER: usize = 61;
        const RECORD_FRAMING: usize = 12;
        BATCH_HEADER
            + RECORD_FRAMING
            + self.key.as_ref().map_or(0, String::len)
            + self.payload.len()
            + self.header_bytes
    }
}
