//! orderstream's Kafka → PostgreSQL half alone: the consumer group (two
//! members, the deployed shape) drains the topic the [`super::source`]
//! phase filled into `orders`. Timed from the first row committed to the
//! last (`orders.written_at`) and from the consumers' launch; CPU of the
//! consumers and PostgreSQL over the load.

use std::time::Duration;

use anyhow::{bail, ensure};
use harness::{Process, Scenario};

use crate::load_watch::epoch_now;
use crate::load_watch::{watch, CpuTicks, LoadResult, Progress};
use crate::procfs;
use crate::say;
use crate::services::Services;
use crate::settings::Settings;

/// How long the drain may take.
const LOAD_WITHIN: Duration = Duration::from_secs(1800);
/// How often progress is read (as the e2e phase: the group's stored offsets).
const POLL: Duration = Duration::from_millis(200);

/// What the phase measured.
#[derive(Debug, Clone, Copy)]
pub struct SinkResult {
    /// The drain, watched like its peer's.
    pub load: LoadResult,
    /// Peak resident memory of the largest member, KiB: a consumer catching
    /// up on a full topic, where its prefetch bounds are tested.
    pub consumer_peak_kib: u64,
}

/// Runs the phase on `scenario`, whose topic holds the N orders; drops its
/// database at the end.
pub async fn run(settings: &Settings, services: &Services, scenario: Scenario) -> anyhow::Result<SinkResult> {
    say(format!("phase sink: {} consumers drain {} orders into orders", settings.consumers, settings.orders));
    let orders = settings.orders as i64;
    let started = epoch_now();
    let mut consumers: Vec<Process> = (0..settings.consumers).map(|_| scenario.start_consumer()).collect();
    let pids: Vec<u32> = consumers.iter().map(Process::pid).collect();
    let ticks = || CpuTicks {
        loader: pids.iter().map(|&pid| procfs::cpu_ticks(pid)).sum(),
        service: services.postgres_ticks(),
    };
    let mut check = || {
        if !consumers.iter_mut().all(Process::is_running) {
            bail!("a sink consumer exited; see the logs in {}", settings.work_dir().display());
        }
        Ok(())
    };
    let progress = || async {
        let applied: i64 = scenario.stored_offsets(&scenario.group).await.values().sum();
        Ok(match applied {
            0 => Progress::Nothing,
            applied if applied >= orders => Progress::All,
            _ => Progress::Some,
        })
    };
    let watched = watch(started, LOAD_WITHIN, POLL, progress, &ticks, &mut check).await?;
    let db = scenario.db().await;
    let row = db
        .query_one(
            "SELECT count(*), extract(epoch FROM min(written_at))::float8, extract(epoch FROM max(written_at))::float8
             FROM orders",
            &[],
        )
        .await?;
    let (rows, first, last): (i64, f64, f64) = (row.get(0), row.get(1), row.get(2));
    ensure!(rows == orders, "{rows} rows, not {orders}, after the sink phase");
    drop(db);
    let consumer_peak_kib = consumers.iter().filter_map(Process::peak_memory_bytes).max().unwrap_or(0) / 1024;
    for consumer in consumers {
        consumer.terminate();
    }
    scenario.drop_database(&services.admin_url).await?;
    Ok(SinkResult { load: watched.result_between(first, last), consumer_peak_kib })
}
