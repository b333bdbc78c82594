//! Alertmanager, tested for real: the repository's configuration in Debian's
//! `prometheus-alertmanager`, alerts posted as Prometheus posts them. One
//! cause pages once: its consequences are held but inhibited. And
//! `orderstream-status` shows what fires, without making it its verdict.
//! (Routes per severity and the example receivers: scripts/compose-check.sh,
//! with amtool.)

// End-to-end: built only with the feature `make test` turns on (docs/testing.md).
#![cfg(feature = "integration-tests")]

use std::process::Command;

use harness::alertmanager::{alert, Alertmanager};
use harness::{binary, poll_until};

/// `alertname` → (state, inhibited by how many), once every one of `names` is held.
async fn held(alertmanager: &Alertmanager, names: &[&str]) -> Vec<(String, String, usize)> {
    let all_held = poll_until(Alertmanager::PATIENCE, || async {
        let alerts = alertmanager.alerts();
        names.iter().all(|name| alerts.iter().any(|(held, _, _)| held == name))
    })
    .await;
    assert!(all_held, "not all of {names:?} are held: {:?}", alertmanager.alerts());
    alertmanager.alerts()
}

fn state_of<'a>(alerts: &'a [(String, String, usize)], name: &str) -> (&'a str, usize) {
    let (_, state, inhibitors) = alerts.iter().find(|(held, _, _)| held == name).unwrap();
    (state.as_str(), *inhibitors)
}

async fn started() -> Alertmanager {
    let alertmanager = Alertmanager::start("alertmanager.yml");
    let ready = poll_until(Alertmanager::PATIENCE, || async { alertmanager.is_ready() }).await;
    assert!(ready, "alertmanager at {} never became ready", alertmanager.url);
    alertmanager
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_consumer_alive_inhibits_lag_freshness_and_stalls_but_not_the_producer() {
    let alertmanager = started().await;
    let consequences = ["OrderstreamConsumerLagHigh", "OrderstreamDataStale", "OrderstreamDeadLetterIntakeStalled"];
    let mut posted = vec![
        alert("OrderstreamNoConsumerAlive", &[("severity", "critical"), ("group", "orderstream")]),
        alert("OrderstreamProducerStalled", &[("severity", "critical"), ("instance", "p:9101")]),
    ];
    posted.extend(consequences.iter().map(|name| alert(name, &[("severity", "warning")])));
    alertmanager.post(&posted).unwrap();

    let mut names = consequences.to_vec();
    names.extend(["OrderstreamNoConsumerAlive", "OrderstreamProducerStalled"]);
    let alerts = held(&alertmanager, &names).await;
    assert_eq!(state_of(&alerts, "OrderstreamNoConsumerAlive"), ("active", 0), "the cause pages: {alerts:?}");
    for name in consequences {
        assert_eq!(state_of(&alerts, name), ("suppressed", 1), "{name} is a consequence: {alerts:?}");
    }
    assert_eq!(
        state_of(&alerts, "OrderstreamProducerStalled"),
        ("active", 0),
        "a stalled producer has another cause and still pages: {alerts:?}"
    );

    // Its own cause found, the stalled producer goes quiet too.
    alertmanager.post(&[alert("OrderstreamProducerDown", &[("severity", "critical"), ("job", "producer")])]).unwrap();
    let inhibited = poll_until(Alertmanager::PATIENCE, || async {
        let alerts = alertmanager.alerts();
        alerts.iter().any(|(name, _, _)| name == "OrderstreamProducerDown")
            && state_of(&alerts, "OrderstreamProducerStalled") == ("suppressed", 1)
    })
    .await;
    assert!(inhibited, "producer down does not inhibit producer stalled: {:?}", alertmanager.alerts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_firing_alerts_and_keeps_its_own_verdict() {
    let alertmanager = started().await;
    alertmanager
        .post(&[
            alert("OrderstreamNoConsumerAlive", &[("severity", "critical")]),
            alert("OrderstreamConsumerLagHigh", &[("severity", "warning")]),
        ])
        .unwrap();
    held(&alertmanager, &["OrderstreamNoConsumerAlive", "OrderstreamConsumerLagHigh"]).await;

    // Kafka and PostgreSQL on ports where nothing listens: the verdict is theirs.
    let status = |alertmanager_url: &str| {
        let output = Command::new(binary("orderstream-status"))
            .env_clear()
            .env("ORDERSTREAM_KAFKA_BROKERS", "127.0.0.1:1")
            .env("ORDERSTREAM_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .env("ORDERSTREAM_PRODUCER_METRICS_ADDR", "127.0.0.1:1")
            .env("ORDERSTREAM_CONSUMER_METRICS_ADDR", "127.0.0.1:1")
            .env("ORDERSTREAM_STATUS_TIMEOUT", "2s")
            .env("ORDERSTREAM_ALERTMANAGER_URL", alertmanager_url)
            .output()
            .unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let (code, screen) = status(&alertmanager.url);
    assert_eq!(code, Some(2), "Kafka and PostgreSQL are unreachable:\n{screen}");
    assert!(screen.contains(&format!("alerts: 1 firing (Alertmanager {})", alertmanager.url)), "{screen}");
    assert!(screen.contains("OrderstreamNoConsumerAlive"), "{screen}");
    assert!(screen.contains("and 1 silenced or inhibited"), "the inhibited lag is counted, not listed:\n{screen}");

    let gone = alertmanager.url.clone();
    drop(alertmanager);
    let (code, screen) = status(&gone);
    assert_eq!(code, Some(2), "an Alertmanager away changes nothing in the verdict:\n{screen}");
    assert!(screen.contains(&format!("alerts: not known, Alertmanager at {gone} does not answer")), "{screen}");
}
