//! A running process's HTTP endpoints beyond one metric: `/readyz`, the
//! consumer's `/status`, and sums over a metric's label sets. What a harness
//! needs to know a process's state without reading its logs.

use std::time::{Duration, Instant};

use crate::Process;

impl Process {
    /// Waits until `/readyz` answers 200 (the process has connected and is
    /// ready to work), up to `timeout`; `false` if it never did or the
    /// process exited.
    pub fn wait_ready(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let addr = self.metrics_addr();
        loop {
            let status = ureq::get(&format!("http://{addr}/readyz"))
                .config()
                .http_status_as_error(false)
                .build()
                .call()
                .map(|response| response.status().as_u16());
            if status.is_ok_and(|code| code == 200) {
                return true;
            }
            if Instant::now() >= deadline || self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process's `/status` document; `None` while it does not answer.
    pub fn status(&self) -> Option<serde_json::Value> {
        let addr = self.metrics_addr();
        let mut response = ureq::get(&format!("http://{addr}/status")).call().ok()?;
        response.body_mut().read_json().ok()
    }

    /// The sum of a metric over all its label sets (`name` and `name{…}`
    /// series); 0 when it is not exported yet, `None` if the endpoint does
    /// not answer.
    pub fn metric_sum(&self, name: &str) -> Option<f64> {
        let values = self.series_values(name)?;
        Some(values.iter().filter_map(|(_, value)| value.parse::<f64>().ok()).sum())
    }

    /// Every series of a metric (`name{…}` as written on `/metrics`, without
    /// its value); `None` if the endpoint does not answer.
    pub fn metric_series(&self, name: &str) -> Option<Vec<String>> {
        Some(self.series_values(name)?.into_iter().map(|(series, _)| series).collect())
    }

    /// Each series of a metric (`name` and `name{…}`) with its value as
    /// written on `/metrics`.
    fn series_values(&self, name: &str) -> Option<Vec<(String, String)>> {
        let text = self.metrics_text()?;
        let labelled = format!("{name}{{");
        let series = text
            .lines()
            .filter_map(|line| line.rsplit_once(' '))
            .filter(|(series, _)| *series == name || series.starts_with(&labelled))
            .map(|(series, value)| (series.to_owned(), value.to_owned()))
            .collect();
        Some(series)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }
}

/// The partitions a consumer holds now, from its `/status`.
pub(crate) fn assigned_partitions(consumer: &Process) -> Option<Vec<i32>> {
    let status = consumer.status()?;
    let listed = status["assigned_partitions"].as_array()?;
    listed.iter().map(|partition| partition.as_i64().and_then(|p| i32::try_from(p).ok())).collect()
}

/// Whether a consumer group has settled: every partition `0..partitions`
/// held by exactly one member, and every member holding at least one.
/// Started is not yet consuming: measurements wait for this.
pub fn group_settled(members: &[Process], partitions: i32) -> bool {
    let mut held = Vec::new();
    for member in members {
        match assigned_partitions(member) {
            Some(assigned) if !assigned.is_empty() => held.extend(assigned),
            _ => return false,
        }
    }
    held.sort_unstable();
    held == (0..partitions).collect::<Vec<_>>()
}
