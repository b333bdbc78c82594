//! Security, on the real binaries and a real PostgreSQL: least-privilege
//! roles, TLS to PostgreSQL, secrets kept out of output and metrics, and a
//! dead-letter export that is safe to open in a spreadsheet.

// End-to-end: built only with the feature `make test` turns on (docs/testing.md).
#![cfg(feature = "integration-tests")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use clients::postgres::describe;
use harness::postgres::PrivatePostgres;
use harness::{binary, order_record, poll_until, Scenario};
use tokio_postgres::error::SqlState;

static ROLES: AtomicU32 = AtomicU32::new(0);

/// Runs `orderstream-consumer ARGS` to completion against `database_url`.
fn consumer_command(scenario: &Scenario, database_url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(binary("orderstream-consumer"));
    command
        .args(args)
        .env("ORDERSTREAM_DATABASE_URL", database_url)
        .env("ORDERSTREAM_KAFKA_BROKERS", &scenario.brokers)
        .env("ORDERSTREAM_TOPIC", &scenario.topic)
        .env("ORDERSTREAM_DLQ_TOPIC", &scenario.dlq_topic)
        .env("ORDERSTREAM_GROUP", &scenario.group)
        .env("ORDERSTREAM_CONSUMER_METRICS_ADDR", "127.0.0.1:0")
        .env_remove("PGSSLROOTCERT")
        .env_remove("ORDERSTREAM_DATABASE_SSL_ROOT_CERT")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run orderstream-consumer")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// `orderstream-consumer migrate` as the scenario's (superuser) role: the owner.
fn migrate_as_owner(scenario: &Scenario) {
    let output = consumer_command(scenario, &scenario.database_url, &["migrate"], &[]);
    assert!(output.status.success(), "migrate failed:\n{}", text(&output));
}

/// The scenario's URL for another role (the test cluster trusts loopback).
fn url_as(scenario: &Scenario, role: &str) -> String {
    let (_, rest) = scenario.database_url.split_once("://").unwrap();
    let (_, host_and_db) = rest.split_once('@').unwrap();
    format!("postgres://{role}@{host_and_db}")
}

/// Creates a login role of this test (roles are cluster-wide: unique names),
/// a member of `group` if given.
async fn login_role(scenario: &Scenario, prefix: &str, group: Option<&str>) -> String {
    let name = format!("{prefix}_{}_{}", std::process::id(), ROLES.fetch_add(1, Ordering::SeqCst));
    let admin = scenario.db().await;
    admin.batch_execute(&format!("CREATE ROLE {name} LOGIN")).await.unwrap();
    if let Some(group) = group {
        admin.batch_execute(&format!("GRANT {group} TO {name}")).await.unwrap();
    }
    name
}

async fn connect_as(scenario: &Scenario, role: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&url_as(scenario, role), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

async fn assert_refused(client: &tokio_postgres::Client, sql: &str) {
    let error = client.batch_execute(sql).await.expect_err(sql);
    assert_eq!(error.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE), "{sql}: {error}");
}

#[tokio::test]
async fn writer_cannot_change_the_schema_and_analyst_reads_only_the_views() {
    let scenario = Scenario::new("roles").await;
    migrate_as_owner(&scenario);
    let writer =
        connect_as(&scenario, &login_role(&scenario, "writer", Some(schema::migrations::WRITER_ROLE)).await).await;
    let analyst =
        connect_as(&scenario, &login_role(&scenario, "analyst", Some(schema::migrations::ANALYST_ROLE)).await).await;

    // The writer writes what the consumer writes...
    writer
        .batch_execute(
            "INSERT INTO orders (id, user_id, completed_at, item_total, shipment_total, source_file, source_line,
                                 source_offset, read_at)
             VALUES (1, 2, now(), 10, 2.5, 'a.csv', 2, 0, now());
             UPDATE orders SET item_total = 11 WHERE id = 1;
             INSERT INTO consumer_offsets (group_id, topic, partition, next_offset) VALUES ('g', 't', 0, 1);
             INSERT INTO dead_letters (source, reason, message, payload) VALUES ('s', 'r', 'm', 'p');
             SELECT count(*) FROM orderstream_migrations;",
        )
        .await
        .unwrap();
    // ...and changes nothing else.
    for sql in [
        "DROP TABLE orders",
        "ALTER TABLE orders ADD COLUMN note TEXT",
        "CREATE TABLE scratch (a INT)",
        "CREATE VIEW scratch AS SELECT 1",
        "TRUNCATE orders",
        "DELETE FROM orders",
        "DROP VIEW analysis_orders",
        "CREATE SCHEMA scratch",
    ] {
        assert_refused(&writer, sql).await;
    }

    // The analyst reads the analysis views...
    for view in [
        "analysis_orders",
        "analysis_anchor",
        "analysis_customer_orders",
        "analysis_dead_letters",
        "pipeline_freshness",
    ] {
        analyst.query(&format!("SELECT * FROM {view}"), &[]).await.unwrap_or_else(|e| panic!("{view}: {e}"));
    }
    let orders: i64 = analyst.query_one("SELECT count(*) FROM analysis_orders", &[]).await.unwrap().get(0);
    assert_eq!(orders, 1);
    // ...and nothing else, nor can it write.
    for sql in [
        "SELECT * FROM orders",
        "SELECT * FROM dead_letters",
        "SELECT * FROM consumer_offsets",
        "INSERT INTO orders (id, user_id, completed_at, item_total, shipment_total, source_file, source_line,
                             source_offset, read_at) VALUES (2, 2, now(), 1, 1, 'a', 1, 0, now())",
        "UPDATE orders SET item_total = 0",
        "DELETE FROM orders",
        "INSERT INTO dead_letters (source, reason, message, payload) VALUES ('s', 'r', 'm', 'p')",
        "CREATE TABLE scratch (a INT)",
    ] {
        assert_refused(&analyst, sql).await;
    }
}

#[tokio::test]
async fn consumer_as_the_writer_ingests_once_the_owner_migrated_and_says_what_to_do_before() {
    let scenario = Scenario::new("writer_consumer").await;
    // A login without any right yet: the schema is behind and it may not migrate.
    let writer = login_role(&scenario, "writer", None).await;
    let output = consumer_command(&scenario, &url_as(&scenario, &writer), &[], &[]);
    let said = text(&output);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("behind") && said.contains("orderstream-consumer migrate"), "{said}");

    migrate_as_owner(&scenario);
    scenario.db().await.batch_execute(&format!("GRANT {} TO {writer}", schema::migrations::WRITER_ROLE)).await.unwrap();
    let consumer = scenario.start_consumer_with(&[("ORDERSTREAM_DATABASE_URL", &url_as(&scenario, &writer))]);
    let records: Vec<_> = (1..=50).map(|id| order_record(id, 7, "12.50", Some(id))).collect();
    scenario.produce(&records).await;
    scenario.wait_for_orders(50, Duration::from_secs(60)).await;
    let migrated = consumer.metric("orderstream_consumer_migrations_applied_total");
    let (status, output) = consumer.terminate_with_output();
    assert!(status.success(), "{output}");
    assert_eq!(migrated, Some(0.0), "the writer migrated nothing:\n{output}");
}

/// A CA and a server certificate for 127.0.0.1 and localhost, made with openssl.
fn certificates(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let path = |file: &str| dir.join(format!("{name}-{file}"));
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl").args(args).output().expect("openssl is installed");
        assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    let (ca_key, ca, key, csr, certificate, extensions) =
        (path("ca.key"), path("ca.pem"), path("server.key"), path("server.csr"), path("server.pem"), path("ext.cnf"));
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN=orderstream test CA {name}"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        &s(&ca_key),
        "-out",
        &s(&ca),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &s(&key),
        "-out",
        &s(&csr),
    ]);
    std::fs::write(
        &extensions,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&ca),
        "-CAkey",
        &s(&ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &s(&extensions),
        "-out",
        &s(&certificate),
    ]);
    (ca, certificate, key)
}

#[tokio::test]
async fn postgres_over_tls_is_verified_against_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, certificate, key) = certificates(dir.path(), "good");
    let (other_ca, _, _) = certificates(dir.path(), "other");
    let postgres = PrivatePostgres::start();
    postgres.enable_tls(&certificate, &key);
    let url = |mode: &str| format!("postgres://orderstream@127.0.0.1:{}/orderstream?sslmode={mode}", postgres.port);

    // The library: verify-full with the CA file gives an encrypted session.
    let database = clients::Database::new(&url("verify-full"), Some(&ca)).unwrap();
    let client = database.connect().await.expect("verify-full with the right CA connects");
    let encrypted: bool =
        client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap().get(0);
    assert!(encrypted);

    // A certificate from another CA is refused by verify-ca and verify-full...
    for mode in ["verify-ca", "verify-full"] {
        let error = clients::Database::new(&url(mode), Some(&other_ca)).unwrap().connect().await.unwrap_err();
        let error = describe(&error);
        assert!(error.contains("UnknownIssuer"), "{mode}: {error}");
    }
    // ...and the host name matters to verify-full only.
    let by_name = |mode: &str| {
        format!(
            "host=db.wrong.example hostaddr=127.0.0.1 port={} user=orderstream dbname=orderstream sslmode={mode}",
            postgres.port
        )
    };
    let error = clients::Database::new(&by_name("verify-full"), Some(&ca)).unwrap().connect().await.unwrap_err();
    let error = describe(&error);
    assert!(error.contains("not valid for name \"db.wrong.example\""), "{error}");
    clients::Database::new(&by_name("verify-ca"), Some(&ca))
        .unwrap()
        .connect()
        .await
        .expect("verify-ca ignores the name");

    // The binary: `migrate` over verify-full, the CA given by flag.
    let scenario = Scenario::new("tls").await;
    let ca_flag = ca.to_str().unwrap();
    let output = consumer_command(&scenario, &url("verify-full"), &["migrate", "--database-ca-file", ca_flag], &[]);
    assert!(output.status.success(), "{}", text(&output));
    // Without the CA file, Mozilla's roots do not know the test CA.
    let output = consumer_command(&scenario, &url("verify-full"), &["migrate"], &[]);
    assert!(!output.status.success());
    assert!(text(&output).contains("certificate"), "{}", text(&output));
}

#[tokio::test]
async fn sslmode_require_against_a_server_without_tls_fails_clearly() {
    let scenario = Scenario::new("tls_required").await;
    let url = format!("{}?sslmode=require", url_as(&scenario, "orderstream"));
    let output = consumer_command(&scenario, &url, &["migrate"], &[]);
    let said = text(&output);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("cannot connect to PostgreSQL") && said.contains("TLS"), "{said}");
}

fn http_get(addr: &str, path: &str) -> String {
    ureq::get(&format!("http://{addr}{path}"))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .map(|mut response| response.body_mut().read_to_string().unwrap_or_default())
        .unwrap_or_default()
}

#[tokio::test]
async fn passwords_never_reach_output_or_metrics() {
    let scenario = Scenario::new("secrets").await;
    let db_secret = format!("PgSecret{}x", std::process::id());
    let kafka_secret = format!("KafkaSecret{}y", std::process::id());
    let sasl = [
        ("RUST_LOG", "debug"),
        ("ORDERSTREAM_KAFKA_SECURITY_PROTOCOL", "sasl_plaintext"),
        ("ORDERSTREAM_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256"),
        ("ORDERSTREAM_KAFKA_SASL_USERNAME", "orderstream-consumer"),
        ("ORDERSTREAM_KAFKA_SASL_PASSWORD", kafka_secret.as_str()),
    ];
    let mut seen = String::new();

    // An unreachable database: the consumer retries, serving its metrics meanwhile.
    let unreachable = format!("postgres://orderstream:{db_secret}@127.0.0.1:1/orderstream");
    let mut env = sasl.to_vec();
    env.push(("ORDERSTREAM_DATABASE_URL", &unreachable));
    let consumer = scenario.start_consumer_with(&env);
    let addr = consumer.metrics_addr();
    let database_retries = r#"orderstream_consumer_unavailable_total{dependency="database"}"#;
    let tried = poll_until(Duration::from_secs(30), || async {
        consumer.metric(database_retries).is_some_and(|retries| retries > 0.0)
    })
    .await;
    seen += &http_get(&addr, "/metrics");
    seen += &http_get(&addr, "/readyz");
    let (_, output) = consumer.terminate_with_output();
    assert!(tried, "the consumer never tried the database:\n{output}");
    seen += &output;

    // A reachable database (trust: the password is not even asked) and a
    // broker that speaks no SASL: the Kafka clients are built and fail.
    let reachable = scenario.database_url.replacen("://orderstream@", &format!("://orderstream:{db_secret}@"), 1);
    let mut env = sasl.to_vec();
    env.push(("ORDERSTREAM_DATABASE_URL", &reachable));
    let consumer = scenario.start_consumer_with(&env);
    let addr = consumer.metrics_addr();
    tokio::time::sleep(Duration::from_secs(6)).await;
    seen += &http_get(&addr, "/metrics");
    seen += &http_get(&addr, "/readyz");
    seen += &consumer.terminate_with_output().1;

    // One-shot commands failing on the database, and a refused flag.
    for args in [
        &["migrate"][..],
        &["redrive"],
        &["dead-letters", "export", "--output", "/nonexistent/x.csv"],
        &["--batch-size", "many"],
    ] {
        let output = consumer_command(&scenario, &unreachable, args, &sasl);
        assert!(!output.status.success(), "{args:?} should fail");
        seen += &text(&output);
    }
    let mut env = sasl.to_vec();
    env.push(("ORDERSTREAM_KAFKA_OPTIONS", "linger.ms=5,sasl.password:oops-no-equals"));
    let output = consumer_command(&scenario, &unreachable, &["migrate"], &env);
    assert!(text(&output).contains("not key=value"), "{}", text(&output));
    seen += &text(&output);

    // The lag exporter, with both passwords, against the unreachable database.
    let ready_file = tempfile::NamedTempFile::new().unwrap();
    let mut exporter = Command::new(binary("orderstream-lag-exporter"))
        .envs(sasl)
        .env("ORDERSTREAM_DATABASE_URL", &unreachable)
        .env("ORDERSTREAM_KAFKA_BROKERS", &scenario.brokers)
        .env("ORDERSTREAM_LAG_INTERVAL_MS", "500")
        .env("ORDERSTREAM_LAG_EXPORTER_METRICS_ADDR", "127.0.0.1:0")
        .env("ORDERSTREAM_LAG_EXPORTER_READY_FILE", ready_file.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kafka is measured first and times out after 5 s, then the database.
    let database_errors = r#"orderstream_lag_exporter_errors_total{source="database"} "#;
    let mut exporter_metrics = String::new();
    let measured = poll_until(Duration::from_secs(30), || {
        let ready = std::fs::read_to_string(ready_file.path()).unwrap_or_default();
        let addr =
            serde_json::from_str::<serde_json::Value>(&ready).ok().and_then(|r| r["addr"].as_str().map(String::from));
        exporter_metrics = addr.map(|addr| http_get(&addr, "/metrics")).unwrap_or_default();
        let failed = exporter_metrics
            .lines()
            .find_map(|line| line.strip_prefix(database_errors))
            .and_then(|value| value.parse::<f64>().ok())
            .is_some_and(|errors| errors > 0.0);
        async move { failed }
    })
    .await;
    exporter.kill().unwrap();
    let output = exporter.wait_with_output().unwrap();
    let exporter_said = text(&output);
    assert!(measured, "the exporter never counted a failed freshness read:\n{exporter_metrics}\n{exporter_said}");
    seen += &exporter_said;
    seen += &exporter_metrics;

    assert!(!seen.contains(&db_secret), "the database password leaked:\n{seen}");
    assert!(!seen.contains(&kafka_secret), "the SASL password leaked:\n{seen}");
    assert!(!seen.contains("oops-no-equals"), "a malformed option was repeated:\n{seen}");
}

#[tokio::test]
async fn dead_letter_export_neutralises_spreadsheet_formulas() {
    let scenario = Scenario::new("dlq_export").await;
    migrate_as_owner(&scenario);
    scenario
        .db()
        .await
        .batch_execute(
            "INSERT INTO dead_letters (source, reason, message, record_key, payload, headers) VALUES
               ('orders/0/1 a.csv:2', 'undecodable_value', '-1+1 is not an order', '42',
                '=HYPERLINK(\"http://attacker.example\",\"open\")', '{\"line\":\"2\"}'),
               ('orders/0/2', 'rejected_by_database', '@SUM(A1:A9)', NULL, 'plain, with a comma', '{}')",
        )
        .await
        .unwrap();
    let output_file = scenario.dir.path().join("export/dead-letters.csv");
    let output_arg = output_file.to_str().unwrap();
    let output =
        consumer_command(&scenario, &scenario.database_url, &["dead-letters", "export", "--output", output_arg], &[]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("2 dead letter(s)"), "{}", text(&output));
    let csv = std::fs::read_to_string(&output_file).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "id,created_at,reason,source,message,record_key,payload,headers,redriven_at,stage,source_file,source_line,source_offset,resolved_at"
    );
    assert!(lines[1].starts_with("1,"), "ids stay numbers: {}", lines[1]);
    assert!(lines[1].contains(",'-1+1 is not an order,"), "{}", lines[1]);
    assert!(lines[1].contains(r#""'=HYPERLINK(""http://attacker.example"",""open"")""#), "{}", lines[1]);
    assert!(lines[2].contains(",'@SUM(A1:A9),"), "{}", lines[2]);
    assert!(lines[2].contains(r#","plain, with a comma","#), "{}", lines[2]);
    for line in &lines[1..] {
        for field in line.split(',') {
            let cell = field.trim_start_matches('"');
            assert!(!cell.starts_with(['=', '+', '-', '@']), "unneutralised cell {field:?} in {line}");
        }
    }
}

/// `DATABASE_URL`, the documented alias of `ORDERSTREAM_DATABASE_URL`, still
/// configures a binary: with only the alias set, `migrate` reaches this
/// scenario's database (ignoring it would mean the default database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_database_url_alias_still_configures_a_binary() {
    let scenario = Scenario::new("env_alias").await;
    let output = Command::new(binary("orderstream-consumer"))
        .arg("migrate")
        .env_remove("ORDERSTREAM_DATABASE_URL")
        .env("DATABASE_URL", &scenario.database_url)
        .env_remove("PGSSLROOTCERT")
        .env_remove("ORDERSTREAM_DATABASE_SSL_ROOT_CERT")
        .stdin(Stdio::null())
        .output()
        .expect("run orderstream-consumer");
    assert!(output.status.success(), "migrate through DATABASE_URL failed:\n{}", text(&output));
    let applied: i64 =
        scenario.db().await.query_one("SELECT count(*) FROM orderstream_migrations", &[]).await.unwrap().get(0);
    assert!(applied > 0, "the alias's database was not migrated");
}
