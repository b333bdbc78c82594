//! The producer's main loop: discover files, read complete records, publish
//! them, and advance each file's delivered position as Kafka confirms.
//!
//! Confirmations are awaited in the order records were sent (one ordered
//! queue), so a file's recorded position only ever covers records that Kafka
//! confirmed, together with every record before them. An order Kafka refuses
//! for good is dead-lettered from within its own place in that queue, so the
//! order of positions holds for it too.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::FutureExt;
use schema::message::{check_epoch, clock_epoch};
use telemetry::Readiness;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::archive::ArchiveFolder;
use crate::config::Config;
use crate::delivery::{Answer, InFlight};
use crate::epoch_floor::EpochFloorReader;
use crate::error::ProducerError;
use crate::events::{
    FileTruncated, HeaderUnusable, NewColumnsSeen, OrderRefusedByKafka, PositionsSavedAgain, PositionsUnsaveable,
    ProducerStarted, ProducerStopped,
};
use crate::followed::{log_progress, Sent};
use crate::identity::{FileIdentity, FileKey};
use crate::inbox::{Bookkeeping, Inbox};
use crate::metrics::ProducerMetrics;
use crate::positions::{DeliveredPosition, PositionStore, TrackedFile};
use crate::publisher::{settle, Delivered, DeliveryError, Enqueued, Publisher, RecordSource};
use crate::status::{FileSnapshot, Snapshot, StatusBoard, UnreadableFile};
use crate::tailer::{HeaderNotice, Poll, RecordOutcome, TailedRecord};
use crate::watch::InboxWatcher;

/// How many records one file may contribute before the next file gets a turn,
/// so a large file does not starve the others.
const RECORDS_PER_TURN: usize = 2_000;

/// How long a clean shutdown waits for Kafka to confirm what is in flight.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(30);

/// How long reading the highest epoch on the topics may take at start.
const EPOCH_FLOOR_TIMEOUT: Duration = Duration::from_secs(30);

/// A record sent and not yet confirmed: what settling and confirming it
/// need, kept in its [`InFlight`] slot.
struct Waiting {
    key: FileKey,
    epoch: u64,
    sent: Sent,
    read_at: Instant,
    source: RecordSource,
    record: TailedRecord,
}

/// A record's confirmation (or refusal) from Kafka.
struct Confirmation {
    key: FileKey,
    epoch: u64,
    end: DeliveredPosition,
    sent: Sent,
    read_at: Instant,
    result: Result<Delivered, DeliveryError>,
}

/// Kafka's answer to a record, settled (see [`settle`]): a refusal may
/// still dead-letter it in its place.
async fn settled(publisher: &Publisher, (waiting, answer): (Waiting, Answer)) -> Confirmation {
    let result = match answer {
        Ok(()) => Ok(Delivered::AsSent),
        // Boxed: the refusal path (a dead letter sent and awaited) holds far
        // more state than a confirmation.
        refused => Box::pin(settle(publisher, &waiting.source, &waiting.record, refused)).await,
    };
    let Waiting { key, epoch, sent, read_at, record, .. } = waiting;
    Confirmation { key, epoch, end: record.end, sent, read_at, result }
}

/// Runs the producer until `shutdown` resolves, then waits for in-flight
/// records to be confirmed and saves the positions. Serves its metrics and
/// health on `config.observability.metrics_addr` meanwhile.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ProducerError> {
    refuse_a_clock_past_the_last_epoch(Utc::now())?;
    std::fs::read_dir(&config.inbox).map_err(|source| ProducerError::Inbox { path: config.inbox.clone(), source })?;
    let archive = config.archive_dir.as_deref().map(|path| ArchiveFolder::open(path, config.archive_after.is_some()));
    let archive = archive.transpose()?;
    let metrics = ProducerMetrics::new();
    let readiness = Readiness::new("creating topics");
    let status = StatusBoard::new();
    let bound = telemetry::serve_with_status(
        config.observability.metrics_addr,
        metrics.registry.clone(),
        readiness.clone(),
        status.report(),
    )
    .await?;
    if let Some(path) = &config.observability.ready_file {
        telemetry::write_ready_file(path, bound)
            .map_err(|source| ProducerError::ReadyFile { path: path.clone(), source })?;
    }
    let (publisher, answers) = Publisher::new(&config.kafka, config.max_in_flight)?;
    publisher.ensure_topics(config.partitions).await?;
    publisher.check_record_limit(config.max_record_bytes).await?;
    readiness.ready();
    let mut store = PositionStore::open(&config.state_dir)?;
    let epoch_floor = Arc::new(EpochFloorReader::new(&config.kafka).map_err(ProducerError::EpochFloor)?);
    raise_epoch_floor(&config, &epoch_floor, &mut store).await?;
    store.next_epoch(Utc::now()).map_err(ProducerError::NoEpochLeft)?;
    let wake = Arc::new(Notify::new());
    let watcher = InboxWatcher::start(&config.inbox, wake.clone());
    let idle = if watcher.is_some() { config.rescan_interval() } else { config.poll_interval() };
    let inbox = Inbox::new(&config, archive, epoch_floor);
    let mut producer = Producer {
        config,
        inbox,
        publisher,
        metrics,
        store,
        in_flight: InFlight::new(answers),
        positions_failing: false,
        readiness,
        status,
    };
    ProducerStarted {
        inbox: &producer.config.inbox,
        pattern: &producer.config.pattern,
        topic: &producer.config.kafka.topic.name,
        notifications: watcher.is_some(),
    }
    .emit();
    tokio::pin!(shutdown);
    let mut last_flush = Instant::now();
    producer.with_inbox(Inbox::find_files_that_left_the_inbox)?;
    let stopped = loop {
        producer.with_inbox(Inbox::discover);
        producer.look_for_rewrites();
        if let Some(refused) = producer.inbox.take_epochs_exhausted() {
            break Some(ProducerError::NoEpochLeft(refused));
        }
        let sent = if producer.positions_failing {
            0
        } else {
            match producer.read_and_send().await {
                Ok(sent) => sent,
                Err(error) => break Some(error),
            }
        };
        producer.with_inbox(Inbox::archive_finished);
        producer.with_inbox(Inbox::release_finished);
        if last_flush.elapsed() >= producer.config.position_flush_interval() {
            producer.flush_positions();
            last_flush = Instant::now();
        }
        if sent == 0 {
            let wait = if producer.store.is_dirty() { producer.config.position_flush_interval() } else { idle };
            tokio::select! {
                () = &mut shutdown => break None,
                Some(answered) = producer.in_flight.next(), if !producer.in_flight.is_empty() => {
                    let confirmation = settled(&producer.publisher, answered).await;
                    if let Err(error) = producer.confirm(confirmation) {
                        break Some(error);
                    }
                }
                () = wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        } else if (&mut shutdown).now_or_never().is_some() {
            break None;
        }
    };
    if let Some(error) = stopped {
        // What Kafka confirmed before the failure is not sent again.
        producer.flush_positions();
        return Err(error);
    }
    info!(
        message = "Shutting down; waiting for Kafka to confirm in-flight records.",
        in_flight = producer.in_flight.len()
    );
    let drained = tokio::time::timeout(SHUTDOWN_DRAIN, producer.drain()).await;
    producer.flush_positions();
    ProducerStopped.emit(&producer.metrics);
    match drained {
        Ok(result) => result,
        Err(_) => {
            warn!(
                message = "Records still unconfirmed at shutdown; they will be sent again on restart.",
                in_flight = producer.in_flight.len()
            );
            Ok(())
        }
    }
}

/// Refuses to start when the wall clock's epoch is past the largest: every
/// new file would need a version that wraps.
fn refuse_a_clock_past_the_last_epoch(now: chrono::DateTime<Utc>) -> Result<(), ProducerError> {
    check_epoch(clock_epoch(now)).map_err(|source| ProducerError::ClockPastLastEpoch { now, source })?;
    Ok(())
}

/// Makes every epoch the store gives from now on larger than the highest one
/// already on the topics (see [`crate::epoch_floor`]).
async fn raise_epoch_floor(
    config: &Config,
    epoch_floor: &Arc<EpochFloorReader>,
    store: &mut PositionStore,
) -> Result<(), ProducerError> {
    let topics = [config.kafka.topic.name.clone(), config.kafka.dlq_topic.name.clone()];
    let reader = epoch_floor.clone();
    let highest = tokio::task::spawn_blocking(move || {
        let topics = topics.each_ref().map(String::as_str);
        reader.highest_epoch_on_topics(&topics, EPOCH_FLOOR_TIMEOUT)
    })
    .await
    .expect("the epoch floor reader does not panic")
    .map_err(ProducerError::EpochFloor)?;
    if let Some(epoch) = highest {
        store.raise_floor(epoch);
    }
    Ok(())
}

/// The loop's state: the inbox's files, the records in flight to Kafka and
/// their positions.
struct Producer {
    config: Config,
    /// The files followed from the inbox, and how they are found, archived
    /// and released.
    inbox: Inbox,
    publisher: Publisher,
    metrics: ProducerMetrics,
    store: PositionStore,
    /// Records sent, waiting for Kafka's answer in send order.
    in_flight: InFlight<Waiting>,
    /// Set while the positions cannot be saved: reading stops, so that no
    /// more is sent than a restart could account for.
    positions_failing: bool,
    /// What `/readyz` says.
    readiness: Readiness,
    /// What `/status` says.
    status: StatusBoard,
}

impl Producer {
    /// Runs one of the inbox's steps, lending it the positions, metrics and
    /// `/status` it updates.
    fn with_inbox<T>(&mut self, step: impl FnOnce(&mut Inbox, &mut Bookkeeping<'_>) -> T) -> T {
        let mut books = Bookkeeping { store: &mut self.store, metrics: &self.metrics, status: &self.status };
        step(&mut self.inbox, &mut books)
    }

    /// Reads what the files have and sends it, up to the in-flight limit.
    /// Returns how many records were read.
    async fn read_and_send(&mut self) -> Result<usize, ProducerError> {
        let mut read = 0;
        let keys: Vec<FileKey> = self.inbox.followed.keys().copied().collect();
        for key in keys {
            let room = self.config.max_in_flight.saturating_sub(self.in_flight.len()).min(RECORDS_PER_TURN);
            if room == 0 {
                break;
            }
            let Some(followed) = self.inbox.followed.get_mut(&key) else { continue };
            let now = Utc::now();
            let records = match followed.tailer.next_records(room, now) {
                Ok(Poll::Records(records)) => records,
                Ok(Poll::Truncated) => {
                    self.restart_truncated(key);
                    continue;
                }
                Err(error) => {
                    warn!(message = "Cannot read file; will retry.", file = %followed.tailer.path().display(), %error);
                    self.status.last_error.set(&format!("cannot read {}: {error}", followed.tailer.path().display()));
                    continue;
                }
            };
            for notice in followed.tailer.take_header_notices() {
                let file = followed.tailer.path();
                match notice {
                    HeaderNotice::Unusable(error) => HeaderUnusable { file, error: &error }.emit(&self.metrics),
                    HeaderNotice::NewColumns { line, columns } => {
                        NewColumnsSeen { file, line, columns: &columns }.emit(&self.metrics)
                    }
                }
            }
            read += records.len();
            self.metrics.records_read.inc_by(records.len() as u64);
            let source = RecordSource {
                file: followed.tailer.path().to_string_lossy().into(),
                fingerprint: followed.tailer.identity().fingerprint().into(),
                read_at_ms: now.timestamp_millis(),
            };
            let epoch = followed.tailer.epoch();
            for record in records {
                self.send(key, epoch, &source, record).await?;
            }
        }
        while let Some(answered) = self.in_flight.ready() {
            let confirmation = settled(&self.publisher, answered).await;
            self.confirm(confirmation)?;
        }
        self.metrics.in_flight.set(self.in_flight.len() as i64);
        Ok(read)
    }

    /// Enqueues one record and queues its confirmation behind the others.
    async fn send(
        &mut self,
        key: FileKey,
        epoch: u64,
        source: &RecordSource,
        record: TailedRecord,
    ) -> Result<(), ProducerError> {
        let read_at = Instant::now();
        if let Some(followed) = self.inbox.followed.get_mut(&key) {
            followed.unconfirmed += 1;
        }
        let sent = match &record.outcome {
            RecordOutcome::Order(_, flags, _) => Sent::Order(flags.clone()),
            RecordOutcome::Rejected(rejection) => Sent::DeadLetter(rejection.kind),
            RecordOutcome::Header => Sent::Header,
        };
        let answer = loop {
            match self.publisher.enqueue(self.in_flight.next_ticket(), source, &record) {
                Enqueued::Sent => break None,
                Enqueued::Refused(error) => break Some(Err(error)),
                Enqueued::Nothing => break Some(Ok(())),
                Enqueued::QueueFull => {
                    if let Some(answered) = self.in_flight.next().await {
                        let confirmation = settled(&self.publisher, answered).await;
                        self.confirm(confirmation)?;
                    }
                }
            }
        };
        let waiting = Waiting { key, epoch, sent, read_at, source: source.clone(), record };
        self.in_flight.push(waiting, answer);
        Ok(())
    }

    /// Looks at every followed file, whether reading is paused or not, and
    /// starts over a file whose bytes already read are no longer its own
    /// (truncated, or truncated and refilled: copytruncate).
    fn look_for_rewrites(&mut self) {
        let rewritten: Vec<FileKey> = self
            .inbox
            .followed
            .iter_mut()
            // An unreadable file is not a rewritten one: reading it reports the error.
            .filter_map(|(key, followed)| {
                (!followed.tailer.still_holds_what_was_read().unwrap_or(true)).then_some(*key)
            })
            .collect();
        for key in rewritten {
            self.restart_truncated(key);
        }
    }

    /// A followed file became shorter than what was read, or its bytes
    /// changed: counts it and follows it from its first byte as a new source.
    fn restart_truncated(&mut self, key: FileKey) {
        let Some(followed) = self.inbox.followed.get_mut(&key) else { return };
        let path = followed.tailer.path().to_path_buf();
        FileTruncated { file: &path }.emit(&self.metrics);
        let identity = match FileIdentity::of(followed.tailer.file()) {
            Ok(identity) => identity,
            Err(error) => {
                warn!(message = "Cannot read truncated file; will retry.", file = %path.display(), %error);
                return;
            }
        };
        self.with_inbox(Inbox::refresh_epoch_floor);
        let Some(epoch) = self.with_inbox(Inbox::new_epoch) else { return };
        let Some(followed) = self.inbox.followed.get_mut(&key) else { return };
        let tracked = TrackedFile { path, identity, epoch, delivered: DeliveredPosition::default() };
        followed.tailer.restart(&tracked);
        self.store.track(tracked);
    }

    /// Saves the positions; while that fails (a full disk), reading stops and
    /// the failure is logged once, until a save succeeds again.
    fn flush_positions(&mut self) {
        // A last line without its newline is not unread: it waits for the
        // file to be finished, and is counted apart so no stall alert fires.
        let mut unterminated = 0;
        let unread: Vec<(String, i64)> = self
            .inbox
            .followed
            .values()
            .filter_map(|followed| {
                let waiting = followed.tailer.unterminated_bytes();
                unterminated += waiting;
                let behind = followed.tailer.bytes_behind().ok()?.saturating_sub(waiting);
                Some((followed.tailer.path().to_string_lossy().into_owned(), behind as i64))
            })
            .collect();
        self.metrics.unread_bytes.set(unread.iter().map(|(_, behind)| behind).sum());
        self.metrics.unterminated_bytes.set(unterminated as i64);
        self.metrics.bytes_behind.update(&unread.into_iter().collect());
        self.publish_status();
        if self.store.is_dirty() {
            // Chaos suite: a crash after Kafka confirmed records, before their positions are saved.
            fail::fail_point!("producer-before-position-save", |_| std::process::abort());
        }
        match self.store.persist() {
            Ok(()) if self.positions_failing => {
                PositionsSavedAgain.emit(&self.metrics);
                self.positions_failing = false;
                self.readiness.ready();
            }
            Ok(()) => {}
            Err(failure) => {
                PositionsUnsaveable { error: &failure, already_failing: self.positions_failing }.emit(&self.metrics);
                self.status
                    .last_error
                    .set(&format!("cannot save positions: {}", clients::postgres::describe(&failure)));
                if !self.positions_failing {
                    self.readiness.not_ready("cannot save positions");
                }
                self.positions_failing = true;
            }
        }
    }

    /// Records a confirmed position; a refusal that [`settle`] could not
    /// resolve stops the producer before the position passes the record.
    fn confirm(&mut self, confirmation: Confirmation) -> Result<(), ProducerError> {
        let delivered = match confirmation.result {
            Ok(delivered) => delivered,
            Err(error) => {
                self.metrics.delivery_errors.inc();
                let described = clients::postgres::describe(&error);
                self.readiness.not_ready(&format!("stopping: {described}"));
                self.status.last_error.set(&described);
                return Err(error.into());
            }
        };
        if let Some(followed) = self.inbox.followed.get_mut(&confirmation.key) {
            followed.unconfirmed = followed.unconfirmed.saturating_sub(1);
            followed.stretch.count(&confirmation.sent, &delivered);
        }
        match (&confirmation.sent, delivered) {
            (_, Delivered::DeadLetteredInstead { file, offset, refusal }) => {
                self.status.last_error.set(&format!("Kafka refused the order from {file} at byte {offset}: {refusal}"));
                OrderRefusedByKafka { file: &file, offset, refusal: &refusal }.emit(&self.metrics);
            }
            (Sent::Order(flags), Delivered::AsSent) => {
                self.metrics.records_published.inc();
                for flag in flags {
                    self.metrics.flagged.with_label_values(&[flag.as_str()]).inc();
                }
                self.metrics.publish_latency.observe(confirmation.read_at.elapsed().as_secs_f64());
            }
            (Sent::DeadLetter(kind), Delivered::AsSent) => {
                self.metrics.dead_lettered.with_label_values(&[kind.as_str()]).inc()
            }
            (Sent::Header, Delivered::AsSent) => {}
        }
        self.store.record(confirmation.key, confirmation.epoch, confirmation.end);
        Ok(())
    }

    /// Publishes what `/status` shows, and logs each file's progress: every
    /// [`PROGRESS_LOG_EVERY`] while it is behind, once when it caught up.
    fn publish_status(&mut self) {
        let mut files = Vec::with_capacity(self.inbox.followed.len());
        for (key, followed) in &mut self.inbox.followed {
            let delivered = self.store.get(*key).map(|tracked| tracked.delivered).unwrap_or_default();
            let snapshot = FileSnapshot {
                path: followed.tailer.path().to_path_buf(),
                delivered_bytes: delivered.offset,
                delivered_lines: delivered.lines,
                read_bytes: followed.tailer.position(),
                partial_bytes: followed.tailer.partial_bytes(),
                unterminated_bytes: followed.tailer.unterminated_bytes(),
                unconfirmed: followed.unconfirmed,
            };
            if let Ok(metadata) = followed.tailer.file().metadata() {
                log_progress(&mut followed.stretch, &snapshot, metadata.len());
            }
            files.push(snapshot);
        }
        let unreadable = self
            .inbox
            .unreadable()
            .iter()
            .map(|(path, error)| UnreadableFile { path: path.clone(), error: error.clone() });
        self.status.publish(Snapshot {
            files,
            unreadable: unreadable.collect(),
            in_flight: self.in_flight.len(),
            close_inactive: self.config.close_inactive,
        });
    }

    async fn drain(&mut self) -> Result<(), ProducerError> {
        while let Some(answered) = self.in_flight.next().await {
            let confirmation = settled(&self.publisher, answered).await;
            self.confirm(confirmation)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_past_2062_is_refused_at_start() {
        let at = |text: &str| text.parse::<chrono::DateTime<Utc>>().unwrap();
        assert!(refuse_a_clock_past_the_last_epoch(at("2026-12-07T00:00:00Z")).is_ok());
        let refused = refuse_a_clock_past_the_last_epoch(at("2063-01-01T00:00:00Z")).unwrap_err();
        assert!(matches!(refused, ProducerError::ClockPastLastEpoch { .. }), "{refused}");
        assert!(refused.to_string().contains("past the last file epoch"), "{refused}");
    }
}
