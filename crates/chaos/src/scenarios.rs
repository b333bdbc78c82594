//! The fault scenarios of `make chaos`. Each runs the real producer and
//! consumer on real Kafka and PostgreSQL under a steady load, breaks
//! something on purpose mid-stream, and ends with the invariant check.
//!
//! Waiting for a fault's moment polls a condition (rows stored, a log line,
//! a process gone); the only sleeps are a fault's own duration.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::kafka::PrivateKafka;
use harness::poll_until;
use harness::postgres::PrivatePostgres;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use crate::edges;
use crate::ledger::Ledger;
use crate::load::HEADER;
use crate::proxy::Proxy;
use crate::rig::{append, quarter, Outcome, Rig, Size};

/// Every scenario: its id for `--only`, and its name in the table.
pub const SCENARIOS: [(&str, &str); 24] = [
    ("1", "1 producer kill -9"),
    ("2", "2 consumer kill -9"),
    ("3", "3 consumer SIGSTOP"),
    ("4", "4 rebalances"),
    ("5", "5 Kafka down"),
    ("6", "6 PostgreSQL down+kill"),
    ("7", "7 slow database"),
    ("8", "8 file operations"),
    ("9", "9 bad input corpus"),
    ("10", "10 out-of-order versions"),
    ("11", "11 disk full"),
    ("12a", "12a crash before save"),
    ("12b", "12b crash in save"),
    ("12c", "12c crash after commit"),
    ("13", "13 ambiguous commit"),
    ("14", "14 DLQ unwritable"),
    ("15", "15 full replay"),
    ("16", "16 state lost, then corrections"),
    ("17", "17 archived while Kafka down"),
    ("18", "18 late appends after rename"),
    ("19", "19 truncate+regrow while paused"),
    ("20", "20 NUL in value, header, key"),
    ("21", "21 1 GB line, then a restart"),
    ("22", "22 record Kafka refuses"),
];

/// Runs one scenario by id.
pub async fn run(id: &str, size: Size) -> Outcome {
    let name = SCENARIOS.iter().find(|(known, _)| *known == id).map(|(_, name)| *name).expect("known scenario");
    match id {
        "1" => producer_killed(name, size).await,
        "2" => consumer_killed(name, size).await,
        "3" => consumer_frozen(name, size).await,
        "4" => rebalances(name, size).await,
        "5" => kafka_down(name, size).await,
        "6" => postgres_down(name, size).await,
        "7" => slow_database(name, size).await,
        "8" => file_operations(name, size).await,
        "9" => bad_input(name, size).await,
        "10" => out_of_order_versions(name, size).await,
        "11" => disk_full(name, size).await,
        "12a" => crash_at(name, size, Side::Producer, "producer-before-position-save").await,
        "12b" => crash_at(name, size, Side::Producer, "producer-during-position-write").await,
        "12c" => crash_at(name, size, Side::Consumer, "consumer-after-db-commit").await,
        "13" => ambiguous_commit(name, size).await,
        "14" => dead_letter_topic_unwritable(name, size).await,
        "15" => full_replay(name, size).await,
        "16" => edges::state_lost_then_corrections(name, size).await,
        "17" => edges::archived_while_kafka_down(name, size).await,
        "18" => edges::late_appends_after_rename(name, size).await,
        "19" => edges::truncated_and_regrown_while_paused(name, size).await,
        "20" => nul_bytes(name, size).await,
        "21" => edges::huge_line_then_restart(name, size).await,
        "22" => record_kafka_refuses(name, size).await,
        _ => unreachable!("checked above"),
    }
}

async fn producer_killed(name: &str, size: Size) -> Outcome {
    let mut rig = Rig::new(name, size).await;
    rig.expect_producer_resends();
    let (producer, consumer) = (rig.scenario.start_producer(), rig.scenario.start_consumer());
    let load = rig.spawn_load(rig.writer("load", 1, 0));
    rig.wait_rows(quarter(size)).await;
    producer.kill_hard();
    let producer = rig.scenario.start_producer();
    let fault_ended = Instant::now();
    load.await.expect("load");
    rig.finish(fault_ended, vec![producer, consumer]).await
}

async fn consumer_killed(name: &str, size: Size) -> Outcome {
    let mut rig = Rig::new(name, size).await;
    let (producer, consumer) = (rig.scenario.start_producer(), rig.scenario.start_consumer());
    let load = rig.spawn_load(rig.writer("load", 2, 0));
    rig.wait_rows(quarter(size)).await;
    consumer.kill_hard();
    let consumer = rig.scenario.start_consumer();
    rig.wait_rows(quarter(size) * 2).await;
    consumer.kill_hard();
    let consumer = rig.scenario.start_consumer();
    let fault_ended = Instant::now();
    load.await.expect("load");
    rig.finish(fault_ended, vec![producer, consumer]).await
}

/// Short group timeouts so a frozen member is evicted within seconds.
const QUICK_GROUP: (&str, &str) = ("ORDERSTREAM_KAFKA_OPTIONS", "session.timeout.ms=6000,heartbeat.interval.ms=1000");

async fn consumer_frozen(name: &str, size: Size) -> Outcome {
    let mut rig = Rig::new(name, size).await;
    let producer = rig.scenario.start_producer();
    let frozen = rig.scenario.start_consumer_with(&[QUICK_GROUP]);
    let other = rig.scenario.start_consumer_with(&[QUICK_GROUP]);
    let load = rig.spawn_load(rig.writer("load", 3, 0));
    rig.wait_rows(quarter(size)).await;
    // The other consumer's assignments of the orders topic, from its metrics.
    let assignments = |process: &harness::Process| {
        let series =
            format!(r#"orderstream_consumer_rebalances_total{{kind="assigned",topic="{}"}}"#, rig.scenario.topic);
        process.metric(&series).unwrap_or(0.0)
    };
    let before = assignments(&other);
    frozen.signal("STOP");
    // Past the 6 s session timeout: the group evicts it, the other consumer
    // takes its partitions: every partition is assigned to it (its `/status`).
    let owns_all = |process: &harness::Process| {
        process.status().and_then(|status| status["assigned_partitions"].as_array().map(Vec::len))
            == Some(harness::PARTITIONS as usize)
    };
    let took_over =
        poll_until(Duration::from_secs(30), || async { assignments(&other) > before && owns_all(&other) }).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    frozen.signal("CONT");
    let fault_ended = Instant::now();
    rig.check(took_over, "the running consumer never took over the frozen one's partitions");
    load.await.expect("load");
    rig.finish(fault_ended, vec![producer, frozen, other]).await
}

async fn rebalances(name: &str, size: Size) -> Outcome {
    let mut rig = Rig::new(name, size).await;
    let producer = rig.scenario.start_producer();
    let first = rig.scenario.start_consumer();
    let load = rig.spawn_load(rig.writer("load", 4, 0));
    let step = quarter(size) * 4 / 5;
    rig.wait_rows(step).await;
    let second = rig.scenario.start_consumer();
    rig.wait_rows(step * 2).await;
    let third = rig.scenario.start_consumer();
    rig.wait_rows(step * 3).await;
    let status = first.terminate();
    rig.check(status.success(), format!("a consumer leaving the group exited with {status}"));
    rig.wait_rows(step * 4).await;
    second.kill_hard();
    let fault_ended = Instant::now();
    load.await.expect("load");
    rig.finish(fault_ended, vec![producer, third]).await
}

async fn kafka_down(name: &str, size: Size) -> Outcome {
    let kafka = tokio::task::block_in_place(PrivateKafka::start);
    let mut rig = Rig::on_brokers(name, &kafka.brokers(), size).await;
    let (producer, consumer) = (rig.scenario.start_producer(), rig.scenario.start_consumer());
    let load = rig.spawn_load(rig.writer("load", 5, 0));
    rig.wait_rows(quarter(size)).await;
    tokio::task::block_in_place(|| kafka.stop());
    tokio::time::sleep(size.outage).await;
    tokio::task::block_in_place(|| kafka.restart());
    let fault_ended = Instant::now();
    load.await.expect("load");
    let outcome = rig.finish(fault_ended, vec![producer, consumer]).await;
    drop(kafka);
    outcome
}

async fn postgres_down(name: &str, size: Size) -> Outcome {
    let postgres = tokio::task::block_in_place(PrivatePostgres::start);
    let mut rig = Rig::on_postgres(name, &postgres.admin_url(), size).await;
    let (producer, consumer) = (rig.scenario.start_producer(), rig.scenario.start_consumer());
    let load = rig.spawn_load(rig.writer("load", 6, 0));
    rig.wait_rows(quarter(size)).await;
    // Backends killed mid-transaction, while the load flows.
    let database = rig.scenario.database_url.rsplit('/').next().unwrap().to_string();
    let (admin, connection) =
        tokio_postgres::connect(&postgres.admin_url(), tokio_postgres::NoTls).await.expect("admin");
    let driver = tokio::spawn(connection);
    let terminated = std::cell::Cell::new(0);
    poll_until(Duration::from_secs(20), || async {
        if let Ok(row) = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = $1 AND pid <> pg_backend_pid()
                   AND state IN ('active', 'idle in transaction') AND query NOT LIKE '%UNION ALL%'",
                &[&database],
            )
            .await
        {
            terminated.set(terminated.get() + row.get::<_, i64>(0));
        }
        terminated.get() >= 3
    })
    .await;
    rig.check(terminated.get() >= 3, format!("only {} backends were caught mid-transaction", terminated.get()));
    driver.abort();
    rig.wait_rows(quarter(size) * 2).await;
    tokio::task::block_in_place(|| postgres.stop());
    tokio::time::sleep(size.outage).await;
    tokio::task::block_in_place(|| postgres.start_again());
    let fault_ended = Instant::now();
    load.await.expect("load");
    let outcome = rig.finish(fault_ended, vec![producer, consumer]).await;
    drop(postgres);
    outcome
}

/// The scenario's database URL with its host and port replaced by a proxy's.
fn through_proxy(database_url: &str, port: u16) -> String {
    let (scheme_and_user, rest) = database_url.split_once('@').expect("URL with user@host");
    let (_, path) = rest.split_once('/').expect("URL with a database");
    format!("{scheme_and_user}@127.0.0.1:{port}/{path}")
}

fn host_port(database_url: &str) -> String {
    let (_, rest) = database_url.split_once('@').expect("URL with user@host");
    rest.split_once('/').expect("URL with a database").0.to_string()
}

async fn slow_database(name: &str, size: Size) -> Outcome {
    let mut rig = Rig::new(name, size).await;
    let proxy = Proxy::start(&host_port(&rig.scenario.database_url)).await.expect("proxy");
    let url = through_proxy(&rig.scenario.database_url, proxy.port);
    let producer = rig.scenario.start_producer();
    let consumer = rig.scenario.start_consumer_with(&[("ORDERSTREAM_DATABASE_URL", &url)]);
    proxy.set_latency(Duration::from_millis(20));
    let load = rig.spawn_load(rig.writer("load", 7, 0));
    for part in 1..=3 {
        rig.wait_rows(quarter(size) * part).await;
        proxy.drop_connections();
    }
    proxy.set_latency(Duration::ZERO);
    let fault_ended = Instant::now();
    rig.check(proxy.connections() > 1, "the consumer never reconnected after its connections were dropped");
    load.await.expect("load");
    rig.finish(fault_ended, vec![producer, consumer]).await
}

async fn file_operations(name: &str, size: Size) -> Outcome {
    let mut rig = Rig::new(name, size).await;
    let (producer, consumer) = (rig.scenario.start_producer(), rig.scenario.start_consumer());
    let load = rig.spawn_load(rig.writer("load", 8, 0));
    let inbox = rig.scenario.inbox();

    // A line written in two parts, seconds apart.
    let mut single = rig.writer("split", 80, 10_000_000);
    let (id, line, row) = single.order_line();
    let (first, second) = line.split_at(line.len() / 2);
    append(&inbox.join("split.csv"), &[HEADER, first.as_bytes()].concat());
    tokio::time::sleep(Duration::from_secs(2)).await;
    append(&inbox.join("split.csv"), second.as_bytes());
    rig.ledger.lock().unwrap().valid(id, row);

    // Rotation by rename, while being read.
    let mut rotated = rig.writer("rotated", 81, 20_000_000).lines_per_file(100_000);
    rotated.write_lines(1_000).unwrap();
    let path = rotated.current_file().unwrap().to_path_buf();
    rig.wait_for_ids(&[20_000_001]).await;
    rotated.write_lines(1_000).unwrap();
    std::fs::rename(&path, path.with_extension("csv.1")).unwrap();
    rotated.finish_file();
    rotated.write_lines(500).unwrap();

    // copytruncate: copied away, emptied in place, written again.
    let mut truncated = rig.writer("truncated", 82, 30_000_000).lines_per_file(100_000).bad_every(0);
    truncated.write_lines(1_000).unwrap();
    let path = truncated.current_file().unwrap().to_path_buf();
    let ids: Vec<i64> = (30_000_001..=30_001_000).collect();
    rig.wait_for_ids(&ids).await;
    std::fs::copy(&path, path.with_extension("csv.1")).unwrap();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
    append(&path, HEADER);
    let mut after = rig.writer("unused", 83, 31_000_000).bad_every(0);
    let lines: Vec<u8> = (0..500)
        .flat_map(|_| {
            let (id, line, row) = after.order_line();
            rig.ledger.lock().unwrap().valid(id, row);
            line.into_bytes()
        })
        .collect();
    append(&path, &lines);

    // Deleted while read.
    let mut deleted = rig.writer("deleted", 84, 40_000_000).lines_per_file(100_000);
    deleted.write_lines(20_000).unwrap();
    let path = deleted.current_file().unwrap().to_path_buf();
    rig.wait_for_ids(&[40_000_001]).await;
    std::fs::remove_file(&path).unwrap();

    // The same file dropped twice under two names.
    let copy = std::sync::Arc::new(std::sync::Mutex::new(Ledger::default()));
    let mut twice = crate::load::LoadWriter::new(&inbox, "twice", copy.clone(), 85, 50_000_000).lines_per_file(100_000);
    twice.write_lines(1_000).unwrap();
    let path = twice.current_file().unwrap().to_path_buf();
    twice.finish_file();
    let written = copy.lock().unwrap().clone();
    rig.ledger.lock().unwrap().merge(&written);
    let valid_ids: Vec<i64> = written.orders.keys().copied().collect();
    rig.wait_for_ids(&valid_ids).await;
    std::fs::copy(&path, inbox.join("twice-again.csv")).unwrap();
    rig.ledger.lock().unwrap().merge(&written);

    let fault_ended = Instant::now();
    load.await.expect("load");
    rig.finish(fault_ended, vec![producer, consumer]).await
}

async fn bad_input(name: &str, size: Size) -> Outcome {
    let rig = Rig::new(name, size).await;
    let (producer, consumer) = (rig.scenario.start_producer(), rig.scenario.start_consumer());
    let load = rig.spawn_load(rig.writer("load", 9, 0).bad_every(10));
    let inbox = rig.scenario.inbox();
    let mut valid = rig.writer("unused", 90, 60_000_000);
    let mut valid_line = |rig: &Rig| {
        let (id, line, row) = valid.order_line();
        rig.ledger.lock().unwrap().valid(id, row);
        line
    };

    // A huge line between two valid ones: dead-lettered with its first KiB.
    let mut huge = std::io::BufWriter::new(std::fs::File::create(inbox.join("huge.tmp")).unwrap());
    huge.write_all(HEADER).unwrap();
    huge.write_all(valid_line(&rig).as_bytes()).unwrap();
    let mut kept = b"1,2,2022-07-01 10:00,".to_vec();
    huge.write_all(&kept).unwrap();
    let chunk = vec![b'9'; 1024 * 1024];
    let mut left = size.huge_line - kept.len();
    while left > 0 {
        let now = left.min(chunk.len());
        huge.write_all(&chunk[..now]).unwrap();
        left -= now;
    }
    kept.resize(1024, b'9');
    huge.write_all(b"\n").unwrap();
    huge.write_all(valid_line(&rig).as_bytes()).unwrap();
    huge.into_inner().unwrap().sync_all().unwrap();
    std::fs::rename(inbox.join("huge.tmp"), inbox.join("huge.csv")).unwrap();
    rig.ledger.lock().unwrap().rejected(&kept, "record_too_long");

    // Binary junk: bytes that are never valid UTF-8 and hold no separator.
    let mut junk = HEADER.to_vec();
    let mut rng = fastrand::Rng::with_seed(9);
    for _ in 0..50 {
        let line: Vec<u8> = (0..rng.usize(1..200)).map(|_| rng.u8(0x80..=0xbf)).collect();
        rig.ledger.lock().unwrap().rejected(&line, "invalid_utf8");
        junk.extend_from_slice(&line);
        junk.push(b'\n');
    }
    junk.extend_from_slice(valid_line(&rig).as_bytes());
    append(&inbox.join("junk.csv"), &junk);

    // Only a header; empty; a header nobody can read.
    append(&inbox.join("header-only.csv"), HEADER);
    append(&inbox.join("empty.csv"), b"");
    let mut unreadable = b"order,customer,when\n".to_vec();
    rig.ledger.lock().unwrap().rejected(b"order,customer,when", "bad_header");
    for n in 0..3 {
        let line = format!("{n},1,2022-07-01 10:00,1.00,2.5");
        rig.ledger.lock().unwrap().rejected(line.as_bytes(), "bad_header");
        unreadable.extend_from_slice(line.as_bytes());
        unreadable.push(b'\n');
    }
    append(&inbox.join("unreadable-header.csv"), &unreadable);

    let fault_ended = Instant::now();
    load.await.expect("load");
    rig.finish(fault_ended, vec![producer, consumer]).await
}

async fn out_of_order_versions(name: &str, size: Size) -> Outcome {
    let mut rig = Rig::new(name, size).await;
    rig.expect_producer_resends();
    let (producer, consumer) = (rig.scenario.start_producer(), rig.scenario.start_consumer());
    let mut writer = rig.writer("versions", 10, 0);
    let count = (size.lines / 3) as usize;
    let ids = writer.write_new_file(count).unwrap();
    rig.wait_for_ids(&ids).await;
    writer.write_versions(&ids).unwrap();
    writer.write_versions(&ids[..count / 2]).unwrap();
    writer.write_versions(&ids[count / 4..count / 2]).unwrap();
    let (_, differences, _) = rig.converge().await;
    rig.check(differences.is_empty(), format!("before the re-read: {}", differences.describe()));
    // The producer loses its positions: every file is read again, the old
    // versions arriving after the newer ones are stored.
    producer.kill_hard();
    std::fs::remove_dir_all(rig.scenario.state_dir()).unwrap();
    let producer = rig.scenario.start_producer();
    let reread = poll_until(Duration::from_secs(60), || async {
        rig.scenario.topic_record_count(&rig.scenario.topic) >= 2 * writer.written() as i64
    })
    .await;
    rig.check(reread, "the producer did not publish every file again");
    let fault_ended = Instant::now();
    rig.finish(fault_ended, vec![producer, consumer]).await
}

/// A tmpfs mounted over a folder for the length of a scenario.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(folder: &Path, bytes: usize) -> Result<SmallDisk, String> {
        std::fs::create_dir_all(folder).map_err(|e| e.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(folder)
            .output()
            .map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(format!(
                "cannot mount a small tmpfs (needs root): {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(SmallDisk(folder.to_path_buf()))
    }

    /// Fills the disk to the last byte; the filler's path.
    fn fill(&self) -> std::path::PathBuf {
        let filler = self.0.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        while file.write_all(&block[..1]).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

async fn disk_full(name: &str, size: Size) -> Outcome {
    let mut rig = Rig::new(name, size).await;
    let disk = match SmallDisk::mount(&rig.scenario.state_dir(), 256 * 1024) {
        Ok(disk) => disk,
        Err(reason) => {
            rig.fail(reason);
            return rig.finish(Instant::now(), vec![]).await;
        }
    };
    let (producer, consumer) = (rig.scenario.start_producer(), rig.scenario.start_consumer());
    let metrics = producer.metrics_addr();
    let load = rig.spawn_load(rig.writer("load", 11, 0));
    rig.wait_rows(quarter(size)).await;
    let filler = disk.fill();
    let unsaveable = "orderstream_producer_positions_unsaveable";
    let said = poll_until(Duration::from_secs(20), || async { producer.metric(unsaveable) == Some(1.0) }).await;
    rig.check(said, "the producer never said it cannot save its positions");
    let ready = ureq::get(&format!("http://{metrics}/readyz")).call().map(|r| r.status().as_u16()).unwrap_or_else(
        |e| match e {
            ureq::Error::StatusCode(code) => code,
            _ => 0,
        },
    );
    rig.check(ready == 503, format!("/readyz answered {ready} while positions cannot be saved, not 503"));
    let stored = std::fs::read(rig.scenario.state_dir().join("positions.json")).unwrap_or_default();
    rig.check(
        serde_json::from_slice::<serde_json::Value>(&stored).is_ok(),
        "the positions file is not intact JSON while the disk is full",
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    std::fs::remove_file(filler).unwrap();
    let resumed = poll_until(Duration::from_secs(20), || async { producer.metric(unsaveable) == Some(0.0) }).await;
    rig.check(resumed, "the producer never resumed after space was freed");
    let fault_ended = Instant::now();
    load.await.expect("load");
    let outcome = rig.finish(fault_ended, vec![producer, consumer]).await;
    drop(disk);
    outcome
}

enum Side {
    Producer,
    Consumer,
}

async fn crash_at(name: &str, size: Size, side: Side, failpoint: &str) -> Outcome {
    let mut rig = Rig::new(name, size).await;
    if matches!(side, Side::Producer) {
        rig.expect_producer_resends();
    }
    // Crash the fifth time the point is reached, mid-stream.
    let failpoints = format!("{failpoint}=4*off->return");
    let env = [("FAILPOINTS", failpoints.as_str())];
    let (mut crashing, other) = match side {
        Side::Producer => (rig.scenario.start_producer_with(&env), rig.scenario.start_consumer()),
        Side::Consumer => (rig.scenario.start_consumer_with(&env), rig.scenario.start_producer()),
    };
    let load = rig.spawn_load(rig.writer("load", 12, 0));
    let status = tokio::task::block_in_place(|| crashing.wait_exit(Duration::from_secs(60)));
    match status {
        Some(status) if status.code().is_none() => {}
        Some(status) => rig.fail(format!("expected a crash at {failpoint}, exited with {status}")),
        None => rig.fail(format!(
            "never crashed at {failpoint}: are the binaries built with `--features \
             orderstream-producer/failpoints,orderstream-consumer/failpoints`?"
        )),
    }
    drop(crashing);
    let restarted = match side {
        Side::Producer => rig.scenario.start_producer(),
        Side::Consumer => rig.scenario.start_consumer(),
    };
    let fault_ended = Instant::now();
    load.await.expect("load");
    rig.finish(fault_ended, vec![restarted, other]).await
}

async fn ambiguous_commit(name: &str, size: Size) -> Outcome {
    let mut rig = Rig::new(name, size).await;
    let proxy = Proxy::start(&host_port(&rig.scenario.database_url)).await.expect("proxy");
    let url = through_proxy(&rig.scenario.database_url, proxy.port);
    let producer = rig.scenario.start_producer();
    let consumer = rig.scenario.start_consumer_with(&[("ORDERSTREAM_DATABASE_URL", &url)]);
    let load = rig.spawn_load(rig.writer("load", 13, 0));
    for cut in 1..=3 {
        rig.wait_rows(quarter(size) * cut as usize).await;
        proxy.cut_after_next_commit();
        let done = poll_until(Duration::from_secs(30), || async { proxy.commits_cut() >= cut }).await;
        rig.check(done, format!("commit {cut} was never cut"));
    }
    let fault_ended = Instant::now();
    load.await.expect("load");
    rig.finish(fault_ended, vec![producer, consumer]).await
}

async fn set_topic_config(brokers: &str, topic: &str, name: &str, value: &str) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().expect("admin client");
    let change = AlterConfig::new(ResourceSpecifier::Topic(topic)).set(name, value);
    for result in admin.alter_configs(&[change], &AdminOptions::new()).await.expect("alter configs") {
        result.expect("topic config changed");
    }
}

async fn dead_letter_topic_unwritable(name: &str, size: Size) -> Outcome {
    let mut rig = Rig::new(name, size).await;
    let (producer, consumer) = (rig.scenario.start_producer(), rig.scenario.start_consumer());
    // Only valid lines: the producer's own dead letters would be refused too.
    let load = rig.spawn_load(rig.writer("load", 14, 0).bad_every(0));
    rig.wait_rows(quarter(size)).await;
    set_topic_config(&rig.scenario.brokers, &rig.scenario.dlq_topic, "max.message.bytes", "16").await;
    let poison = b"this is not an order".to_vec();
    let publisher: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", &rig.scenario.brokers).create().expect("producer");
    let (partition, offset) = publisher
        .send(FutureRecord::to(&rig.scenario.topic).key("poison").payload(&poison), Duration::from_secs(10))
        .await
        .map(|delivered| (delivered.partition, delivered.offset))
        .expect("poison published");
    rig.ledger.lock().unwrap().poison(&poison, "undecodable_value");
    let stalled = r#"orderstream_consumer_unavailable_total{dependency="dead_letter_topic"}"#;
    let said =
        poll_until(Duration::from_secs(30), || async { consumer.metric(stalled).is_some_and(|count| count > 0.0) })
            .await;
    rig.check(said, "the consumer never said the dead-letter topic cannot be written");
    // While stalled, it never stores an offset past the poison record.
    let stalled_at = Instant::now();
    while stalled_at.elapsed() < Duration::from_secs(5) {
        let stored = rig.scenario.stored_offsets(&rig.scenario.group).await;
        let past = stored.get(&partition).is_some_and(|&next| next > offset);
        rig.check(!past, format!("stored offset of partition {partition} moved past the poison record {offset}"));
        if past {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    set_topic_config(&rig.scenario.brokers, &rig.scenario.dlq_topic, "max.message.bytes", "1048588").await;
    let fault_ended = Instant::now();
    load.await.expect("load");
    rig.finish(fault_ended, vec![producer, consumer]).await
}

async fn table_hash(rig: &Rig) -> Option<String> {
    let client = rig.scenario.try_db().await?;
    let row =
        client.query_one("SELECT md5(string_agg(o::text, E'\\n' ORDER BY o.id)) FROM orders o", &[]).await.ok()?;
    row.get(0)
}

/// Commits offset 0 of every partition for `group`, as
/// `kafka-consumer-groups.sh --reset-offsets --to-earliest` does (the group
/// must have no active member).
fn reset_group_to_earliest(brokers: &str, group: &str, topic: &str) -> Result<(), rdkafka::error::KafkaError> {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut earliest = rdkafka::TopicPartitionList::new();
    for partition in 0..harness::PARTITIONS {
        earliest.add_partition_offset(topic, partition, rdkafka::Offset::Offset(0))?;
    }
    consumer.commit(&earliest, CommitMode::Sync)
}

async fn full_replay(name: &str, size: Size) -> Outcome {
    let mut rig = Rig::new(name, size).await;
    let (producer, consumer) = (rig.scenario.start_producer(), rig.scenario.start_consumer());
    let mut writer = rig.writer("load", 15, 0);
    writer.write_lines(size.lines as usize).unwrap();
    let (_, differences, _) = rig.converge().await;
    rig.check(differences.is_empty(), format!("before the replay: {}", differences.describe()));
    let before = table_hash(&rig).await;
    let status = consumer.terminate();
    rig.check(status.success(), format!("the consumer stopped with {status}"));
    // Reset the group to the earliest offsets, in both places it keeps
    // them: Kafka (where a restarted member starts reading) and PostgreSQL
    // (what the batch transactions check against).
    let kafka_reset = reset_group_to_earliest(&rig.scenario.brokers, &rig.scenario.group, &rig.scenario.topic);
    rig.check(kafka_reset.is_ok(), format!("resetting the group's Kafka offsets failed: {kafka_reset:?}"));
    let client = rig.scenario.db().await;
    let reset = client
        .execute(
            "UPDATE consumer_offsets SET next_offset = 0 WHERE group_id = $1 AND topic = $2",
            &[&rig.scenario.group, &rig.scenario.topic],
        )
        .await
        .expect("reset offsets");
    rig.check(reset > 0, "no stored offsets to reset");
    // After the reset is committed: the monitor drops what it read before.
    rig.offsets_reset();
    let consumer = rig.scenario.start_consumer();
    let replayed = poll_until(rig.size.converge_within, || async {
        rig.scenario.stored_offsets(&rig.scenario.group).await == rig.scenario.high_watermarks()
    })
    .await;
    rig.check(replayed, "the replay never caught up");
    let after = table_hash(&rig).await;
    rig.check(before.is_some() && before == after, format!("table hash {before:?} before the replay, {after:?} after"));
    let fault_ended = Instant::now();
    rig.finish(fault_ended, vec![producer, consumer]).await
}

/// A file name of 240 characters that compress badly: its records are about
/// 230 bytes larger than the load's (`load-0001.csv`).
fn long_file_name() -> String {
    let mut rng = fastrand::Rng::with_seed(22);
    let name: String = (0..240).map(|_| rng.alphanumeric().to_ascii_lowercase()).collect();
    format!("{name}.csv")
}

/// Under the load, the orders topic's `max.message.bytes` is lowered to
/// between the load's records and one order from a file with a long name
/// (the producer sends one record per batch, as the broker checks batches):
/// Kafka refuses that order for good. The producer must dead-letter it
/// (`refused_by_kafka`) and go on; before, it exited and stalled every file.
async fn record_kafka_refuses(name: &str, size: Size) -> Outcome {
    let mut rig = Rig::new(name, size).await;
    let one_per_batch = ("ORDERSTREAM_KAFKA_OPTIONS", "batch.num.messages=1");
    let (mut producer, consumer) = (rig.scenario.start_producer_with(&[one_per_batch]), rig.scenario.start_consumer());
    let load = rig.spawn_load(rig.writer("load", 22, 0));
    rig.wait_rows(quarter(size)).await;
    let mut orders = harness::TopicReader::new(&rig.scenario.brokers, &rig.scenario.topic);
    orders.wait_for(200, Duration::from_secs(30));
    let largest = orders.records.iter().map(harness::TopicRecord::batch_bytes).max().unwrap_or(0);
    let limit = (largest + 110).to_string();
    harness::topic::set_topic_config(&rig.scenario.brokers, &rig.scenario.topic, "max.message.bytes", &limit).await;

    let mut refused_writer = rig.writer("unused", 220, 70_000_000).bad_every(0);
    let (_, line, _) = refused_writer.order_line();
    append(&rig.scenario.inbox().join(long_file_name()), &[HEADER, line.as_bytes()].concat());
    let refused = line.trim_end().as_bytes().to_vec();
    rig.ledger.lock().unwrap().rejected(&refused, "refused_by_kafka");
    let mut dead = harness::TopicReader::new(&rig.scenario.brokers, &rig.scenario.dlq_topic);
    let dead_lettered = poll_until(Duration::from_secs(60), || {
        let found = {
            dead.wait_for(dead.records.len() + 1, Duration::from_millis(200));
            dead.records.iter().any(|record| record.payload == refused)
        };
        async move { found }
    })
    .await;
    rig.check(dead_lettered, "the order Kafka refused was never dead-lettered");
    let exited = tokio::task::block_in_place(|| producer.wait_exit(Duration::from_secs(2)));
    rig.check(exited.is_none(), format!("the producer stopped on the refused order: {exited:?}"));
    harness::topic::set_topic_config(&rig.scenario.brokers, &rig.scenario.topic, "max.message.bytes", "1048588").await;
    let fault_ended = Instant::now();
    load.await.expect("load");
    rig.finish(fault_ended, vec![producer, consumer]).await
}

/// Records with a NUL byte where PostgreSQL refuses one (`text`, `jsonb`),
/// published straight to the orders topic under the steady load: none may
/// stop a consumer. Each kind goes on every partition, so every member of
/// the group meets one. Orders are recorded as expected rows (stored with
/// the NUL escaped), undecodable values as the consumer's dead letters.
fn nul_records(ledger: &mut Ledger, id_base: i64) -> Vec<harness::OutgoingRecord> {
    let mut records = Vec::new();
    for partition in 0..harness::PARTITIONS {
        let id = id_base + i64::from(partition) * 10;
        let expect = |ledger: &mut Ledger, id: i64| {
            let completed_at = chrono::DateTime::parse_from_rfc3339("2022-07-01T10:00:00Z").unwrap().into();
            let row = crate::ledger::ExpectedRow {
                user_id: 1,
                completed_at,
                item_total: rust_decimal::Decimal::new(100, 2),
                shipment_total: rust_decimal::Decimal::new(25, 1),
            };
            ledger.valid(id, row);
        };
        let mut nul_in_header = harness::order_record(id, 1, "1.00", Some(1));
        nul_in_header.headers[0].1 = "nul\0.csv".into();
        expect(ledger, id);
        let mut nul_in_key = harness::order_record(id + 1, 1, "1.00", Some(1));
        nul_in_key.key = Some(format!("{}\0", id + 1));
        expect(ledger, id + 1);
        // Two ids, so the dead-letter topic holds two distinct records.
        let undecodable = |id: i64| {
            format!(
                r#"{{"schema_version":1,"id":{id},"user_id":1,"completed_at":"2022-07-01T10:00:00Z","item_total":"1.00","shipment_total":"2.5","flags":["zero\u0000"]}}"#
            )
            .into_bytes()
        };
        let (nul_in_value, nul_everywhere_value) = (undecodable(id + 2), undecodable(id + 3));
        ledger.poison(&nul_in_value, "undecodable_value");
        ledger.poison(&nul_everywhere_value, "undecodable_value");
        let nul_everywhere = harness::OutgoingRecord {
            key: Some("\0".into()),
            payload: nul_everywhere_value,
            headers: vec![("source_file".into(), "nul\0.csv".into()), ("line".into(), "1\0".into())],
            partition: None,
        };
        let nul_in_value =
            harness::OutgoingRecord { key: None, payload: nul_in_value, headers: vec![], partition: None };
        for mut record in [nul_in_header, nul_in_key, nul_in_value, nul_everywhere] {
            record.partition = Some(partition);
            records.push(record);
        }
    }
    records
}

async fn nul_bytes(name: &str, size: Size) -> Outcome {
    let mut rig = Rig::new(name, size).await;
    let producer = rig.scenario.start_producer();
    let mut consumers = [rig.scenario.start_consumer(), rig.scenario.start_consumer()];
    let load = rig.spawn_load(rig.writer("load", 20, 0));
    rig.wait_rows(quarter(size)).await;
    let poison = nul_records(&mut rig.ledger.lock().unwrap(), 90_000_000);
    rig.scenario.produce(&poison).await;
    let fault_ended = Instant::now();
    load.await.expect("load");
    let (_, differences, _) = rig.converge().await;
    rig.check(differences.is_empty(), format!("after the poison: {}", differences.describe()));
    for consumer in &mut consumers {
        let exited = tokio::task::block_in_place(|| consumer.wait_exit(Duration::ZERO));
        rig.check(exited.is_none(), format!("a consumer exited ({exited:?}) on a record with a NUL byte"));
        let skipped = consumer.metric("orderstream_consumer_skipped_records_total");
        rig.check(skipped == Some(0.0), format!("records skipped instead of dead-lettered: {skipped:?}"));
    }
    let [first, second] = consumers;
    rig.finish(fault_ended, vec![producer, first, second]).await
}
