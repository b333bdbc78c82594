//! One half of the pipeline loading N orders, watched from outside: when it
//! started, when its first and its last item arrived, and the CPU spent in
//! between (JVM start-up and connection set-up excluded). Orderstream's
//! halves and their peers are watched the same way, so they compare.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::ensure;
use rdkafka::consumer::BaseConsumer;
use rdkafka::ClientConfig;

use crate::procfs::clock_ticks_per_second;
use std::time::{SystemTime, UNIX_EPOCH};

/// How far a load has got, at one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Nothing has arrived yet.
    Nothing,
    /// Some, not all.
    Some,
    /// Everything.
    All,
}

/// What a load cost in CPU: the process(es) doing it and the service it
/// loads into (PostgreSQL for a sink, the broker for a source).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTicks {
    /// The loader: consumers, producer or the Connect worker.
    pub loader: u64,
    /// The service written to.
    pub service: u64,
}

/// The times and CPU of a watched load.
#[derive(Debug, Clone, Copy)]
pub struct Watched {
    /// When the load was started (seconds since the epoch).
    pub started: f64,
    /// The first poll that saw something.
    pub first_seen: f64,
    /// The first poll that saw everything.
    pub done: f64,
    /// CPU from the last poll that saw nothing to the one that saw everything.
    pub cpu: CpuTicks,
}

/// What one side of a side-by-side phase measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadResult {
    /// First item arrived → last item arrived.
    pub first_to_last_seconds: f64,
    /// Load started (process launched, or file dropped) → last item arrived.
    pub from_start_seconds: f64,
    /// CPU seconds of the loader over the load.
    pub loader_cpu_seconds: f64,
    /// CPU seconds of the service written to over the load.
    pub service_cpu_seconds: f64,
}

impl LoadResult {
    /// Orders per second, first → last.
    pub fn rows_per_s(&self, orders: u64) -> f64 {
        orders as f64 / self.first_to_last_seconds
    }

    /// Orders per second, from the start.
    pub fn rows_per_s_from_start(&self, orders: u64) -> f64 {
        orders as f64 / self.from_start_seconds
    }

    /// Loader and service together.
    pub fn cpu_seconds(&self) -> f64 {
        self.loader_cpu_seconds + self.service_cpu_seconds
    }
}

impl Watched {
    /// The result, first → last as polled.
    pub fn result(&self) -> LoadResult {
        self.result_between(self.first_seen, self.done)
    }

    /// The result with first and last arrival known more precisely (a
    /// sink's `written_at`).
    pub fn result_between(&self, first: f64, last: f64) -> LoadResult {
        let tick = clock_ticks_per_second();
        LoadResult {
            first_to_last_seconds: last - first,
            from_start_seconds: last - self.started,
            loader_cpu_seconds: self.cpu.loader as f64 / tick,
            service_cpu_seconds: self.cpu.service as f64 / tick,
        }
    }
}

/// Polls `progress` every `every` until it says [`Progress::All`], at most
/// `within`; samples `ticks` at each poll and runs `check` (fails if a
/// process died).
pub async fn watch<P, Fut>(
    started: f64,
    within: Duration,
    every: Duration,
    mut progress: P,
    ticks: &dyn Fn() -> CpuTicks,
    check: &mut dyn FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Watched>
where
    P: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Progress>>,
{
    let deadline = Instant::now() + within;
    let mut before_first = ticks();
    let mut first_seen = None;
    // When the whole load lands between two polls, its first item came after
    // the last poll that saw nothing: that poll bounds the window (the rate
    // is then a lower bound, never a division by zero).
    let mut nothing_until = started;
    loop {
        let sample = ticks();
        let polled_at = epoch_now();
        match progress().await? {
            Progress::Nothing => {
                before_first = sample;
                nothing_until = polled_at;
            }
            Progress::Some => {
                first_seen.get_or_insert_with(epoch_now);
            }
            Progress::All => {
                let done = epoch_now();
                let after = ticks();
                let cpu = CpuTicks {
                    loader: after.loader.saturating_sub(before_first.loader),
                    service: after.service.saturating_sub(before_first.service),
                };
                return Ok(Watched { started, first_seen: first_seen.unwrap_or(nothing_until), done, cpu });
            }
        }
        check()?;
        ensure!(Instant::now() < deadline, "load not done within {within:?}");
        tokio::time::sleep(every).await;
    }
}

/// Records on a topic, from its partitions' end offsets (the bench's
/// topics are new: no retention, no transactions, so offsets count records).
pub struct TopicFill {
    /// A client that never joins a group: it only asks for offsets.
    consumer: BaseConsumer,
    /// The topic.
    topic: String,
    /// Its partitions.
    partitions: i32,
}

impl TopicFill {
    /// Watches `topic` of `partitions` partitions on `brokers`.
    pub fn new(brokers: &str, topic: &str, partitions: i32) -> anyhow::Result<TopicFill> {
        let consumer = ClientConfig::new().set("bootstrap.servers", brokers).create()?;
        Ok(TopicFill { consumer, topic: topic.to_string(), partitions })
    }

    /// The sum of the end offsets.
    pub fn records(&self) -> anyhow::Result<i64> {
        let watermarks =
            clients::partitions::watermarks(&self.consumer, &self.topic, 0..self.partitions, Duration::from_secs(10))?;
        Ok(watermarks.values().map(|(_, high)| high).sum())
    }

    /// How far the topic is towards `expected` records.
    pub fn progress(&self, expected: i64) -> anyhow::Result<Progress> {
        Ok(match self.records()? {
            0 => Progress::Nothing,
            records if records >= expected => Progress::All,
            _ => Progress::Some,
        })
    }
}

/// Seconds since the epoch, to compare with times PostgreSQL stored
/// (`written_at`: the same machine clock).
pub fn epoch_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_load_that_lands_between_two_polls_has_a_window_from_the_last_empty_poll() {
        let mut polls = 0;
        let progress = || {
            polls += 1;
            let answer = if polls == 1 { Progress::Nothing } else { Progress::All };
            async move { Ok(answer) }
        };
        let started = epoch_now();
        let watched = watch(
            started,
            Duration::from_secs(5),
            Duration::from_millis(20),
            progress,
            &CpuTicks::default,
            &mut || Ok(()),
        )
        .await
        .unwrap();
        let result = watched.result();
        assert!(result.first_to_last_seconds > 0.0, "{result:?}");
        assert!(result.rows_per_s(1_000).is_finite(), "a rate, not infinity: {result:?}");
    }
}
