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
//! fingerprint, path, line and byte offset in headers: records that may be
//! the file's (its device and inode, or its name, with the checksum of any
//! of its first bytes) are candidates, and only an epoch whose records agree
//! with the file's lines, offset and content, is taken (see
//! [`crate::epoch_search`]). When none agrees, nothing is published and the
//! candidates are named. `--epoch` overrides the search.
//!
//! The file is read by the producer's own `FileTailer` and published by its
//! own `Publisher` and refusal handling (`settle`): every line comes out
//! as the producer itself writes it.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use schema::message::{headers, stages};
use schema::{FoundProvenance, OrderMessage};
use thiserror::Error;

use crate::config::ReplayArgs;
use crate::config::{Config, KafkaConfig};
use crate::delivery::{Answer, Answers, InFlight};
use crate::epoch_search::{
    order_digest, Candidate, Candidates, FileLine, FileOrigin, LineContent, MatchKind, SeenRecord,
};
use crate::error::ProducerError;
use crate::identity::{head_of, prefix_checksums, FileIdentity};
use crate::positions::{DeliveredPosition, TrackedFile};
use crate::publisher::{client_config, Enqueued, PublishError, Publisher, RecordSource};
use crate::publisher::{settle, Delivered};
use crate::tailer::{FileTailer, Poll, RecordOutcome, TailedRecord, TailerSettings};

/// Records read from the file per turn.
const READ_BATCH: usize = 1_000;

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
        "no record on the topics comes from {path} (neither its device and inode nor its file name {name}, with \
         the checksum of any of its first 4096 bytes): its original epoch is unknown; pass --epoch N (the \
         source_version header of one of its records divided by 2^36)"
    )]
    EpochUnknown {
        /// The file.
        path: PathBuf,
        /// Its file name, as looked for.
        name: String,
    },
    /// Records on the topics look like this file's, but under no epoch do
    /// they agree with its lines: taking one could make an older copy beat a
    /// correction, so nothing is published.
    #[error(
        "no epoch on the topics agrees with the lines of {path}; candidates: {}; pass --epoch N if you know \
         which one is the file's",
        candidates.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    EpochDisputed {
        /// The file.
        path: PathBuf,
        /// Every candidate epoch, with where it parts ways with the file.
        candidates: Vec<Candidate>,
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
    /// Records on the topics that agree with the file's lines.
    Found(MatchKind),
}

impl fmt::Display for EpochSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EpochSource::Given => f.write_str("given by --epoch"),
            EpochSource::Found(kind) => write!(f, "found {kind}, its records agree with the file"),
        }
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
    /// Other epochs whose records looked like the file's, set aside.
    pub set_aside: Vec<Candidate>,
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
        )?;
        if !self.set_aside.is_empty() {
            let others: Vec<String> = self.set_aside.iter().map(ToString::to_string).collect();
            write!(f, "; set aside: {}", others.join("; "))?;
        }
        Ok(())
    }
}

/// Publishes the file of `args` again with its original epoch; see the module doc.
pub async fn replay(config: &Config, args: &ReplayArgs) -> Result<ReplaySummary, ReplayError> {
    let mut kafka = config.kafka.clone();
    kafka.connection.load_password_file().map_err(PublishError::Settings)?;
    let path = args.file.clone();
    let file_error = |source| ReplayError::File { path: path.clone(), source };
    let file = File::open(&path).map_err(file_error)?;
    let identity = FileIdentity::of(&file).map_err(file_error)?;
    let (epoch, found_by, set_aside) = match args.epoch {
        Some(epoch) => (epoch, EpochSource::Given, Vec::new()),
        None => {
            let origin = origin_of(&path, &file, &identity).map_err(file_error)?;
            let candidates = find_candidates(&kafka, &path, origin, args.scan_timeout).await?;
            let chosen = choose_epoch(config, &path, &identity, candidates)?;
            (chosen.epoch, EpochSource::Found(chosen.found_by), chosen.set_aside)
        }
    };
    require_topics(&kafka).await?;
    let (publisher, answers) = Publisher::new(&kafka, config.max_in_flight)?;
    let tracked = TrackedFile { path: path.clone(), identity, epoch, delivered: DeliveredPosition::default() };
    // A replayed export is finished: a last line without its newline is its
    // final line, published with the version the producer gives it.
    let finished = TailerSettings { final_line_after: Duration::ZERO, ..config.tailer_settings() };
    let tailer = FileTailer::new(&path, file, &tracked, finished).map_err(file_error)?;
    let (orders, dead_letters) = publish_file(&publisher, answers, tailer, config.max_in_flight).await?;
    Ok(ReplaySummary { path, epoch, found_by, set_aside, orders, dead_letters })
}

/// What the file's records on the topics may look like.
fn origin_of(path: &Path, file: &File, identity: &FileIdentity) -> std::io::Result<FileOrigin> {
    Ok(FileOrigin {
        device: identity.device,
        inode: identity.inode,
        name: crate::epoch_search::file_name(&path.to_string_lossy()).to_string(),
        head_checksums: prefix_checksums(&head_of(file)?),
    })
}

/// Reads the file as the producer does, without publishing, and compares
/// every line with the candidates; the epoch that agrees, or the refusal.
fn choose_epoch(
    config: &Config,
    path: &Path,
    identity: &FileIdentity,
    mut candidates: Candidates,
) -> Result<crate::epoch_search::Chosen, ReplayError> {
    if candidates.is_empty() {
        let name = crate::epoch_search::file_name(&path.to_string_lossy()).to_string();
        return Err(ReplayError::EpochUnknown { path: path.to_path_buf(), name });
    }
    let file_error = |source| ReplayError::File { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(file_error)?;
    // The epoch only shapes versions, which the comparison does not look at.
    let tracked = TrackedFile {
        path: path.to_path_buf(),
        identity: *identity,
        epoch: 0,
        delivered: DeliveredPosition::default(),
    };
    let mut tailer = FileTailer::new(path, file, &tracked, config.tailer_settings()).map_err(file_error)?;
    let mut end = 0;
    loop {
        let records = match tailer.next_records(READ_BATCH, chrono::Utc::now()) {
            Ok(Poll::Records(records)) => records,
            Ok(Poll::Truncated) => return Err(ReplayError::Truncated { path: path.to_path_buf() }),
            Err(source) => return Err(file_error(source)),
        };
        let Some(last) = records.last() else { break };
        end = last.end.offset;
        for record in &records {
            candidates.compare(&file_line(record));
        }
    }
    candidates.choose(end).map_err(|candidates| ReplayError::EpochDisputed { path: path.to_path_buf(), candidates })
}

/// One record of the file, as the comparison sees it.
fn file_line(record: &TailedRecord) -> FileLine {
    let order = match &record.outcome {
        RecordOutcome::Order(order, ..) => Some(order_digest(order)),
        RecordOutcome::Rejected(_) | RecordOutcome::Header => None,
    };
    FileLine { offset: record.offset, line: record.line, order, raw: crc32fast::hash(&record.raw) }
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

/// Searches both topics for records that may be the file's (on a blocking thread).
async fn find_candidates(
    kafka: &KafkaConfig,
    path: &Path,
    origin: FileOrigin,
    timeout: Duration,
) -> Result<Candidates, ReplayError> {
    let kafka = kafka.clone();
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + timeout;
        let mut candidates = Candidates::default();
        for (topic, is_dead_letters) in [(&kafka.topic.name, false), (&kafka.dlq_topic.name, true)] {
            scan_topic(&kafka, topic, deadline, |message| {
                if let Some(seen) = seen_record(message, is_dead_letters, &origin) {
                    candidates.note(&origin, seen);
                }
            })?;
        }
        Ok(candidates)
    })
    .await
    .expect("the topic scan does not panic")
    .map_err(|source| ReplayError::Scan { path: path.to_path_buf(), source })
}

/// Reads the source headers of every record `topic` holds now, from its
/// first one to its end when the scan started. Blocking.
fn scan_topic(
    kafka: &KafkaConfig,
    topic: &str,
    deadline: Instant,
    seen: impl FnMut(&rdkafka::message::BorrowedMessage<'_>),
) -> Result<(), KafkaError> {
    let consumer: BaseConsumer = client_config(kafka)
        // Never joins the group: partitions are assigned by hand, nothing is committed.
        .set("group.id", "orderstream-producer-replay")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()?;
    clients::partitions::read_to_high_watermarks(&consumer, topic, |low, _| low, deadline, seen)
}

/// The source headers and content of one record that may be the file's
/// (`None` for the others: their value is not decoded, which would cost the
/// scan a JSON parse per record). On the dead-letter topic, the value is the
/// line's bytes when the producer wrote it.
fn seen_record(message: &impl Message, is_dead_letter: bool, origin: &FileOrigin) -> Option<SeenRecord> {
    let provenance = FoundProvenance::find(clients::headers::header_pairs(message.headers()));
    let fingerprint = provenance.fingerprint().ok()?;
    let file = provenance.source_file().ok();
    origin.matches(fingerprint, file)?;
    let payload = message.payload().unwrap_or_default();
    let content = if !is_dead_letter {
        OrderMessage::decode(payload)
            .map(|decoded| LineContent::Order(order_digest(&decoded.order)))
            .unwrap_or(LineContent::Unreadable)
    } else if stage(message) == Some(stages::CONSUMER) {
        LineContent::Unchecked
    } else {
        LineContent::Raw(crc32fast::hash(payload))
    };
    Some(SeenRecord {
        fingerprint: Some(fingerprint.to_string()),
        file: file.map(str::to_string),
        version: provenance.source_version().ok(),
        offset: provenance.byte_offset().ok(),
        line: provenance.line().ok(),
        read_at_ms: provenance.read_at_ms().ok(),
        content,
    })
}

/// A dead letter's `stage` header: who dead-lettered it.
fn stage(message: &impl Message) -> Option<&str> {
    let header = message.headers()?.iter().find(|header| header.key == headers::STAGE)?;
    std::str::from_utf8(header.value?).ok()
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
    answers: Answers,
    mut tailer: FileTailer,
    max_in_flight: usize,
) -> Result<(u64, u64), ReplayError> {
    let source = RecordSource {
        file: tailer.path().to_string_lossy().into(),
        fingerprint: tailer.identity().fingerprint().into(),
        read_at_ms: chrono::Utc::now().timestamp_millis(),
    };
    let (mut orders, mut dead_letters) = (0, 0);
    let mut count = |published: Option<Published>| match published {
        Some(Published::Order) => orders += 1,
        Some(Published::DeadLetter) => dead_letters += 1,
        None => {}
    };
    let mut in_flight = InFlight::new(answers);
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
            let answer = loop {
                match publisher.enqueue(in_flight.next_ticket(), &source, &record) {
                    Enqueued::Sent => break None,
                    Enqueued::Refused(error) => break Some(Err(error)),
                    // A header: nothing to publish.
                    Enqueued::Nothing => break Some(Ok(())),
                    Enqueued::QueueFull => match in_flight.next().await {
                        Some(answered) => count(confirm(publisher, &source, answered).await?),
                        None => tokio::time::sleep(Duration::from_millis(10)).await,
                    },
                }
            };
            in_flight.push(record, answer);
            while in_flight.len() >= max_in_flight {
                if let Some(answered) = in_flight.next().await {
                    count(confirm(publisher, &source, answered).await?);
                }
            }
        }
    }
    while let Some(answered) = in_flight.next().await {
        count(confirm(publisher, &source, answered).await?);
    }
    Ok((orders, dead_letters))
}

/// Settles Kafka's answer to one record as the producer does; a header
/// counts as nothing.
async fn confirm(
    publisher: &Publisher,
    source: &RecordSource,
    (record, answer): (TailedRecord, Answer),
) -> Result<Option<Published>, ProducerError> {
    match (settle(publisher, source, &record, answer).await?, &record.outcome) {
        (_, RecordOutcome::Header) => Ok(None),
        (Delivered::AsSent, RecordOutcome::Order(..)) => Ok(Some(Published::Order)),
        _ => Ok(Some(Published::DeadLetter)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
