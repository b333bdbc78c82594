//! The pipeline of one phase: the real producer and a consumer group on a
//! fresh [`Scenario`] (database, topics, group, inbox) on the bench's
//! services, measured as one: CPU summed, peak memory of the largest
//! member, metrics summed.

use std::time::Duration;

use anyhow::{bail, ensure};
use harness::endpoints::group_settled;
use harness::{poll_until, Process, Scenario, PARTITIONS};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use crate::procfs;
use crate::services::Services;
use crate::settings::Settings;

/// How long a process may take to answer `/readyz`.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// How long the group may take to hand out every partition.
const SETTLED_WITHIN: Duration = Duration::from_secs(90);

/// For releases whose consumer has no `/status` (the comparison runs
/// them): the group has settled when Kafka reports it stable with every
/// member joined. Always false for members that answer `/status`, whose
/// own view of their partitions is the stricter test.
fn older_group_stable(members: &[Process], brokers: &str, group: &str) -> bool {
    if members.iter().any(|member| member.status().is_some()) {
        return false;
    }
    let Ok(client) = ClientConfig::new().set("bootstrap.servers", brokers).create::<BaseConsumer>() else {
        return false;
    };
    let Ok(list) = client.fetch_group_list(Some(group), Duration::from_secs(5)) else { return false };
    list.groups().iter().any(|described| described.state() == "Stable" && described.members().len() == members.len())
}

/// A running pipeline.
pub struct Pipeline {
    /// Database, topics, group and inbox.
    pub scenario: Scenario,
    /// The producer.
    pub producer: Process,
    /// The group's members; the first is the one profiled.
    pub consumers: Vec<Process>,
}

impl Pipeline {
    /// Starts the producer and `consumers` consumers for `phase`, and
    /// returns once the group has settled: every partition held by one
    /// member, every member holding some (started is not yet consuming).
    pub async fn start(phase: &str, settings: &Settings, services: &Services) -> anyhow::Result<Pipeline> {
        Pipeline::start_on(phase, settings, services, &services.brokers, 1).await
    }

    /// Like [`Pipeline::start`], on other Kafka brokers (the replicated
    /// run's cluster), topics replicated `replication` times.
    pub async fn start_on(
        phase: &str,
        settings: &Settings,
        services: &Services,
        brokers: &str,
        replication: i32,
    ) -> anyhow::Result<Pipeline> {
        let consumers = settings.consumers;
        let scenario =
            Scenario::on_replicated_services(&format!("bench_{phase}"), &services.admin_url, brokers, replication)
                .await
                .with_binaries_from(&settings.bin_dir());
        let mut producer = scenario.start_producer();
        ensure!(producer.wait_ready(READY_WITHIN), "the {phase} producer was not ready within {READY_WITHIN:?}");
        let mut members = Vec::new();
        for _ in 0..consumers {
            let mut consumer = scenario.start_consumer();
            ensure!(consumer.wait_ready(READY_WITHIN), "a {phase} consumer was not ready within {READY_WITHIN:?}");
            members.push(consumer);
        }
        let settled = poll_until(SETTLED_WITHIN, || async {
            group_settled(&members, PARTITIONS) || older_group_stable(&members, brokers, &scenario.group)
        })
        .await;
        ensure!(settled, "the {phase} group did not settle on {PARTITIONS} partitions in {SETTLED_WITHIN:?}");
        Ok(Pipeline { scenario, producer, consumers: members })
    }

    /// Records applied, from the group's stored offsets (one row per
    /// partition; the topic is new, so offsets count records): a `count(*)`
    /// of the growing table every 200 ms would cost PostgreSQL CPU the
    /// pipeline needs.
    pub async fn applied(&self) -> i64 {
        self.scenario.stored_offsets(&self.scenario.group).await.values().sum()
    }

    /// CPU ticks of the producer so far.
    pub fn producer_ticks(&self) -> u64 {
        procfs::cpu_ticks(self.producer.pid())
    }

    /// CPU ticks of the whole group so far.
    pub fn consumer_ticks(&self) -> u64 {
        self.consumers.iter().map(|consumer| procfs::cpu_ticks(consumer.pid())).sum()
    }

    /// Peak resident memory of the producer, in KiB.
    pub fn producer_peak_kib(&self) -> u64 {
        self.producer.peak_memory_bytes().unwrap_or(0) / 1024
    }

    /// Peak resident memory of the largest member, in KiB.
    pub fn consumer_peak_kib(&self) -> u64 {
        self.consumers.iter().filter_map(Process::peak_memory_bytes).max().unwrap_or(0) / 1024
    }

    /// One series summed over the members (0 where absent).
    pub fn consumers_metric(&self, series: &str) -> f64 {
        self.consumers.iter().filter_map(|consumer| consumer.metric(series)).sum()
    }

    /// The process ids of producer and members.
    pub fn pids(&self) -> Vec<u32> {
        std::iter::once(self.producer.pid()).chain(self.consumers.iter().map(Process::pid)).collect()
    }

    /// Fails if any process has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if !self.producer.is_running() || !self.consumers.iter_mut().all(Process::is_running) {
            bail!("a pipeline process exited; see the logs in the work folder");
        }
        Ok(())
    }

    /// Stops every process (SIGTERM, a clean shutdown) and drops the database.
    pub async fn stop(self, services: &Services) -> anyhow::Result<()> {
        self.producer.terminate();
        for consumer in self.consumers {
            consumer.terminate();
        }
        self.scenario.drop_database(&services.admin_url).await?;
        Ok(())
    }
}
