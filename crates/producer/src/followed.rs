//! A followed file: its tailer, whether it is still in the inbox, how many
//! of its records Kafka has yet to confirm, and the stretch of delivery the
//! log reports on.
//!
//! Shared by the inbox, which starts, moves and releases followed files, and
//! the loop, which reads them and counts their confirmations.

use std::time::{Duration, Instant};

use schema::{Flag, RejectionKind};
use tracing::info;

use crate::publisher::Delivered;
use crate::status::{progress, FileSnapshot};
use crate::tailer::FileTailer;

/// How often a file that is behind has its progress logged.
const PROGRESS_LOG_EVERY: Duration = Duration::from_secs(10);

/// What a confirmed record was, for counting.
pub enum Sent {
    /// An order, with the flags its checks raised.
    Order(Vec<Flag>),
    /// A rejected line, sent to the dead-letter topic.
    DeadLetter(RejectionKind),
    /// A header line: counted in its file's position, published nowhere.
    Header,
}

/// A followed file.
pub struct Followed {
    /// Reads the file and knows its name, identity and epoch.
    pub tailer: FileTailer,
    /// Set once the file is no longer in the inbox (renamed away, archived
    /// or deleted): it is still followed, and released only once every
    /// record read from it is confirmed and it has not changed for
    /// `--close-inactive`.
    pub detached_since: Option<Instant>,
    /// Records read from the file whose confirmation Kafka has not given yet.
    pub unconfirmed: usize,
    /// What was delivered since the file was last caught up, for the log.
    pub stretch: Stretch,
}

/// The delivery of a file from when it fell behind to when it caught up
/// again (its whole content, for a new file): logged while it lasts and once
/// at its end.
pub struct Stretch {
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
    /// A file just opened; `detached` for one found outside the inbox.
    pub fn new(tailer: FileTailer, detached: bool) -> Followed {
        Followed { tailer, detached_since: detached.then(Instant::now), unconfirmed: 0, stretch: Stretch::new() }
    }

    /// Whether every byte of the file was read and every record read from it
    /// confirmed: nothing of it is at risk any more.
    pub fn fully_delivered(&self) -> bool {
        self.unconfirmed == 0 && self.tailer.bytes_behind().is_ok_and(|behind| behind == 0)
    }

    /// How long since the file last changed, by its modification time and
    /// by a monotonic clock (see [`FileTailer::unchanged_for`]).
    pub fn idle_for(&self) -> Duration {
        self.tailer.unchanged_for()
    }
}

impl Stretch {
    /// Counts one confirmed record.
    pub fn count(&mut self, sent: &Sent, delivered: &Delivered) {
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
pub fn log_progress(stretch: &mut Stretch, file: &FileSnapshot, size: u64) {
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

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;
    use crate::identity::FileIdentity;
    use crate::positions::{DeliveredPosition, TrackedFile};
    use crate::tailer::TailerSettings;

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
}
