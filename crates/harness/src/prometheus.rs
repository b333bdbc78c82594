//! A real Prometheus (the Debian package's binary) for tests: scrapes the
//! test's processes and answers PromQL over its HTTP API.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// A running Prometheus, killed when dropped.
pub struct Prometheus {
    child: Child,
    /// Its HTTP address.
    pub addr: String,
    _dir: tempfile::TempDir,
}

/// The repository's Prometheus folder (scrape config, rules, rule tests).
pub fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compose/prometheus")
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (job name → host:port) every
    /// second, with the repository's alert rules loaded.
    pub fn start(targets: &[(&str, String)]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let rules = config_dir().join("rules/orderstream.yml");
        let mut config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n",
            rules.display()
        );
        for (job, target) in targets {
            config.push_str(&format!("  - job_name: {job}\n    static_configs:\n      - targets: [\"{target}\"]\n"));
        }
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus is not installed: run `bash scripts/deps.sh` (Debian package `prometheus`)");
        Prometheus { child, addr, _dir: dir }
    }

    /// Evaluates an instant query; `Err` with Prometheus's message if it fails.
    pub fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let url = format!("http://{}/api/v1/query", self.addr);
        let mut response = ureq::get(&url)
            .query("query", promql)
            .config()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .call()
            .map_err(|error| error.to_string())?;
        let body: Value = response.body_mut().read_json().map_err(|error| error.to_string())?;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        Ok(body["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// The loaded rules with their health, from the rules API.
    pub fn rules(&self) -> Vec<Value> {
        let url = format!("http://{}/api/v1/rules", self.addr);
        let Ok(mut response) = ureq::get(&url).call() else { return Vec::new() };
        let body: Value = response.body_mut().read_json().unwrap_or_default();
        body["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The metric names a PromQL expression reads (our own and `up`), so each
/// can be checked to exist even where the whole expression is empty when
/// healthy (alert conditions).
pub fn metric_names(promql: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = promql.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        let at_word_start = index == 0 || !(bytes[index - 1].is_ascii_alphanumeric() || bytes[index - 1] == b'_');
        let rest = &promql[index..];
        if at_word_start && (rest.starts_with("orderstream_") || rest.starts_with("up{") || rest.starts_with("up ")) {
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            names.push(rest[..end].to_string());
            index += end;
        } else {
            index += 1;
        }
    }
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_are_found_in_expressions() {
        let names = metric_names(
            "sum(rate(orderstream_producer_dead_letters_total[5m])) + sum(rate(orderstream_consumer_dead_letters_total[5m])) > 0 and up{job=\"x\"} == 1",
        );
        assert_eq!(names, ["orderstream_consumer_dead_letters_total", "orderstream_producer_dead_letters_total", "up"]);
    }
}
