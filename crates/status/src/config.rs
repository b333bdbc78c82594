//! The status tool's configuration: the addresses of every part, as flags
//! and the environment variables the other binaries (and `.local/env`) use.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use thiserror::Error;

/// Prints what the pipeline is doing: each inbox file's delivery, whether
/// the producer and consumer are up, lag per partition, freshness, dead
/// letters pending. Exit code 0: caught up; 1: something waits or is
/// missing (each named); 2: Kafka or PostgreSQL unreachable.
#[derive(Clone, Debug, Parser)]
#[command(name = "orderstream-status", version)]
pub struct Config {
    /// Brokers, TLS, SASL and pass-through librdkafka settings.
    #[command(flatten)]
    pub kafka: clients::KafkaArgs,

    /// The topic of the orders.
    #[command(flatten)]
    pub topic: clients::TopicArgs,

    /// The dead-letter topic, whose intake into PostgreSQL is shown and
    /// counts as waiting like the orders' lag.
    #[command(flatten)]
    pub dead_letter_topic: clients::DeadLetterTopicArgs,

    /// The consumer group whose lag is shown.
    #[command(flatten)]
    pub group: clients::GroupArgs,

    /// The PostgreSQL URL (with `sslmode`) and CA file (reading only; the
    /// analyst role is not enough: it needs `consumer_offsets` and `orders`).
    #[command(flatten)]
    pub database: clients::DatabaseArgs,

    /// Where the producer serves `/status` (its `--metrics-addr`).
    #[arg(help_heading = "Inputs", long, env = "ORDERSTREAM_PRODUCER_METRICS_ADDR", default_value = contract::addresses::PRODUCER_METRICS_ADDR)]
    pub producer_metrics_addr: SocketAddr,

    /// Where the consumer serves `/status` (its `--metrics-addr`).
    #[arg(help_heading = "Inputs", long, env = "ORDERSTREAM_CONSUMER_METRICS_ADDR", default_value = contract::addresses::CONSUMER_METRICS_ADDR)]
    pub consumer_metrics_addr: SocketAddr,

    /// Print JSON instead of the screen, for scripts.
    #[arg(long)]
    pub json: bool,

    /// Print one progress line instead (orders in PostgreSQL of the lines to
    /// load, rate, time left), keeping the samples the rate needs in this
    /// file between calls. The exit code is the same.
    #[arg(long, value_name = "STATE_FILE", conflicts_with = "json")]
    pub progress: Option<PathBuf>,

    /// The inbox whose lines are counted for `--progress`, and whose files
    /// are shown from the saved positions when the producer is down.
    #[arg(help_heading = "Inputs", long, env = "ORDERSTREAM_INBOX", default_value = "data/inbox")]
    pub inbox: PathBuf,

    /// The producer's state folder (its `--state-dir`): when the producer
    /// does not answer, each inbox file's delivery is read from the positions
    /// it saved there.
    #[arg(help_heading = "Inputs", long, env = "ORDERSTREAM_STATE_DIR", default_value = ".local/state/producer")]
    pub producer_state_dir: PathBuf,

    /// Which files of the inbox count, as the producer's `--pattern`.
    #[arg(help_heading = "Inputs", long, env = "ORDERSTREAM_PATTERN", default_value = "*.csv")]
    pub pattern: String,

    /// Where Alertmanager answers (`make run` writes it to `.local/env`):
    /// its firing alerts are shown below the pipeline's state. Unset or not
    /// answering is said, and never changes the exit code.
    #[arg(help_heading = "Inputs", long, env = "ORDERSTREAM_ALERTMANAGER_URL")]
    pub alertmanager_url: Option<String>,

    /// Longest each part may take to answer before it counts as unreachable.
    #[arg(help_heading = "Inputs", long, env = "ORDERSTREAM_STATUS_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// Why the configuration is unusable, found before connecting.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// `--pattern` is not a glob.
    #[error("--pattern is not a glob")]
    Pattern(#[from] globset::Error),
    /// Every part would count as unreachable at once.
    #[error("--timeout must be more than 0")]
    ZeroTimeout,
    /// The Kafka settings contradict each other.
    #[error(transparent)]
    Kafka(#[from] clients::kafka::KafkaConfigError),
    /// The database URL is unusable.
    #[error(transparent)]
    Database(#[from] clients::DatabaseConfigError),
}

impl telemetry::Configuration for Config {
    type Invalid = ConfigError;

    fn validate(&self) -> Result<(), ConfigError> {
        Config::validate(self)
    }
}

impl Config {
    /// Checks what can be checked before connecting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        globset::Glob::new(&self.pattern)?;
        if self.timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        self.kafka.validate()?;
        Ok(self.database.validate()?)
    }

    /// The topics the status reads: the orders and the dead letters.
    pub fn topics(&self) -> Topics {
        Topics { orders: self.topic.name.clone(), dead_letters: self.dead_letter_topic.name.clone() }
    }

    /// Which inbox files count (`--pattern`), for the progress line and the
    /// saved positions alike. Call after [`Config::validate`], which
    /// refuses a pattern that is no glob.
    pub fn inbox_matcher(&self) -> globset::GlobMatcher {
        globset::Glob::new(&self.pattern).expect("validated pattern").compile_matcher()
    }
}

/// The topics the status reads.
#[derive(Debug, Clone)]
pub struct Topics {
    /// The orders topic.
    pub orders: String,
    /// The dead-letter topic, read into PostgreSQL by the dead-letter intake.
    pub dead_letters: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_point_at_the_make_run_stack() {
        let config = Config::try_parse_from(["orderstream-status"]).unwrap();
        assert_eq!(config.producer_metrics_addr.port(), 9101);
        assert_eq!(config.consumer_metrics_addr.port(), 9102);
        assert_eq!(config.producer_state_dir, PathBuf::from(".local/state/producer"), "the producer's default");
        config.validate().unwrap();
        assert!(Config::try_parse_from(["s", "--json", "--progress", "p.json"]).is_err());
    }
}
