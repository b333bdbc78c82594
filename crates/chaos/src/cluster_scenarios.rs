//! The scenarios of `make chaos-cluster`: the pipeline on a three-node Kafka
//! cluster (topics replicated 3 times, `min.insync.replicas` 2, no unclean
//! leader election), a broker or the controller failing under load, and a
//! consumer group of three processes changing under load.
//!
//! Each ends with the suite's invariant (nothing lost, nothing doubled,
//! versions never down, offsets never back) and one more check a cluster
//! makes possible: with no producer crash, the orders topic holds exactly
//! one record per valid line, so a failover neither lost an acknowledged
//! record nor let an idempotent retry land twice.
//!
//! Waiting polls a condition (rows stored, leaders moved, replicas in sync,
//! partitions assigned); the only sleeps are a fault's own duration.

use std::time::{Duration, Instant};

use harness::{poll_until, Process};

use crate::cluster::{KafkaCluster, Node};
use crate::rig::quarter;
use crate::rig::{Outcome, Rig, Size};

/// Every cluster scenario: its id for `--only`, and its name in the table.
pub const CLUSTER_SCENARIOS: [(&str, &str); 6] = [
    ("c1", "c1 busiest leader kill -9"),
    ("c2", "c2 active controller kill -9"),
    ("c3", "c3 a broker down for good"),
    ("c4", "c4 broker SIGSTOP past timeout"),
    ("c5", "c5 rolling restart"),
    ("c6", "c6 group of 3: kill 1, add 1"),
];

/// Replicas of every topic: one per node of the three-node cluster.
const REPLICATION: i32 = 3;

/// Rows that must arrive while a broker is away, to show the pipeline
/// carries on with two in-sync replicas rather than waiting for the third.
const ROWS_WHILE_DOWN: i64 = 500;

/// How long the cluster may take to move leaders or elect a controller
/// (its broker session timeout is 9 s; the machine is shared).
const FAILOVER_WITHIN: Duration = Duration::from_secs(60);

/// Runs one cluster scenario by id, on a cluster whose nodes are all up.
pub async fn run(id: &str, size: Size, cluster: &KafkaCluster) -> Outcome {
    let name = CLUSTER_SCENARIOS.iter().find(|(known, _)| *known == id).map(|(_, name)| *name).expect("known scenario");
    // A node an earlier scenario left down comes back first.
    if let Err(error) = tokio::task::block_in_place(|| cluster.start_missing()) {
        return Outcome::not_run(name, format!("the cluster's nodes could not all be started: {error}"));
    }
    match id {
        "c1" => busiest_leader_killed(name, size, cluster).await,
        "c2" => controller_killed(name, size, cluster).await,
        "c3" => broker_down_for_good(name, size, cluster).await,
        "c4" => broker_paused(name, size, cluster).await,
        "c5" => rolling_restart(name, size, cluster).await,
        "c6" => group_of_three(name, size, cluster).await,
        _ => unreachable!("checked above"),
    }
}

/// The pipeline of a cluster scenario: producer and one consumer running,
/// the steady load started, and `quarter(size)` rows stored.
struct Loaded {
    rig: Rig,
    load: tokio::task::JoinHandle<crate::load::LoadWriter>,
    processes: Vec<Process>,
}

async fn loaded(name: &str, size: Size, cluster: &KafkaCluster, seed: u64) -> Loaded {
    let mut rig = Rig::on_cluster(name, &cluster.brokers(), REPLICATION, size).await;
    rig.expect_each_line_once_on_topic();
    let processes = vec![rig.scenario.start_producer(), rig.scenario.start_consumer()];
    let load = rig.spawn_load(rig.writer("load", seed, 0));
    rig.wait_rows(quarter(size)).await;
    Loaded { rig, load, processes }
}

impl Loaded {
    /// Waits for the load to be written, then for the invariant.
    async fn finish(self, fault_ended: Instant) -> Outcome {
        self.load.await.expect("load");
        self.rig.finish(fault_ended, self.processes).await
    }
}

async fn busiest_leader_killed(name: &str, size: Size, cluster: &KafkaCluster) -> Outcome {
    let mut run = loaded(name, size, cluster, 31).await;
    let Some(victim) = busiest_leader(&mut run.rig, cluster) else { return run.finish(Instant::now()).await };
    cluster.kill_hard(victim);
    leaders_move_off(&mut run.rig, cluster, victim).await;
    carries_on(&mut run.rig).await;
    tokio::time::sleep(run.rig.size.outage).await;
    bring_back(&mut run.rig, cluster);
    run.finish(Instant::now()).await
}

async fn controller_killed(name: &str, size: Size, cluster: &KafkaCluster) -> Outcome {
    let mut run = loaded(name, size, cluster, 32).await;
    let controller = match tokio::task::block_in_place(|| cluster.active_controller()) {
        Ok(controller) => controller,
        Err(error) => {
            run.rig.fail(format!("the active controller is unknown: {error}"));
            return run.finish(Instant::now()).await;
        }
    };
    cluster.kill_hard(controller);
    // The two nodes left elect one of them.
    let elected = poll_until(FAILOVER_WITHIN, || async {
        tokio::task::block_in_place(|| cluster.active_controller()).is_ok_and(|leader| leader != controller)
    })
    .await;
    run.rig.check(elected, format!("no other controller was elected after node {controller} was killed"));
    carries_on(&mut run.rig).await;
    tokio::time::sleep(run.rig.size.outage).await;
    bring_back(&mut run.rig, cluster);
    run.finish(Instant::now()).await
}

async fn broker_down_for_good(name: &str, size: Size, cluster: &KafkaCluster) -> Outcome {
    let mut run = loaded(name, size, cluster, 33).await;
    let Some(victim) = busiest_leader(&mut run.rig, cluster) else { return run.finish(Instant::now()).await };
    cluster.kill_hard(victim);
    let fault_ended = Instant::now();
    leaders_move_off(&mut run.rig, cluster, victim).await;
    carries_on(&mut run.rig).await;
    // It stays down until the load is written and the invariant holds: the
    // next scenario starts it again.
    run.finish(fault_ended).await
}

async fn broker_paused(name: &str, size: Size, cluster: &KafkaCluster) -> Outcome {
    let mut run = loaded(name, size, cluster, 34).await;
    let Some(victim) = busiest_leader(&mut run.rig, cluster) else { return run.finish(Instant::now()).await };
    cluster.pause(victim);
    // Past its session timeout the controller fences it and moves its
    // leaderships: the cluster's metadata no longer names it a leader.
    leaders_move_off(&mut run.rig, cluster, victim).await;
    carries_on(&mut run.rig).await;
    cluster.resume(victim);
    let fault_ended = Instant::now();
    run.finish(fault_ended).await
}

async fn rolling_restart(name: &str, size: Size, cluster: &KafkaCluster) -> Outcome {
    // Each node takes tens of seconds to restart here: load enough to last
    // through all three.
    let size = Size { lines: size.lines * 3, ..size };
    let mut run = loaded(name, size, cluster, 35).await;
    let topic = run.rig.scenario.topic.clone();
    for node in 1..=cluster.nodes() {
        if let Err(error) = tokio::task::block_in_place(|| cluster.stop(node)) {
            run.rig.fail(format!("node {node} did not stop cleanly: {error}"));
        }
        bring_back(&mut run.rig, cluster);
        // The next node goes down only once every replica caught up, as an
        // operator's rolling restart would wait.
        let in_sync = poll_until(Duration::from_secs(120), || async {
            tokio::task::block_in_place(|| cluster.fully_in_sync(&topic))
        })
        .await;
        run.rig.check(in_sync, format!("the replicas never caught up after node {node} restarted"));
    }
    run.finish(Instant::now()).await
}

async fn group_of_three(name: &str, size: Size, cluster: &KafkaCluster) -> Outcome {
    let mut rig = Rig::on_cluster(name, &cluster.brokers(), REPLICATION, size).await;
    rig.expect_each_line_once_on_topic();
    let producer = rig.scenario.start_producer();
    let (first, killed, third) =
        (rig.scenario.start_consumer(), rig.scenario.start_consumer(), rig.scenario.start_consumer());
    let load = rig.spawn_load(rig.writer("load", 36, 0));
    rig.wait_rows(quarter(size)).await;
    killed.kill_hard();
    rig.wait_rows(quarter(size) * 2).await;
    let added = rig.scenario.start_consumer();
    // The killed member's session expires and the added one joins: the
    // three live members share every partition, each holding some.
    let members = [&first, &third, &added];
    let shared = poll_until(Duration::from_secs(120), || async {
        let held: Option<Vec<usize>> = members
            .iter()
            .map(|member| member.status().and_then(|status| status["assigned_partitions"].as_array().map(Vec::len)))
            .collect();
        held.is_some_and(|held| {
            held.iter().all(|&count| count > 0) && held.iter().sum::<usize>() == harness::PARTITIONS as usize
        })
    })
    .await;
    rig.check(shared, "the three live consumers never shared every partition after one was killed and one added");
    let fault_ended = Instant::now();
    load.await.expect("load");
    rig.finish(fault_ended, vec![producer, first, third, added]).await
}

/// The node leading most of the rig's partitions, or `None` (recorded as
/// a failure) while the cluster's metadata names no leader.
fn busiest_leader(rig: &mut Rig, cluster: &KafkaCluster) -> Option<Node> {
    let victim = tokio::task::block_in_place(|| cluster.busiest_leader(&rig.scenario.topic));
    if victim.is_none() {
        rig.fail("the cluster's metadata named no leader of the orders topic");
    }
    victim
}

/// Waits until every partition is led by another node than `victim`.
async fn leaders_move_off(rig: &mut Rig, cluster: &KafkaCluster, victim: Node) {
    let topic = rig.scenario.topic.clone();
    let moved = poll_until(FAILOVER_WITHIN, || async {
        tokio::task::block_in_place(|| cluster.leaders(&topic)).is_some_and(|leaders| {
            !leaders.contains_key(&victim) && leaders.values().sum::<usize>() == harness::PARTITIONS as usize
        })
    })
    .await;
    rig.check(moved, format!("the partitions led by node {victim} never moved to another node"));
}

/// Waits until the pipeline stores what is written while a node is away:
/// `ROWS_WHILE_DOWN` more rows, or everything written so far if that is
/// less (the load about to end), so it goes on with two replicas in sync.
async fn carries_on(rig: &mut Rig) {
    let before = rig.scenario.order_count().await;
    let went_on = poll_until(FAILOVER_WITHIN, || async {
        let written = rig.ledger.lock().unwrap().orders.len() as i64;
        rig.scenario.order_count().await >= (before + ROWS_WHILE_DOWN).min(written)
    })
    .await;
    rig.check(went_on, format!("the orders written with a node away never arrived (stuck at {before})"));
}

/// Starts every node that is down, recording a failure if one cannot.
fn bring_back(rig: &mut Rig, cluster: &KafkaCluster) {
    if let Err(error) = tokio::task::block_in_place(|| cluster.start_missing()) {
        rig.fail(format!("a node could not be started again: {error}"));
    }
}
