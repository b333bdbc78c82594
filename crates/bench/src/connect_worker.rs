//! The peers' Kafka Connect worker: standalone, through the project's
//! service script (`scripts/connect.sh`, jars from Maven Central), one
//! worker per peer phase with that phase's connector, stopped when dropped
//! (also on failure and Ctrl-C).

use std::cell::Cell;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use harness::service_scripts::{ConnectService, Output};

use crate::procfs;
use crate::settings::Settings;

/// A running standalone worker.
pub struct ConnectWorker {
    /// The worker's folder (jars, logs, pid file): kept between runs, so
    /// the jars are fetched once.
    dir: PathBuf,
    /// Its REST port: the connectors' state.
    port: u16,
    /// The JVM's pid, for its CPU time.
    pid: u32,
    /// When the connectors' state was last asked for.
    last_asked: Cell<Instant>,
}

/// How often [`ConnectWorker::check`] asks for the connectors' state: at
/// every poll it would cost the worker CPU that is measured.
const ASK_STATE_EVERY: Duration = Duration::from_secs(5);

/// Writes `properties` (name, value) as a Java properties file.
pub fn write_properties(path: &Path, properties: &[(&str, String)]) -> anyhow::Result<()> {
    let mut text = String::from("# Written by orderstream-bench.\n");
    for (name, value) in properties {
        let _ = writeln!(text, "{name}={value}");
    }
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))
}

impl ConnectWorker {
    /// Starts a worker with the worker properties file `worker` and the
    /// connectors of `connectors`; returns once its REST listener answers
    /// (the connectors then start on their own).
    pub fn start(settings: &Settings, worker: &Path, connectors: &[PathBuf]) -> anyhow::Result<ConnectWorker> {
        let dir = settings.local.join("connect");
        let port = settings.connect_port;
        // A worker an aborted run left behind holds the port.
        let _ = run(&dir, port, &["stop".into()], true);
        let mut args = vec!["start".to_string(), worker.display().to_string()];
        args.extend(connectors.iter().map(|path| path.display().to_string()));
        run(&dir, port, &args, false)?;
        let output = run(&dir, port, &["pid".into()], true)?;
        let pid = String::from_utf8_lossy(&output).trim().parse().context("the worker's pid")?;
        Ok(ConnectWorker { dir, port, pid, last_asked: Cell::new(Instant::now()) })
    }

    /// CPU ticks of the worker's JVM so far.
    pub fn ticks(&self) -> u64 {
        procfs::cpu_ticks(self.pid)
    }

    /// Fails if the JVM has exited, or (every few seconds) if `connector`
    /// or one of its tasks has failed: the worker keeps running then, and
    /// the load would never finish. A worker that does not answer is not a
    /// failure.
    pub fn check(&self, connector: &str) -> anyhow::Result<()> {
        if !Path::new(&format!("/proc/{}", self.pid)).exists() {
            bail!("the Connect worker exited; see {}", self.log().display());
        }
        if self.last_asked.get().elapsed() < ASK_STATE_EVERY {
            return Ok(());
        }
        self.last_asked.set(Instant::now());
        let url = format!("http://127.0.0.1:{}/connectors/{connector}/status", self.port);
        let Ok(mut response) = ureq::get(&url).call() else { return Ok(()) };
        let Ok(status) = response.body_mut().read_json::<serde_json::Value>() else { return Ok(()) };
        let failed = std::iter::once(&status["connector"])
            .chain(status["tasks"].as_array().into_iter().flatten())
            .any(|part| part["state"].as_str() == Some("FAILED"));
        if failed {
            bail!("Kafka Connect's {connector} failed: {status}; see {}", self.log().display());
        }
        Ok(())
    }

    /// The worker's log, for error messages.
    pub fn log(&self) -> PathBuf {
        self.dir.join("logs/connect.log")
    }
}

impl Drop for ConnectWorker {
    fn drop(&mut self) {
        let _ = run(&self.dir, self.port, &["stop".into()], true);
    }
}

/// Runs `scripts/connect.sh ACTION DIR PORT ARGS…`, its progress on
/// standard error unless `quiet`; returns its standard output.
fn run(dir: &Path, port: u16, action_and_args: &[String], quiet: bool) -> anyhow::Result<Vec<u8>> {
    let (action, args) = action_and_args.split_first().context("an action")?;
    let service = ConnectService { dir: dir.to_path_buf(), port };
    let output = if quiet { Output::Capture } else { Output::Stderr };
    Ok(service.call(action, args).run(output)?.stdout)
}
