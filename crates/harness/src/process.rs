//! [`Process`]: a running binary of the workspace, its log and its ready
//! file; [`binary`] finds where the binaries were built.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::next_sequence;
use crate::records::ConsumerTotals;

/// Where the workspace's binaries were built.
pub fn binary(name: &str) -> PathBuf {
    let dir = std::env::var_os("ORDERSTREAM_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug"));
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: build it first (`cargo build --workspace --bins`)", path.display());
    path
}

/// A running binary, killed when dropped so a failing test leaves nothing
/// behind. Its output goes to a log file named after it, printed on failure.
pub struct Process {
    name: String,
    pub(crate) child: Child,
    log: PathBuf,
    /// Where the process writes its bound address (`--ready-file`).
    ready_file: PathBuf,
}

/// The ready-file variables of the binaries that serve endpoints; each
/// binary reads only its own.
const READY_FILE_VARIABLES: [&str; 3] =
    ["ORDERSTREAM_PRODUCER_READY_FILE", "ORDERSTREAM_CONSUMER_READY_FILE", "ORDERSTREAM_LAG_EXPORTER_READY_FILE"];

impl Process {
    pub(crate) fn spawn(name: &str, mut command: Command) -> Process {
        // One file per process, even for processes of the same name (a
        // restarted consumer, a second member): its output and the metrics
        // address read from it are its own.
        let sequence = next_sequence();
        let log = std::env::temp_dir().join(format!("orderstream-e2e-{name}-{}-{sequence}.log", std::process::id()));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        command.stdout(file.try_clone().unwrap()).stderr(file);
        // A ready file beside the log, unless the test chose one.
        let chosen = command
            .get_envs()
            .find(|(name, value)| value.is_some() && READY_FILE_VARIABLES.iter().any(|variable| name == variable))
            .and_then(|(_, value)| value.map(PathBuf::from));
        let ready_file = chosen.unwrap_or_else(|| {
            let path = log.with_extension("ready");
            for variable in READY_FILE_VARIABLES {
                command.env(variable, &path);
            }
            path
        });
        let child = command.spawn().unwrap_or_else(|error| panic!("cannot start {name}: {error}"));
        Process { name: name.to_string(), child, log, ready_file }
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill_hard(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }

    /// The address the process serves `/metrics` on, from its ready file
    /// (it binds port 0 in tests); waits for the file up to a minute.
    pub fn metrics_addr(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = std::fs::read_to_string(&self.ready_file).ok();
            if let Some(addr) = ready.and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok()) {
                return addr["addr"].as_str().expect("addr in the ready file").to_string();
            }
            if let Some(addr) = logged_metrics_addr(&self.output()) {
                return addr;
            }
            assert!(Instant::now() < deadline, "{} never served metrics:\n{}", self.name, self.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The current value of one series of the process's `/metrics`, e.g.
    /// `orderstream_consumer_upserts_total{outcome="unchanged"}`; `None` if
    /// it is not exported (or the endpoint does not answer).
    pub fn metric(&self, series: &str) -> Option<f64> {
        let text = self.metrics_text()?;
        let line = text.lines().find(|line| line.strip_prefix(series).is_some_and(|rest| rest.starts_with(' ')))?;
        line.rsplit(' ').next()?.parse().ok()
    }

    /// The process's `/metrics` page; `None` if the endpoint does not answer.
    pub(crate) fn metrics_text(&self) -> Option<String> {
        let addr = self.metrics_addr();
        let mut response = ureq::get(&format!("http://{addr}/metrics")).call().ok()?;
        response.body_mut().read_to_string().ok()
    }

    /// The process's peak resident memory so far (`VmHWM`), in bytes.
    pub fn peak_memory_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// The process's output so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The operating system's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`, ...) without waiting.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success(), "kill -{name} {} failed", self.name);
    }

    /// Waits up to `timeout` for the process to exit by itself; its status, or
    /// `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Panics if the process has exited, showing its output.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited with {status}:\n{}", self.name, self.output());
        }
    }

    /// Sends SIGTERM, waits, and returns the exit status with the complete output.
    pub fn terminate_with_output(self) -> (std::process::ExitStatus, String) {
        let log = self.log.clone();
        let status = self.terminate();
        (status, std::fs::read_to_string(log).unwrap_or_default())
    }

    /// Sends SIGTERM, waits, and returns the exit status, the complete
    /// output and the totals the consumer wrote at shutdown (`None` if it
    /// wrote none).
    pub fn terminate_with_totals(self) -> (std::process::ExitStatus, String, Option<ConsumerTotals>) {
        let report = telemetry::final_report_path(&self.ready_file);
        let (status, output) = self.terminate_with_output();
        let totals = ConsumerTotals::read(&report);
        let _ = std::fs::remove_file(&report);
        (status, output, totals)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.ready_file);
        if std::thread::panicking() {
            eprintln!("--- output of {} ---\n{}", self.name, self.output());
        }
    }
}

/// The metrics address an older release logged at start (`Serving /metrics,
/// /healthz, /readyz.` with `addr=…`): releases before the ready file, which
/// the bench's comparison still runs.
fn logged_metrics_addr(output: &str) -> Option<String> {
    let line = output.lines().find(|line| line.contains("Serving /metrics"))?;
    let addr = line.split("addr=").nth(1)?.split_whitespace().next()?;
    Some(addr.trim_matches('"').to_string())
}

#[cfg(test)]
mod tests {
    use super::logged_metrics_addr;

    #[test]
    fn the_metrics_address_older_releases_logged_is_found() {
        let log = "2026-11-28T00:00:00Z  INFO orderstream_telemetry: Serving /metrics, /healthz, /readyz. addr=127.0.0.1:40123\n";
        assert_eq!(logged_metrics_addr(log).as_deref(), Some("127.0.0.1:40123"));
        assert_eq!(logged_metrics_addr("INFO Started.\n"), None);
    }
}
