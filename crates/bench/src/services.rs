//! The bench's own PostgreSQL and Kafka, through the project's service
//! scripts (`scripts/postgres.sh`, `scripts/kafka.sh`), on ports apart from
//! `make run`'s and `make test`'s: wiped and started fresh, stopped when
//! dropped (also on failure and Ctrl-C).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use harness::service_scripts::{Call, KafkaService, Output, PostgresService};

use crate::procfs;
use crate::settings::Settings;

/// The running services.
pub struct Services {
    postgres: PostgresService,
    kafka: KafkaService,
    /// URL of a role allowed to create databases.
    pub admin_url: String,
    /// Kafka bootstrap servers.
    pub brokers: String,
}

/// Runs a script call: its progress goes where the bench's does, standard
/// error, unless `quiet` (then captured, and quoted if it fails).
fn run_script(call: Call, quiet: bool) -> anyhow::Result<std::process::Output> {
    Ok(call.run(if quiet { Output::Capture } else { Output::Stderr })?)
}

impl Services {
    /// Stops and wipes what an aborted run left behind, then starts both
    /// services on empty data.
    pub fn start_fresh(settings: &Settings) -> anyhow::Result<Services> {
        let mut services = Services {
            postgres: PostgresService { dir: settings.local.join("pg"), port: settings.pg_port },
            kafka: KafkaService::single(
                settings.local.join("kafka"),
                settings.kafka_port,
                settings.kafka_controller_port,
            ),
            admin_url: String::new(),
            brokers: format!("127.0.0.1:{}", settings.kafka_port),
        };
        services.stop();
        for stale in [services.kafka.dir.join("data"), services.postgres.dir.clone(), settings.work_dir()] {
            if stale.exists() {
                std::fs::remove_dir_all(&stale).with_context(|| format!("wipe {}", stale.display()))?;
            }
        }
        std::fs::create_dir_all(settings.work_dir())?;
        run_script(services.postgres.call("start"), false)?;
        run_script(services.kafka.call("start", &[]), false)?;
        let url = run_script(services.postgres.call("url"), true)?;
        services.admin_url = String::from_utf8(url.stdout)?.trim().to_string();
        Ok(services)
    }

    /// The URL of `database` on this cluster.
    pub fn database_url(&self, database: &str) -> String {
        let base = self.admin_url.rsplit_once('/').map_or(self.admin_url.as_str(), |(base, _)| base);
        format!("{base}/{database}")
    }

    /// An administrative connection.
    pub async fn admin(&self) -> anyhow::Result<tokio_postgres::Client> {
        connect(&self.admin_url).await
    }

    /// Creates a topic on the broker.
    pub fn create_topic(&self, topic: &str, partitions: u32) -> anyhow::Result<()> {
        run_script(self.kafka.call("create-topic", &[topic, &partitions.to_string()]), false)?;
        Ok(())
    }

    /// A command running a Java class of the broker's distribution (its
    /// tools), output to `log`.
    pub fn kafka_tool(&self, args: &[&str], log: &Path) -> anyhow::Result<Command> {
        let file = std::fs::File::create(log)?;
        let mut command = self.kafka.call("run-class", args).command();
        command.stdout(file.try_clone()?).stderr(file);
        Ok(command)
    }

    /// The broker's log folder (its topics' partitions, one folder each).
    pub fn kafka_log_dir(&self) -> PathBuf {
        self.kafka.dir.join("data")
    }

    /// CPU ticks of the broker so far.
    pub fn kafka_ticks(&self) -> u64 {
        self.kafka.pid(1).map(procfs::cpu_ticks).unwrap_or(0)
    }

    /// CPU ticks so far of the broker's JIT compiler threads (the live
    /// ones: HotSpot may stop idle compiler threads, whose ticks go with them).
    pub fn kafka_compiler_ticks(&self) -> u64 {
        self.kafka.pid(1).map(|pid| procfs::thread_ticks(pid, "CompilerThre")).unwrap_or(0)
    }

    /// CPU ticks of PostgreSQL so far: the postmaster (with its reaped
    /// children) and every live backend.
    pub fn postgres_ticks(&self) -> u64 {
        let Some(master) = self.postgres.postmaster_pid() else { return 0 };
        procfs::cpu_ticks_with_reaped_children(master)
            + procfs::children(master).into_iter().map(procfs::cpu_ticks).sum::<u64>()
    }

    fn stop(&self) {
        // Quiet: on success the report stays the last thing printed.
        let _ = run_script(self.kafka.call("stop", &[]), true);
        let _ = run_script(self.postgres.call("stop"), true);
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A connection to `url`, its connection task spawned.
pub async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) =
        tokio_postgres::connect(url, tokio_postgres::NoTls).await.with_context(|| "connect to the bench PostgreSQL")?;
    tokio::spawn(connection);
    Ok(client)
}
