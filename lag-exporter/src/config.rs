//! The exporter's configuration.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// Exports consumer-group lag (from Kafka) and data freshness (from
/// PostgreSQL) as Prometheus metrics.
#[derive(Clone, Parser)]
#[command(name = "orderstream-lag-exporter", version)]
pub struct Config {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(long = "brokers", env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,

    /// Topic whose lag is measured.
    #[arg(long, env = "ORDERSTREAM_TOPIC", default_value = "orders")]
    pub topic: String,

    /// Consumer group whose lag is measured.
    #[arg(long, env = "ORDERSTREAM_GROUP", default_value = "orderstream")]
    pub group: String,

    /// PostgreSQL URL, for data freshness. Never logged.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://orderstream@127.0.0.1:5433/orderstream",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Extra librdkafka settings as `key=value` (TLS, SASL).
    #[arg(long = "kafka-option", env = "ORDERSTREAM_KAFKA_OPTIONS", value_delimiter = ',', value_parser = telemetry::parse_key_value)]
    pub kafka_options: Vec<(String, String)>,

    /// How often lag and freshness are measured, in milliseconds.
    #[arg(long, env = "ORDERSTREAM_LAG_INTERVAL_MS", default_value_t = 5_000)]
    pub interval_ms: u64,

    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[arg(long, env = "ORDERSTREAM_LAG_EXPORTER_METRICS_ADDR", default_value = "127.0.0.1:9103")]
    pub metrics_addr: SocketAddr,
}

impl std::fmt::Debug for Config {
    /// The database URL may hold a password, so it is left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("group", &self.group)
            .field("database_url", &"<redacted>")
            .field("interval_ms", &self.interval_ms)
            .field("metrics_addr", &self.metrics_addr)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Checks what can be checked before connecting.
    pub fn validate(&self) -> Result<(), String> {
        if self.interval_ms == 0 {
            return Err("--interval-ms must be at least 1".into());
        }
        self.database_url
            .parse::<tokio_postgres::Config>()
            .map(|_| ())
            .map_err(|error| format!("--database-url is not a PostgreSQL URL: {error}"))
    }

    /// The polling interval.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_debug_hides_the_database_url() {
        let config = Config::try_parse_from(["x", "--database-url", "postgres://u:hunter2@db/x"]).unwrap();
        assert_eq!(config.validate(), Ok(()));
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(config.metrics_addr.ip().is_loopback(), "metrics bind loopback unless configured");
    }
}
