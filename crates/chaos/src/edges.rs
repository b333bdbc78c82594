//! Scenarios at the edges of the producer's promise: a lost state
//! folder, files that leave the inbox before they are delivered, a file
//! truncated and refilled while reading waits, and a line too long to hold.
//! Each failed on the code before the fix it checks.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::kafka::PrivateKafka;
use harness::{poll_until, Process};

use crate::load::{LoadWriter, HEADER};
use crate::rig::{append, quarter, Outcome, Rig, Size};

/// Producer memory that must never be exceeded, whatever the input.
const PRODUCER_MEMORY_LIMIT: u64 = 64 * 1024 * 1024;

/// Exports are processed and moved out of the inbox, the state folder is
/// lost, then corrections arrive: from this producer, restarted without its
/// state, and from a second producer (another host, its own inbox and state)
/// writing to the same topics. Every correction must win.
pub async fn state_lost_then_corrections(name: &str, size: Size) -> Outcome {
    let mut rig = Rig::new(name, size).await;
    // The lost folder makes the producer read what is still in the inbox again.
    rig.expect_producer_resends();
    let (producer, consumer) = (rig.scenario.start_producer(), rig.scenario.start_consumer());
    let load = rig.spawn_load(rig.writer("load", 16, 0));
    let mut exports = rig.writer("export", 160, 70_000_000).bad_every(0);
    let per_file = (size.lines / 20) as usize;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.extend(exports.write_new_file(per_file).unwrap());
    }
    rig.wait_for_ids(&ids).await;

    let processed = rig.scenario.dir.path().join("processed");
    move_matching(&rig.scenario.inbox(), "export-", &processed);
    producer.kill_hard();
    std::fs::remove_dir_all(rig.scenario.state_dir()).unwrap();
    let producer = rig.scenario.start_producer();
    exports.write_versions(&ids[..ids.len() / 2]).unwrap();

    let (inbox, state) = (rig.scenario.dir.path().join("inbox-2"), rig.scenario.dir.path().join("state-2"));
    std::fs::create_dir_all(&inbox).unwrap();
    let second = rig.scenario.start_producer_with(&[
        ("ORDERSTREAM_INBOX", inbox.to_str().unwrap()),
        ("ORDERSTREAM_STATE_DIR", state.to_str().unwrap()),
    ]);
    let mut other_host = LoadWriter::new(&inbox, "host2", rig.ledger.clone(), 161, 0).bad_every(0);
    other_host.write_versions(&ids[ids.len() / 2..]).unwrap();

    let fault_ended = Instant::now();
    load.await.expect("load");
    rig.finish(fault_ended, vec![producer, second, consumer]).await
}

/// The shop's workflow moves an export into the archive folder while Kafka
/// is down, so lines read from it are not confirmed yet; then the producer
/// crashes. Restarted, it must find the file in the archive and deliver the
/// rest, and follow what is still appended to it there.
pub async fn archived_while_kafka_down(name: &str, size: Size) -> Outcome {
    let kafka = tokio::task::block_in_place(PrivateKafka::start);
    let mut rig = Rig::on_brokers(name, &kafka.brokers(), size).await;
    rig.expect_producer_resends();
    let archive = rig.scenario.dir.path().join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    let settings = [("ORDERSTREAM_ARCHIVE_DIR", archive.to_str().unwrap())];
    let (producer, consumer) = (rig.scenario.start_producer_with(&settings), rig.scenario.start_consumer());
    let load = rig.spawn_load(rig.writer("load", 17, 0));
    let mut export = rig.writer("export", 170, 70_000_000).bad_every(0).lines_per_file(usize::MAX);
    let part = quarter(size) / 2;
    export.write_lines(part).unwrap();
    let path = export.current_file().unwrap().to_path_buf();
    rig.wait_for_ids(&[70_000_001]).await;

    tokio::task::block_in_place(|| kafka.stop());
    export.write_lines(part).unwrap();
    std::fs::rename(&path, archive.join(path.file_name().unwrap())).unwrap();
    // The outage is the fault: long enough for the old two-second release.
    tokio::time::sleep(size.outage).await;
    producer.kill_hard();
    tokio::task::block_in_place(|| kafka.restart());
    let producer = rig.scenario.start_producer_with(&settings);
    // The writer still holds the file: its appends land in the archive.
    export.write_lines(part).unwrap();

    let fault_ended = Instant::now();
    load.await.expect("load");
    let outcome = rig.finish(fault_ended, vec![producer, consumer]).await;
    drop(kafka);
    outcome
}

/// A file is renamed out of the inbox while its writer keeps appending to
/// it for several seconds (log rotation with a writer that reopens late).
pub async fn late_appends_after_rename(name: &str, size: Size) -> Outcome {
    let mut rig = Rig::new(name, size).await;
    let (producer, consumer) = (rig.scenario.start_producer(), rig.scenario.start_consumer());
    let load = rig.spawn_load(rig.writer("load", 18, 0));
    let mut rotated = rig.writer("rotated", 180, 70_000_000).lines_per_file(usize::MAX);
    rotated.write_lines(1_000).unwrap();
    let path = rotated.current_file().unwrap().to_path_buf();
    rig.wait_for_ids(&[70_000_001]).await;
    std::fs::rename(&path, rig.scenario.dir.path().join("rotated.csv.1")).unwrap();
    // The writer goes on for 9 s after the rename: its pace is the fault.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        rotated.write_lines(200).unwrap();
    }
    let fault_ended = Instant::now();
    load.await.expect("load");
    rig.finish(fault_ended, vec![producer, consumer]).await
}

/// Reading waits (Kafka is down and the in-flight limit is reached) while a
/// file is copied, truncated and refilled past where reading stood
/// (copytruncate). The refilled file must be read from its first byte.
pub async fn truncated_and_regrown_while_paused(name: &str, size: Size) -> Outcome {
    let kafka = tokio::task::block_in_place(PrivateKafka::start);
    let mut rig = Rig::on_brokers(name, &kafka.brokers(), size).await;
    const IN_FLIGHT: usize = 100;
    let producer = rig.scenario.start_producer_with(&[("ORDERSTREAM_MAX_IN_FLIGHT", &IN_FLIGHT.to_string())]);
    let consumer = rig.scenario.start_consumer();
    let load = rig.spawn_load(rig.writer("load", 19, 0));
    let mut app = rig.writer("app", 190, 70_000_000).bad_every(0).lines_per_file(usize::MAX);
    let part = quarter(size) / 2;
    app.write_lines(part).unwrap();
    let path = app.current_file().unwrap().to_path_buf();
    rig.wait_for_ids(&[70_000_001]).await;

    tokio::task::block_in_place(|| kafka.stop());
    app.write_lines(part).unwrap();
    let paused = poll_until(Duration::from_secs(30), || async {
        producer.metric("orderstream_backlog_unacknowledged_records").is_some_and(|n| n >= IN_FLIGHT as f64)
    })
    .await;
    rig.check(paused, "the producer never reached its in-flight limit while Kafka was down");
    // copytruncate, the copy kept where the producer reads it too (so the
    // ledger stays exact), then more written than the file held before.
    std::fs::copy(&path, rig.scenario.inbox().join("app-copy.csv")).unwrap();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
    append(&path, HEADER);
    app.write_lines(part * 3).unwrap();
    tokio::task::block_in_place(|| kafka.restart());

    let fault_ended = Instant::now();
    load.await.expect("load");
    let outcome = rig.finish(fault_ended, vec![producer, consumer]).await;
    drop(kafka);
    outcome
}

/// A one-line file of 1 GB (80 MB in the fast run) lands in the inbox; once
/// it is dead-lettered the producer restarts. Its memory stays below 64 MiB
/// in both runs, and everything else keeps flowing.
pub async fn huge_line_then_restart(name: &str, size: Size) -> Outcome {
    let mut rig = Rig::new(name, size).await;
    let (producer, consumer) = (rig.scenario.start_producer(), rig.scenario.start_consumer());
    let load = rig.spawn_load(rig.writer("load", 21, 0));
    rig.wait_rows(quarter(size)).await;
    let prefix = write_one_line_file(&rig.scenario.dir.path().join("huge.tmp"), size.huge_line * 10);
    std::fs::rename(rig.scenario.dir.path().join("huge.tmp"), rig.scenario.inbox().join("huge.csv")).unwrap();
    rig.ledger.lock().unwrap().rejected(&prefix, "record_too_long");

    let selector = "orderstream_producer_dead_letters_total{reason=\"record_too_long\"}";
    let rejected =
        poll_until(Duration::from_secs(120), || async { producer.metric(selector).is_some_and(|n| n >= 1.0) }).await;
    rig.check(rejected, "the one-line file was never dead-lettered");
    check_memory(&mut rig, &producer, "before the restart");
    let status = producer.terminate();
    rig.check(status.success(), format!("the producer stopped with {status}"));
    let producer = rig.scenario.start_producer();
    // A file dropped after the restart is found in a later scan than the
    // huge one, whose resume check has then run: memory is read after it.
    let mut after = rig.writer("after", 210, 70_000_000).bad_every(0);
    let ids = after.write_new_file(1).unwrap();
    rig.wait_for_ids(&ids).await;
    check_memory(&mut rig, &producer, "after the restart");

    let fault_ended = Instant::now();
    load.await.expect("load");
    rig.finish(fault_ended, vec![producer, consumer]).await
}

fn check_memory(rig: &mut Rig, producer: &Process, when: &str) {
    match producer.peak_memory_bytes() {
        Some(peak) => rig.check(
            peak < PRODUCER_MEMORY_LIMIT,
            format!("producer peak memory {} MiB {when}, over 64 MiB", peak / (1024 * 1024)),
        ),
        None => rig.fail(format!("cannot read the producer's peak memory {when}")),
    }
}

/// Writes a file of one line of `bytes` bytes (and its line break); the
/// first KiB, which its dead letter carries.
fn write_one_line_file(path: &Path, bytes: usize) -> Vec<u8> {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let chunk: Vec<u8> = (0..1024 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let mut left = bytes;
    while left > 0 {
        let now = left.min(chunk.len());
        file.write_all(&chunk[..now]).unwrap();
        left -= now;
    }
    file.write_all(b"\n").unwrap();
    file.into_inner().unwrap().sync_all().unwrap();
    chunk[..1024].to_vec()
}

/// Moves the inbox files whose names start with `prefix` into `folder`.
fn move_matching(inbox: &Path, prefix: &str, folder: &Path) {
    std::fs::create_dir_all(folder).unwrap();
    let names: Vec<PathBuf> = std::fs::read_dir(inbox)
        .unwrap()
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with(prefix)))
        .collect();
    for path in names {
        std::fs::rename(&path, folder.join(path.file_name().unwrap())).unwrap();
    }
}
