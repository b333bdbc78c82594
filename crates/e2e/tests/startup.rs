//! Every binary starts the same way (`telemetry::startup`): the old
//! variable names still work, a deprecated one is warned of, a bad
//! configuration stops the start with the binary's own exit code, and the
//! durations' old millisecond spellings run the pipeline as before.

// End-to-end: built only with the feature `make test` turns on (docs/testing.md).
#![cfg(feature = "integration-tests")]

use std::process::Command;
use std::time::Duration;

use harness::{binary, order_line, Scenario, HEADER};

/// Runs `name` with a deprecated variable set and a configuration its
/// validation refuses; returns its exit code and standard error.
fn refused_start(name: &str, extra_args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(binary(name))
        .args(["--kafka-option", "novalue"])
        .args(extra_args)
        .env("KAFKA_SASL_USERNAME", "legacy-user")
        .env_remove("ORDERSTREAM_KAFKA_SASL_USERNAME")
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn services_warn_of_a_deprecated_variable_then_refuse_a_bad_configuration() {
    for service in ["orderstream-producer", "orderstream-consumer", "orderstream-lag-exporter"] {
        let (code, stderr) = refused_start(service, &[]);
        assert_eq!(code, Some(1), "{service}: {stderr}");
        let warning = stderr.find(telemetry::env::DEPRECATED_VARIABLE);
        let refusal = stderr.find("invalid configuration");
        assert!(warning.is_some() && refusal.is_some(), "{service}: {stderr}");
        assert!(warning < refusal, "{service}: the warning comes first, as logging is up before parsing: {stderr}");
        assert!(stderr.contains("variable=\"KAFKA_SASL_USERNAME\""), "{service}: {stderr}");
    }
}

#[test]
fn one_shot_commands_keep_their_own_exit_code_and_a_quiet_standard_error() {
    for (command, extra_args) in [("orderstream-status", &[][..]), ("orderstream-verify", &["--every", "1h"][..])] {
        let (code, stderr) = refused_start(command, extra_args);
        assert_eq!(code, Some(64), "{command}: {stderr}");
        assert!(stderr.starts_with(&format!("{command}: invalid configuration: ")), "{command}: {stderr}");
        assert!(
            !stderr.contains(telemetry::env::DEPRECATED_VARIABLE),
            "{command} sets up no logging before it validates: {stderr}"
        );
    }
}

#[test]
fn a_bad_duration_is_refused_naming_the_value_and_the_forms_accepted() {
    let output = Command::new(binary("orderstream-producer"))
        .env("ORDERSTREAM_POLL_INTERVAL_MS", "often")
        .env_remove("ORDERSTREAM_POLL_INTERVAL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "clap's usage error: {stderr}");
    assert!(stderr.contains("`often` is not a duration") && stderr.contains("250ms"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pipeline_runs_with_old_millisecond_and_new_humantime_durations() {
    let scenario = Scenario::new("startup_durations").await;
    // Old names with bare numbers, as deployments have them; old names with
    // humantime values (refused before durations had one spelling); new names.
    let mut producer = scenario.start_producer_with(&[
        ("ORDERSTREAM_POLL_INTERVAL_MS", "50"),
        ("ORDERSTREAM_RESCAN_INTERVAL_MS", "500ms"),
        ("ORDERSTREAM_POSITION_FLUSH_INTERVAL", "100ms"),
    ]);
    let consumer = scenario.start_consumer_with(&[("ORDERSTREAM_BATCH_WAIT_MS", "5ms")]);
    // Its interval comes from ORDERSTREAM_LAG_INTERVAL_MS (see `start_lag_exporter`).
    let exporter = scenario.start_lag_exporter();
    for process in [&producer, &consumer, &exporter] {
        process.metrics_addr();
    }
    scenario.append(
        "orders.csv",
        format!("{HEADER}{}{}", order_line(1, 7, "10", "1"), order_line(2, 7, "20", "2")).as_bytes(),
    );
    scenario.wait_for_orders(2, Duration::from_secs(60)).await;
    assert!(producer.wait_exit(Duration::ZERO).is_none(), "the producer is still running: {}", producer.output());
}
