//! Kafka's limit: the broker's own `ProducerPerformance`, records of the
//! mean encoded size of ours, acks=all, lz4, idempotent, 6 partitions.

use anyhow::{ensure, Context};

use crate::input::Input;
use crate::say;
use crate::services::Services;
use crate::settings::Settings;

/// What the phase measured.
#[derive(Debug, Clone, Copy)]
pub struct KafkaResult {
    /// Records per second, the tool's own summary.
    pub rows_per_s: f64,
    /// The run's length at that rate.
    pub seconds: f64,
}

/// Runs the phase.
pub async fn run(settings: &Settings, services: &Services, input: &Input) -> anyhow::Result<KafkaResult> {
    let record_size = input.record_size();
    say(format!("phase kafka: ProducerPerformance, {} records of {record_size} bytes", settings.orders));
    let topic = "bench.perf";
    services.create_topic(topic, 6)?;
    let log = settings.work_dir().join("kafka-perf.log");
    let bootstrap = format!("bootstrap.servers={}", services.brokers);
    let (orders, size) = (settings.orders.to_string(), record_size.to_string());
    let args = [
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        &orders,
        "--record-size",
        &size,
        "--throughput",
        "-1",
        "--producer-props",
        &bootstrap,
        "acks=all",
        "linger.ms=5",
        "compression.type=lz4",
        "enable.idempotence=true",
    ];
    let mut tool = services.kafka_tool(&args, &log)?;
    // Blocking for its whole length: on a thread of its own, so the runtime
    // still answers Ctrl-C.
    let status = tokio::task::spawn_blocking(move || tool.status()).await??;
    ensure!(status.success(), "ProducerPerformance failed; see {}", log.display());
    let text = std::fs::read_to_string(&log)?;
    let rows_per_s = summary_rate(&text).with_context(|| format!("no summary in {}", log.display()))?;
    Ok(KafkaResult { rows_per_s, seconds: settings.orders as f64 / rows_per_s })
}

/// The records/s of the tool's final summary line (`N records sent, R
/// records/sec (…)`): the last such line.
fn summary_rate(output: &str) -> Option<f64> {
    let line = output.lines().rev().find(|line| line.contains(" records sent, "))?;
    let after = line.split(" records sent, ").nth(1)?;
    after.split(' ').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_summary_line_gives_the_rate() {
        let output = "250 records sent, 50.0 records/sec (0.01 MB/sec), 2.0 ms avg latency\n\
                      100000 records sent, 123456.7 records/sec (9.8 MB/sec), 80.1 ms avg latency, 200.0 ms max latency\n";
        assert_eq!(summary_rate(output), Some(123456.7));
    }
}
