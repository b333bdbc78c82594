//! The alerts firing now, as Alertmanager holds them (`GET /api/v2/alerts`):
//! what Prometheus judged and Alertmanager routed, on the same screen as the
//! pipeline's own state.
//!
//! Never part of the verdict: an Alertmanager that is not configured or not
//! reachable is said plainly, and the exit code stays the pipeline's.

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One alert Alertmanager holds, as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FiringAlert {
    /// The rule's name, e.g. `OrderstreamProducerDown`.
    pub name: String,
    /// `critical` or `warning` (the rule's `severity` label).
    pub severity: String,
    /// The rule's one-line summary.
    pub summary: String,
    /// Where the runbook is (absolute: the configured base URL and an anchor).
    pub runbook_url: String,
    /// Since when it fires (RFC 3339, as Alertmanager says it).
    pub since: String,
    /// Silenced or inhibited: held but not notified.
    pub suppressed: bool,
}

/// What the status learnt from Alertmanager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AlertsView {
    /// No Alertmanager address is configured (`--alertmanager-url`).
    NotConfigured,
    /// Alertmanager did not answer; nothing is known about the alerts.
    Unreachable {
        /// The address asked.
        url: String,
        /// Why it did not answer.
        reason: String,
    },
    /// Alertmanager answered: the alerts it holds, the firing ones first.
    Answered {
        /// The address asked.
        url: String,
        /// Every active alert, notified or suppressed.
        alerts: Vec<FiringAlert>,
    },
}

/// Why Alertmanager gave no list of alerts.
#[derive(Debug, Error)]
enum AskError {
    /// No connection, a timeout or an HTTP error status.
    #[error("{0}")]
    Http(#[from] ureq::Error),
    /// The body is not the API's list of alerts.
    #[error("unexpected answer from /api/v2/alerts: {0}")]
    Body(#[from] serde_json::Error),
    /// The blocking request's task failed.
    #[error("the request panicked: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// An alert as `/api/v2/alerts` sends it (the fields the status reads).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiAlert {
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
    starts_at: String,
    status: ApiStatus,
}

#[derive(Debug, Deserialize)]
struct ApiStatus {
    /// `active`, `suppressed` (silenced or inhibited) or `unprocessed`.
    state: String,
}

/// Asks Alertmanager at `url` for the active alerts, within `timeout`.
pub async fn ask(url: Option<&str>, timeout: Duration) -> AlertsView {
    let Some(url) = url.map(|url| url.trim_end_matches('/').to_string()) else {
        return AlertsView::NotConfigured;
    };
    match fetch(url.clone(), timeout).await {
        Ok(body) => match parse(&body) {
            Ok(alerts) => AlertsView::Answered { url, alerts },
            Err(error) => AlertsView::Unreachable { url, reason: error.to_string() },
        },
        Err(error) => AlertsView::Unreachable { url, reason: error.to_string() },
    }
}

async fn fetch(url: String, timeout: Duration) -> Result<String, AskError> {
    let body = tokio::task::spawn_blocking(move || -> Result<String, ureq::Error> {
        let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(timeout)).build().into();
        agent.get(&format!("{url}/api/v2/alerts?active=true")).call()?.body_mut().read_to_string()
    })
    .await??;
    Ok(body)
}

/// The API's list, firing before suppressed, critical before warning, then by name.
fn parse(body: &str) -> Result<Vec<FiringAlert>, AskError> {
    let listed: Vec<ApiAlert> = serde_json::from_str(body)?;
    let mut alerts: Vec<FiringAlert> = listed
        .into_iter()
        .map(|alert| FiringAlert {
            name: alert.labels.get("alertname").cloned().unwrap_or_default(),
            severity: alert.labels.get("severity").cloned().unwrap_or_default(),
            summary: alert.annotations.get("summary").cloned().unwrap_or_default(),
            runbook_url: alert.annotations.get("runbook_url").cloned().unwrap_or_default(),
            since: alert.starts_at,
            suppressed: alert.status.state == "suppressed",
        })
        .collect();
    alerts.sort_by(|a, b| {
        (a.suppressed, a.severity != "critical", &a.name).cmp(&(b.suppressed, b.severity != "critical", &b.name))
    });
    Ok(alerts)
}

impl AlertsView {
    /// The screen's alerts section: one line per firing alert and its
    /// runbook, a count of the suppressed ones, or why nothing is known.
    pub fn render(&self) -> String {
        let mut out = String::new();
        match self {
            AlertsView::NotConfigured => {
                let _ = writeln!(out, "\nalerts: not shown, no Alertmanager configured (ORDERSTREAM_ALERTMANAGER_URL)");
            }
            AlertsView::Unreachable { url, reason } => {
                let _ = writeln!(out, "\nalerts: not known, Alertmanager at {url} does not answer ({reason})");
            }
            AlertsView::Answered { url, alerts } => {
                let firing: Vec<&FiringAlert> = alerts.iter().filter(|alert| !alert.suppressed).collect();
                let suppressed = alerts.len() - firing.len();
                let count =
                    if firing.is_empty() { "none firing".to_string() } else { format!("{} firing", firing.len()) };
                let _ = writeln!(out, "\nalerts: {count} (Alertmanager {url})");
                for alert in firing {
                    let _ = writeln!(
                        out,
                        "  {:<8}  {}  since {}: {}",
                        alert.severity, alert.name, alert.since, alert.summary
                    );
                    if !alert.runbook_url.is_empty() {
                        let _ = writeln!(out, "            runbook {}", alert.runbook_url);
                    }
                }
                if suppressed > 0 {
                    let _ = writeln!(
                        out,
                        "  and {suppressed} silenced or inhibited (amtool alert query --silenced --inhibited --alertmanager.url={url})"
                    );
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_FIRING_ONE_INHIBITED: &str = r#"[
      {"labels": {"alertname": "OrderstreamConsumerLagHigh", "severity": "warning"},
       "annotations": {"summary": "lag"}, "startsAt": "2026-12-07T10:00:00Z",
       "status": {"state": "suppressed", "inhibitedBy": ["x"], "silencedBy": []}},
      {"labels": {"alertname": "OrderstreamDeadLetters", "severity": "warning", "stage": "producer"},
       "annotations": {"summary": "1 dead letter(s) of the producer stage wait for someone",
                       "runbook_url": "https://docs.example/operations.md#orderstreamdeadletters"},
       "startsAt": "2026-12-07T10:01:00Z", "status": {"state": "active", "inhibitedBy": [], "silencedBy": []}},
      {"labels": {"alertname": "OrderstreamNoConsumerAlive", "severity": "critical"},
       "annotations": {"summary": "No consumer is alive", "runbook_url": "https://docs.example/operations.md#orderstreamnoconsumeralive"},
       "startsAt": "2026-12-07T10:02:00Z", "status": {"state": "active", "inhibitedBy": [], "silencedBy": []}}
    ]"#;

    #[test]
    fn firing_alerts_are_listed_critical_first_with_their_runbooks() {
        let alerts = parse(TWO_FIRING_ONE_INHIBITED).unwrap();
        let view = AlertsView::Answered { url: "http://127.0.0.1:9098".into(), alerts };
        let screen = view.render();
        let lines: Vec<&str> = screen.lines().collect();
        assert_eq!(lines[1], "alerts: 2 firing (Alertmanager http://127.0.0.1:9098)", "{screen}");
        assert!(lines[2].contains("critical") && lines[2].contains("OrderstreamNoConsumerAlive"), "{screen}");
        assert!(
            lines[3].ends_with("runbook https://docs.example/operations.md#orderstreamnoconsumeralive"),
            "{screen}"
        );
        assert!(lines[4].contains("OrderstreamDeadLetters"), "{screen}");
        assert!(lines[6].starts_with("  and 1 silenced or inhibited"), "{screen}");
        assert!(!screen.contains("OrderstreamConsumerLagHigh"), "inhibited alerts are counted, not listed: {screen}");
    }

    #[test]
    fn no_alert_says_none_firing() {
        let view = AlertsView::Answered { url: "http://am".into(), alerts: parse("[]").unwrap() };
        assert_eq!(view.render(), "\nalerts: none firing (Alertmanager http://am)\n");
    }

    #[test]
    fn an_answer_that_is_not_a_list_of_alerts_is_an_error() {
        assert!(parse(r#"{"status": "error"}"#).is_err());
    }

    #[tokio::test]
    async fn an_alertmanager_that_does_not_answer_is_said_plainly() {
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let view = ask(Some(&format!("http://127.0.0.1:{port}/")), Duration::from_secs(2)).await;
        let AlertsView::Unreachable { url, .. } = &view else { panic!("{view:?}") };
        assert_eq!(url, &format!("http://127.0.0.1:{port}"));
        assert!(view.render().contains("does not answer"), "{}", view.render());
        assert_eq!(ask(None, Duration::from_secs(1)).await, AlertsView::NotConfigured);
    }
}
