//! The producer's configuration: every setting is a flag and an environment
//! variable, with defaults for a local run.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Tails the order CSV files of an inbox folder and publishes every record to
/// Kafka, keyed by order id; invalid records go to a dead-letter topic.
#[derive(Debug, Clone, Parser)]
#[command(name = "orderstream-producer", version)]
pub struct Config {
    /// Folder whose `*.csv` files are read from the start and then followed.
    #[arg(long, env = "ORDERSTREAM_INBOX", default_value = "data/inbox")]
    pub inbox: PathBuf,

    /// Folder for the producer's own state (the delivered position of every
    /// file). Keep it on a local disk; it is fsynced.
    #[arg(long, env = "ORDERSTREAM_STATE_DIR", default_value = ".local/state/producer")]
    pub state_dir: PathBuf,

    #[command(flatten)]
    pub kafka: KafkaConfig,

    /// Partitions of the topics the producer creates when they are missing.
    #[arg(long, env = "ORDERSTREAM_PARTITIONS", default_value_t = 6)]
    pub partitions: i32,

    /// How often files are checked for appended bytes and the inbox for new
    /// files, in milliseconds.
    #[arg(long, env = "ORDERSTREAM_POLL_INTERVAL_MS", default_value_t = 100)]
    pub poll_interval_ms: u64,

    /// Records sent but not yet confirmed by Kafka, at most: past it, reading
    /// waits, so memory stays bounded when Kafka is slow or away.
    #[arg(long, env = "ORDERSTREAM_MAX_IN_FLIGHT", default_value_t = 50_000)]
    pub max_in_flight: usize,

    /// How often confirmed positions are saved to disk, in milliseconds. A
    /// crash re-sends at most what was confirmed within this window.
    #[arg(long, env = "ORDERSTREAM_POSITION_FLUSH_MS", default_value_t = 200)]
    pub position_flush_ms: u64,
}

/// How to reach Kafka; shared shape with the consumer's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaConfig {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(long = "brokers", env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,

    /// Topic the orders are published to.
    #[arg(long, env = "ORDERSTREAM_TOPIC", default_value = "orders")]
    pub topic: String,

    /// Topic invalid records are published to, with the reason in headers.
    #[arg(long, env = "ORDERSTREAM_DLQ_TOPIC", default_value = "orders.dlq")]
    pub dlq_topic: String,

    /// Extra librdkafka settings as `key=value` (repeatable; in the
    /// environment, comma-separated), e.g. TLS or SASL settings.
    #[arg(long = "kafka-option", env = "ORDERSTREAM_KAFKA_OPTIONS", value_delimiter = ',', value_parser = parse_key_value)]
    pub options: Vec<(String, String)>,
}

fn parse_key_value(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
        .filter(|(key, _)| !key.is_empty())
        .ok_or_else(|| format!("`{raw}` is not key=value"))
}

impl Config {
    /// Checks what can be checked without I/O, so mistakes are reported before
    /// anything connects.
    pub fn validate(&self) -> Result<(), String> {
        if self.partitions < 1 {
            return Err("--partitions must be at least 1".into());
        }
        if self.max_in_flight == 0 {
            return Err("--max-in-flight must be at least 1".into());
        }
        if self.poll_interval_ms == 0 {
            return Err("--poll-interval-ms must be at least 1".into());
        }
        if self.kafka.topic == self.kafka.dlq_topic {
            return Err("--topic and --dlq-topic must differ".into());
        }
        Ok(())
    }

    /// The poll interval as a duration.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    /// The position flush interval as a duration.
    pub fn position_flush_interval(&self) -> Duration {
        Duration::from_millis(self.position_flush_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_for_a_local_run() {
        let config = Config::try_parse_from(["orderstream-producer"]).unwrap();
        assert_eq!(config.kafka.brokers, "127.0.0.1:9092");
        assert_eq!(config.kafka.topic, "orders");
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn kafka_options_are_key_value_pairs() {
        let config =
            Config::try_parse_from(["p", "--kafka-option", "security.protocol=SSL", "--kafka-option", "a=b"]).unwrap();
        assert_eq!(config.kafka.options, vec![("security.protocol".into(), "SSL".into()), ("a".into(), "b".into())]);
        assert!(Config::try_parse_from(["p", "--kafka-option", "novalue"]).is_err());
    }

    #[test]
    fn same_topic_for_orders_and_dead_letters_is_refused() {
        let config = Config::try_parse_from(["p", "--topic", "x", "--dlq-topic", "x"]).unwrap();
        assert!(config.validate().is_err());
    }
}
