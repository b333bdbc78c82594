//! The three-node Kafka cluster of the replicated end-to-end run
//! (`--cluster`), through `scripts/kafka.sh` like the bench's single broker,
//! on ports.env's `PORT_BENCH_CLUSTER_*`: wiped and started fresh, stopped
//! when dropped.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use crate::ports::port;
use crate::procfs;
use crate::settings::Settings;

/// Nodes of the cluster, and so replicas of each topic.
pub const NODES: usize = 3;

/// A running three-node cluster.
pub struct Cluster {
    /// `scripts/kafka.sh`'s DIR: `node-1` … `node-3` inside.
    dir: PathBuf,
    /// Client ports, node 1 first.
    ports: [u16; NODES],
    /// Controller ports.
    controller_ports: [u16; NODES],
    /// Every node's address: the pipeline's bootstrap list.
    pub brokers: String,
}

impl Cluster {
    /// Stops what an aborted run left, wipes the nodes' data and starts all
    /// three.
    pub fn start_fresh(settings: &Settings) -> anyhow::Result<Cluster> {
        let ports = [1, 2, 3].map(|node| port(&format!("PORT_BENCH_CLUSTER_KAFKA_{node}")));
        let controller_ports = [1, 2, 3].map(|node| port(&format!("PORT_BENCH_CLUSTER_KAFKA_CONTROLLER_{node}")));
        let cluster = Cluster {
            dir: settings.local.join("cluster"),
            ports,
            controller_ports,
            brokers: ports.map(|port| format!("127.0.0.1:{port}")).join(","),
        };
        cluster.stop();
        for node in 1..=NODES {
            let data = cluster.dir.join(format!("node-{node}/data"));
            if data.exists() {
                std::fs::remove_dir_all(&data).with_context(|| format!("wipe {}", data.display()))?;
            }
        }
        cluster.script("start", false)?;
        Ok(cluster)
    }

    /// CPU ticks of the three nodes so far.
    pub fn kafka_ticks(&self) -> u64 {
        (1..=NODES)
            .filter_map(|node| std::fs::read_to_string(self.dir.join(format!("node-{node}/kafka.pid"))).ok())
            .filter_map(|pid| pid.trim().parse().ok())
            .map(procfs::cpu_ticks)
            .sum()
    }

    fn script(&self, action: &str, quiet: bool) -> anyhow::Result<()> {
        let join = |ports: &[u16]| ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
        let mut command = Command::new("bash");
        command
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka.sh"))
            .arg(action)
            .arg(&self.dir)
            .arg(join(&self.ports))
            .arg(join(&self.controller_ports))
            .stdin(Stdio::null());
        if quiet {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        } else {
            command.stdout(std::io::stderr()).stderr(std::io::stderr());
        }
        let status = command.status().context("run scripts/kafka.sh")?;
        if !status.success() {
            bail!("scripts/kafka.sh {action} {} failed ({status})", self.dir.display());
        }
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
