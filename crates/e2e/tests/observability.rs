//! Observability, tested for real: a real Prometheus scrapes the real
//! producer, consumer, lag exporter and periodic verifier during an
//! ingestion, and every PromQL expression of the dashboard and of the alert
//! rules is evaluated against it.
//! And what an on-call person relies on, read from the files: the dashboard
//! works in any Grafana (no datasource uid) and filters every query by job;
//! it is laid out for on-call (rows, firing alerts, processes, lag in seconds)
//! and its tiles turn red exactly where an alert's threshold is; every alert
//! waits before firing, links its runbook (absolute, from the configured base
//! URL), and has promtool cases where it fires and where it does not; the
//! pending dead letters are exported until someone resolves them.

// End-to-end: built only with the feature `make test` turns on (docs/testing.md).
#![cfg(feature = "integration-tests")]

use std::time::Duration;

use harness::prometheus::{config_dir, metric_names, Prometheus};
use harness::{order_line, poll_until, Scenario, HEADER};
use serde_json::Value;

const ARRIVAL: Duration = Duration::from_secs(60);

fn read(path_from_prometheus_dir: &str) -> String {
    let path = config_dir().join(path_from_prometheus_dir);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn dashboard() -> Value {
    serde_json::from_str(&read("../../grafana/dashboards/orderstream-pipeline-health.json")).unwrap()
}

/// The panels that show data: every panel but the rows.
fn data_panels(dashboard: &Value) -> Vec<Value> {
    dashboard["panels"].as_array().unwrap().iter().filter(|panel| panel["type"] != "row").cloned().collect()
}

/// Whether an expression lists firing alerts: empty is its normal answer.
fn lists_firing_alerts(expr: &str) -> bool {
    expr.starts_with("ALERTS{")
}

/// Every `expr` of the dashboard, with Grafana's variables set as "All".
fn dashboard_expressions() -> Vec<(String, String)> {
    let dashboard = dashboard();
    let mut expressions = Vec::new();
    for panel in data_panels(&dashboard) {
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
    let verifier = scenario.start_verifier();

    let targets = [
        ("producer", producer.metrics_addr()),
        ("consumer", consumer.metrics_addr()),
        ("lag-exporter", exporter.metrics_addr()),
        ("verify", verifier.metrics_addr()),
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
        prometheus.query(&format!("count(up == 1) == {}", targets.len())).is_ok_and(|result| !result.is_empty())
    })
    .await;
    assert!(all_up, "Prometheus never scraped all {} processes: {:?}", targets.len(), prometheus.query("up"));
    // More lines while Prometheus watches, so rates have something to show.
    scenario.append("a.csv", (2_002..=2_200).map(|id| order_line(id, 1, "3.00", "6")).collect::<String>().as_bytes());
    scenario.wait_for_orders(2_200, ARRIVAL).await;

    let mut failures = Vec::new();
    for (panel, expr) in dashboard_expressions() {
        let may_be_empty = lists_firing_alerts(&expr);
        let answered = poll_until(Duration::from_secs(30), || async {
            prometheus.query(&expr).is_ok_and(|result| may_be_empty || !result.is_empty())
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
    let members = format!("orderstream_lag_exporter_group_members{{group=\"{}\"}}", scenario.group);
    assert_eq!(sample(&metrics, &members), Some(0.0), "no consumer is alive");
    // Lag in seconds: the oldest unapplied record ages while nobody applies it.
    let lag_seconds =
        format!("orderstream_backlog_group_lag_seconds{{group=\"{}\",topic=\"{}\"}}", scenario.group, scenario.topic);
    let aging =
        poll_until(ARRIVAL, || async { sample(&get(&addr, "/metrics").1, &lag_seconds).is_some_and(|age| age > 0.0) })
            .await;
    assert!(aging, "no lag in seconds exported for 300 unapplied records:\n{}", get(&addr, "/metrics").1);
    // Measured again each time, not frozen at the first reading.
    let first = sample(&get(&addr, "/metrics").1, &lag_seconds).unwrap();
    let growing = poll_until(ARRIVAL, || async {
        sample(&get(&addr, "/metrics").1, &lag_seconds).is_some_and(|age| age > first + 2.0)
    })
    .await;
    assert!(growing, "lag in seconds stayed at {first}:\n{}", get(&addr, "/metrics").1);
    // Once a consumer applied everything, the group is 0 seconds behind.
    let _consumer = scenario.start_consumer();
    let caught_up =
        poll_until(ARRIVAL, || async { sample(&get(&addr, "/metrics").1, &lag_seconds) == Some(0.0) }).await;
    assert!(caught_up, "lag in seconds not 0 after catching up:\n{}", get(&addr, "/metrics").1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_dead_letter_stays_exported_until_it_is_resolved() {
    let scenario = Scenario::new("dead_letters_pending").await;
    let good = order_line(1, 1, "5.00", "2.5");
    scenario.append("a.csv", format!("{HEADER}{good}2,1,2022-07-01 10:00,-1,0\n").as_bytes());
    let _consumer = scenario.start_consumer();
    let _producer = scenario.start_producer();
    let exporter = scenario.start_lag_exporter();
    let pending = r#"orderstream_dead_letters_pending{reason="negative_amount",stage="producer"}"#;

    let exported = poll_until(ARRIVAL, || async { exporter.metric(pending) == Some(1.0) }).await;
    assert!(exported, "one pending bad line not exported:\n{}", get(&exporter.metrics_addr(), "/metrics").1);
    // What `dead-letters resolve` does: the line was dealt with.
    scenario.db().await.execute("UPDATE dead_letters SET resolved_at = now()", &[]).await.unwrap();
    let cleared = poll_until(ARRIVAL, || async { exporter.metric(pending) == Some(0.0) }).await;
    assert!(cleared, "a resolved dead letter still counts as pending: {:?}", exporter.metric(pending));
}

/// Every value under a `datasource` key, anywhere in the dashboard.
fn datasource_references(value: &Value, found: &mut Vec<Value>) {
    match value {
        Value::Object(object) => {
            for (key, inner) in object {
                if key == "datasource" {
                    found.push(inner.clone());
                } else {
                    datasource_references(inner, found);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| datasource_references(item, found)),
        _ => {}
    }
}

/// The headings of docs/operations.md as anchors (`## OrderstreamX` → `orderstreamx`).
fn runbook_anchors() -> Vec<String> {
    read("../../docs/operations.md")
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .map(|heading| heading.trim().to_lowercase().replace(' ', "-"))
        .collect()
}

/// Where `expr` reads a series without `{job=~"$job",instance=~"$instance"`.
fn unfiltered_selectors(expr: &str) -> Vec<String> {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut unfiltered = Vec::new();
    for name in metric_names(expr) {
        for (at, _) in expr.match_indices(&name) {
            let before = expr[..at].chars().next_back();
            let after = &expr[at + name.len()..];
            if before.is_some_and(is_name_char) || after.starts_with(is_name_char) {
                continue; // part of a longer name
            }
            if !after.starts_with(r#"{job=~"$job",instance=~"$instance""#) {
                unfiltered.push(name.clone());
            }
        }
    }
    unfiltered
}

#[test]
fn dashboard_works_in_any_grafana_and_filters_every_query_by_job() {
    let dashboard = dashboard();
    let variable =
        |name: &str| dashboard["templating"]["list"].as_array().unwrap().iter().find(|v| v["name"] == name).cloned();
    let mut problems = Vec::new();

    // Import asks for a Prometheus; provisioning resolves the same name as a variable.
    let input =
        dashboard["__inputs"].as_array().and_then(|inputs| inputs.iter().find(|i| i["name"] == "DS_PROMETHEUS"));
    if input.is_none_or(|input| input["type"] != "datasource" || input["pluginId"] != "prometheus") {
        problems.push(format!("no __inputs entry DS_PROMETHEUS for a prometheus datasource: {input:?}"));
    }
    match variable("DS_PROMETHEUS") {
        Some(ds) if ds["type"] == "datasource" && ds["query"] == "prometheus" => {}
        other => problems.push(format!("no datasource variable DS_PROMETHEUS of type prometheus: {other:?}")),
    }
    let mut references = Vec::new();
    datasource_references(&dashboard, &mut references);
    for reference in references.iter().filter(|r| r["uid"] != "${DS_PROMETHEUS}") {
        problems.push(format!("datasource {reference} is not the variable ${{DS_PROMETHEUS}}"));
    }

    // `job` lists orderstream's jobs only, and "All" means those, not every job.
    match variable("job") {
        Some(job)
            if job["definition"].as_str().is_some_and(|q| q.contains("orderstream_")) && job["allValue"].is_null() => {}
        other => problems.push(format!("the job variable is not scoped to orderstream's series: {other:?}")),
    }

    let anchors = runbook_anchors();
    for panel in data_panels(&dashboard) {
        let title = panel["title"].as_str().unwrap();
        if panel["description"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("panel `{title}` has no description"));
        }
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in unfiltered_selectors(expr) {
                problems.push(format!("panel `{title}` reads {name} without the job and instance filters"));
            }
        }
        if panel["type"] == "stat" && tile_steps(&panel).len() < 2 {
            problems.push(format!("stat panel `{title}` never changes colour: {:?}", tile_steps(&panel)));
        }
        for link in panel["links"].as_array().into_iter().flatten() {
            let url = link["url"].as_str().unwrap_or_default();
            match url.strip_prefix("${runbooks}#") {
                Some(anchor) if anchors.iter().any(|a| a == anchor) => {}
                _ => problems.push(format!("panel `{title}` links {url}, not a runbook heading of docs/operations.md")),
            }
        }
    }
    assert!(problems.is_empty(), "the dashboard:\n{}", problems.join("\n"));
}

/// A stat tile's colour steps: (from value, `None` for the base; colour).
fn tile_steps(panel: &Value) -> Vec<(Option<f64>, String)> {
    let steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"].as_array().cloned().unwrap_or_default();
    steps.iter().map(|step| (step["value"].as_f64(), step["color"].as_str().unwrap_or_default().to_string())).collect()
}

/// How an alert compares its series with its threshold.
#[derive(Debug, PartialEq)]
enum Threshold {
    /// `> N`: fires above N.
    Above(f64),
    /// `== 0`: fires at none (no process, no member).
    AtZero,
}

/// The alert's threshold: the first comparison with a number in its
/// expression (later ones are conditions, e.g. "and input waits").
fn alert_threshold(expr: &str) -> Option<Threshold> {
    let (at, operator) = [" > ", " == "]
        .iter()
        .filter_map(|operator| expr.find(operator).map(|at| (at, *operator)))
        .min_by_key(|(at, _)| *at)?;
    let rest = &expr[at + operator.len()..];
    let number: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    match (operator, number.parse::<f64>().ok()?) {
        (" > ", value) => Some(Threshold::Above(value)),
        (_, 0.0) => Some(Threshold::AtZero),
        _ => None,
    }
}

/// Whether a tile is red exactly where `threshold` fires: red from N for
/// `> N`; red at its base and green from 1 for `== 0` (counts below 1 are 0).
fn red_matches(steps: &[(Option<f64>, String)], threshold: &Threshold) -> bool {
    let red: Vec<Option<f64>> = steps.iter().filter(|(_, colour)| colour == "red").map(|(from, _)| *from).collect();
    match threshold {
        // Grafana colours from a step up; a rule `> N` on a count fires from
        // N + 1, so a red step at N + 1 is the same line (at 0 it would be
        // red always).
        Threshold::Above(value) => (*value > 0.0 && red == [Some(*value)]) || red == [Some(*value + 1.0)],
        Threshold::AtZero => red == [None] && steps.get(1).is_some_and(|(from, _)| *from == Some(1.0)),
    }
}

/// The alert rules of rules/orderstream.yml: (name in lower case, expression).
fn alert_rules() -> Vec<(String, String)> {
    let rules: serde_yaml::Value = serde_yaml::from_str(&read("rules/orderstream.yml")).unwrap();
    let mut found = Vec::new();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            if let (Some(alert), Some(expr)) = (rule["alert"].as_str(), rule["expr"].as_str()) {
                found.push((alert.to_lowercase(), expr.to_string()));
            }
        }
    }
    found
}

/// The runbook anchors a panel links (`${runbooks}#anchor`).
fn linked_alerts(panel: &Value) -> Vec<String> {
    let links = panel["links"].as_array().cloned().unwrap_or_default();
    links.iter().filter_map(|link| link["url"].as_str()?.strip_prefix("${runbooks}#").map(str::to_string)).collect()
}

#[test]
fn every_red_tile_turns_red_where_its_alert_fires_and_reads_what_it_reads() {
    let rules = alert_rules();
    let mut problems = Vec::new();
    for panel in data_panels(&dashboard()).iter().filter(|panel| panel["type"] == "stat") {
        let (title, steps) = (panel["title"].as_str().unwrap(), tile_steps(panel));
        if !steps.iter().any(|(_, colour)| colour == "red") {
            continue; // no alert behind it: it may only turn orange
        }
        let expr: String = panel["targets"].as_array().unwrap().iter().filter_map(|t| t["expr"].as_str()).collect();
        let alerts: Vec<&(String, String)> =
            rules.iter().filter(|(name, _)| linked_alerts(panel).contains(name)).collect();
        if alerts.is_empty() {
            problems.push(format!("tile `{title}` turns red but links no alert's runbook"));
        }
        for (alert, rule) in alerts {
            match alert_threshold(rule) {
                Some(threshold) if red_matches(&steps, &threshold) => {}
                threshold => {
                    problems.push(format!("tile `{title}` is red at {steps:?}, {alert} fires at {threshold:?}"))
                }
            }
            let read = metric_names(&expr);
            for series in metric_names(rule).iter().filter(|name| name.starts_with("orderstream_")) {
                if !read.contains(series) {
                    problems.push(format!("tile `{title}` does not read {series}, which {alert}'s condition reads"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "tiles red without their alert:\n{}", problems.join("\n"));
}

#[test]
fn alert_thresholds_are_read_from_their_expressions() {
    assert_eq!(alert_threshold("sum(x) > 50000"), Some(Threshold::Above(50000.0)));
    assert_eq!(alert_threshold("max(x) > 900\nand on ()\n(sum(y) > 0)"), Some(Threshold::Above(900.0)));
    assert_eq!(alert_threshold(r#"up{job="producer"} == 0 or absent(up)"#), Some(Threshold::AtZero));
    let steps = |values: &[(Option<f64>, &str)]| values.iter().map(|(v, c)| (*v, c.to_string())).collect::<Vec<_>>();
    assert!(red_matches(&steps(&[(None, "green"), (Some(900.0), "red")]), &Threshold::Above(900.0)));
    assert!(!red_matches(&steps(&[(None, "green"), (Some(600.0), "red")]), &Threshold::Above(900.0)));
    assert!(red_matches(&steps(&[(None, "green"), (Some(1.0), "red")]), &Threshold::Above(0.0)));
    assert!(!red_matches(&steps(&[(None, "green"), (Some(0.0), "red")]), &Threshold::Above(0.0)), "red always");
    assert!(red_matches(&steps(&[(None, "red"), (Some(1.0), "green")]), &Threshold::AtZero));
}

#[test]
fn dashboard_is_laid_out_for_on_call() {
    let dashboard = dashboard();
    let panels = dashboard["panels"].as_array().unwrap();
    let rows: Vec<&str> =
        panels.iter().filter(|panel| panel["type"] == "row").filter_map(|panel| panel["title"].as_str()).collect();
    assert_eq!(rows, ["Overview", "Producer", "Consumer", "Kafka", "PostgreSQL"]);
    let reading = |series: &str| {
        data_panels(&dashboard).into_iter().find(|panel| {
            panel["targets"].as_array().unwrap().iter().any(|t| t["expr"].as_str().is_some_and(|e| e.contains(series)))
        })
    };
    let mut problems = Vec::new();
    match reading("ALERTS{alertstate=\"firing\"") {
        Some(panel) if panel["type"] == "table" => {}
        other => problems.push(format!("no table of the firing alerts: {other:?}")),
    }
    for series in ["process_cpu_seconds_total", "process_resident_memory_bytes", "orderstream_build_info"] {
        if reading(series).is_none() {
            problems.push(format!("no panel reads {series}"));
        }
    }
    // Lag in seconds beside lag in records: same row, same height on screen.
    let position = |series: &str| reading(series).map(|panel| panel["gridPos"]["y"].as_i64());
    for (records, seconds) in [
        ("orderstream_backlog_group_lag_records", "orderstream_backlog_group_lag_seconds"),
        ("orderstream_lag_exporter_partition_lag_records", "orderstream_lag_exporter_partition_lag_seconds"),
    ] {
        if position(seconds).is_none() || position(records) != position(seconds) {
            problems.push(format!("{seconds} is not charted beside {records}"));
        }
    }
    assert!(problems.is_empty(), "the dashboard for on-call:\n{}", problems.join("\n"));
}

#[test]
fn unfiltered_selectors_are_found() {
    let filtered = r#"sum(rate(orderstream_x_total{job=~"$job",instance=~"$instance"}[1m]))"#;
    assert!(unfiltered_selectors(filtered).is_empty());
    assert_eq!(
        unfiltered_selectors("max(orderstream_x) + orderstream_x_total{job=~\"$job\",instance=~\"$instance\"}"),
        ["orderstream_x"]
    );
    assert_eq!(unfiltered_selectors(r#"up{job="producer"}"#), ["up"]);
}

#[test]
fn every_alert_waits_links_its_runbook_and_is_tested_firing_and_quiet() {
    let rules: serde_yaml::Value = serde_yaml::from_str(&read("rules/orderstream.yml")).unwrap();
    let mut cases: Vec<(String, bool)> = Vec::new();
    for file in std::fs::read_dir(config_dir().join("tests")).unwrap() {
        let tests: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(file.unwrap().path()).unwrap()).unwrap();
        for test in tests["tests"].as_sequence().into_iter().flatten() {
            for case in test["alert_rule_test"].as_sequence().into_iter().flatten() {
                let fires = case["exp_alerts"].as_sequence().is_some_and(|alerts| !alerts.is_empty());
                cases.push((case["alertname"].as_str().unwrap().to_string(), fires));
            }
        }
    }
    let anchors = runbook_anchors();
    let mut problems = Vec::new();
    let mut alerts = 0;
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let Some(alert) = rule["alert"].as_str() else { continue };
            alerts += 1;
            if rule["for"].as_str().is_none() {
                problems.push(format!("{alert} has no `for:`: one bad evaluation pages"));
            }
            let anchor = alert.to_lowercase();
            // Absolute once Prometheus fills in its external label.
            let expected = format!("{{{{ $externalLabels.runbook_base_url }}}}#{anchor}");
            if rule["annotations"]["runbook_url"].as_str() != Some(expected.as_str()) {
                problems
                    .push(format!("{alert}: runbook_url is {:?}, not {expected}", rule["annotations"]["runbook_url"]));
            }
            if !anchors.contains(&anchor) {
                problems.push(format!("{alert}: docs/operations.md has no heading `## {alert}`"));
            }
            for (fires, what) in [(true, "fires"), (false, "does not fire")] {
                if !cases.iter().any(|(name, case_fires)| name == alert && *case_fires == fires) {
                    problems.push(format!("{alert}: no promtool case where it {what}"));
                }
            }
        }
    }
    assert!(alerts >= 10, "only {alerts} alerts found in rules/orderstream.yml");
    assert!(problems.is_empty(), "the alert rules:\n{}", problems.join("\n"));
}
