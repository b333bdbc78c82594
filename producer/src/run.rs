//! The producer's main loop: discover files, read complete records, publish
//! them, and advance each file's delivered position as Kafka confirms.
//!
//! Confirmations are awaited in the order records were sent (one ordered
//! queue), so a file's recorded position only ever covers records that Kafka
//! confirmed, together with every record before them.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{FuturesOrdered, StreamExt};
use rdkafka::error::KafkaError;
use thiserror::Error;
use tracing::{info, warn};

use crate::config::Config;
use crate::positions::{DeliveredPosition, PositionStore, PositionStoreError};
use crate::publisher::{Enqueued, PublishError, Publisher};
use crate::tailer::{FileTailer, StartPoint};

/// How many records one file may contribute before the next file gets a turn,
/// so a large file does not starve the others.
const RECORDS_PER_TURN: usize = 2_000;

/// How long a clean shutdown waits for Kafka to confirm what is in flight.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(30);

/// Why the producer stopped.
#[derive(Debug, Error)]
pub enum ProducerError {
    /// Kafka refused a record or a topic.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// Kafka refused a record for good; its file's position stays before it,
    /// so a restart sends it again.
    #[error("Kafka refused the record from {file} ending at byte {offset}: {source}")]
    Delivery {
        /// Source file.
        file: String,
        /// End of the refused record.
        offset: u64,
        /// Kafka's answer.
        source: KafkaError,
    },
    /// The positions could not be read or saved.
    #[error(transparent)]
    Positions(#[from] PositionStoreError),
    /// The inbox folder cannot be listed.
    #[error("cannot list the inbox {path}: {source}")]
    Inbox {
        /// The inbox.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A record's confirmation (or refusal) from Kafka.
struct Confirmation {
    file: Arc<Path>,
    end: DeliveredPosition,
    result: Result<(), KafkaError>,
}

/// Runs the producer until `shutdown` resolves, then waits for in-flight
/// records to be confirmed and saves the positions.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ProducerError> {
    let publisher = Publisher::new(&config.kafka, config.max_in_flight)?;
    publisher.ensure_topics(config.partitions).await?;
    let mut store = PositionStore::open(&config.state_dir)?;
    let mut producer = Producer { config, publisher, tailers: BTreeMap::new(), in_flight: FuturesOrdered::new() };
    info!(message = "Producer started.", inbox = %producer.config.inbox.display(),
          topic = %producer.config.kafka.topic);
    tokio::pin!(shutdown);
    let mut last_flush = Instant::now();
    loop {
        producer.discover(&mut store)?;
        let sent = producer.read_and_send(&mut store).await?;
        if last_flush.elapsed() >= producer.config.position_flush_interval() {
            store.persist()?;
            last_flush = Instant::now();
        }
        if sent == 0 {
            tokio::select! {
                () = &mut shutdown => break,
                Some(confirmation) = producer.in_flight.next(), if !producer.in_flight.is_empty() => {
                    producer.confirm(confirmation, &mut store)?;
                }
                () = tokio::time::sleep(producer.config.poll_interval()) => {}
            }
        } else if (&mut shutdown).now_or_never().is_some() {
            break;
        }
    }
    info!(
        message = "Shutting down; waiting for Kafka to confirm in-flight records.",
        in_flight = producer.in_flight.len()
    );
    let drained = tokio::time::timeout(SHUTDOWN_DRAIN, producer.drain(&mut store)).await;
    store.persist()?;
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

struct Producer {
    config: Config,
    publisher: Publisher,
    tailers: BTreeMap<Arc<Path>, FileTailer>,
    in_flight: FuturesOrdered<BoxFuture<'static, Confirmation>>,
}

impl Producer {
    /// Starts following new `*.csv` files and releases vanished ones.
    fn discover(&mut self, store: &mut PositionStore) -> Result<(), ProducerError> {
        let inbox = &self.config.inbox;
        let listing =
            std::fs::read_dir(inbox).map_err(|source| ProducerError::Inbox { path: inbox.clone(), source })?;
        let present: Vec<PathBuf> = listing
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "csv") && path.is_file())
            .collect();
        self.tailers.retain(|path, _| {
            let keep = present.iter().any(|p| p.as_path() == path.as_ref());
            if !keep {
                info!(message = "File gone; released.", file = %path.display());
                store.forget(path);
            }
            keep
        });
        for path in present {
            if self.tailers.contains_key(path.as_path()) {
                continue;
            }
            match FileTailer::open(&path, store.get(&path)) {
                Ok((tailer, start)) => {
                    log_start(&path, start);
                    self.tailers.insert(Arc::from(path.as_path()), tailer);
                }
                Err(error) => {
                    warn!(message = "Cannot open file; will retry.", file = %path.display(), %error)
                }
            }
        }
        Ok(())
    }

    /// Reads what the files have and sends it, up to the in-flight limit.
    /// Returns how many records were read.
    async fn read_and_send(&mut self, store: &mut PositionStore) -> Result<usize, ProducerError> {
        let mut read = 0;
        let paths: Vec<Arc<Path>> = self.tailers.keys().cloned().collect();
        for path in paths {
            let room = self.config.max_in_flight.saturating_sub(self.in_flight.len()).min(RECORDS_PER_TURN);
            if room == 0 {
                break;
            }
            let Some(tailer) = self.tailers.get_mut(&path) else {
                continue;
            };
            let now = Utc::now();
            let records = match tailer.next_records(room, now) {
                Ok(records) => records,
                Err(error) => {
                    warn!(message = "Cannot read file; will retry.", file = %path.display(), %error);
                    continue;
                }
            };
            read += records.len();
            let file = path.to_string_lossy().into_owned();
            for record in records {
                loop {
                    match self.publisher.enqueue(&file, &record, now.timestamp_millis())? {
                        Enqueued::Sent(delivery) => {
                            let (file, end) = (path.clone(), record.end);
                            self.in_flight.push_back(
                                async move {
                                    let result = match delivery.await {
                                        Ok(Ok(_)) => Ok(()),
                                        Ok(Err((error, _))) => Err(error),
                                        Err(_canceled) => Err(KafkaError::Canceled),
                                    };
                                    Confirmation { file, end, result }
                                }
                                .boxed(),
                            );
                        }
                        Enqueued::Nothing => {
                            let confirmation = Confirmation { file: path.clone(), end: record.end, result: Ok(()) };
                            self.in_flight.push_back(futures::future::ready(confirmation).boxed());
                        }
                        Enqueued::QueueFull => {
                            if let Some(confirmation) = self.in_flight.next().await {
                                self.confirm(confirmation, store)?;
                            }
                            continue;
                        }
                    }
                    break;
                }
            }
        }
        while let Some(Some(confirmation)) = self.in_flight.next().now_or_never() {
            self.confirm(confirmation, store)?;
        }
        Ok(read)
    }

    /// Records a confirmed position; a refusal stops the producer before the
    /// position passes the refused record.
    fn confirm(&mut self, confirmation: Confirmation, store: &mut PositionStore) -> Result<(), ProducerError> {
        if let Err(source) = confirmation.result {
            return Err(ProducerError::Delivery {
                file: confirmation.file.display().to_string(),
                offset: confirmation.end.offset,
                source,
            });
        }
        if self.tailers.contains_key(&confirmation.file) {
            store.record(&confirmation.file, confirmation.end);
        }
        Ok(())
    }

    async fn drain(&mut self, store: &mut PositionStore) -> Result<(), ProducerError> {
        while let Some(confirmation) = self.in_flight.next().await {
            self.confirm(confirmation, store)?;
        }
        Ok(())
    }
}

fn log_start(path: &Path, start: StartPoint) {
    let file = path.display();
    match start {
        StartPoint::NewFile => info!(message = "Following new file.", %file),
        StartPoint::Resumed => info!(message = "Resuming file at its delivered position.", %file),
        StartPoint::Replaced => {
            warn!(message = "File replaced since last run; reading it from the start.", %file)
        }
        StartPoint::Truncated => {
            warn!(message = "File shorter than its delivered position; reading it from the start.", %file)
        }
    }
}
