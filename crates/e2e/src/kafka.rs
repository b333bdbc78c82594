//! A Kafka broker of a test's own, for tests that stop and restart Kafka:
//! stopping the shared test broker would break every other test running.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

/// A private single-node broker, started with the project's own script and
/// stopped when dropped.
pub struct PrivateKafka {
    dir: tempfile::TempDir,
    /// Client port on 127.0.0.1.
    pub port: u16,
    controller_port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka.sh")
}

impl PrivateKafka {
    /// Installs (from the local Maven cache) and starts a broker; waits until
    /// it answers.
    pub fn start() -> PrivateKafka {
        let kafka = PrivateKafka { dir: tempfile::tempdir().unwrap(), port: free_port(), controller_port: free_port() };
        kafka.command("start");
        kafka
    }

    /// The bootstrap address.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the broker (data kept).
    pub fn stop(&self) {
        self.command("stop");
    }

    /// Starts the stopped broker again, on the same ports and data.
    pub fn restart(&self) {
        self.command("start");
    }

    fn command(&self, action: &str) {
        let status = Command::new("bash")
            .arg(script())
            .arg(action)
            .arg(self.dir.path().join("kafka"))
            .arg(self.port.to_string())
            .arg(self.controller_port.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kafka.sh {action} failed");
    }
}

impl Drop for PrivateKafka {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path().join("kafka"))
            .arg(self.port.to_string())
            .arg(self.controller_port.to_string())
            .status();
    }
}
