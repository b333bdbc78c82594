//! Observability, tested for real: a real Prometheus scrapes the real
//! producer, consumer and lag exporter during an ingestion, and every PromQL
//! expression of the dashboard and of the alert rules is evaluated against it.

// End-to-end: built only with the feature `make test` turns on (docs/testing.md).
#![cfg(feature = "integration-tests")]

use std::time::Duration;

use orderstream_e2e::prometheus::{config_dir, metric_names, Prometheus};
use orderstream_e2e::{order_line, poll_until, Scenario, HEADER};
use serde_json::Value;

const ARRIVAL: Duration = Duration::from_secs(60);

/// Every `expr` of the dashboard, with Grafana's variables set as "All".
fn dashboard_expressions() -> Vec<(String, String)> {
    let path = config_dir().join("../../grafana/dashboards/orderstream-pipeline-health.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut expressions = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$job", ".*")
                .replace("$instance", ".*")
                .replace("$__rate_interval", "30s");
            expressions.push((panel["title"].as_str().unwrap().to_string(), expr));
        }
    }
    expressions
}

fn get(addr: &str, path: &str) -> (u16, String) {
    let mut response =
        ureq::get(&format!("http://{addr}{path}")).config().http_status_as_error(false).build().call().unwrap();
    (response.status().as_u16(), response.body_mut().read_to_string().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_and_alert_expression_evaluates_against_a_live_pipeline() {
    let scenario = Scenario::new("observability").await;
    let lines: String = (1..=2_000).map(|id| order_line(id, id % 40 + 1, "25.00", "2.5")).collect();
    scenario.append(
        "a.csv",
        format!("{HEADER}{lines}2001,1,2022-07-01 10:00,-1,0\n3000,1,2022-07-01 10:00,0,0\n").as_bytes(),
    );
    let consumer = scenario.start_consumer();
    let producer = scenario.start_producer();
    let exporter = scenario.start_lag_exporter();
    scenario.wait_for_orders(2_001, ARRIVAL).await;

    let targets = [
        ("producer", producer.metrics_addr()),
        ("consumer", consumer.metrics_addr()),
        ("lag-exporter", exporter.metrics_addr()),
    ];
    for (job, addr) in &targets {
        assert_eq!(get(addr, "/healthz").0, 200, "{job} /healthz");
        let ready = poll_until(ARRIVAL, || async { get(addr, "/readyz").0 == 200 }).await;
        assert!(ready, "{job} never became ready: {}", get(addr, "/readyz").1);
        let (status, metrics) = get(addr, "/metrics");
        assert_eq!(status, 200);
        assert!(metrics.contains("# HELP orderstream_"), "{job} serves no orderstream metric");
    }

    let prometheus = Prometheus::start(&targets);
    let all_up = poll_until(ARRIVAL, || async {
        prometheus.query("count(up == 1) == 3").is_ok_and(|result| !result.is_empty())
    })
    .await;
    assert!(all_up, "Prometheus never scraped all three processes: {:?}", prometheus.query("up"));
    // More lines while Prometheus watches, so rates have something to show.
    scenario.append("a.csv", (2_002..=2_200).map(|id| order_line(id, 1, "3.00", "6")).collect::<String>().as_bytes());
    scenario.wait_for_orders(2_200, ARRIVAL).await;

    let mut failures = Vec::new();
    for (panel, expr) in dashboard_expressions() {
        let answered = poll_until(Duration::from_secs(30), || async {
            prometheus.query(&expr).is_ok_and(|result| !result.is_empty())
        })
        .await;
        if !answered {
            failures.push(format!("panel `{panel}`: {expr} → {:?}", prometheus.query(&expr)));
        }
    }

    let evaluated = poll_until(ARRIVAL, || async {
        let rules = prometheus.rules();
        !rules.is_empty()
            && rules.iter().all(|rule| rule["lastEvaluation"].as_str().is_some_and(|t| !t.starts_with("0001")))
    })
    .await;
    assert!(evaluated, "the alert rules were never evaluated");
    for rule in prometheus.rules() {
        let (name, expr) = (rule["name"].as_str().unwrap(), rule["query"].as_str().unwrap());
        if rule["health"] != "ok" {
            failures.push(format!("rule {name}: health {} ({})", rule["health"], rule["lastError"]));
        }
        if let Err(error) = prometheus.query(expr) {
            failures.push(format!("rule {name}: {expr} → {error}"));
        }
        for metric in metric_names(expr) {
            if prometheus.query(&format!("count({{__name__=\"{metric}\"}})")).map_or(true, |r| r.is_empty()) {
                failures.push(format!("rule {name} reads {metric}, which no process exports"));
            }
        }
    }
    assert!(failures.is_empty(), "dead panels or broken rules:\n{}", failures.join("\n"));
}

/// The value of a series in a `/metrics` page, matched by name and labels.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find(|line| line.starts_with(series)).and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_stays_visible_when_no_consumer_is_alive() {
    let scenario = Scenario::new("lag_no_consumer").await;
    let lines: String = (1..=300).map(|id| order_line(id, 1, "5.00", "2.5")).collect();
    scenario.append("a.csv", format!("{HEADER}{lines}").as_bytes());
    let _producer = scenario.start_producer();
    let exporter = scenario.start_lag_exporter();
    let addr = exporter.metrics_addr();
    let group_lag =
        format!("orderstream_backlog_group_lag_records{{group=\"{}\",topic=\"{}\"}}", scenario.group, scenario.topic);
    let visible = poll_until(ARRIVAL, || async { sample(&get(&addr, "/metrics").1, &group_lag) == Some(300.0) }).await;
    let metrics = get(&addr, "/metrics").1;
    assert!(visible, "lag of 300 not exported:\n{metrics}");
    let members = format!("orderstream_consumer_group_members{{group=\"{}\"}}", scenario.group);
    assert_eq!(sample(&metrics, &members), Some(0.0), "no consumer is alive");
}
