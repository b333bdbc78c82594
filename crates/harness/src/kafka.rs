//! A Kafka broker of a test's own, for tests that stop and restart Kafka:
//! stopping the shared test broker would break every other test running.

use std::net::TcpListener;

use crate::service_scripts::{KafkaService, Output};

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

    fn service(&self) -> KafkaService {
        KafkaService::single(self.dir.path().join("kafka"), self.port, self.controller_port)
    }

    fn command(&self, action: &str) {
        if let Err(error) = self.service().call(action, &[]).run(Output::Inherit) {
            panic!("kafka.sh {action} failed: {error}");
        }
    }
}

impl Drop for PrivateKafka {
    fn drop(&mut self) {
        let _ = self.service().call("stop", &[]).run(Output::Inherit);
    }
}
