//! The three-node Kafka cluster of the replicated end-to-end run
//! (`--cluster`), through `scripts/kafka.sh` like the bench's single broker,
//! on ports.env's `PORT_BENCH_CLUSTER_*`: wiped and started fresh, stopped
//! when dropped.

use anyhow::Context;
use harness::service_scripts::{KafkaService, Output};

use crate::ports::port;
use crate::procfs;
use crate::settings::Settings;

/// Nodes of the cluster, and so replicas of each topic.
pub const NODES: usize = 3;

/// A running three-node cluster.
pub struct Cluster {
    /// As `scripts/kafka.sh` takes it: DIR (`node-1` … `node-3` inside),
    /// the client ports, node 1 first, and the controller ports.
    service: KafkaService,
    /// Every node's address: the pipeline's bootstrap list.
    pub brokers: String,
}

impl Cluster {
    /// Stops what an aborted run left, wipes the nodes' data and starts all
    /// three.
    pub fn start_fresh(settings: &Settings) -> anyhow::Result<Cluster> {
        let ports = [1, 2, 3].map(|node| port(&format!("PORT_BENCH_CLUSTER_KAFKA_{node}")));
        let controller_ports = [1, 2, 3].map(|node| port(&format!("PORT_BENCH_CLUSTER_KAFKA_CONTROLLER_{node}")));
        let service = KafkaService {
            dir: settings.local.join("cluster"),
            ports: ports.to_vec(),
            controller_ports: controller_ports.to_vec(),
        };
        let cluster = Cluster { brokers: service.brokers(), service };
        cluster.stop();
        for node in 1..=NODES {
            let data = cluster.service.dir.join(format!("node-{node}/data"));
            if data.exists() {
                std::fs::remove_dir_all(&data).with_context(|| format!("wipe {}", data.display()))?;
            }
        }
        cluster.script("start", false)?;
        Ok(cluster)
    }

    /// CPU ticks of the three nodes so far.
    pub fn kafka_ticks(&self) -> u64 {
        (1..=NODES).filter_map(|node| self.service.pid(node)).map(procfs::cpu_ticks).sum()
    }

    fn script(&self, action: &str, quiet: bool) -> anyhow::Result<()> {
        let output = if quiet { Output::Discard } else { Output::Stderr };
        self.service
            .call(action, &[])
            .run(output)
            .with_context(|| format!("scripts/kafka.sh {action} {}", self.service.dir.display()))?;
        Ok(())
    }

    fn stop(&self) {
        let _ = self.script("stop", true);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}
