//! Publishing one export again with its original versions:
//! `orderstream-producer replay FILE`.
//!
//! Dropping an old export into the inbox again, under a new name, makes it a
//! new file: it gets a new epoch, larger than every correction published
//! since, so its rows would override those corrections. Replay publishes the
//! file's records with the epoch they had when the producer first read them:
//! the consumer's version guard then keeps every later correction and
//! inserts only the rows that are missing (a table restored from an older
//! backup), and leaves the rest unchanged.
//!
//! The epoch is found on the topics, whose records carry their file's
//! fingerprint, path and version in headers. A record is the file's when
//! 1. its fingerprint (device, inode, checksum of the first bytes) is the
//!    file's: the same file, where it was or renamed; else when
//! 2. its file name and the checksum of its first bytes are the file's: a
//!    copy (restored from an archive, moved to another disk).
//!
//! `--epoch` overrides the search. When several epochs match (a file read
//! again after the producer lost its state), the highest is taken: it is the
//! one whose rows the pipeline stored last.
//!
//! The file is read by the producer's own `FileTailer` and published by its
//! own `Publisher` and refusal handling (`settle`): every line comes out
//! as the producer itself writes it.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::stream::{FuturesOrdered, StreamExt};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::DeliveryFuture;
use rdkafka::{Offset, TopicPartitionList};
use schema::message::{check_epoch, epoch_of_version, headers};
use thiserror::Error;

use crate::config::{Config, KafkaConfig};
use crate::identity::FileIdentity;
use crate::positions::{DeliveredPosition, TrackedFile};
use crate::publisher::{client_config, Enqueued, PublishError, Publisher, RecordSource};
use crate::run::{settle, Delivered, ProducerError};
use crate::tailer::{FileTailer, Poll, RecordOutcome, TailedRecord, TailerSettings};

/// Records read from the file per turn.
const READ_BATCH: usize = 1_000;

/// `orderstream-producer replay FILE`: the producer's other flags (Kafka,
/// topics, `--max-record-bytes`, flag thresholds) come before `replay`, or
/// from their environment variables, so the file is read as the producer reads it.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The export to publish again (in the inbox, in the archive, or a copy).
    pub file: PathBuf,

    /// The file's original epoch, when the topics cannot tell it (its records
    /// were deleted by retention, or the file was edited since): the
    /// `source_version` header of one of its records divided by 2^36. At most
    /// 134217727 (`schema::message::MAX_EPOCH`): larger ones would wrap.
    #[arg(long, env = "ORDERSTREAM_REPLAY_EPOCH", value_parser = parse_epoch)]
    pub epoch: Option<u64>,

    /// Longest the search of the topics for the file's epoch may take (it
    /// reads the headers of every record). A duration: `10m`, `30s`.
    #[arg(long, env = "ORDERSTREAM_REPLAY_SCAN_TIMEOUT", default_value = "10m", value_parser = humantime::parse_duration)]
    pub scan_timeout: Duration,
}

/// `--epoch`: a whole number no larger than the largest epoch, refused by
/// the parser with the limit named, so no version made of it can wrap.
fn parse_epoch(text: &str) -> Result<u64, String> {
    let epoch: u64 = text.parse().map_err(|error| format!("{error}: an epoch is a whole number"))?;
    check_epoch(epoch).map_err(|refused| refused.to_string())
}

/// Why a replay stopped.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// The file cannot be opened or read.
    #[error("cannot read {path}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The topics could not be searched for the file's epoch.
    #[error("cannot search the topics for the epoch of {path}")]
    Scan {
        /// The file.
        path: PathBuf,
        /// Kafka's answer.
        source: KafkaError,
    },
    /// No record on the topics comes from this file: publishing it with a
    /// guessed epoch could override corrections, so nothing is published.
    #[error(
        "no record on the topics comes from {path} (fingerprint {}, nor file name {} with first-bytes checksum {:08x}): \
         its original epoch is unknown; pass --epoch N (the source_version header of one of its records divided by 2^36)",
        origin.fingerprint, origin.name, origin.head_crc
    )]
    EpochUnknown {
        /// The file.
        path: PathBuf,
        /// What was looked for.
        origin: FileOrigin,
    },
    /// A topic to publish to does not exist: the records would wait for it
    /// forever (the producer never gives up on a record).
    #[error("topic {topic} does not exist (or cannot be described): {reason}")]
    NoTopic {
        /// The topic.
        topic: String,
        /// What Kafka said.
        reason: String,
    },
    /// The file became shorter while it was read.
    #[error("{path} was truncated while being replayed; nothing after that point was published")]
    Truncated {
        /// The file.
        path: PathBuf,
    },
    /// The Kafka client could not be created.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// Kafka refused a record (see the producer's own refusal handling).
    #[error(transparent)]
    Delivery(#[from] ProducerError),
}

/// How the epoch a file was replayed with was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochSource {
    /// `--epoch`.
    Given,
    /// Records with the file's fingerprint.
    Fingerprint,
    /// Records with the file's name and first-bytes checksum.
    NameAndHead,
}

impl fmt::Display for EpochSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EpochSource::Given => "given by --epoch",
            EpochSource::Fingerprint => "found by fingerprint",
            EpochSource::NameAndHead => "found by file name and first bytes",
        })
    }
}

/// What one replay did: the line it prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaySummary {
    /// The file replayed.
    pub path: PathBuf,
    /// The epoch its records were published with.
    pub epoch: u64,
    /// How that epoch was found.
    pub found_by: EpochSource,
    /// Orders published on the orders topic.
    pub orders: u64,
    /// Lines published on the dead-letter topic.
    pub dead_letters: u64,
}

impl fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "replayed {} with epoch {} ({}): {} records, {} dead letters",
            self.path.display(),
            self.epoch,
            self.found_by,
            self.orders,
            self.dead_letters
        )
    }
}

/// What identifies a file's records on the topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOrigin {
    /// Its fingerprint now, as in the `source_fingerprint` header.
    pub fingerprint: String,
    /// Its file name (without folder).
    pub name: String,
    /// The checksum of its first bytes (the fingerprint's last part).
    pub head_crc: u32,
}

impl FileOrigin {
    /// The origin of the file at `path` with `identity`.
    pub fn of(path: &Path, identity: &FileIdentity) -> FileOrigin {
        FileOrigin {
            fingerprint: identity.fingerprint(),
            name: file_name(&path.to_string_lossy()).to_string(),
            head_crc: identity.head_crc,
        }
    }
}

/// The source headers of one record on the topics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeenSource {
    /// `source_fingerprint`.
    pub fingerprint: Option<String>,
    /// `source_file`.
    pub file: Option<String>,
    /// `source_version`.
    pub version: Option<i64>,
}

/// The highest epoch of the file's records seen so far, per kind of match.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EpochMatches {
    by_fingerprint: Option<u64>,
    by_name_and_head: Option<u64>,
}

impl EpochMatches {
    /// Takes one record into account.
    pub fn note(&mut self, origin: &FileOrigin, seen: &SeenSource) {
        let (Some(fingerprint), Some(version)) = (&seen.fingerprint, seen.version) else { return };
        let epoch = epoch_of_version(version);
        if *fingerprint == origin.fingerprint {
            self.by_fingerprint = self.by_fingerprint.max(Some(epoch));
        } else if head_crc_of(fingerprint) == Some(origin.head_crc)
            && seen.file.as_deref().map(file_name) == Some(origin.name.as_str())
        {
            self.by_name_and_head = self.by_name_and_head.max(Some(epoch));
        }
    }

    /// The epoch to replay with: a fingerprint match wins over a name match.
    pub fn best(&self) -> Option<(u64, EpochSource)> {
        self.by_fingerprint
            .map(|epoch| (epoch, EpochSource::Fingerprint))
            .or(self.by_name_and_head.map(|epoch| (epoch, EpochSource::NameAndHead)))
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The last part of a fingerprint (`device:inode:head_crc`, hexadecimal).
fn head_crc_of(fingerprint: &str) -> Option<u32> {
    u32::from_str_radix(fingerprint.rsplit(':').next()?, 16).ok()
}

/// Publishes the file of `args` again with its original epoch; see the module doc.
pub async fn replay(config: &Config, args: &ReplayArgs) -> Result<ReplaySummary, ReplayError> {
    let mut kafka = config.kafka.clone();
    kafka.connection.load_password_file().map_err(PublishError::Settings)?;
    let path = args.file.clone();
    let file_error = |source| ReplayError::File { path: path.clone(), source };
    let file = File::open(&path).map_err(file_error)?;
    let identity = FileIdentity::of(&file).map_err(file_error)?;
    let (epoch, found_by) = match args.epoch {
        Some(epoch) => (epoch, EpochSource::Given),
        None => find_epoch(&kafka, &path, FileOrigin::of(&path, &identity), args.scan_timeout).await?,
    };
    require_topics(&kafka).await?;
    let publisher = Publisher::new(&kafka, config.max_in_flight)?;
    let tracked = TrackedFile { path: path.clone(), identity, epoch, delivered: DeliveredPosition::default() };
    // A replayed export is finished: a last line without its newline is its
    // final line, published with the version the producer gives it.
    let finished = TailerSettings { final_line_after: Duration::ZERO, ..config.tailer_settings() };
    let tailer = FileTailer::new(&path, file, &tracked, finished).map_err(file_error)?;
    let (orders, dead_letters) = publish_file(&publisher, tailer, config.max_in_flight).await?;
    Ok(ReplaySummary { path, epoch, found_by, orders, dead_letters })
}

/// Refuses when the orders or dead-letter topic does not exist.
async fn require_topics(kafka: &KafkaConfig) -> Result<(), ReplayError> {
    let kafka = kafka.clone();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client_config(&kafka)
            .create()
            .map_err(|error| ReplayError::NoTopic { topic: kafka.topic.name.clone(), reason: error.to_string() })?;
        for topic in [&kafka.topic.name, &kafka.dlq_topic.name] {
            let missing = |reason: String| ReplayError::NoTopic { topic: topic.clone(), reason };
            let metadata =
                consumer.fetch_metadata(Some(topic), Duration::from_secs(30)).map_err(|e| missing(e.to_string()))?;
            match metadata.topics().first() {
                Some(found) if found.error().is_none() && !found.partitions().is_empty() => {}
                Some(found) => return Err(missing(format!("{:?}", found.error()))),
                None => return Err(missing("not in the cluster's metadata".into())),
            }
        }
        Ok(())
    })
    .await
    .expect("the topic check does not panic")
}

/// Searches both topics for the file's records (on a blocking thread).
async fn find_epoch(
    kafka: &KafkaConfig,
    path: &Path,
    origin: FileOrigin,
    timeout: Duration,
) -> Result<(u64, EpochSource), ReplayError> {
    let kafka = kafka.clone();
    let looked_for = origin.clone();
    let matches = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + timeout;
        let mut matches = EpochMatches::default();
        for topic in [&kafka.topic.name, &kafka.dlq_topic.name] {
            scan_topic(&kafka, topic, deadline, |seen| matches.note(&looked_for, &seen))?;
        }
        Ok(matches)
    })
    .await
    .expect("the topic scan does not panic")
    .map_err(|source| ReplayError::Scan { path: path.to_path_buf(), source })?;
    matches.best().ok_or_else(|| ReplayError::EpochUnknown { path: path.to_path_buf(), origin })
}

/// Reads the source headers of every record `topic` holds now, from its
/// first one to its end when the scan started. Blocking.
fn scan_topic(
    kafka: &KafkaConfig,
    topic: &str,
    deadline: Instant,
    mut seen: impl FnMut(SeenSource),
) -> Result<(), KafkaError> {
    let remaining = || deadline.saturating_duration_since(Instant::now());
    let consumer: BaseConsumer = client_config(kafka)
        // Never joins the group: partitions are assigned by hand, nothing is committed.
        .set("group.id", "orderstream-producer-replay")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), remaining())?;
    let mut assignment = TopicPartitionList::new();
    let mut ends = std::collections::BTreeMap::new();
    for partition in metadata.topics().iter().flat_map(|topic| topic.partitions()) {
        let (low, high) = consumer.fetch_watermarks(topic, partition.id(), remaining())?;
        if high > low {
            assignment.add_partition_offset(topic, partition.id(), Offset::Offset(low))?;
            ends.insert(partition.id(), high);
        }
    }
    if ends.is_empty() {
        return Ok(());
    }
    consumer.assign(&assignment)?;
    while !ends.is_empty() {
        if Instant::now() >= deadline {
            return Err(KafkaError::Global(rdkafka::types::RDKafkaErrorCode::OperationTimedOut));
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                seen(seen_source(&message));
                if ends.get(&message.partition()).is_some_and(|end| message.offset() + 1 >= *end) {
                    ends.remove(&message.partition());
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                ends.remove(&partition);
            }
            Some(Err(error)) => return Err(error),
            None => {}
        }
    }
    Ok(())
}

fn seen_source(message: &impl Message) -> SeenSource {
    let mut seen = SeenSource::default();
    let Some(headers) = message.headers() else { return seen };
    for header in headers.iter() {
        let Some(value) = header.value.and_then(|value| std::str::from_utf8(value).ok()) else { continue };
        match header.key {
            headers::SOURCE_FINGERPRINT => seen.fingerprint = Some(value.to_string()),
            headers::SOURCE_FILE => seen.file = Some(value.to_string()),
            headers::SOURCE_VERSION => seen.version = value.parse().ok(),
            _ => {}
        }
    }
    seen
}

/// What one published record became.
enum Published {
    Order,
    DeadLetter,
}

/// Reads the whole file with `tailer` and publishes every record, at most
/// `max_in_flight` unconfirmed; returns (orders, dead letters) once Kafka
/// confirmed them all.
async fn publish_file(
    publisher: &Publisher,
    mut tailer: FileTailer,
    max_in_flight: usize,
) -> Result<(u64, u64), ReplayError> {
    let source = RecordSource {
        file: tailer.path().to_string_lossy().into(),
        fingerprint: tailer.identity().fingerprint().into(),
        read_at_ms: chrono::Utc::now().timestamp_millis(),
    };
    let (mut orders, mut dead_letters) = (0, 0);
    let mut count = |published: Published| match published {
        Published::Order => orders += 1,
        Published::DeadLetter => dead_letters += 1,
    };
    let mut in_flight = FuturesOrdered::new();
    loop {
        let records = match tailer.next_records(READ_BATCH, chrono::Utc::now()) {
            Ok(Poll::Records(records)) => records,
            Ok(Poll::Truncated) => return Err(ReplayError::Truncated { path: tailer.path().to_path_buf() }),
            Err(source) => return Err(ReplayError::File { path: tailer.path().to_path_buf(), source }),
        };
        if records.is_empty() {
            break;
        }
        for record in records {
            let sent = loop {
                match publisher.enqueue(&source, &record) {
                    Enqueued::Sent(delivery) => break Some(Ok(delivery)),
                    Enqueued::Refused(error) => break Some(Err(error)),
                    // A header: nothing to publish.
                    Enqueued::Nothing => break None,
                    Enqueued::QueueFull => match in_flight.next().await {
                        Some(result) => count(result?),
                        None => tokio::time::sleep(Duration::from_millis(10)).await,
                    },
                }
            };
            let Some(sent) = sent else { continue };
            in_flight.push_back(confirm(publisher.clone(), source.clone(), record, sent));
            while in_flight.len() >= max_in_flight {
                if let Some(result) = in_flight.next().await {
                    count(result?);
                }
            }
        }
    }
    while let Some(result) = in_flight.next().await {
        count(result?);
    }
    Ok((orders, dead_letters))
}

/// Waits for Kafka's answer to one record and settles it as the producer does.
async fn confirm(
    publisher: Publisher,
    source: RecordSource,
    record: TailedRecord,
    sent: Result<DeliveryFuture, KafkaError>,
) -> Result<Published, ProducerError> {
    let answer = match sent {
        Ok(delivery) => match delivery.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((error, _))) => Err(error),
            Err(_canceled) => Err(KafkaError::Canceled),
        },
        Err(error) => Err(error),
    };
    match (settle(&publisher, &source, &record, answer).await?, &record.outcome) {
        (Delivered::AsSent, RecordOutcome::Order(..)) => Ok(Published::Order),
        _ => Ok(Published::DeadLetter),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::message::source_version;

    fn origin() -> FileOrigin {
        FileOrigin { fingerprint: "801:1f:0a0b0c0d".into(), name: "2022_07.csv".into(), head_crc: 0x0a0b0c0d }
    }

    fn seen(fingerprint: &str, file: &str, epoch: u64) -> SeenSource {
        SeenSource {
            fingerprint: Some(fingerprint.into()),
            file: Some(file.into()),
            version: Some(source_version(epoch, 120).unwrap()),
        }
    }

    #[test]
    fn the_fingerprint_wins_over_a_copy_with_the_same_name_and_head() {
        let mut matches = EpochMatches::default();
        matches.note(&origin(), &seen("801:99:0a0b0c0d", "/archive/2022_07.csv", 90));
        assert_eq!(matches.best(), Some((90, EpochSource::NameAndHead)));
        matches.note(&origin(), &seen("801:1f:0a0b0c0d", "/inbox/renamed.csv", 70));
        assert_eq!(matches.best(), Some((70, EpochSource::Fingerprint)));
    }

    #[test]
    fn the_highest_matching_epoch_is_the_one_stored() {
        let mut matches = EpochMatches::default();
        for epoch in [70, 95, 80] {
            matches.note(&origin(), &seen("801:1f:0a0b0c0d", "/inbox/2022_07.csv", epoch));
        }
        assert_eq!(matches.best(), Some((95, EpochSource::Fingerprint)));
    }

    #[test]
    fn another_file_or_another_content_under_the_same_name_never_matches() {
        let mut matches = EpochMatches::default();
        matches.note(&origin(), &seen("801:2f:ffffffff", "/inbox/2022_07.csv", 90));
        matches.note(&origin(), &seen("801:2f:0a0b0c0d", "/inbox/2022_08.csv", 91));
        matches.note(&origin(), &SeenSource { fingerprint: Some("801:1f:0a0b0c0d".into()), ..SeenSource::default() });
        assert_eq!(matches.best(), None);
    }

    #[test]
    fn an_epoch_past_the_largest_is_refused_naming_the_largest() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            replay: ReplayArgs,
        }
        assert_eq!(Cli::try_parse_from(["r", "a.csv", "--epoch", "7"]).unwrap().replay.epoch, Some(7));
        let largest = schema::message::MAX_EPOCH.to_string();
        assert_eq!(Cli::try_parse_from(["r", "a.csv", "--epoch", &largest]).unwrap().replay.epoch, Some(134_217_727));
        for too_large in ["134217728", "18446744073709551615"] {
            let refused = Cli::try_parse_from(["r", "a.csv", "--epoch", too_large]).err().expect(too_large).to_string();
            assert!(refused.contains("past the largest epoch, 134217727"), "{refused}");
        }
        assert!(Cli::try_parse_from(["r", "a.csv", "--epoch", "-1"]).is_err());
    }
}
