//! The consumer's configuration: every setting is a flag and an environment
//! variable, with defaults for a local run.

use std::time::Duration;

use clap::builder::PossibleValuesParser;
use clap::{Parser, Subcommand};
use telemetry::duration::DurationParser;
use thiserror::Error;

use crate::dead_letters::reasons;

/// Most bytes one fetch response carries (`fetch.max.bytes`).
pub const FETCH_MAX_BYTES: usize = 16 * 1024 * 1024;
/// Most bytes fetched per partition at a time (`max.partition.fetch.bytes`).
///
/// Counted *compressed*, and it is what bounds a backlogged consumer's
/// memory: librdkafka checks its prefetch bounds (`queued.min.messages`,
/// and `queued.max.messages.kbytes`, which counts keys and values only)
/// before a fetch, not within one, and each record it returns holds its
/// message set decompressed, headers included. Orders compress about 7 to 1
/// (the provenance and `columns` headers repeat on every record: ~57 bytes
/// an order on the wire), so with 1 MiB one fetch of six partitions could
/// bring ~110,000 orders; at the heap's peak (heaptrack, one consumer on a
/// 300,000-order backlog) librdkafka held 76 MiB of decompressed message
/// sets and 33 MiB of per-record state. At 256 KiB a partition's fetch is
/// ~4,500 orders, most of a batch: that backlog peaks at 60-71 MiB instead
/// of 126-132. Such small fetches reach the prefetch bounds often, which
/// costs nothing only with a short [`FETCH_QUEUE_BACKOFF_MS`].
pub const PARTITION_FETCH_MAX_BYTES: usize = 256 * 1024;

/// How long librdkafka waits before fetching a partition again once its
/// prefetch bounds were reached (`fetch.queue.backoff.ms`).
///
/// librdkafka's default is a whole second, made for its own default bounds
/// (100,000 records per partition). With bounds as tight as ours, a
/// partition reaches them at nearly every fetch, then sits out a second
/// while the batches drain it in a fraction of one: a consumer with a
/// backlog mostly waited. Measured on the same binary (`make bench-compare`,
/// 300,000 orders, two rounds): sink 27,657 → 74,329 rows/s, end to end
/// 29,257 → 53,747, the broker's CPU per record 8.4 → 4.5 µs, and the
/// consumer's peak memory 49 → 57 MiB (BENCHMARKS.md).
pub const FETCH_QUEUE_BACKOFF_MS: u32 = 20;

/// Reads order records from Kafka as a consumer group and upserts them into
/// PostgreSQL, committing Kafka offsets only after the database commit.
// `Debug` is derived: the fields holding a password redact it themselves.
#[derive(Clone, Debug, Parser)]
#[command(name = "orderstream-consumer", version)]
pub struct Config {
    /// What to do; without a subcommand the consumer runs.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Brokers, TLS, SASL and pass-through librdkafka settings.
    #[command(flatten)]
    pub kafka: clients::KafkaArgs,

    /// The topic the orders are read from.
    #[command(flatten)]
    pub topic: clients::TopicArgs,

    /// Where records that can never be written go.
    #[command(flatten)]
    pub dlq_topic: clients::DeadLetterTopicArgs,

    /// The group this consumer joins.
    #[command(flatten)]
    pub group: clients::GroupArgs,

    /// The PostgreSQL URL (with `sslmode`) and CA file.
    #[command(flatten)]
    pub database: clients::DatabaseArgs,

    /// Most records written in one transaction.
    #[arg(help_heading = "Tuning", long, env = "ORDERSTREAM_BATCH_SIZE", default_value_t = 5_000, value_parser = at_least_one())]
    pub batch_size: usize,

    /// Most bytes (keys, values and headers) gathered in one batch: with the
    /// batch size, what bounds a batch's memory whatever the records' size
    /// (a wide export's `columns` header weighs as much as its value).
    #[arg(help_heading = "Tuning", long, env = "ORDERSTREAM_BATCH_MAX_BYTES", default_value_t = 16 * 1024 * 1024, value_parser = at_least_one())]
    pub batch_max_bytes: usize,

    /// Most kilobytes librdkafka prefetches into its local queue
    /// (`queued.max.messages.kbytes`): the bound on records read ahead of the
    /// batch being written.
    #[arg(help_heading = "Tuning", long, env = "ORDERSTREAM_FETCH_QUEUE_MAX_KBYTES", default_value_t = 32 * 1024, value_parser = at_least_one())]
    pub fetch_queue_max_kbytes: usize,

    /// Longest a batch waits to fill before it is written: the bound this
    /// adds to latency when traffic is light. A bare number is milliseconds,
    /// as `--batch-wait-ms` took.
    #[arg(help_heading = "Tuning", long = "batch-wait", alias = "batch-wait-ms", env = "ORDERSTREAM_BATCH_WAIT",
          default_value = "20ms", value_parser = DurationParser::bare_millis())]
    pub batch_wait: Duration,

    /// `--metrics-addr`, `--ready-file` (the final totals go beside it, to
    /// `PATH.final.json`, at a clean shutdown).
    #[command(flatten)]
    pub observability: telemetry::ObservabilityArgs<ConsumerEndpoints>,
}

/// The consumer's subcommands.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Consume the topic into PostgreSQL (the default). Applies pending
    /// migrations first when its role may; otherwise they must be applied.
    Run,
    /// Apply the pending schema migrations and exit. Run it as the database's
    /// owner (deployment: `orderstream_owner`) before starting consumers that
    /// connect as the least-privilege writer.
    Migrate,
    /// Re-publish dead letters not yet redriven to the main topic, once their
    /// cause is fixed, and mark them redriven.
    Redrive {
        /// Only dead letters with this reason.
        #[arg(long, value_parser = PossibleValuesParser::new(reasons::ALL))]
        reason: Option<String>,
        /// Dead letters published and marked per transaction: bounds the
        /// memory held and how long rows stay locked, whatever the backlog.
        #[arg(long = "batch-size", env = "ORDERSTREAM_REDRIVE_BATCH_SIZE", default_value_t = 500,
              value_parser = clap::value_parser!(i64).range(1..=100_000))]
        batch_size: i64,
    },
    /// The `dead_letters` table.
    #[command(subcommand)]
    DeadLetters(DeadLettersCommand),
    /// Read the topic again from an earlier point: moves the stored offsets
    /// (PostgreSQL) and the group's committed offsets (Kafka) back together.
    /// Refused while the group has live members.
    Replay(TopicReplayArgs),
}

/// Where the replay starts: exactly one of the two.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("to").required(true).args(["to_earliest", "to_datetime"])))]
pub struct TopicReplayArgs {
    /// From the first record Kafka still holds.
    #[arg(long)]
    pub to_earliest: bool,

    /// From the first record written at or after this time (RFC 3339, e.g.
    /// `2026-11-28T09:00:00Z`), found with Kafka's offsets-for-times.
    #[arg(long)]
    pub to_datetime: Option<chrono::DateTime<chrono::Utc>>,

    /// Move the offsets; without it, only show what would move.
    #[arg(long)]
    pub yes: bool,
}

/// `orderstream-consumer dead-letters …`.
#[derive(Clone, Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// Write the dead letters as CSV (safe to open in a spreadsheet: text
    /// cells that would be read as formulas are neutralised).
    Export {
        /// The CSV file to write (replaced whole, atomically); absent or
        /// `-`: standard output.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
        /// Only dead letters with this reason.
        #[arg(long, value_parser = PossibleValuesParser::new(reasons::every()))]
        reason: Option<String>,
        /// Only those pending (neither redriven nor resolved).
        #[arg(long)]
        pending: bool,
    },
    /// Print the dead letters as a table: id, when, stage, reason,
    /// file:line, message, status (pending, redriven, resolved). The newest
    /// `--limit`, oldest first.
    List {
        /// Only dead letters with this reason.
        #[arg(long, value_parser = PossibleValuesParser::new(reasons::every()))]
        reason: Option<String>,
        /// Only those pending: neither redriven nor resolved, i.e. needing someone.
        #[arg(long)]
        pending: bool,
        /// Only those of this stage.
        #[arg(long, value_enum)]
        stage: Option<Stage>,
        /// Most rows printed.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        limit: i64,
    },
    /// Mark producer dead letters resolved (someone dealt with the bad lines,
    /// e.g. by a corrected export), so that `--pending` lists only what
    /// still needs someone. Selectors combine (all must match); at least one
    /// is required. The consumer's dead letters are redriven, not resolved.
    #[command(group(clap::ArgGroup::new("selector").required(true).multiple(true).args(["id", "file", "reason"])))]
    Resolve {
        /// This dead letter (repeatable).
        #[arg(long)]
        id: Vec<i64>,
        /// Those of this source file: its path as the producer named it, or
        /// its file name alone (`2022_08.csv`: in any folder).
        #[arg(long)]
        file: Option<String>,
        /// Those with this reason.
        #[arg(long, value_parser = PossibleValuesParser::new(reasons::producer()))]
        reason: Option<String>,
    },
}

/// Who dead-lettered a record, for `dead-letters list --stage`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    /// A CSV line the producer could not read.
    Producer,
    /// A record the consumer could not decode or write.
    Consumer,
}

impl Stage {
    /// The `dead_letters.stage` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Producer => schema::message::stages::PRODUCER,
            Stage::Consumer => schema::message::stages::CONSUMER,
        }
    }
}

/// A count that must be at least 1, refused by clap itself otherwise.
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

/// Why the configuration is unusable, found before anything connects.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// Dead letters would be read back as orders.
    #[error("--topic and --dlq-topic must differ")]
    SameTopics,
    /// The Kafka settings contradict each other.
    #[error(transparent)]
    Kafka(#[from] clients::kafka::KafkaConfigError),
    /// The database URL is unusable.
    #[error(transparent)]
    Database(#[from] clients::DatabaseConfigError),
}

/// The consumer's names for the shared observability flags.
#[derive(Debug, Clone)]
pub struct ConsumerEndpoints;

impl telemetry::ServiceEndpoints for ConsumerEndpoints {
    const METRICS_ADDR_ENV: &'static str = "ORDERSTREAM_CONSUMER_METRICS_ADDR";
    const DEFAULT_METRICS_ADDR: &'static str = contract::addresses::CONSUMER_METRICS_ADDR;
    const READY_FILE_ENV: &'static str = "ORDERSTREAM_CONSUMER_READY_FILE";
}

impl telemetry::Configuration for Config {
    type Invalid = ConfigError;

    fn validate(&self) -> Result<(), ConfigError> {
        Config::validate(self)
    }
}

impl Config {
    /// Checks what clap cannot and needs no I/O, so mistakes are reported
    /// before anything connects.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.topic.name == self.dlq_topic.name {
            return Err(ConfigError::SameTopics);
        }
        self.kafka.validate()?;
        Ok(self.database.validate()?)
    }

    /// The consumer's own librdkafka bounds: how much it fetches and
    /// prefetches, set explicitly so its memory does not depend on
    /// librdkafka's defaults (up to 64 MiB queued, 100,000 records per partition).
    pub fn consumer_bounds(&self) -> [(&'static str, String); 6] {
        [
            ("queued.max.messages.kbytes", self.fetch_queue_max_kbytes.to_string()),
            ("queued.min.messages", (self.batch_size * 2).to_string()),
            ("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS.to_string()),
            ("fetch.max.bytes", FETCH_MAX_BYTES.to_string()),
            ("max.partition.fetch.bytes", PARTITION_FETCH_MAX_BYTES.to_string()),
            // librdkafka requires room for a whole fetch response plus its framing.
            ("receive.message.max.bytes", (FETCH_MAX_BYTES + 512).to_string()),
        ]
    }

    /// The batch wait.
    pub fn batch_wait(&self) -> Duration {
        self.batch_wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_for_a_local_run() {
        let config = Config::try_parse_from(["orderstream-consumer"]).unwrap();
        assert_eq!(config.group.name, "orderstream");
        config.validate().unwrap();
        assert!(config.command.is_none(), "no subcommand means run");
    }

    #[test]
    fn batch_wait_takes_humantime_and_its_old_millisecond_number() {
        assert_eq!(Config::try_parse_from(["c"]).unwrap().batch_wait(), Duration::from_millis(20));
        let old = Config::try_parse_from(["c", "--batch-wait-ms", "50"]).unwrap();
        let new = Config::try_parse_from(["c", "--batch-wait", "50ms"]).unwrap();
        assert_eq!((old.batch_wait(), new.batch_wait()), (Duration::from_millis(50), Duration::from_millis(50)));
        let error = Config::try_parse_from(["c", "--batch-wait", "briefly"]).unwrap_err().to_string();
        assert!(error.contains("`briefly` is not a duration"), "{error}");
    }

    #[test]
    fn observability_flags_keep_their_consumer_names() {
        let config = Config::try_parse_from(["c"]).unwrap();
        assert_eq!(config.observability.metrics_addr, "127.0.0.1:9102".parse().unwrap());
        let help = <Config as clap::CommandFactory>::command().render_help().to_string();
        assert!(help.contains("ORDERSTREAM_CONSUMER_METRICS_ADDR"), "{help}");
        assert!(help.contains("ORDERSTREAM_CONSUMER_READY_FILE"), "{help}");
    }

    #[test]
    fn redrive_takes_an_optional_reason_and_the_shared_flags() {
        let config =
            Config::try_parse_from(["c", "redrive", "--reason", "rejected_by_database", "--topic", "t"]).unwrap();
        assert!(
            matches!(config.command, Some(Command::Redrive { reason: Some(ref r), batch_size: 500 }) if r == "rejected_by_database")
        );
        assert_eq!(config.topic.name, "t");
        let config = Config::try_parse_from(["c", "redrive", "--batch-size", "7"]).unwrap();
        assert!(matches!(config.command, Some(Command::Redrive { reason: None, batch_size: 7 })));
        assert!(Config::try_parse_from(["c", "redrive", "--batch-size", "0"]).is_err());
    }

    #[test]
    fn debug_output_never_shows_a_password() {
        let config = Config::try_parse_from([
            "c",
            "--database-url",
            "postgres://writer:s3cret-db@db/orders?sslmode=verify-full",
            "--kafka-sasl-password",
            "s3cret-sasl",
            "--kafka-option",
            "ssl.key.password=s3cret-key",
        ])
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("writer:***@db"), "{shown}");
    }

    #[test]
    fn migrate_and_dead_letter_export_are_subcommands() {
        let config = Config::try_parse_from(["c", "migrate", "--database-url", "postgres://owner@db/o"]).unwrap();
        assert!(matches!(config.command, Some(Command::Migrate)));
        assert_eq!(config.database.database_url, "postgres://owner@db/o");
        let config = Config::try_parse_from(["c", "dead-letters", "export", "--output", "d.csv", "--pending"]).unwrap();
        assert!(matches!(
            config.command,
            Some(Command::DeadLetters(DeadLettersCommand::Export { pending: true, reason: None, .. }))
        ));
    }

    #[test]
    fn list_takes_filters_and_resolve_refuses_without_a_selector() {
        let config =
            Config::try_parse_from(["c", "dead-letters", "list", "--stage", "producer", "--pending", "--limit", "5"])
                .unwrap();
        assert!(matches!(
            config.command,
            Some(Command::DeadLetters(DeadLettersCommand::List {
                stage: Some(Stage::Producer),
                pending: true,
                limit: 5,
                reason: None
            }))
        ));
        assert!(Config::try_parse_from(["c", "dead-letters", "list", "--stage", "kafka"]).is_err());
        assert!(Config::try_parse_from(["c", "dead-letters", "resolve"]).is_err(), "no selector resolves nothing");
        for typo in [["list", "--reason", "bad_amount"], ["export", "--reason", "bad_amount"]] {
            let refused = Config::try_parse_from(["c", "dead-letters"].into_iter().chain(typo)).unwrap_err();
            assert!(refused.to_string().contains("invalid_amount"), "the known reasons are listed: {refused}");
        }
        assert!(
            Config::try_parse_from(["c", "dead-letters", "resolve", "--reason", "undecodable_value"]).is_err(),
            "the consumer's dead letters are redriven, not resolved"
        );
        assert!(Config::try_parse_from(["c", "redrive", "--reason", "invalid_amount"]).is_err(), "only the consumer's");
        let export = Config::try_parse_from(["c", "dead-letters", "export"]).unwrap();
        assert!(matches!(export.command, Some(Command::DeadLetters(DeadLettersCommand::Export { output: None, .. }))));
        let config = Config::try_parse_from([
            "c",
            "dead-letters",
            "resolve",
            "--id",
            "3",
            "--id",
            "4",
            "--reason",
            "invalid_amount",
        ])
        .unwrap();
        assert!(matches!(
            config.command,
            Some(Command::DeadLetters(DeadLettersCommand::Resolve { ref id, file: None, reason: Some(_) })) if id == &[3, 4]
        ));
    }

    #[test]
    fn librdkafka_prefetch_is_bounded_explicitly() {
        let config = Config::try_parse_from(["c", "--batch-size", "100", "--fetch-queue-max-kbytes", "1024"]).unwrap();
        let bounds = config.consumer_bounds();
        assert!(bounds.contains(&("queued.max.messages.kbytes", "1024".into())));
        assert!(bounds.contains(&("queued.min.messages", "200".into())));
        assert!(
            bounds.contains(&("fetch.queue.backoff.ms", "20".into())),
            "a partition at its bounds is fetched again within 20 ms, not librdkafka's second"
        );
        assert!(Config::try_parse_from(["c", "--batch-max-bytes", "0"]).is_err());
        assert!(Config::try_parse_from(["c", "--batch-size", "0"]).is_err());
        assert!(Config::try_parse_from(["c", "--fetch-queue-max-kbytes", "0"]).is_err());
    }

    #[test]
    fn malformed_database_url_is_refused_before_connecting() {
        let config = Config::try_parse_from(["c", "--database-url", "postgres://host:notaport/db"]).unwrap();
        assert!(config.validate().unwrap_err().to_string().contains("--database-url"));
    }
}
