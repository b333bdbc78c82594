//! The exporter's configuration.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// Exports consumer-group lag (from Kafka) and data freshness (from
/// PostgreSQL) as Prometheus metrics.
#[derive(Clone, Parser)]
#[command(name = "orderstream-lag-exporter", version)]
pub struct Config {
    /// Brokers, TLS, SASL and pass-through librdkafka settings.
    #[command(flatten)]
    pub kafka: connect::KafkaArgs,

    /// Topic whose lag is measured.
    #[arg(long, env = "ORDERSTREAM_TOPIC", default_value = "orders")]
    pub topic: String,

    /// Consumer group whose lag is measured.
    #[arg(long, env = "ORDERSTREAM_GROUP", default_value = "orderstream")]
    pub group: String,

    /// The PostgreSQL URL (with `sslmode`) and CA file, for data freshness:
    /// reads the `pipeline_freshness` view (the analyst role may).
    #[command(flatten)]
    pub database: connect::DatabaseArgs,

    /// How often lag and freshness are measured, in milliseconds.
    #[arg(long, env = "ORDERSTREAM_LAG_INTERVAL_MS", default_value_t = 5_000)]
    pub interval_ms: u64,

    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[arg(long, env = "ORDERSTREAM_LAG_EXPORTER_METRICS_ADDR", default_value = "127.0.0.1:9103")]
    pub metrics_addr: SocketAddr,

    /// Where to write `{"addr": ..., "pid": ...}` once the endpoints are
    /// bound (the actual port with `--metrics-addr` port 0).
    #[arg(long, env = "ORDERSTREAM_LAG_EXPORTER_READY_FILE")]
    pub ready_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Config {
    /// Passwords are redacted by the fields' own `Debug`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("kafka", &self.kafka)
            .field("topic", &self.topic)
            .field("group", &self.group)
            .field("database", &self.database)
            .field("interval_ms", &self.interval_ms)
            .field("metrics_addr", &self.metrics_addr)
            .field("ready_file", &self.ready_file)
            .finish()
    }
}

impl Config {
    /// Checks what can be checked before connecting.
    pub fn validate(&self) -> Result<(), String> {
        if self.interval_ms == 0 {
            return Err("--interval-ms must be at least 1".into());
        }
        self.kafka.validate().map_err(|error| error.to_string())?;
        self.database.validate()
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
        assert_eq!(config.validate(), Ok(()));
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(config.metrics_addr.ip().is_loopback(), "metrics bind loopback unless configured");
    }
}
