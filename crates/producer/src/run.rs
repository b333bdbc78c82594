//! The producer's main loop: discover files, read complete records, publish
//! them, and advance each file's delivered position as Kafka confirms.
//!
//! Confirmations are awaited in the order records were sent (one ordered
//! queue), so a file's recorded position only ever covers records that Kafka
//! confirmed, together with every record before them. An order Kafka refuses
//! for good is dead-lettered from within its own place in that queue, so the
//! order of positions holds for it too.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::future::Future;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{FuturesOrdered, StreamExt};
use globset::GlobMatcher;
use rdkafka::error::KafkaError;
use schema::message::{check_epoch, clock_epoch, EpochOutOfRange};
use schema::{Flag, RejectionKind};
use telemetry::Readiness;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::archive::{copy_of, ArchiveFolder, Moved};
use crate::config::Config;
use crate::epoch_floor::EpochFloorReader;
use crate::error::ProducerError;
use crate::events::{
    FileArchived, FileFollowed, FileMissing, FileRenamed, FileTruncated, FileUnreadable, HeaderUnusable,
    NewColumnsSeen, OrderRefusedByKafka, PositionsSavedAgain, PositionsUnsaveable, ProducerStarted, ProducerStopped,
};
use crate::identity::{FileIdentity, FileKey};
use crate::metrics::ProducerMetrics;
use crate::positions::{DeliveredPosition, PositionStore, TrackedFile};
use crate::publisher::{settle, Delivered, DeliveryError, Enqueued, Publisher, RecordSource};
use crate::status::{progress, FileSnapshot, Snapshot, StatusBoard, UnreadableFile};
use crate::tailer::{
    start_point, FileTailer, HeaderNotice, Poll, RecordOutcome, StartPoint, TailedRecord, TailerSettings,
};
use crate::watch::InboxWatcher;

/// How many records one file may contribute before the next file gets a turn,
/// so a large file does not starve the others.
const RECORDS_PER_TURN: usize = 2_000;

/// How often a file that is behind has its progress logged.
const PROGRESS_LOG_EVERY: Duration = Duration::from_secs(10);

/// How long a clean shutdown waits for Kafka to confirm what is in flight.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(30);

/// How long reading the highest epoch on the topics may take at start.
const EPOCH_FLOOR_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the same read may take before new files get their epochs; past
/// it (Kafka away) they get them from the counter and the clock alone.
const EPOCH_REFRESH_TIMEOUT: Duration = Duration::from_secs(2);

/// What a confirmed record was, for counting.
enum Sent {
    Order(Vec<Flag>),
    DeadLetter(RejectionKind),
    Header,
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

/// Kafka's answer to one record, as the delivery future gets it.
enum Pending {
    /// Enqueued; the future resolves with Kafka's answer.
    Sent(rdkafka::producer::DeliveryFuture),
    /// Refused by librdkafka before it was sent.
    Refused(KafkaError),
}

/// A followed file.
struct Followed {
    tailer: FileTailer,
    /// Set once the file is no longer in the inbox (renamed away, archived
    /// or deleted): it is still followed, and released only once every
    /// record read from it is confirmed and it has not changed for
    /// `--close-inactive`.
    detached_since: Option<Instant>,
    /// Records read from the file whose confirmation Kafka has not given yet.
    unconfirmed: usize,
    /// What was delivered since the file was last caught up, for the log.
    stretch: Stretch,
}

/// The delivery of a file from when it fell behind to when it caught up
/// again (its whole content, for a new file): logged while it lasts and once
/// at its end.
struct Stretch {
    started: Instant,
    last_logged: Instant,
    /// Caught up, and the end was logged.
    finished: bool,
    records: u64,
    published: u64,
    dead_lettered: u64,
    flagged: u64,
}

impl Stretch {
    fn new() -> Stretch {
        let now = Instant::now();
        Stretch {
            started: now,
            last_logged: now,
            finished: false,
            records: 0,
            published: 0,
            dead_lettered: 0,
            flagged: 0,
        }
    }
}

impl Followed {
    fn new(tailer: FileTailer, detached: bool) -> Followed {
        Followed { tailer, detached_since: detached.then(Instant::now), unconfirmed: 0, stretch: Stretch::new() }
    }

    /// Whether every byte of the file was read and every record read from it
    /// confirmed: nothing of it is at risk any more.
    fn fully_delivered(&self) -> bool {
        self.unconfirmed == 0 && self.tailer.bytes_behind().is_ok_and(|behind| behind == 0)
    }

    /// How long since the file last changed, by its modification time and
    /// by a monotonic clock (see [`FileTailer::unchanged_for`]).
    fn idle_for(&self) -> Duration {
        self.tailer.unchanged_for()
    }
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
    let publisher = Publisher::new(&config.kafka, config.max_in_flight)?;
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
    let mut producer = Producer {
        settings: config.tailer_settings(),
        matcher: config.matcher(),
        config,
        archive,
        publisher,
        metrics,
        store,
        epoch_floor,
        followed: BTreeMap::new(),
        in_flight: FuturesOrdered::new(),
        unreadable: BTreeMap::new(),
        unarchivable: BTreeSet::new(),
        epochs_exhausted: None,
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
    producer.find_files_that_left_the_inbox()?;
    let stopped = loop {
        producer.discover();
        producer.look_for_rewrites();
        if let Some(refused) = producer.epochs_exhausted.take() {
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
        producer.archive_finished();
        producer.release_finished();
        if last_flush.elapsed() >= producer.config.position_flush_interval() {
            producer.flush_positions();
            last_flush = Instant::now();
        }
        if sent == 0 {
            let wait = if producer.store.is_dirty() { producer.config.position_flush_interval() } else { idle };
            tokio::select! {
                () = &mut shutdown => break None,
                Some(confirmation) = producer.in_flight.next(), if !producer.in_flight.is_empty() => {
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

struct Producer {
    config: Config,
    /// `--archive-dir`, checked at start.
    archive: Option<ArchiveFolder>,
    settings: TailerSettings,
    matcher: GlobMatcher,
    publisher: Publisher,
    metrics: ProducerMetrics,
    store: PositionStore,
    /// Reads the highest epoch on the topics before new files get theirs.
    epoch_floor: Arc<EpochFloorReader>,
    followed: BTreeMap<FileKey, Followed>,
    in_flight: FuturesOrdered<BoxFuture<'static, Confirmation>>,
    /// Inbox files that cannot be opened, with why: reported once each,
    /// retried on every scan, named in `/status` and counted
    /// (`orderstream_producer_unreadable_files`) until they can be opened
    /// or leave the inbox.
    unreadable: BTreeMap<PathBuf, String>,
    /// Paths already reported as impossible to archive, likewise.
    unarchivable: BTreeSet<PathBuf>,
    /// Set when a file needed a new epoch and none was left (the clock
    /// passed 2062 while running, or the topics' floor reached the
    /// largest): the loop stops with [`ProducerError::NoEpochLeft`].
    epochs_exhausted: Option<EpochOutOfRange>,
    /// Set while the positions cannot be saved: reading stops, so that no
    /// more is sent than a restart could account for.
    positions_failing: bool,
    /// What `/readyz` says.
    readiness: Readiness,
    /// What `/status` says.
    status: StatusBoard,
}

impl Producer {
    /// Starts following new matching files, notes renames, and detaches
    /// files that no longer match.
    fn discover(&mut self) {
        let listing = match std::fs::read_dir(&self.config.inbox) {
            Ok(listing) => listing,
            Err(error) => {
                warn!(message = "Cannot list the inbox; will retry.", inbox = %self.config.inbox.display(), %error);
                self.status.last_error.set(&format!("cannot list the inbox {}: {error}", self.config.inbox.display()));
                return;
            }
        };
        let mut present = BTreeSet::new();
        let files = files_oldest_first(listing, &self.matcher);
        let files = one_name_per_file(files, |key| self.followed.get(&key).map(|followed| followed.tailer.path()));
        let new_files = files.iter().any(|(path, metadata)| {
            !self.followed.contains_key(&(metadata.dev(), metadata.ino())) && !self.unreadable.contains_key(path)
        });
        if new_files {
            self.refresh_epoch_floor();
        }
        let listed: BTreeSet<PathBuf> = files.iter().map(|(path, _)| path.clone()).collect();
        self.unreadable.retain(|path, _| listed.contains(path));
        for (path, metadata) in files {
            let key = (metadata.dev(), metadata.ino());
            present.insert(key);
            match self.followed.get_mut(&key) {
                Some(followed) if followed.tailer.path() != path => {
                    FileRenamed { from: followed.tailer.path(), to: &path }.emit(&self.metrics);
                    followed.tailer.set_path(&path);
                    followed.detached_since = None;
                    self.store.moved(key, &path);
                }
                Some(_) => {}
                None => self.follow(&path, false),
            }
        }
        for (key, followed) in &mut self.followed {
            if !present.contains(key) && followed.detached_since.is_none() {
                info!(message = "File left the inbox; following it until it is delivered and inactive.",
                      file = %followed.tailer.path().display(),
                      close_inactive = ?self.config.close_inactive);
                followed.detached_since = Some(Instant::now());
            }
        }
        self.metrics.files_tracked.set(self.followed.len() as i64);
        self.metrics.unreadable_files.set(self.unreadable.len() as i64);
    }

    /// At start: files whose delivery was recorded but that are no longer in
    /// the inbox (moved to the archive, renamed away, or deleted while the
    /// producer was down). Those found in `--archive-dir`, by device and
    /// inode or, moved from another filesystem, by name and content, are
    /// followed there until delivered; the others are reported and
    /// forgotten, since nothing of them can be read any more. An archive
    /// that cannot be listed stops the start: it would forget them all.
    fn find_files_that_left_the_inbox(&mut self) -> Result<(), ProducerError> {
        let in_inbox: BTreeSet<FileKey> = match std::fs::read_dir(&self.config.inbox) {
            Ok(listing) => files_oldest_first(listing, &self.matcher)
                .iter()
                .map(|(_, metadata)| (metadata.dev(), metadata.ino()))
                .collect(),
            Err(_) => return Ok(()),
        };
        let archived = match &self.archive {
            Some(archive) => archive.files()?,
            None => Vec::new(),
        };
        let gone: Vec<TrackedFile> =
            self.store.files().filter(|file| !in_inbox.contains(&file.identity.key())).cloned().collect();
        let by_key: BTreeMap<FileKey, &PathBuf> =
            archived.iter().map(|(path, metadata)| ((metadata.dev(), metadata.ino()), path)).collect();
        let (same_inode, moved_away): (Vec<TrackedFile>, Vec<TrackedFile>) =
            gone.into_iter().partition(|tracked| by_key.contains_key(&tracked.identity.key()));
        for tracked in &same_inode {
            let path = by_key[&tracked.identity.key()];
            info!(message = "Tracked file found in the archive; finishing its delivery there.",
                  file = %path.display(), was = %tracked.path.display());
            self.follow(path, true);
        }
        // Copies are looked for among files no tracked file owns by inode.
        let owned: BTreeSet<FileKey> = self.store.files().map(|tracked| tracked.identity.key()).collect();
        let mut unowned: Vec<_> =
            archived.into_iter().filter(|(_, metadata)| !owned.contains(&(metadata.dev(), metadata.ino()))).collect();
        for tracked in moved_away {
            self.follow_copy_or_forget(&tracked, &mut unowned);
        }
        Ok(())
    }

    /// A tracked file whose device and inode are nowhere: follows its copy
    /// in the archive (a move from another filesystem), found by name and
    /// content, from the delivered position; or reports and forgets it.
    fn follow_copy_or_forget(&mut self, tracked: &TrackedFile, unowned: &mut Vec<(PathBuf, std::fs::Metadata)>) {
        match copy_of(tracked, unowned) {
            Ok(Some((path, file, copy))) => {
                info!(message = "Tracked file found copied into the archive; finishing its delivery there.",
                      file = %path.display(), was = %tracked.path.display(),
                      delivered_bytes = tracked.delivered.offset);
                unowned.retain(|(candidate, _)| *candidate != path);
                self.store.forget(tracked.identity.key());
                self.follow_resumed(&path, file, copy, true);
            }
            Ok(None) => {
                FileMissing { file: &tracked.path, delivered_bytes: tracked.delivered.offset }.emit(&self.metrics);
                self.store.forget(tracked.identity.key());
            }
            Err(error) => {
                // Kept, not forgotten: the next start looks again.
                warn!(message = "Cannot read the archive to find a tracked file; keeping its position.",
                      file = %tracked.path.display(), %error);
            }
        }
    }

    /// Raises the epoch floor to the highest epoch on the topics now, before
    /// new files get theirs: another producer writing to the same topics may
    /// have started a file since (see [`crate::epoch_floor`]). Once per scan
    /// that finds new files, not per file.
    fn refresh_epoch_floor(&mut self) {
        let topics = [self.config.kafka.topic.name.as_str(), self.config.kafka.dlq_topic.name.as_str()];
        let highest =
            tokio::task::block_in_place(|| self.epoch_floor.highest_epoch_on_topics(&topics, EPOCH_REFRESH_TIMEOUT));
        match highest {
            Ok(Some(epoch)) => self.store.raise_floor(epoch),
            Ok(None) => {}
            Err(error) => {
                self.metrics.epoch_floor_errors.inc();
                self.status.last_error.set(&format!("cannot read the highest epoch on the topics: {error}"));
                warn!(message = "Cannot read the highest epoch on the topics; new files are versioned by this producer's counter and clock.", %error);
            }
        }
    }

    /// Opens a newly found file and decides where reading starts; `detached`
    /// for a file found outside the inbox (in the archive).
    fn follow(&mut self, path: &Path, detached: bool) {
        let opened = File::open(path).and_then(|file| {
            let identity = FileIdentity::of(&file)?;
            let start = start_point(&file, self.store.get(identity.key()))?;
            Ok((file, identity, start))
        });
        let (file, identity, start) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                if self.unreadable.insert(path.to_path_buf(), error.to_string()).is_none() {
                    FileUnreadable { file: path, error: &error }.emit();
                    self.status.last_error.set(&format!("cannot open {}: {error}", path.display()));
                }
                return;
            }
        };
        self.unreadable.remove(path);
        let tracked = match (start, self.store.get(identity.key())) {
            (StartPoint::Resumed, Some(known)) => TrackedFile { path: path.to_path_buf(), ..known.clone() },
            _ => {
                let Some(epoch) = self.new_epoch() else { return };
                TrackedFile { path: path.to_path_buf(), identity, epoch, delivered: DeliveredPosition::default() }
            }
        };
        FileFollowed { file: path, start }.emit(&self.metrics);
        self.start_tailing(path, file, tracked, detached);
    }

    /// Follows a file from the position `tracked` holds, already checked
    /// against its bytes (a copy found in the archive).
    fn follow_resumed(&mut self, path: &Path, file: File, tracked: TrackedFile, detached: bool) {
        FileFollowed { file: path, start: StartPoint::Resumed }.emit(&self.metrics);
        self.start_tailing(path, file, tracked, detached);
    }

    /// Starts tailing an open file and tracks it under its identity.
    fn start_tailing(&mut self, path: &Path, file: File, tracked: TrackedFile, detached: bool) {
        let key = tracked.identity.key();
        match FileTailer::new(path, file, &tracked, self.settings.clone()) {
            Ok(tailer) => {
                self.store.track(tracked);
                self.followed.insert(key, Followed::new(tailer, detached));
            }
            Err(error) => warn!(message = "Cannot resume file; will retry.", file = %path.display(), %error),
        }
    }

    /// A new file epoch, or `None` when none is left: then the loop stops
    /// (see [`Producer::epochs_exhausted`]) rather than version the file by
    /// wrapping below every record already stored.
    fn new_epoch(&mut self) -> Option<u64> {
        match self.store.allocate_epoch(Utc::now()) {
            Ok(epoch) => Some(epoch),
            Err(refused) => {
                self.epochs_exhausted = Some(refused);
                None
            }
        }
    }

    /// Reads what the files have and sends it, up to the in-flight limit.
    /// Returns how many records were read.
    async fn read_and_send(&mut self) -> Result<usize, ProducerError> {
        let mut read = 0;
        let keys: Vec<FileKey> = self.followed.keys().copied().collect();
        for key in keys {
            let room = self.config.max_in_flight.saturating_sub(self.in_flight.len()).min(RECORDS_PER_TURN);
            if room == 0 {
                break;
            }
            let Some(followed) = self.followed.get_mut(&key) else { continue };
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
        while let Some(Some(confirmation)) = self.in_flight.next().now_or_never() {
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
        if let Some(followed) = self.followed.get_mut(&key) {
            followed.unconfirmed += 1;
        }
        let sent = match &record.outcome {
            RecordOutcome::Order(_, flags, _) => Sent::Order(flags.clone()),
            RecordOutcome::Rejected(rejection) => Sent::DeadLetter(rejection.kind),
            RecordOutcome::Header => Sent::Header,
        };
        let end = record.end;
        let pending = loop {
            match self.publisher.enqueue(source, &record) {
                Enqueued::Sent(delivery) => break Pending::Sent(delivery),
                Enqueued::Refused(error) => break Pending::Refused(error),
                Enqueued::Nothing => {
                    let confirmation = Confirmation { key, epoch, end, sent, read_at, result: Ok(Delivered::AsSent) };
                    self.in_flight.push_back(futures::future::ready(confirmation).boxed());
                    return Ok(());
                }
                Enqueued::QueueFull => {
                    if let Some(confirmation) = self.in_flight.next().await {
                        self.confirm(confirmation)?;
                    }
                }
            }
        };
        let (publisher, source) = (self.publisher.clone(), source.clone());
        self.in_flight.push_back(
            async move {
                let answer = match pending {
                    Pending::Sent(delivery) => match delivery.await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err((error, _))) => Err(error),
                        Err(_canceled) => Err(KafkaError::Canceled),
                    },
                    Pending::Refused(error) => Err(error),
                };
                let result = match answer {
                    Ok(()) => Ok(Delivered::AsSent),
                    // Boxed: the refusal path (a dead letter sent and awaited)
                    // holds far more state than a confirmation, and every
                    // record in flight would otherwise be sized for it.
                    refused => Box::pin(settle(&publisher, &source, &record, refused)).await,
                };
                Confirmation { key, epoch, end, sent, read_at, result }
            }
            .boxed(),
        );
        Ok(())
    }

    /// Looks at every followed file, whether reading is paused or not, and
    /// starts over a file whose bytes already read are no longer its own
    /// (truncated, or truncated and refilled: copytruncate).
    fn look_for_rewrites(&mut self) {
        let rewritten: Vec<FileKey> = self
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
        let Some(followed) = self.followed.get_mut(&key) else { return };
        let path = followed.tailer.path().to_path_buf();
        FileTruncated { file: &path }.emit(&self.metrics);
        let identity = match FileIdentity::of(followed.tailer.file()) {
            Ok(identity) => identity,
            Err(error) => {
                warn!(message = "Cannot read truncated file; will retry.", file = %path.display(), %error);
                return;
            }
        };
        self.refresh_epoch_floor();
        let Some(epoch) = self.new_epoch() else { return };
        let Some(followed) = self.followed.get_mut(&key) else { return };
        let tracked = TrackedFile { path, identity, epoch, delivered: DeliveredPosition::default() };
        followed.tailer.restart(&tracked);
        self.store.track(tracked);
    }

    /// `--archive-after`: moves inbox files that are fully delivered and
    /// have not changed for that long into `--archive-dir` (see
    /// [`ArchiveFolder::move_in`]). The file stays followed (detached) through
    /// its open handle until `--close-inactive` releases it; after a copy to
    /// another filesystem its saved position names the copy, which a restart
    /// finds by name and content.
    fn archive_finished(&mut self) {
        let Some(after) = self.config.archive_after else { return };
        let due = |followed: &Followed| {
            followed.detached_since.is_none() && followed.fully_delivered() && followed.idle_for() >= after
        };
        // A file leaves the inbox only once its delivered position is on
        // disk: else a crash after a copy would leave an untracked inbox
        // file, read again as new, beside its archived copy.
        if !self.followed.values().any(due) || (self.store.is_dirty() && self.store.persist().is_err()) {
            return;
        }
        let Some(archive) = &self.archive else { return };
        for (key, followed) in &mut self.followed {
            if !due(followed) {
                continue;
            }
            let from = followed.tailer.path().to_path_buf();
            match archive.move_in(&from) {
                Ok(Moved::Renamed(to) | Moved::Copied(to)) => {
                    FileArchived { from: &from, to: &to }.emit(&self.metrics);
                    followed.tailer.set_path(&to);
                    followed.detached_since = Some(Instant::now());
                    self.store.moved(*key, &to);
                    self.unarchivable.remove(&from);
                }
                Err(error) => {
                    if self.unarchivable.insert(from.clone()) {
                        warn!(message = "Cannot archive file; leaving it in the inbox.", file = %from.display(), %error);
                    }
                }
            }
        }
    }

    /// Releases files that left the inbox once nothing of them is at risk:
    /// every record read from them is confirmed, they were read to their end,
    /// and they have not changed for `--close-inactive`.
    fn release_finished(&mut self) {
        let close_inactive = self.config.close_inactive;
        let finished: Vec<FileKey> = self
            .followed
            .iter()
            .filter(|(_, followed)| {
                followed.detached_since.is_some() && followed.fully_delivered() && followed.idle_for() >= close_inactive
            })
            .map(|(key, _)| *key)
            .collect();
        for key in finished {
            let followed = self.followed.remove(&key).expect("listed above");
            info!(message = "File released.", file = %followed.tailer.path().display());
            self.store.forget(key);
        }
        self.metrics.files_tracked.set(self.followed.len() as i64);
    }

    /// Saves the positions; while that fails (a full disk), reading stops and
    /// the failure is logged once, until a save succeeds again.
    fn flush_positions(&mut self) {
        // A last line without its newline is not unread: it waits for the
        // file to be finished, and is counted apart so no stall alert fires.
        let mut unterminated = 0;
        let unread: Vec<(String, i64)> = self
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
                    .set(&format!("cannot save positions: {}", connect::postgres::describe(&failure)));
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
                let described = connect::postgres::describe(&error);
                self.readiness.not_ready(&format!("stopping: {described}"));
                self.status.last_error.set(&described);
                return Err(error.into());
            }
        };
        if let Some(followed) = self.followed.get_mut(&confirmation.key) {
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
        let mut files = Vec::with_capacity(self.followed.len());
        for (key, followed) in &mut self.followed {
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
        let unreadable =
            self.unreadable.iter().map(|(path, error)| UnreadableFile { path: path.clone(), error: error.clone() });
        self.status.publish(Snapshot {
            files,
            unreadable: unreadable.collect(),
            in_flight: self.in_flight.len(),
            close_inactive: self.config.close_inactive,
        });
    }

    async fn drain(&mut self) -> Result<(), ProducerError> {
        while let Some(confirmation) = self.in_flight.next().await {
            self.confirm(confirmation)?;
        }
        Ok(())
    }
}

impl Stretch {
    /// Counts one confirmed record.
    fn count(&mut self, sent: &Sent, delivered: &Delivered) {
        self.records += 1;
        match (sent, delivered) {
            (_, Delivered::DeadLetteredInstead { .. }) | (Sent::DeadLetter(_), _) => self.dead_lettered += 1,
            (Sent::Order(flags), Delivered::AsSent) => {
                self.published += 1;
                self.flagged += u64::from(!flags.is_empty());
            }
            (Sent::Header, Delivered::AsSent) => {}
        }
    }
}

/// Logs a file's progress while it is behind (every [`PROGRESS_LOG_EVERY`])
/// and one line when it is caught up: read to its end and every record
/// confirmed. A file that grows again starts a new stretch.
fn log_progress(stretch: &mut Stretch, file: &FileSnapshot, size: u64) {
    let (percent, caught_up) = progress(file, size);
    let path = file.path.display();
    match (caught_up, stretch.finished) {
        (true, false) => {
            stretch.finished = true;
            if stretch.records > 0 {
                info!(message = "File delivered.", file = %path, lines = file.delivered_lines,
                      published = stretch.published, dead_lettered = stretch.dead_lettered,
                      flagged = stretch.flagged, seconds = format!("{:.1}", stretch.started.elapsed().as_secs_f64()));
            }
        }
        (false, true) => *stretch = Stretch::new(),
        (false, false) if stretch.last_logged.elapsed() >= PROGRESS_LOG_EVERY => {
            stretch.last_logged = Instant::now();
            info!(message = "File progress.", file = %path, delivered_bytes = file.delivered_bytes,
                  size, percent = format!("{percent:.1}"), in_flight = file.unconfirmed);
        }
        _ => {}
    }
}

/// The matching regular files of an inbox listing, oldest modification
/// first (then by name). Files found in the same scan get their epoch
/// numbers in this order, so of two versions of an order in files that
/// appeared together (after a restart, say), the one in the file written
/// last wins, never the one the directory happened to list last.
fn files_oldest_first(listing: std::fs::ReadDir, matcher: &GlobMatcher) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut files: Vec<(PathBuf, std::fs::Metadata)> = regular_files(listing, |name| matcher.is_match(name)).collect();
    files.sort_by(|(a_path, a), (b_path, b)| (a.modified().ok(), a_path).cmp(&(b.modified().ok(), b_path)));
    files
}

/// The listing with one name per file: a file under several names in the
/// inbox (a hard link, a symbolic link to it) keeps the name it is followed
/// under if that is still listed, else its first name in listing order.
/// Taken whole, its names would be seen as renames back and forth on every
/// pass of the loop, each one saving the positions.
fn one_name_per_file<'a>(
    files: Vec<(PathBuf, std::fs::Metadata)>,
    followed_as: impl Fn(FileKey) -> Option<&'a Path>,
) -> Vec<(PathBuf, std::fs::Metadata)> {
    let key = |metadata: &std::fs::Metadata| (metadata.dev(), metadata.ino());
    let listed: BTreeSet<(FileKey, &Path)> =
        files.iter().map(|(path, metadata)| (key(metadata), path.as_path())).collect();
    let mut kept: BTreeSet<FileKey> = BTreeSet::new();
    let chosen: Vec<bool> = files
        .iter()
        .map(|(path, metadata)| {
            let file = key(metadata);
            let keeps_its_name = followed_as(file).is_some_and(|current| listed.contains(&(file, current)));
            let wanted = !keeps_its_name || followed_as(file) == Some(path.as_path());
            wanted && kept.insert(file)
        })
        .collect();
    files.into_iter().zip(chosen).filter_map(|(file, chosen)| chosen.then_some(file)).collect()
}

/// The regular files of a directory listing (symbolic links followed) whose
/// name `wanted` accepts, with their metadata; entries that vanish while
/// listed are left out.
fn regular_files(
    listing: std::fs::ReadDir,
    wanted: impl Fn(&std::ffi::OsStr) -> bool,
) -> impl Iterator<Item = (PathBuf, std::fs::Metadata)> {
    listing
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(move |path| path.file_name().is_some_and(&wanted))
        .filter_map(|path| std::fs::metadata(&path).ok().map(|metadata| (path, metadata)))
        .filter(|(_, metadata)| metadata.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_found_together_are_taken_oldest_first_whatever_their_names() {
        let inbox = tempfile::tempdir().unwrap();
        let at = |seconds| std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
        for (name, written) in [("a-newest.csv", 300), ("b-oldest.csv", 100), ("c-middle.csv", 200), ("skip.txt", 50)] {
            let file = File::create(inbox.path().join(name)).unwrap();
            file.set_modified(at(written)).unwrap();
        }
        let matcher = globset::Glob::new("*.csv").unwrap().compile_matcher();
        let names: Vec<String> = files_oldest_first(std::fs::read_dir(inbox.path()).unwrap(), &matcher)
            .into_iter()
            .map(|(path, _)| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["b-oldest.csv", "c-middle.csv", "a-newest.csv"]);
    }

    #[test]
    fn a_file_under_two_names_keeps_the_one_it_is_followed_under() {
        let inbox = tempfile::tempdir().unwrap();
        let (a, b) = (inbox.path().join("a.csv"), inbox.path().join("b.csv"));
        std::fs::write(&a, "id\n").unwrap();
        std::fs::hard_link(&a, &b).unwrap();
        std::os::unix::fs::symlink(&a, inbox.path().join("c.csv")).unwrap();
        std::fs::write(inbox.path().join("d.csv"), "id\n").unwrap();
        let matcher = globset::Glob::new("*.csv").unwrap().compile_matcher();
        let listing = || files_oldest_first(std::fs::read_dir(inbox.path()).unwrap(), &matcher);
        let names = |files: Vec<(PathBuf, std::fs::Metadata)>| -> Vec<String> {
            files.iter().map(|(path, _)| path.file_name().unwrap().to_string_lossy().into_owned()).collect()
        };
        let metadata = std::fs::metadata(&a).unwrap();
        let shared = (metadata.dev(), metadata.ino());
        let mut not_followed = names(one_name_per_file(listing(), |_| None));
        not_followed.sort();
        assert_eq!(not_followed.len(), 2, "one of a, b, c and d: {not_followed:?}");
        assert!(not_followed.contains(&"d.csv".to_string()));
        for current in [&b, &inbox.path().join("c.csv"), &a] {
            let kept = names(one_name_per_file(listing(), |key| (key == shared).then_some(current.as_path())));
            let expected = current.file_name().unwrap().to_string_lossy().into_owned();
            assert!(kept.contains(&expected) && kept.len() == 2, "followed as {expected}: kept {kept:?}");
        }
        let gone = inbox.path().join("gone.csv");
        let moved = names(one_name_per_file(listing(), |key| (key == shared).then_some(gone.as_path())));
        assert_eq!(moved.len(), 2, "a name no longer listed gives way to one that is: {moved:?}");
    }

    #[test]
    fn a_forward_clock_step_does_not_make_a_file_being_written_look_idle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rotated.csv");
        std::fs::write(&path, "id,user_id,completed_at,item_total,shipment_total\n").unwrap();
        // Written a moment ago, but the wall clock has since jumped a year
        // ahead: by modification time alone the file looks a year idle.
        let year_ago = std::time::SystemTime::now() - Duration::from_secs(365 * 24 * 3600);
        File::options().write(true).open(&path).unwrap().set_modified(year_ago).unwrap();
        let file = File::open(&path).unwrap();
        let identity = FileIdentity::of(&file).unwrap();
        let tracked = TrackedFile { path: path.clone(), identity, epoch: 1, delivered: DeliveredPosition::default() };
        let settings = TailerSettings {
            max_record_bytes: 1024,
            header_rules: schema::HeaderRules::default(),
            flag_rules: schema::FlagRules::default(),
            final_line_after: Duration::from_secs(300),
        };
        let followed = Followed::new(FileTailer::new(&path, file, &tracked, settings).unwrap(), true);
        assert!(followed.idle_for() < Duration::from_secs(60), "idle for {:?}", followed.idle_for());
    }

    #[test]
    fn a_clock_past_2062_is_refused_at_start() {
        let at = |text: &str| text.parse::<chrono::DateTime<Utc>>().unwrap();
        assert!(refuse_a_clock_past_the_last_epoch(at("2026-12-07T00:00:00Z")).is_ok());
        let refused = refuse_a_clock_past_the_last_epoch(at("2063-01-01T00:00:00Z")).unwrap_err();
        assert!(matches!(refused, ProducerError::ClockPastLastEpoch { .. }), "{refused}");
        assert!(refused.to_string().contains("past the last file epoch"), "{refused}");
    }
}
