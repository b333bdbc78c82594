//! `orderstream-consumer replay --to-earliest | --to-datetime T [--yes]`:
//! the group reads the orders topic again from an earlier point.
//!
//! The consumer keeps two positions per partition: the offsets stored in
//! PostgreSQL (`consumer_offsets`, in the transaction of the rows: the
//! truth) and the group's committed offsets in Kafka (where a consumer
//! starts reading, and what lag monitoring reads). Replay moves both, and
//! only ever back: a partition already before the target stays where it is,
//! so no record is skipped.
//!
//! # Why this order, and why it cannot go wrong
//!
//! 1. It refuses while the group has live members (Kafka's group
//!    description), naming them: a running consumer would commit its own
//!    position over Kafka's moved one.
//! 2. PostgreSQL first, in one transaction that locks the group's rows.
//! 3. Kafka's committed offsets second.
//!
//! Stopped between 2 and 3, Kafka is ahead of PostgreSQL: a consumer
//! starting there finds its first records above the stored offsets and
//! seeks back to them (see `offsets::plan`), so the replay still happens in
//! full, though a partition is only sought back once a new record arrives
//! in it; running the command again aligns Kafka at once. The other order,
//! stopped half way, would leave PostgreSQL ahead: the consumer would drop
//! the records below the stored offsets as already applied, and the replay
//! would silently not happen. A consumer that starts between 1 and 2 is
//! harmless too: its batches lock the same rows, see the moved offsets and
//! seek back; Kafka then refuses the commit of 3 (the group is not empty),
//! which is reported.
//!
//! Replayed records are harmless: the version guard leaves every row that
//! is as new or newer unchanged, and re-inserts rows that are missing.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clients::Database;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use thiserror::Error;

use crate::config::Config;
use crate::config::TopicReplayArgs;
use crate::kafka::kafka_config;
use crate::offsets;

/// How long each Kafka request may take.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a replay was refused or failed.
#[derive(Debug, Error)]
pub enum TopicReplayError {
    /// The group has members: they must be stopped first.
    #[error(
        "group {group} has {} live member(s): {}; stop every consumer of the group first",
        members.len(), members.join(", ")
    )]
    LiveMembers {
        /// The group.
        group: String,
        /// Each member as `member-id (client-id@host)`.
        members: Vec<String>,
    },
    /// A Kafka request failed.
    #[error("Kafka, {operation}")]
    Kafka {
        /// What was being done.
        operation: &'static str,
        /// Kafka's answer.
        source: KafkaError,
    },
    /// The topic has no partitions (it does not exist).
    #[error("topic {0} has no partitions: does it exist?")]
    NoPartitions(String),
    /// The database URL is unusable.
    #[error("invalid database configuration")]
    DatabaseConfig(#[from] clients::DatabaseConfigError),
    /// The stored offsets could not be read or moved; nothing moved.
    #[error("PostgreSQL, moving the stored offsets (nothing moved)")]
    Database(#[source] tokio_postgres::Error),
    /// PostgreSQL's offsets moved, Kafka's did not: consumers still replay
    /// (they seek back to the stored offsets), but lag monitoring is off.
    #[error(
        "the stored offsets in PostgreSQL moved (consumers will replay from them), but Kafka refused the group's \
         committed offsets; run the same command again once the group is stopped"
    )]
    KafkaCommit(#[source] KafkaError),
}

/// One partition's move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetMove {
    /// Where the group stands now.
    pub from: i64,
    /// Where it will read from next.
    pub to: i64,
}

/// What a replay did, or would do without `--yes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicReplayReport {
    /// Partition → move.
    pub moves: BTreeMap<i32, OffsetMove>,
    /// Whether the offsets were moved (`--yes`).
    pub applied: bool,
}

impl TopicReplayReport {
    /// Records the group will read again.
    pub fn records_to_replay(&self) -> i64 {
        self.moves.values().map(|step| step.from - step.to).sum()
    }
}

impl std::fmt::Display for TopicReplayReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let moves: Vec<String> =
            self.moves.iter().map(|(partition, step)| format!("{partition}: {}→{}", step.from, step.to)).collect();
        let verb = if self.applied { "moved" } else { "would move (pass --yes to move them)" };
        write!(f, "offsets {verb}: {}; {} record(s) to replay", moves.join(", "), self.records_to_replay())
    }
}

/// The moves to make: each partition goes to its target, but never forward.
/// `current` is where the group stands (stored offset, else Kafka's
/// committed one, else the first record: where a consumer would start).
pub fn plan_moves(current: &BTreeMap<i32, i64>, target: &BTreeMap<i32, i64>) -> BTreeMap<i32, OffsetMove> {
    target
        .iter()
        .map(|(&partition, &to)| {
            let from = current.get(&partition).copied().unwrap_or(to);
            (partition, OffsetMove { from, to: to.min(from) })
        })
        .collect()
}

/// Runs the replay; see the module doc for the order of the steps.
pub async fn replay_topic(config: &Config, args: &TopicReplayArgs) -> Result<TopicReplayReport, TopicReplayError> {
    let kafka = KafkaSide::connect(config)?;
    kafka.refuse_live_members()?;
    let PartitionOffsets { earliest, latest, target } = kafka.target_offsets(args.to_datetime)?;
    let committed = kafka.committed(&earliest)?;

    let database = Database::from_args(&config.database)?;
    let mut client = database.connect().await.map_err(TopicReplayError::Database)?;
    let transaction = client.transaction().await.map_err(TopicReplayError::Database)?;
    let stored = offsets::lock_all_stored(&transaction, &config.group.name, &config.topic.name)
        .await
        .map_err(TopicReplayError::Database)?;
    let current: BTreeMap<i32, i64> = earliest
        .iter()
        .map(|(&partition, &first)| {
            let at = stored.get(&partition).or(committed.get(&partition)).copied().unwrap_or(first);
            (partition, at)
        })
        .collect();
    let mut moves = plan_moves(&current, &target);
    // A partition that never held a record and has no stored row has nothing to replay.
    moves.retain(|partition, _| stored.contains_key(partition) || latest[partition] > earliest[partition]);
    if !args.yes {
        return Ok(TopicReplayReport { moves, applied: false });
    }
    let targets = moves.iter().map(|(&partition, step)| (partition, step.to)).collect();
    offsets::store_replay_positions(&transaction, &config.group.name, &config.topic.name, &targets)
        .await
        .map_err(TopicReplayError::Database)?;
    transaction.commit().await.map_err(TopicReplayError::Database)?;
    kafka.commit(&moves)?;
    Ok(TopicReplayReport { moves, applied: true })
}

/// Per partition of the topic: where it starts and ends now, and where the replay goes back to.
struct PartitionOffsets {
    /// The first offset Kafka holds.
    earliest: BTreeMap<i32, i64>,
    /// One past the last record (the high watermark).
    latest: BTreeMap<i32, i64>,
    /// Where to read from again.
    target: BTreeMap<i32, i64>,
}

/// The group's side in Kafka: a client with the group's id that never joins
/// it (partitions are never assigned; commits are made by hand).
struct KafkaSide {
    consumer: BaseConsumer,
    group: String,
    topic: String,
}

impl KafkaSide {
    fn connect(config: &Config) -> Result<KafkaSide, TopicReplayError> {
        let consumer = kafka_config(config)
            .set("group.id", &config.group.name)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|source| TopicReplayError::Kafka { operation: "creating the client", source })?;
        Ok(KafkaSide { consumer, group: config.group.name.clone(), topic: config.topic.name.clone() })
    }

    fn refuse_live_members(&self) -> Result<(), TopicReplayError> {
        let groups = self
            .consumer
            .fetch_group_list(Some(&self.group), KAFKA_TIMEOUT)
            .map_err(|source| TopicReplayError::Kafka { operation: "describing the group", source })?;
        let members: Vec<String> = groups
            .groups()
            .iter()
            .flat_map(|group| group.members())
            .map(|member| format!("{} ({}@{})", member.id(), member.client_id(), member.client_host()))
            .collect();
        if members.is_empty() {
            return Ok(());
        }
        Err(TopicReplayError::LiveMembers { group: self.group.clone(), members })
    }

    /// The partitions' offsets now, and the ones to go back to.
    fn target_offsets(&self, to_datetime: Option<DateTime<Utc>>) -> Result<PartitionOffsets, TopicReplayError> {
        let kafka = |operation| move |source| TopicReplayError::Kafka { operation, source };
        let partitions = clients::partitions::partition_ids(&self.consumer, &self.topic, KAFKA_TIMEOUT)
            .map_err(kafka("reading the topic"))?;
        if partitions.is_empty() {
            return Err(TopicReplayError::NoPartitions(self.topic.clone()));
        }
        let watermarks =
            clients::partitions::watermarks(&self.consumer, &self.topic, partitions.iter().copied(), KAFKA_TIMEOUT)
                .map_err(kafka("reading the watermarks"))?;
        let earliest: BTreeMap<i32, i64> = watermarks.iter().map(|(&partition, &(low, _))| (partition, low)).collect();
        let latest: BTreeMap<i32, i64> = watermarks.iter().map(|(&partition, &(_, high))| (partition, high)).collect();
        let Some(time) = to_datetime else {
            return Ok(PartitionOffsets { target: earliest.clone(), earliest, latest });
        };
        let mut query = TopicPartitionList::new();
        for &partition in &partitions {
            query
                .add_partition_offset(&self.topic, partition, Offset::Offset(time.timestamp_millis()))
                .map_err(kafka("asking for the offsets of a time"))?;
        }
        let found =
            self.consumer.offsets_for_times(query, KAFKA_TIMEOUT).map_err(kafka("asking for the offsets of a time"))?;
        let target = partitions
            .iter()
            .map(|&partition| {
                let offset = match found.find_partition(&self.topic, partition).map(|element| element.offset()) {
                    Some(Offset::Offset(offset)) => offset,
                    // No record at or after the time: nothing to replay there.
                    _ => latest[&partition],
                };
                (partition, offset.max(earliest[&partition]))
            })
            .collect();
        Ok(PartitionOffsets { earliest, latest, target })
    }

    /// The group's committed offsets, for the partitions that have one.
    fn committed(&self, partitions: &BTreeMap<i32, i64>) -> Result<BTreeMap<i32, i64>, TopicReplayError> {
        let mut query = TopicPartitionList::new();
        for &partition in partitions.keys() {
            query.add_partition(&self.topic, partition);
        }
        let committed = self
            .consumer
            .committed_offsets(query, KAFKA_TIMEOUT)
            .map_err(|source| TopicReplayError::Kafka { operation: "reading the committed offsets", source })?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|element| match element.offset() {
                Offset::Offset(offset) => Some((element.partition(), offset)),
                _ => None,
            })
            .collect())
    }

    fn commit(&self, moves: &BTreeMap<i32, OffsetMove>) -> Result<(), TopicReplayError> {
        let mut offsets = TopicPartitionList::new();
        for (&partition, step) in moves {
            offsets
                .add_partition_offset(&self.topic, partition, Offset::Offset(step.to))
                .map_err(TopicReplayError::KafkaCommit)?;
        }
        self.consumer.commit(&offsets, CommitMode::Sync).map_err(TopicReplayError::KafkaCommit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_move_back_to_the_target_and_never_forward() {
        let current = BTreeMap::from([(0, 100), (1, 5), (2, 40)]);
        let target = BTreeMap::from([(0, 20), (1, 30), (2, 40)]);
        let moves = plan_moves(&current, &target);
        assert_eq!(moves[&0], OffsetMove { from: 100, to: 20 });
        assert_eq!(moves[&1], OffsetMove { from: 5, to: 5 }, "not yet at the target: stays, nothing skipped");
        assert_eq!(moves[&2], OffsetMove { from: 40, to: 40 });
        let report = TopicReplayReport { moves, applied: false };
        assert_eq!(report.records_to_replay(), 80);
        assert!(report.to_string().contains("--yes"), "{report}");
    }

    #[test]
    fn exactly_one_target_is_required() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            replay: TopicReplayArgs,
        }
        assert!(Cli::try_parse_from(["r"]).is_err());
        assert!(Cli::try_parse_from(["r", "--to-earliest", "--to-datetime", "2026-01-01T00:00:00Z"]).is_err());
        let at = Cli::try_parse_from(["r", "--to-datetime", "2026-01-01T00:00:00+01:00", "--yes"]).unwrap().replay;
        assert_eq!(at.to_datetime.unwrap().to_rfc3339(), "2025-12-31T23:00:00+00:00");
        assert!(at.yes);
        assert!(Cli::try_parse_from(["r", "--to-datetime", "yesterday"]).is_err());
    }
}
