//! A real Alertmanager (Debian's `prometheus-alertmanager` binary) with the
//! repository's configuration, for tests of routing and inhibition: alerts
//! are posted as Prometheus posts them and read back from its API.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// A running Alertmanager, killed when dropped.
pub struct Alertmanager {
    child: Child,
    /// Its HTTP address, `http://127.0.0.1:PORT`.
    pub url: String,
    _dir: tempfile::TempDir,
}

/// The repository's Alertmanager folder (the configuration and its example).
pub fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compose/alertmanager")
}

/// One alert as Prometheus sends it: `alertname` and the other labels.
pub fn alert(name: &str, labels: &[(&str, &str)]) -> Value {
    let mut all = serde_json::Map::new();
    all.insert("alertname".into(), json!(name));
    for (key, value) in labels {
        all.insert((*key).into(), json!(value));
    }
    json!({ "labels": all, "annotations": { "summary": format!("{name} for a test") } })
}

impl Alertmanager {
    /// Starts Alertmanager on a free port with `compose/alertmanager/<config>`,
    /// without clustering (its default port may be taken).
    pub fn start(config: &str) -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
        let child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config_dir().join(config).display()))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect(
                "alertmanager is not installed: run `bash scripts/deps.sh` (Debian package `prometheus-alertmanager`)",
            );
        Alertmanager { child, url: format!("http://127.0.0.1:{port}"), _dir: dir }
    }

    /// Whether it answers `/-/ready`.
    pub fn is_ready(&self) -> bool {
        ureq::get(&format!("{}/-/ready", self.url)).call().is_ok()
    }

    /// Posts alerts as Prometheus does (`POST /api/v2/alerts`).
    pub fn post(&self, alerts: &[Value]) -> Result<(), String> {
        ureq::post(&format!("{}/api/v2/alerts", self.url)).send_json(alerts).map(drop).map_err(|e| e.to_string())
    }

    /// Every alert it holds: `alertname` → (`status.state`, inhibited by how many).
    pub fn alerts(&self) -> Vec<(String, String, usize)> {
        let Ok(mut response) = ureq::get(&format!("{}/api/v2/alerts", self.url)).call() else { return Vec::new() };
        let listed: Vec<Value> = response.body_mut().read_json().unwrap_or_default();
        listed
            .iter()
            .map(|alert| {
                (
                    alert["labels"]["alertname"].as_str().unwrap_or_default().to_string(),
                    alert["status"]["state"].as_str().unwrap_or_default().to_string(),
                    alert["status"]["inhibitedBy"].as_array().map_or(0, Vec::len),
                )
            })
            .collect()
    }

    /// How long a test waits for it to start or to apply an inhibition.
    pub const PATIENCE: Duration = Duration::from_secs(20);
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
