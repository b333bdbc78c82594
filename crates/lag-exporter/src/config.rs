//! The exporter's configuration.

use std::time::Duration;

use clap::Parser;
use telemetry::duration::DurationParser;
use thiserror::Error;

/// Exports consumer-group lag (from Kafka) and data freshness (from
/// PostgreSQL) as Prometheus metrics.
// `Debug` is derived: the fields holding a password redact it themselves.
#[derive(Clone, Debug, Parser)]
#[command(name = "orderstream-lag-exporter", version)]
pub struct Config {
    /// Brokers, TLS, SASL and pass-through librdkafka settings.
    #[command(flatten)]
    pub kafka: clients::KafkaArgs,

    /// The topic of the orders.
    #[command(flatten)]
    pub topic: clients::TopicArgs,

    /// The consumer group whose lag is measured.
    #[command(flatten)]
    pub group: clients::GroupArgs,

    /// The PostgreSQL URL (with `sslmode`) and CA file, for data freshness:
    /// reads the `pipeline_freshness` view (the analyst role may).
    #[command(flatten)]
    pub database: clients::DatabaseArgs,

    /// How many consumers the group should have: the deployment's replica
    /// count. Exported as `orderstream_lag_exporter_group_members_expected`
    /// so that an alert can say "fewer consumers than configured" before the
    /// last one is gone (one of N missing leaves the rest N-1 times the work).
    #[arg(help_heading = "Observability", long, env = "ORDERSTREAM_EXPECTED_CONSUMERS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub expected_consumers: u32,

    /// How often lag and freshness are measured; a bare number is
    /// milliseconds, as `--interval-ms` took.
    #[arg(help_heading = "Observability", long = "interval", alias = "interval-ms", env = "ORDERSTREAM_LAG_INTERVAL",
          default_value = "5s", value_parser = DurationParser::bare_millis().nonzero())]
    pub interval: Duration,

    /// `--metrics-addr`, `--ready-file`: where the endpoints are served and said to be.
    #[command(flatten)]
    pub observability: telemetry::ObservabilityArgs<LagExporterEndpoints>,
}

/// Why the configuration is unusable, found before connecting.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The Kafka settings contradict each other.
    #[error(transparent)]
    Kafka(#[from] clients::kafka::KafkaConfigError),
    /// The database URL is unusable.
    #[error(transparent)]
    Database(#[from] clients::DatabaseConfigError),
}

/// The lag exporter's names for the shared observability flags.
#[derive(Debug, Clone)]
pub struct LagExporterEndpoints;

impl telemetry::ServiceEndpoints for LagExporterEndpoints {
    const METRICS_ADDR_ENV: &'static str = "ORDERSTREAM_LAG_EXPORTER_METRICS_ADDR";
    const DEFAULT_METRICS_ADDR: &'static str = contract::addresses::LAG_EXPORTER_METRICS_ADDR;
    const READY_FILE_ENV: &'static str = "ORDERSTREAM_LAG_EXPORTER_READY_FILE";
}

impl telemetry::Configuration for Config {
    type Invalid = ConfigError;

    fn validate(&self) -> Result<(), ConfigError> {
        Config::validate(self)
    }
}

impl Config {
    /// Checks what clap cannot and needs no I/O, before connecting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.validate()?;
        Ok(self.database.validate()?)
    }

    /// The polling interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_debug_hides_every_password() {
        let config = Config::try_parse_from([
            "x",
            "--database-url",
            "postgres://u:hunter2@db/x",
            "--kafka-security-protocol",
            "sasl_ssl",
            "--kafka-sasl-mechanism",
            "SCRAM-SHA-512",
            "--kafka-sasl-username",
            "lag",
            "--kafka-sasl-password",
            "hunter3",
        ])
        .unwrap();
        config.validate().unwrap();
        assert!(Config::try_parse_from(["x", "--interval-ms", "0"]).is_err());
        assert_eq!(config.expected_consumers, 1, "one consumer, as `make run` starts");
        assert!(Config::try_parse_from(["x", "--expected-consumers", "0"]).is_err(), "a group of none is no group");
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(config.observability.metrics_addr.ip().is_loopback(), "metrics bind loopback unless configured");
        assert_eq!(config.observability.metrics_addr.port(), 9103);
    }

    #[test]
    fn interval_takes_humantime_and_its_old_millisecond_number() {
        assert_eq!(Config::try_parse_from(["x"]).unwrap().interval(), Duration::from_secs(5));
        assert_eq!(
            Config::try_parse_from(["x", "--interval-ms", "500"]).unwrap().interval(),
            Duration::from_millis(500)
        );
        assert_eq!(Config::try_parse_from(["x", "--interval", "2s"]).unwrap().interval(), Duration::from_secs(2));
        assert!(Config::try_parse_from(["x", "--interval", "0s"]).is_err());
    }
}
