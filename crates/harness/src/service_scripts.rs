//! The one Rust driver of the project's service scripts (`scripts/postgres.sh`,
//! `scripts/kafka.sh`, `scripts/connect.sh`), for the end-to-end tests, the
//! chaos suite and the bench alike: a service is named by the arguments its
//! script takes (folder, ports), and every start, stop or question goes
//! through the script, so all three run the services exactly as `make run`
//! and `make test` do. The scripts keep their own timeouts (a Kafka start
//! waits at most 90 s, a stop 60 s): a call waits until the script ends.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// A service script in `scripts/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// `scripts/postgres.sh COMMAND DIR PORT`.
    Postgres,
    /// `scripts/kafka.sh COMMAND DIR PORTS CONTROLLER_PORTS [ARGS…]`.
    Kafka,
    /// `scripts/connect.sh COMMAND DIR PORT [ARGS…]`.
    Connect,
}

impl Script {
    /// Its file name in `scripts/`, as errors name it.
    pub fn file_name(self) -> &'static str {
        match self {
            Script::Postgres => "postgres.sh",
            Script::Kafka => "kafka.sh",
            Script::Connect => "connect.sh",
        }
    }

    /// Its path in the checkout this crate was built from: the scripts and
    /// the binaries under test come from the same tree.
    pub fn path(self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts").join(self.file_name())
    }
}

/// Where a script's own output (its progress and errors) goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The caller's standard output and error, as a test's log shows them.
    Inherit,
    /// Both to the caller's standard error, so that a report on standard
    /// output stays the last thing printed there.
    Stderr,
    /// Captured: returned on success, and quoted in the error on failure.
    Capture,
    /// Dropped.
    Discard,
}

/// Why a script call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// `bash` could not be started.
    #[error("run scripts/{script}: {source}")]
    Spawn {
        /// The script's file name.
        script: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The script ran and exited with a failure status.
    #[error("scripts/{script} {command} failed ({status}){}", quoted(.stdout, .stderr))]
    Failed {
        /// The script's file name.
        script: &'static str,
        /// Its arguments, space-separated.
        command: String,
        /// How it ended.
        status: ExitStatus,
        /// Its standard output, if captured.
        stdout: String,
        /// Its standard error, if captured.
        stderr: String,
    },
}

/// The captured output a failure is quoted with (nothing when not captured).
fn quoted(stdout: &str, stderr: &str) -> String {
    let text = format!("{stdout}{stderr}");
    if text.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", text.trim_end())
    }
}

/// One call of a script: `bash scripts/SCRIPT COMMAND SERVICE-ARGS… ARGS…`.
#[derive(Debug, Clone)]
pub struct Call {
    script: Script,
    args: Vec<OsString>,
}

impl Call {
    /// A call of `script` with these arguments (the command first).
    pub fn new(script: Script, args: impl IntoIterator<Item = impl Into<OsString>>) -> Call {
        Call { script, args: args.into_iter().map(Into::into).collect() }
    }

    /// The call as a command, standard input closed, for a caller that
    /// sends its output somewhere of its own (a tool's log file).
    pub fn command(&self) -> Command {
        let mut command = Command::new("bash");
        command.arg(self.script.path()).args(&self.args).stdin(Stdio::null());
        command
    }

    /// Runs the call to its end; its output goes where `output` says. Only
    /// [`Output::Capture`] fills the returned output.
    pub fn run(&self, output: Output) -> Result<std::process::Output, ScriptError> {
        let mut command = self.command();
        match output {
            Output::Inherit => {
                command.stdout(Stdio::inherit()).stderr(Stdio::inherit());
            }
            Output::Stderr => {
                command.stdout(std::io::stderr()).stderr(std::io::stderr());
            }
            Output::Capture => {
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
            Output::Discard => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let script = self.script.file_name();
        let finished = command.output().map_err(|source| ScriptError::Spawn { script, source })?;
        if finished.status.success() {
            return Ok(finished);
        }
        Err(ScriptError::Failed {
            script,
            command: self.args.iter().map(|arg| arg.to_string_lossy()).collect::<Vec<_>>().join(" "),
            status: finished.status,
            stdout: String::from_utf8_lossy(&finished.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&finished.stderr).into_owned(),
        })
    }
}

/// A PostgreSQL cluster as `scripts/postgres.sh` names it.
#[derive(Debug, Clone)]
pub struct PostgresService {
    /// Its folder (`data/` inside).
    pub dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl PostgresService {
    /// `scripts/postgres.sh COMMAND DIR PORT`: start, stop, status, url.
    pub fn call(&self, command: &str) -> Call {
        Call::new(Script::Postgres, [OsString::from(command), self.dir.clone().into(), self.port.to_string().into()])
    }

    /// The postmaster's pid while the cluster runs (PostgreSQL's own pid file).
    pub fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.dir.join("data/postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }
}

/// Kafka as `scripts/kafka.sh` names it: one node, or a cluster of as many
/// nodes as ports.
#[derive(Debug, Clone)]
pub struct KafkaService {
    /// Its folder: the node's files, or `node-1`, `node-2`, … of a cluster.
    pub dir: PathBuf,
    /// Each node's client port, node 1 first.
    pub ports: Vec<u16>,
    /// Each node's KRaft controller port.
    pub controller_ports: Vec<u16>,
}

impl KafkaService {
    /// A single node.
    pub fn single(dir: PathBuf, port: u16, controller_port: u16) -> KafkaService {
        KafkaService { dir, ports: vec![port], controller_ports: vec![controller_port] }
    }

    /// `scripts/kafka.sh COMMAND DIR PORTS CONTROLLER_PORTS ARGS…`: start,
    /// stop, stop-node, status, quorum-leader, create-topic, run-class.
    pub fn call(&self, command: &str, args: &[&str]) -> Call {
        let join = |ports: &[u16]| ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
        let mut all = vec![
            OsString::from(command),
            self.dir.clone().into(),
            join(&self.ports).into(),
            join(&self.controller_ports).into(),
        ];
        all.extend(args.iter().map(OsString::from));
        Call::new(Script::Kafka, all)
    }

    /// Every node's client address: the bootstrap list.
    pub fn brokers(&self) -> String {
        self.ports.iter().map(|port| format!("127.0.0.1:{port}")).collect::<Vec<_>>().join(",")
    }

    /// The pid file of node `node` (1-based), where the script keeps it.
    pub fn pid_file(&self, node: usize) -> PathBuf {
        if self.ports.len() == 1 {
            self.dir.join("kafka.pid")
        } else {
            self.dir.join(format!("node-{node}")).join("kafka.pid")
        }
    }

    /// The pid node `node` (1-based) was started with, if its pid file holds one.
    pub fn pid(&self, node: usize) -> Option<u32> {
        let text = std::fs::read_to_string(self.pid_file(node)).ok()?;
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        digits.parse().ok()
    }
}

/// A standalone Kafka Connect worker as `scripts/connect.sh` names it.
#[derive(Debug, Clone)]
pub struct ConnectService {
    /// Its folder (jars, logs, pid file).
    pub dir: PathBuf,
    /// Its REST port.
    pub port: u16,
}

impl ConnectService {
    /// `scripts/connect.sh COMMAND DIR PORT ARGS…`: start, stop, pid, ….
    pub fn call(&self, command: &str, args: &[String]) -> Call {
        let mut all = vec![OsString::from(command), self.dir.clone().into(), self.port.to_string().into()];
        all.extend(args.iter().map(OsString::from));
        Call::new(Script::Connect, all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_joins_its_ports_and_keeps_node_pid_files_apart() {
        let cluster = KafkaService { dir: "/k".into(), ports: vec![1, 2, 3], controller_ports: vec![4, 5, 6] };
        let call = cluster.call("stop-node", &["2"]);
        assert_eq!(call.args, ["stop-node", "/k", "1,2,3", "4,5,6", "2"].map(OsString::from));
        assert_eq!(cluster.brokers(), "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3");
        assert_eq!(cluster.pid_file(3), PathBuf::from("/k/node-3/kafka.pid"));
        assert_eq!(KafkaService::single("/k".into(), 1, 2).pid_file(1), PathBuf::from("/k/kafka.pid"));
    }

    #[test]
    fn a_failure_names_the_call_and_quotes_what_was_captured() {
        let failed = Call::new(Script::Kafka, ["no-such-command", "/nowhere", "1", "2"]).run(Output::Capture);
        let message = failed.expect_err("an unknown command fails").to_string();
        assert!(message.starts_with("scripts/kafka.sh no-such-command /nowhere 1 2 failed ("), "{message}");
        assert!(message.contains("Usage"), "the script's usage text is quoted: {message}");
    }
}
