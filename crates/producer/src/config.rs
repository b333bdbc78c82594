//! The producer's configuration: every setting is a flag and an environment
//! variable, with defaults for a local run.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::Parser;
use telemetry::duration::DurationParser;
use thiserror::Error;

/// Tails the order CSV files of an inbox folder and publishes every record to
/// Kafka, keyed by order id; invalid records go to a dead-letter topic.
#[derive(Debug, Clone, Parser)]
#[command(name = "orderstream-producer", version)]
pub struct Config {
    /// What to do; without a subcommand the producer follows the inbox. The
    /// flags below go before the subcommand (or come from their variables).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Folder whose `*.csv` files are read from the start and then followed.
    #[arg(help_heading = "Inputs", long, env = "ORDERSTREAM_INBOX", default_value = "data/inbox")]
    pub inbox: PathBuf,

    /// Which files of the inbox to follow: a glob on the file name.
    #[arg(help_heading = "Inputs", long, env = "ORDERSTREAM_PATTERN", default_value = "*.csv")]
    pub pattern: String,

    /// Folder for the producer's own state (the delivered position of every
    /// file). Keep it on a local disk; it is fsynced.
    #[arg(help_heading = "Inputs", long, env = "ORDERSTREAM_STATE_DIR", default_value = ".local/state/producer")]
    pub state_dir: PathBuf,

    /// Brokers, topics and the producer's Kafka settings.
    #[command(flatten)]
    pub kafka: KafkaConfig,

    /// `--metrics-addr`, `--ready-file`: where the endpoints are served and said to be.
    #[command(flatten)]
    pub observability: telemetry::ObservabilityArgs<ProducerEndpoints>,

    /// Partitions of the topics the producer creates when they are missing.
    #[arg(help_heading = "Kafka", long, env = "ORDERSTREAM_PARTITIONS", default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,

    /// How often files are checked for appended bytes and the inbox for new
    /// files when the filesystem sends no notifications (`100ms`; a bare
    /// number is milliseconds, as `--poll-interval-ms` took).
    #[arg(help_heading = "Tuning", long = "poll-interval", alias = "poll-interval-ms", env = "ORDERSTREAM_POLL_INTERVAL",
          default_value = "100ms", value_parser = DurationParser::bare_millis().nonzero())]
    pub poll_interval: Duration,

    /// How often the inbox is rescanned even though notifications work (they
    /// can be lost, e.g. when their queue overflows); a bare number is
    /// milliseconds, as `--rescan-interval-ms` took.
    #[arg(help_heading = "Tuning", long = "rescan-interval", alias = "rescan-interval-ms", env = "ORDERSTREAM_RESCAN_INTERVAL",
          default_value = "1s", value_parser = DurationParser::bare_millis())]
    pub rescan_interval: Duration,

    /// Records longer than this many bytes are dead-lettered
    /// (`record_too_long`) without being read into memory whole.
    #[arg(help_heading = "Tuning", long, env = "ORDERSTREAM_MAX_RECORD_BYTES", default_value_t = 64 * 1024,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(64..))]
    pub max_record_bytes: usize,

    /// An `item_total` above this is flagged `unusual_amount` (kept, not rejected).
    #[arg(help_heading = "Tuning", long, env = "ORDERSTREAM_FLAG_ITEM_TOTAL_ABOVE", default_value = "2000")]
    pub flag_item_total_above: rust_decimal::Decimal,

    /// A `shipment_total` above this is flagged `unusual_amount`.
    #[arg(help_heading = "Tuning", long, env = "ORDERSTREAM_FLAG_SHIPMENT_TOTAL_ABOVE", default_value = "50")]
    pub flag_shipment_total_above: rust_decimal::Decimal,

    /// What becomes of an export's columns beyond id, user_id, completed_at,
    /// item_total and shipment_total: `keep` carries their values with each
    /// order (stored in `orders.extra`), `ignore` drops them, `reject`
    /// dead-letters every record of the file (`bad_header`).
    #[arg(help_heading = "Columns", long, env = "ORDERSTREAM_UNKNOWN_COLUMNS", default_value = "keep",
          value_parser = clap::builder::PossibleValuesParser::new(schema::UnknownColumns::NAMES)
              .try_map(|mode| mode.parse::<schema::UnknownColumns>()))]
    pub unknown_columns: schema::UnknownColumns,

    /// A renamed column read as a known one, `FROM=TO` (e.g. `order_id=id`);
    /// repeatable, or comma-separated in the variable. Names compare
    /// case-insensitively, a byte-order mark ignored.
    #[arg(
        help_heading = "Columns",
        long = "column-alias",
        value_name = "FROM=TO",
        env = "ORDERSTREAM_COLUMN_ALIASES",
        value_delimiter = ','
    )]
    pub column_aliases: Vec<schema::ColumnAlias>,

    /// Records sent but not yet confirmed by Kafka, at most: past it, reading
    /// waits, so memory stays bounded when Kafka is slow or away. 10,000 is
    /// a twentieth of a second at the source half's rate; 20,000 published
    /// no faster and peaked at 74-78 MiB against 50-54 (`make
    /// bench-compare`, 300,000 orders).
    #[arg(help_heading = "Tuning", long, env = "ORDERSTREAM_MAX_IN_FLIGHT", default_value_t = 10_000,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_in_flight: usize,

    /// How often confirmed positions are saved to disk. A crash re-sends at
    /// most what was confirmed within this window. A bare number is
    /// milliseconds, as `--position-flush-ms` took.
    #[arg(help_heading = "Tuning", long = "position-flush-interval", alias = "position-flush-ms",
          env = "ORDERSTREAM_POSITION_FLUSH_INTERVAL", default_value = "200ms", value_parser = DurationParser::bare_millis())]
    pub position_flush_interval: Duration,

    /// How long a file that left the inbox (renamed away, archived or
    /// deleted) is still followed after it last changed, once every record
    /// read from it is confirmed: a writer may go on appending to a rotated
    /// file (Filebeat's `close_inactive`). A duration: `5m`, `30s`, `1h`.
    #[arg(help_heading = "Inputs", long, env = "ORDERSTREAM_CLOSE_INACTIVE", default_value = "5m", value_parser = humantime::parse_duration)]
    pub close_inactive: Duration,

    /// Folder that processed exports are moved to, by you or by
    /// `--archive-after`, on any filesystem. After a restart, files whose
    /// delivery was not finished and that are no longer in the inbox are
    /// looked for here by identity (device and inode, or, moved from another
    /// filesystem, name and content), and finished. Created if missing; one
    /// that cannot be listed stops the start.
    #[arg(help_heading = "Inputs", long, env = "ORDERSTREAM_ARCHIVE_DIR")]
    pub archive_dir: Option<PathBuf>,

    /// Moves a file into `--archive-dir` once every byte of it is confirmed
    /// by Kafka and it has not changed for this long (off unless given).
    #[arg(help_heading = "Inputs", long, env = "ORDERSTREAM_ARCHIVE_AFTER", value_parser = humantime::parse_duration, requires = "archive_dir")]
    pub archive_after: Option<Duration>,
}

/// The producer's subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Publish one export again with its original versions (found on the
    /// topics, or `--epoch`), so that it restores missing rows without
    /// overriding later corrections; then exit.
    Replay(ReplayArgs),
}

/// Where the producer publishes, and how it reaches Kafka.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaConfig {
    /// Brokers, TLS, SASL and pass-through librdkafka settings (shared with
    /// every binary; passwords redacted from `Debug`).
    #[command(flatten)]
    pub connection: clients::KafkaArgs,

    /// The topic the orders are published to.
    #[command(flatten)]
    pub topic: clients::TopicArgs,

    /// Where invalid records are published, with the reason in headers.
    #[command(flatten)]
    pub dlq_topic: clients::DeadLetterTopicArgs,
}

/// Why the configuration is unusable, found before anything starts.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// `--pattern` is not a glob.
    #[error("--pattern is not a glob")]
    Pattern(#[from] globset::Error),
    /// Dead letters would be mixed with the orders.
    #[error("--topic and --dlq-topic must differ")]
    SameTopics,
    /// Archived files would still be in the inbox, and read again.
    #[error("--archive-dir must be another folder than --inbox")]
    ArchiveIsInbox,
    /// The Kafka settings contradict each other.
    #[error(transparent)]
    Kafka(#[from] clients::kafka::KafkaConfigError),
}

/// The producer's names for the shared observability flags.
#[derive(Debug, Clone)]
pub struct ProducerEndpoints;

impl telemetry::ServiceEndpoints for ProducerEndpoints {
    const METRICS_ADDR_ENV: &'static str = "ORDERSTREAM_PRODUCER_METRICS_ADDR";
    const DEFAULT_METRICS_ADDR: &'static str = contract::addresses::PRODUCER_METRICS_ADDR;
    const READY_FILE_ENV: &'static str = "ORDERSTREAM_PRODUCER_READY_FILE";
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
        globset::Glob::new(&self.pattern)?;
        if self.kafka.topic.name == self.kafka.dlq_topic.name {
            return Err(ConfigError::SameTopics);
        }
        if self.archive_dir.as_ref().is_some_and(|archive| same_folder(archive, &self.inbox)) {
            return Err(ConfigError::ArchiveIsInbox);
        }
        Ok(self.kafka.connection.validate()?)
    }

    /// The poll interval.
    pub fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// The rescan interval.
    pub fn rescan_interval(&self) -> Duration {
        self.rescan_interval
    }

    /// The matcher of `--pattern` (validated by [`Self::validate`]).
    pub fn matcher(&self) -> globset::GlobMatcher {
        globset::Glob::new(&self.pattern).expect("validated pattern").compile_matcher()
    }

    /// What the tailers need to know.
    pub fn tailer_settings(&self) -> crate::tailer::TailerSettings {
        crate::tailer::TailerSettings {
            max_record_bytes: self.max_record_bytes,
            header_rules: schema::HeaderRules { aliases: self.column_aliases.clone(), unknown: self.unknown_columns },
            flag_rules: schema::FlagRules {
                max_usual_item_total: self.flag_item_total_above,
                max_usual_shipment_total: self.flag_shipment_total_above,
            },
            final_line_after: self.close_inactive,
        }
    }

    /// The position flush interval.
    pub fn position_flush_interval(&self) -> Duration {
        self.position_flush_interval
    }
}

/// Whether two paths name the same folder (as written, or once resolved).
fn same_folder(a: &std::path::Path, b: &std::path::Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// `orderstream-producer replay FILE`: the producer's other flags (Kafka,
/// topics, `--max-record-bytes`, flag thresholds) come before `replay`, or
/// from their environment variables, so the file is read as the producer reads it.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The export to publish again (in the inbox, in the archive, or a copy).
    pub file: PathBuf,

    /// The file's original epoch, when the topics cannot tell it (its records
    /// were deleted by retention, or the file was edited since, so no
    /// candidate agrees with it): the
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
    schema::message::check_epoch(epoch).map_err(|refused| refused.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_inactive_and_archive_after_are_durations() {
        let config = Config::try_parse_from(["p"]).unwrap();
        assert_eq!(config.close_inactive, Duration::from_secs(300), "Filebeat's default");
        assert_eq!((config.archive_dir, config.archive_after), (None, None), "archiving is off by default");
        let config =
            Config::try_parse_from(["p", "--close-inactive", "30s", "--archive-dir", "done", "--archive-after", "10m"])
                .unwrap();
        assert_eq!(config.close_inactive, Duration::from_secs(30));
        assert_eq!(config.archive_after, Some(Duration::from_secs(600)));
        assert!(Config::try_parse_from(["p", "--archive-after", "10m"]).is_err(), "needs --archive-dir");
        assert!(Config::try_parse_from(["p", "--close-inactive", "soon"]).is_err());
    }

    #[test]
    fn intervals_take_humantime_and_their_old_millisecond_numbers() {
        let config = Config::try_parse_from(["p"]).unwrap();
        assert_eq!(
            (config.poll_interval(), config.rescan_interval(), config.position_flush_interval()),
            (Duration::from_millis(100), Duration::from_secs(1), Duration::from_millis(200))
        );
        let old = Config::try_parse_from([
            "p",
            "--poll-interval-ms",
            "50",
            "--rescan-interval-ms",
            "2000",
            "--position-flush-ms",
            "20",
        ])
        .unwrap();
        let new = Config::try_parse_from([
            "p",
            "--poll-interval",
            "50ms",
            "--rescan-interval",
            "2s",
            "--position-flush-interval",
            "20ms",
        ])
        .unwrap();
        for config in [old, new] {
            assert_eq!(config.poll_interval(), Duration::from_millis(50));
            assert_eq!(config.rescan_interval(), Duration::from_secs(2));
            assert_eq!(config.position_flush_interval(), Duration::from_millis(20));
        }
        assert!(Config::try_parse_from(["p", "--poll-interval", "0"]).is_err(), "zero would spin");
        let error = Config::try_parse_from(["p", "--poll-interval", "often"]).unwrap_err().to_string();
        assert!(error.contains("`often` is not a duration"), "{error}");
    }

    #[test]
    fn observability_flags_keep_their_producer_names() {
        let config = Config::try_parse_from(["p"]).unwrap();
        assert_eq!(config.observability.metrics_addr, "127.0.0.1:9101".parse().unwrap());
        let help = <Config as clap::CommandFactory>::command().render_help().to_string();
        assert!(help.contains("ORDERSTREAM_PRODUCER_METRICS_ADDR"), "{help}");
        assert!(help.contains("ORDERSTREAM_PRODUCER_READY_FILE"), "{help}");
    }

    #[test]
    fn archive_inside_the_inbox_itself_is_refused() {
        let config = Config::try_parse_from(["p", "--inbox", "in", "--archive-dir", "in"]).unwrap();
        assert!(matches!(config.validate(), Err(ConfigError::ArchiveIsInbox)));
    }

    #[test]
    fn replay_is_a_subcommand_after_the_producers_own_flags() {
        let config = Config::try_parse_from(["p", "--topic", "t", "replay", "a.csv", "--epoch", "9"]).unwrap();
        let Some(Command::Replay(replay)) = config.command else { panic!("not a replay") };
        assert_eq!((replay.file, replay.epoch, config.kafka.topic.name.as_str()), ("a.csv".into(), Some(9), "t"));
        assert!(Config::try_parse_from(["p", "replay"]).is_err(), "the file is required");
    }

    #[test]
    fn defaults_are_valid_for_a_local_run() {
        let config = Config::try_parse_from(["orderstream-producer"]).unwrap();
        assert!(config.command.is_none(), "no subcommand follows the inbox");
        assert_eq!(config.kafka.connection.brokers, "127.0.0.1:9092");
        assert_eq!(config.kafka.topic.name, "orders");
        config.validate().unwrap();
    }

    #[test]
    fn kafka_options_are_key_value_pairs() {
        let config =
            Config::try_parse_from(["p", "--kafka-option", "security.protocol=SSL", "--kafka-option", "a=b"]).unwrap();
        assert_eq!(
            config.kafka.connection.options,
            vec![("security.protocol".into(), "SSL".into()), ("a".into(), "b".into())]
        );
        assert!(Config::try_parse_from(["p", "--kafka-option", "novalue"]).unwrap().validate().is_err());
    }

    #[test]
    fn debug_output_never_shows_a_kafka_password() {
        let config = Config::try_parse_from([
            "p",
            "--kafka-security-protocol",
            "sasl_ssl",
            "--kafka-sasl-mechanism",
            "SCRAM-SHA-512",
            "--kafka-sasl-username",
            "orderstream-producer",
            "--kafka-sasl-password",
            "s3cret-sasl",
            "--kafka-option",
            "ssl.key.password=s3cret-key",
        ])
        .unwrap();
        config.validate().unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("orderstream-producer"), "{shown}");
    }

    #[test]
    fn malformed_pattern_is_refused_before_anything_starts() {
        let config = Config::try_parse_from(["p", "--pattern", "[unclosed"]).unwrap();
        assert!(matches!(config.validate(), Err(ConfigError::Pattern(_))));
        let config = Config::try_parse_from(["p", "--pattern", "orders-*.csv"]).unwrap();
        assert!(config.matcher().is_match("orders-2022_07.csv"));
        assert!(!config.matcher().is_match("2022_07.csv"));
    }

    #[test]
    fn same_topic_for_orders_and_dead_letters_is_refused() {
        let config = Config::try_parse_from(["p", "--topic", "x", "--dlq-topic", "x"]).unwrap();
        assert!(matches!(config.validate(), Err(ConfigError::SameTopics)));
    }

    #[test]
    fn column_rules_are_typed_and_aliases_repeat_or_come_comma_separated() {
        let config = Config::try_parse_from(["p"]).unwrap();
        assert_eq!((config.unknown_columns, config.column_aliases.len()), (schema::UnknownColumns::Keep, 0));
        let config = Config::try_parse_from([
            "p",
            "--unknown-columns",
            "reject",
            "--column-alias",
            "order_id=id",
            "--column-alias",
            "Customer=user_id,total=item_total",
        ])
        .unwrap();
        assert_eq!(config.unknown_columns, schema::UnknownColumns::Reject);
        let aliases: Vec<_> = config.column_aliases.iter().map(|a| (a.from.as_str(), a.to)).collect();
        assert_eq!(aliases, [("order_id", "id"), ("customer", "user_id"), ("total", "item_total")]);
        assert!(Config::try_parse_from(["p", "--unknown-columns", "drop"]).is_err());
        assert!(Config::try_parse_from(["p", "--column-alias", "order_id"]).is_err());
        assert!(Config::try_parse_from(["p", "--column-alias", "order_id=ident"]).is_err(), "not a known column");
    }

    #[test]
    fn counts_below_their_minimum_are_refused_by_the_parser() {
        for (flag, too_small) in
            [("--partitions", "0"), ("--poll-interval-ms", "0"), ("--max-in-flight", "0"), ("--max-record-bytes", "63")]
        {
            assert!(Config::try_parse_from(["p", flag, too_small]).is_err(), "{flag} {too_small}");
        }
        assert!(Config::try_parse_from(["p", "--max-record-bytes", "64"]).is_ok());
    }
}
