//! The bench's own PostgreSQL and Kafka, through the project's service
//! scripts (`scripts/postgres.sh`, `scripts/kafka.sh`), on ports apart from
//! `make run`'s and `make test`'s: wiped and started fresh, stopped when
//! dropped (also on failure and Ctrl-C).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context};

use crate::procfs;
use crate::settings::Settings;

/// The running services.
pub struct Services {
    pg_dir: PathBuf,
    pg_port: u16,
    kafka_dir: PathBuf,
    kafka_port: u16,
    kafka_controller_port: u16,
    /// URL of a role allowed to create databases.
    pub admin_url: String,
    /// Kafka bootstrap servers.
    pub brokers: String,
}

/// Where the scripts are: the repository this binary was built from.
fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts").join(name)
}

fn run_script(name: &str, args: &[String], quiet: bool) -> anyhow::Result<Output> {
    let mut command = Command::new("bash");
    command.arg(script(name)).args(args).stdin(Stdio::null());
    if !quiet {
        // The scripts' progress goes where the bench's does: standard error.
        command.stdout(std::io::stderr()).stderr(std::io::stderr());
    }
    let output = command.output().with_context(|| format!("run scripts/{name}"))?;
    if !output.status.success() {
        bail!("scripts/{name} {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr));
    }
    Ok(output)
}

impl Services {
    /// Stops and wipes what an aborted run left behind, then starts both
    /// services on empty data.
    pub fn start_fresh(settings: &Settings) -> anyhow::Result<Services> {
        let mut services = Services {
            pg_dir: settings.local.join("pg"),
            pg_port: settings.pg_port,
            kafka_dir: settings.local.join("kafka"),
            kafka_port: settings.kafka_port,
            kafka_controller_port: settings.kafka_controller_port,
            admin_url: String::new(),
            brokers: format!("127.0.0.1:{}", settings.kafka_port),
        };
        services.stop();
        for stale in [services.kafka_dir.join("data"), services.pg_dir.clone(), settings.work_dir()] {
            if stale.exists() {
                std::fs::remove_dir_all(&stale).with_context(|| format!("wipe {}", stale.display()))?;
            }
        }
        std::fs::create_dir_all(settings.work_dir())?;
        run_script("postgres.sh", &services.postgres_args("start"), false)?;
        run_script("kafka.sh", &services.kafka_args("start", &[]), false)?;
        let url = run_script("postgres.sh", &services.postgres_args("url"), true)?;
        services.admin_url = String::from_utf8(url.stdout)?.trim().to_string();
        Ok(services)
    }

    fn postgres_args(&self, action: &str) -> Vec<String> {
        vec![action.to_string(), self.pg_dir.display().to_string(), self.pg_port.to_string()]
    }

    fn kafka_args(&self, action: &str, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            action.to_string(),
            self.kafka_dir.display().to_string(),
            self.kafka_port.to_string(),
            self.kafka_controller_port.to_string(),
        ];
        args.extend(extra.iter().map(|arg| arg.to_string()));
        args
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
        run_script("kafka.sh", &self.kafka_args("create-topic", &[topic, &partitions.to_string()]), false)?;
        Ok(())
    }

    /// A command running a Java class of the broker's distribution (its
    /// tools), output to `log`.
    pub fn kafka_tool(&self, args: &[&str], log: &Path) -> anyhow::Result<Command> {
        let file = std::fs::File::create(log)?;
        let mut command = Command::new("bash");
        command
            .arg(script("kafka.sh"))
            .args(self.kafka_args("run-class", args))
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        Ok(command)
    }

    /// The broker's log folder (its topics' partitions, one folder each).
    pub fn kafka_log_dir(&self) -> PathBuf {
        self.kafka_dir.join("data")
    }

    /// CPU ticks of the broker so far.
    pub fn kafka_ticks(&self) -> u64 {
        let pid = std::fs::read_to_string(self.kafka_dir.join("kafka.pid")).unwrap_or_default();
        let digits: String = pid.chars().filter(char::is_ascii_digit).collect();
        digits.parse().map(procfs::cpu_ticks).unwrap_or(0)
    }

    /// CPU ticks of PostgreSQL so far: the postmaster (with its reaped
    /// children) and every live backend.
    pub fn postgres_ticks(&self) -> u64 {
        let pidfile = std::fs::read_to_string(self.pg_dir.join("data/postmaster.pid")).unwrap_or_default();
        let Some(master) = pidfile.lines().next().and_then(|line| line.trim().parse().ok()) else { return 0 };
        procfs::cpu_ticks_with_reaped_children(master)
            + procfs::children(master).into_iter().map(procfs::cpu_ticks).sum::<u64>()
    }

    fn stop(&self) {
        // Quiet: on success the report stays the last thing printed.
        let _ = run_script("kafka.sh", &self.kafka_args("stop", &[]), true);
        let _ = run_script("postgres.sh", &self.postgres_args("stop"), true);
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
