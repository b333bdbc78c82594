//! The highest file epoch already on the topics, read at start and again
//! before each scan that finds new files.
//!
//! A file's epoch (see `schema::message::source_version`) comes from the
//! producer's own counter and the wall clock. The counter lives in the state
//! folder; when that folder is lost, or when another producer writes to the
//! same topics, the clock alone could give an epoch below one already used
//! (the counter runs ahead of the clock when more than one file starts per
//! clock step). The topics remember: every record carries its version, so
//! the highest epoch among each partition's last records is a floor that
//! every new epoch stays above.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use schema::message::epoch_of_version;
use schema::FoundProvenance;

use crate::config::KafkaConfig;
use crate::publisher::client_config;

/// How many of each partition's last records are read: more than one, since
/// a re-read of an old file may have written lower versions last.
const TAIL_RECORDS: i64 = 64;

/// Reads the highest epoch on the topics. It keeps one Kafka client for the
/// process's life: a new client per scan would connect to every broker again
/// each time a file appears.
pub struct EpochFloorReader {
    /// Assigned partitions by hand for each read and unassigned after it, so
    /// it fetches nothing between reads; it never joins the group.
    consumer: BaseConsumer,
}

impl EpochFloorReader {
    /// Creates the client; it connects on the first read.
    pub fn new(kafka: &KafkaConfig) -> Result<EpochFloorReader, KafkaError> {
        let consumer = client_config(kafka)
            // Never joins the group: partitions are assigned by hand, nothing is committed.
            .set("group.id", "orderstream-producer-epoch-floor")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()?;
        Ok(EpochFloorReader { consumer })
    }

    /// The highest epoch among the last records of every partition of
    /// `topics`, or `None` when they hold no versioned record. Blocking: run
    /// it on a blocking thread. A topic just created may not have its
    /// partition leaders yet: failed reads are tried again until `timeout`
    /// has passed.
    pub fn highest_epoch_on_topics(&self, topics: &[&str], timeout: Duration) -> Result<Option<u64>, KafkaError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.read_once(topics, deadline) {
                Err(_) if Instant::now() + RETRY_PAUSE < deadline => std::thread::sleep(RETRY_PAUSE),
                result => return result,
            }
        }
    }

    /// One read of the partitions' tails; the assignment is released
    /// whatever the outcome, so no records are fetched until the next read.
    fn read_once(&self, topics: &[&str], deadline: Instant) -> Result<Option<u64>, KafkaError> {
        let read = self.read_tails(topics, deadline);
        let released = self.consumer.unassign();
        let highest = read?;
        released?;
        Ok(highest)
    }

    fn read_tails(&self, topics: &[&str], deadline: Instant) -> Result<Option<u64>, KafkaError> {
        let mut highest = None;
        let tail = |low: i64, high: i64| (high - TAIL_RECORDS).max(low);
        for topic in topics {
            clients::partitions::read_to_high_watermarks(&self.consumer, topic, tail, deadline, |message| {
                highest = highest.max(version_header(message).map(epoch_of_version));
            })?;
        }
        Ok(highest)
    }
}

/// The pause between two tries of a failed read.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

fn version_header(message: &impl Message) -> Option<i64> {
    FoundProvenance::find(clients::headers::header_pairs(message.headers())).source_version().ok()
}
