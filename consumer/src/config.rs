//! The consumer's configuration: every setting is a flag and an environment
//! variable, with defaults for a local run.

use std::time::Duration;

use clap::{Parser, Subcommand};

/// Reads order records from Kafka as a consumer group and upserts them into
/// PostgreSQL, committing Kafka offsets only after the database commit.
#[derive(Clone, Parser)]
#[command(name = "orderstream-consumer", version)]
pub struct Config {
    /// What to do; without a subcommand the consumer runs.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Kafka bootstrap servers, comma-separated.
    #[arg(global = true, long = "brokers", env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,

    /// Topic the orders are read from.
    #[arg(global = true, long, env = "ORDERSTREAM_TOPIC", default_value = "orders")]
    pub topic: String,

    /// Topic records that can never be written go to, with the reason in headers.
    #[arg(global = true, long, env = "ORDERSTREAM_DLQ_TOPIC", default_value = "orders.dlq")]
    pub dlq_topic: String,

    /// Consumer group: consumers sharing it split the partitions between them.
    #[arg(global = true, long, env = "ORDERSTREAM_GROUP", default_value = "orderstream")]
    pub group: String,

    /// Extra librdkafka settings as `key=value` (repeatable; in the
    /// environment, comma-separated), e.g. TLS or SASL settings.
    #[arg(global = true, long = "kafka-option", env = "ORDERSTREAM_KAFKA_OPTIONS", value_delimiter = ',', value_parser = telemetry::parse_key_value)]
    pub kafka_options: Vec<(String, String)>,

    /// PostgreSQL connection URL. Carries the password, if any: it is never
    /// logged.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        default_value = "postgres://orderstream@127.0.0.1:5433/orderstream",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Most records written in one transaction.
    #[arg(long, env = "ORDERSTREAM_BATCH_SIZE", default_value_t = 5_000)]
    pub batch_size: usize,

    /// Longest a batch waits to fill before it is written, in milliseconds:
    /// the bound this adds to latency when traffic is light.
    #[arg(long, env = "ORDERSTREAM_BATCH_WAIT_MS", default_value_t = 20)]
    pub batch_wait_ms: u64,

    /// Where `/metrics`, `/healthz` and `/readyz` are served (loopback unless
    /// configured otherwise; port 0 picks a free port).
    #[arg(long, env = "ORDERSTREAM_CONSUMER_METRICS_ADDR", default_value = "127.0.0.1:9102")]
    pub metrics_addr: std::net::SocketAddr,
}

/// The consumer's subcommands.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Consume the topic into PostgreSQL (the default).
    Run,
    /// Re-publish dead letters not yet redriven to the main topic, once their
    /// cause is fixed, and mark them redriven.
    Redrive {
        /// Only dead letters with this reason (e.g. `rejected_by_database`).
        #[arg(long)]
        reason: Option<String>,
    },
}

impl std::fmt::Debug for Config {
    /// The database URL may hold a password, so it is left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("dlq_topic", &self.dlq_topic)
            .field("group", &self.group)
            .field("database_url", &"<redacted>")
            .field("batch_size", &self.batch_size)
            .field("batch_wait_ms", &self.batch_wait_ms)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Checks what can be checked without I/O, so mistakes are reported before
    /// anything connects.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_size == 0 {
            return Err("--batch-size must be at least 1".into());
        }
        if self.topic == self.dlq_topic {
            return Err("--topic and --dlq-topic must differ".into());
        }
        self.database_url
            .parse::<tokio_postgres::Config>()
            .map(|_| ())
            .map_err(|error| format!("--database-url is not a PostgreSQL URL: {error}"))
    }

    /// The batch wait as a duration.
    pub fn batch_wait(&self) -> Duration {
        Duration::from_millis(self.batch_wait_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_for_a_local_run() {
        let config = Config::try_parse_from(["orderstream-consumer"]).unwrap();
        assert_eq!(config.group, "orderstream");
        assert_eq!(config.validate(), Ok(()));
        assert!(config.command.is_none(), "no subcommand means run");
    }

    #[test]
    fn redrive_takes_an_optional_reason_and_the_shared_flags() {
        let config =
            Config::try_parse_from(["c", "redrive", "--reason", "rejected_by_database", "--topic", "t"]).unwrap();
        assert!(
            matches!(config.command, Some(Command::Redrive { reason: Some(ref r) }) if r == "rejected_by_database")
        );
        assert_eq!(config.topic, "t");
    }

    #[test]
    fn debug_output_never_shows_the_database_password() {
        let config = Config::try_parse_from(["c", "--database-url", "postgres://writer:s3cret@db/orders"]).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn malformed_database_url_is_refused_before_connecting() {
        let config = Config::try_parse_from(["c", "--database-url", "postgres://host:notaport/db"]).unwrap();
        assert!(config.validate().unwrap_err().contains("--database-url"));
    }
}
