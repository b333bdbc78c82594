//! The three-node Kafka cluster `make chaos-cluster` breaks: which node
//! leads what, and the faults (kill -9, SIGSTOP, a clean stop, a start).
//!
//! `scripts/chaos.sh cluster` starts the cluster with `scripts/kafka.sh` and
//! names it in `ORDERSTREAM_CHAOS_KAFKA_DIR`, `ORDERSTREAM_CHAOS_KAFKA_PORTS`
//! and `ORDERSTREAM_CHAOS_KAFKA_CONTROLLER_PORTS`; every start and stop goes
//! through that script, so the suite runs the cluster `make run BROKERS=3`
//! runs. Node `n` (1-based) keeps its pid in `DIR/node-n/kafka.pid`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use harness::service_scripts::{KafkaService, Output, ScriptError};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

/// Why the cluster could not be reached or driven.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// `scripts/chaos.sh cluster` sets these; run through it.
    #[error("{0} is not set: run the cluster suite with `make chaos-cluster`")]
    NotConfigured(&'static str),
    /// A variable holds something other than comma-separated ports.
    #[error("{name} must be comma-separated ports, got {value:?}")]
    BadPorts {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// `scripts/kafka.sh` failed.
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// `scripts/kafka.sh quorum-leader` printed something other than a node id.
    #[error("scripts/kafka.sh quorum-leader printed no node id: {0:?}")]
    NoLeader(String),
}

/// A Kafka cluster of combined broker+controller nodes on this machine.
#[derive(Debug, Clone)]
pub struct KafkaCluster {
    /// The folder holding `node-1`, `node-2`, … and both port lists, as
    /// `scripts/kafka.sh` takes them.
    service: KafkaService,
}

/// A node of the cluster, numbered from 1 like its `node.id`.
pub type Node = usize;

impl KafkaCluster {
    /// The cluster `scripts/chaos.sh cluster` started.
    pub fn from_env() -> Result<KafkaCluster, ClusterError> {
        let read = |name: &'static str| std::env::var(name).map_err(|_| ClusterError::NotConfigured(name));
        let ports = |name: &'static str| -> Result<Vec<u16>, ClusterError> {
            let value = read(name)?;
            value
                .split(',')
                .map(|port| port.trim().parse::<u16>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| ClusterError::BadPorts { name, value: value.clone() })
        };
        Ok(KafkaCluster {
            service: KafkaService {
                dir: PathBuf::from(read("ORDERSTREAM_CHAOS_KAFKA_DIR")?),
                ports: ports("ORDERSTREAM_CHAOS_KAFKA_PORTS")?,
                controller_ports: ports("ORDERSTREAM_CHAOS_KAFKA_CONTROLLER_PORTS")?,
            },
        })
    }

    /// How many nodes the cluster has.
    pub fn nodes(&self) -> usize {
        self.service.ports.len()
    }

    /// Every node's client address, the producer's and consumers' bootstrap list.
    pub fn brokers(&self) -> String {
        self.service.brokers()
    }

    /// Starts every node that is not running and waits until all answer
    /// as unfenced brokers.
    pub fn start_missing(&self) -> Result<(), ClusterError> {
        self.script(&["start"])
    }

    /// Stops one node cleanly (SIGTERM: it hands its leaderships over first).
    pub fn stop(&self, node: Node) -> Result<(), ClusterError> {
        self.script(&["stop-node", &node.to_string()])
    }

    /// Kills one node with SIGKILL, as a crashed machine would.
    pub fn kill_hard(&self, node: Node) {
        self.signal(node, "KILL");
    }

    /// Freezes one node (SIGSTOP): it stops heartbeating, but keeps its
    /// connections open, as a long GC pause or a stalled disk would.
    pub fn pause(&self, node: Node) {
        self.signal(node, "STOP");
    }

    /// Lets a frozen node run again.
    pub fn resume(&self, node: Node) {
        self.signal(node, "CONT");
    }

    /// The node the KRaft quorum elected as active controller.
    pub fn active_controller(&self) -> Result<Node, ClusterError> {
        let output = self.service.call("quorum-leader", &[]).run(Output::Capture)?;
        let printed = String::from_utf8_lossy(&output.stdout).trim().to_string();
        printed.parse().map_err(|_| ClusterError::NoLeader(printed))
    }

    /// Node → how many partitions of `topic` it leads now, from the
    /// cluster's metadata (nodes leading none are absent); `None` while no
    /// broker answers.
    pub fn leaders(&self, topic: &str) -> Option<BTreeMap<Node, usize>> {
        let partitions = self.partitions(topic)?;
        let mut leaders = BTreeMap::new();
        for (leader, _) in partitions {
            if let Some(node) = leader {
                *leaders.entry(node).or_default() += 1;
            }
        }
        Some(leaders)
    }

    /// Whether every partition of `topic` has a leader and all its
    /// replicas in sync: the state a rolling restart waits for before it
    /// takes the next node down.
    pub fn fully_in_sync(&self, topic: &str) -> bool {
        self.partitions(topic).is_some_and(|partitions| {
            !partitions.is_empty()
                && partitions.iter().all(|(leader, in_sync)| leader.is_some() && *in_sync == self.nodes())
        })
    }

    /// The node leading the most partitions of `topic` (the lowest on a tie).
    pub fn busiest_leader(&self, topic: &str) -> Option<Node> {
        let leaders = self.leaders(topic)?;
        leaders.iter().max_by_key(|(node, count)| (**count, std::cmp::Reverse(**node))).map(|(node, _)| *node)
    }

    /// Each partition of `topic`: its leader and how many replicas are in sync.
    fn partitions(&self, topic: &str) -> Option<Vec<(Option<Node>, usize)>> {
        let client: BaseConsumer = ClientConfig::new().set("bootstrap.servers", self.brokers()).create().ok()?;
        let metadata = client.fetch_metadata(Some(topic), Duration::from_secs(5)).ok()?;
        let topic = metadata.topics().iter().find(|found| found.name() == topic)?;
        Some(
            topic
                .partitions()
                .iter()
                .map(|partition| {
                    let leader = usize::try_from(partition.leader()).ok().filter(|&node| node >= 1);
                    (leader, partition.isr().len())
                })
                .collect(),
        )
    }

    fn signal(&self, node: Node, signal: &str) {
        let pid = self
            .service
            .pid(node)
            .unwrap_or_else(|| panic!("node {node} of {} has no pid file", self.service.dir.display()));
        let status = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().expect("run kill");
        assert!(status.success(), "kill -{signal} {pid} (node {node}) failed");
    }

    fn script(&self, command: &[&str]) -> Result<(), ClusterError> {
        let (action, args) = command.split_first().expect("a command");
        self.service.call(action, args).run(Output::Inherit)?;
        Ok(())
    }
}
