//! How far each file has been delivered to Kafka, kept on disk.
//!
//! A position is recorded only after Kafka confirmed every record before it,
//! so a restart resumes there and loses nothing; at most the records that were
//! in flight at a crash are sent again, which the consumer makes harmless.
//!
//! Files are kept by identity (device and inode, see [`crate::identity`]), not
//! by path, so a renamed file keeps its position and a new file under an old
//! name does not inherit one.
//!
//! The store is one JSON file replaced atomically: written to a temporary
//! file, fsynced, renamed over the old one, and the folder fsynced, so that a
//! crash or power cut leaves either the old or the new positions, never a
//! mixture or an empty file. A failed write (a full disk) leaves the old file
//! in place.
//!
//! The file's format, and [`SavedPositions`] that reads it without writing
//! anything (for `orderstream-status` while the producer is down), are in
//! `contract::positions`: every reader links them from there.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use contract::positions::{key_name, with_key_name, PositionsFile, PositionsFileError, FILE_NAME};
pub use contract::positions::{DeliveredPosition, RecordCheck, SavedPositions, TrackedFile};
use schema::message::{check_epoch, clock_epoch, EpochOutOfRange};
use thiserror::Error;

use crate::identity::FileKey;

/// What went wrong with the position store.
#[derive(Debug, Error)]
pub enum PositionStoreError {
    /// The store exists but cannot be read, or is corrupt.
    #[error(transparent)]
    File(#[from] PositionsFileError),
    /// The store holds an epoch past the largest (written by a build that
    /// let versions wrap): its files' versions cannot be made.
    #[error("the position store {path} holds a file epoch past the largest; move it away to re-read every file")]
    EpochOutOfRange {
        /// The store's path.
        path: PathBuf,
        /// The epoch refused.
        source: EpochOutOfRange,
    },
    /// The new positions could not be saved (disk full, permissions, …).
    #[error("cannot save the position store {path}")]
    Write {
        /// The store's path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// The tracked files and their delivered positions.
#[derive(Debug)]
pub struct PositionStore {
    path: PathBuf,
    stored: PositionsFile,
    dirty: bool,
}

impl PositionStore {
    /// Opens the store in `state_dir`, creating the folder if needed; a
    /// missing store means nothing was delivered yet.
    pub fn open(state_dir: &Path) -> Result<Self, PositionStoreError> {
        let path = state_dir.join(FILE_NAME);
        fs::create_dir_all(state_dir).map_err(|source| PositionStoreError::Write { path: path.clone(), source })?;
        let stored = read_stored(&path)?;
        for file in stored.files.values() {
            check_epoch(file.epoch)
                .map_err(|source| PositionStoreError::EpochOutOfRange { path: path.clone(), source })?;
        }
        Ok(PositionStore { path, stored, dirty: false })
    }

    /// The tracked file with this key, if any.
    pub fn get(&self, key: FileKey) -> Option<&TrackedFile> {
        self.stored.files.get(&key_name(key))
    }

    /// A new file epoch: larger than every one given before, than `floor`
    /// and than none of the wall clock's (see
    /// `schema::message::source_version` for the rule). Refused once that
    /// is past the largest epoch (a clock past 2062, or a floor raised to
    /// the largest): giving it would make versions wrap.
    pub fn allocate_epoch(&mut self, now: chrono::DateTime<chrono::Utc>) -> Result<u64, EpochOutOfRange> {
        let epoch = self.next_epoch(now)?;
        self.stored.last_epoch = epoch;
        self.dirty = true;
        Ok(epoch)
    }

    /// The epoch [`Self::allocate_epoch`] would give now, without giving it:
    /// checked at start, so a producer that could not version a new file
    /// refuses to start instead of failing on the first one.
    pub fn next_epoch(&self, now: chrono::DateTime<chrono::Utc>) -> Result<u64, EpochOutOfRange> {
        check_epoch(self.stored.last_epoch.saturating_add(1).max(clock_epoch(now)))
    }

    /// Makes every epoch given from now on larger than `epoch`: the highest
    /// epoch found on the topics at start, which another producer, or this
    /// one before its state was lost, already used.
    pub fn raise_floor(&mut self, epoch: u64) {
        if epoch > self.stored.last_epoch {
            self.stored.last_epoch = epoch;
            self.dirty = true;
        }
    }

    /// Starts (or restarts) tracking a file, replacing what was kept under its key.
    pub fn track(&mut self, file: TrackedFile) {
        self.stored.files.insert(key_name(file.identity.key()), file);
        self.dirty = true;
    }

    /// Notes where a tracked file is now, after a rename.
    pub fn moved(&mut self, key: FileKey, path: &Path) {
        if let Some(file) = self.stored.files.get_mut(&key_name(key)) {
            if file.path != path {
                file.path = path.to_path_buf();
                self.dirty = true;
            }
        }
    }

    /// Records a newly confirmed position of the file's `epoch`; a
    /// confirmation from before a truncation (an older epoch) is ignored.
    pub fn record(&mut self, key: FileKey, epoch: u64, position: DeliveredPosition) {
        let files = &mut self.stored.files;
        if let Some(file) = with_key_name(key, move |name| files.get_mut(name)) {
            if file.epoch == epoch && file.delivered != position {
                file.delivered = position;
                self.dirty = true;
            }
        }
    }

    /// Forgets a released file, so the store does not grow forever.
    pub fn forget(&mut self, key: FileKey) {
        if self.stored.files.remove(&key_name(key)).is_some() {
            self.dirty = true;
        }
    }

    /// Every tracked file.
    pub fn files(&self) -> impl Iterator<Item = &TrackedFile> {
        self.stored.files.values()
    }

    /// Whether there are changes not yet on disk.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Writes the store to disk atomically and durably, if it changed.
    pub fn persist(&mut self) -> Result<(), PositionStoreError> {
        if !self.dirty {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&self.stored).expect("positions always serialise");
        write_atomically(&self.path, &bytes)
            .map_err(|source| PositionStoreError::Write { path: self.path.clone(), source })?;
        self.dirty = false;
        Ok(())
    }
}

/// Reads and upgrades the store at `path`; a missing store is an empty one.
fn read_stored(path: &Path) -> Result<PositionsFile, PositionStoreError> {
    Ok(PositionsFile::read(path)?.upgrade(schema::message::legacy_epoch))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let folder = path.parent().expect("the store lives in a folder");
    let temporary = path.with_extension("json.tmp");
    let written = File::create(&temporary).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(error) = written {
        // A half-written temporary file must not linger and fill the disk further.
        let _ = fs::remove_file(&temporary);
        return Err(error);
    }
    // Chaos suite: a crash with the new positions written but not yet in place.
    fail::fail_point!("producer-during-position-write", |_| std::process::abort());
    fs::rename(&temporary, path)?;
    File::open(folder)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::FileIdentity;

    fn tracked(inode: u64, epoch: u64, offset: u64) -> TrackedFile {
        TrackedFile {
            path: PathBuf::from(format!("/inbox/{inode}.csv")),
            identity: FileIdentity { device: 1, inode, head_len: 10, head_crc: 7 },
            epoch,
            delivered: DeliveredPosition { offset, lines: offset / 10, last_record: None, header_offset: 0 },
        }
    }

    #[test]
    fn persisted_positions_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PositionStore::open(dir.path()).unwrap();
        let epoch = store.allocate_epoch(chrono::Utc::now()).unwrap();
        store.track(tracked(2, epoch, 0));
        let position = DeliveredPosition {
            offset: 120,
            lines: 3,
            last_record: Some(RecordCheck { start: 100, crc: 9 }),
            header_offset: 60,
        };
        store.record((1, 2), epoch, position);
        store.persist().unwrap();
        let reopened = PositionStore::open(dir.path()).unwrap();
        assert_eq!(reopened.get((1, 2)).unwrap().delivered, position);
        assert_eq!(reopened.get((1, 3)), None);
    }

    fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn epochs_keep_increasing_across_restarts_even_within_one_clock_step() {
        let dir = tempfile::tempdir().unwrap();
        let now = at("2026-11-29T10:00:00Z");
        let mut store = PositionStore::open(dir.path()).unwrap();
        let first = store.allocate_epoch(now).unwrap();
        let second = store.allocate_epoch(now).unwrap();
        assert!(second > first);
        store.persist().unwrap();
        let mut reopened = PositionStore::open(dir.path()).unwrap();
        assert!(reopened.allocate_epoch(now).unwrap() > second);
    }

    #[test]
    fn a_lost_state_folder_gives_epochs_above_those_given_before() {
        let (before, after) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let earlier = PositionStore::open(before.path()).unwrap().allocate_epoch(at("2026-11-29T10:00:00Z")).unwrap();
        // The folder is gone: a fresh store, a minute later, knows nothing.
        let fresh = PositionStore::open(after.path()).unwrap().allocate_epoch(at("2026-11-29T10:01:00Z")).unwrap();
        assert!(fresh > earlier);
    }

    #[test]
    fn the_floor_from_the_topics_beats_a_clock_that_is_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PositionStore::open(dir.path()).unwrap();
        let clock = schema::message::clock_epoch(at("2026-11-29T10:00:00Z"));
        store.raise_floor(clock + 500);
        assert_eq!(store.allocate_epoch(at("2026-11-29T10:00:00Z")).unwrap(), clock + 501);
        store.raise_floor(3);
        assert_eq!(
            store.allocate_epoch(at("2026-11-29T10:00:00Z")).unwrap(),
            clock + 502,
            "a lower floor changes nothing"
        );
    }

    #[test]
    fn no_epoch_past_the_largest_is_ever_given() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PositionStore::open(dir.path()).unwrap();
        let now = at("2026-11-29T10:00:00Z");
        // A replay with the largest epoch raised the floor to it.
        store.raise_floor(schema::message::MAX_EPOCH);
        let refused = EpochOutOfRange { epoch: schema::message::MAX_EPOCH + 1 };
        assert_eq!(store.next_epoch(now), Err(refused));
        assert_eq!(store.allocate_epoch(now), Err(refused));
        store.raise_floor(u64::MAX);
        assert!(store.allocate_epoch(now).is_err(), "the counter saturates, it never wraps to 0");
    }

    #[test]
    fn a_clock_past_2062_gives_no_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PositionStore::open(dir.path()).unwrap();
        assert!(store.next_epoch(at("2062-07-01T00:00:00Z")).is_ok());
        let late = at("2063-01-01T00:00:00Z");
        assert_eq!(store.allocate_epoch(late), Err(EpochOutOfRange { epoch: clock_epoch(late) }));
    }

    #[test]
    fn a_store_holding_an_epoch_past_the_largest_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let wrapped = r#"{"layout": 2, "last_epoch": 134217728, "files": {"1:2": {"path": "/inbox/a.csv",
            "identity": {"device": 1, "inode": 2, "head_len": 10, "head_crc": 7}, "epoch": 134217728,
            "delivered": {"offset": 120, "lines": 3, "last_record": null}}}}"#;
        fs::write(dir.path().join(FILE_NAME), wrapped).unwrap();
        let error = PositionStore::open(dir.path()).unwrap_err();
        assert!(matches!(error, PositionStoreError::EpochOutOfRange { .. }), "{error}");
    }

    #[test]
    fn a_store_from_before_epochs_is_upgraded_above_its_old_versions() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = r#"{"next_sequence": 3, "files": {"1:2": {"path": "/inbox/a.csv",
            "identity": {"device": 1, "inode": 2, "head_len": 10, "head_crc": 7}, "sequence": 3,
            "delivered": {"offset": 120, "lines": 3, "last_record": null}}}}"#;
        fs::write(dir.path().join(FILE_NAME), legacy).unwrap();
        let mut store = PositionStore::open(dir.path()).unwrap();
        let file = store.get((1, 2)).unwrap().clone();
        let old_version = ((3u64 << 40) | 119) as i64;
        assert!(schema::message::source_version(file.epoch, 120).unwrap() > old_version);
        assert_eq!(file.delivered.offset, 120);
        assert!(store.allocate_epoch(at("2020-01-01T00:00:00Z")).unwrap() > file.epoch);
    }

    #[test]
    fn confirmation_of_an_older_epoch_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PositionStore::open(dir.path()).unwrap();
        store.track(tracked(2, 5, 0));
        store.record((1, 2), 4, DeliveredPosition { offset: 999, lines: 9, last_record: None, header_offset: 0 });
        assert_eq!(store.get((1, 2)).unwrap().delivered.offset, 0);
    }

    #[test]
    fn unpersisted_positions_are_not_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PositionStore::open(dir.path()).unwrap();
        store.track(tracked(2, 1, 120));
        assert!(store.is_dirty());
        assert_eq!(PositionStore::open(dir.path()).unwrap().get((1, 2)), None);
    }

    #[test]
    fn saved_positions_are_read_by_file_identity_without_creating_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        assert!(SavedPositions::read(&state).unwrap().is_empty(), "no store: nothing delivered");
        assert!(!state.exists(), "reading creates nothing");

        let delivered = dir.path().join("delivered.csv");
        fs::write(&delivered, "id\n1\n2\n").unwrap();
        let unknown = dir.path().join("unknown.csv");
        fs::write(&unknown, "id\n3\n").unwrap();
        let identity = FileIdentity::of(&File::open(&delivered).unwrap()).unwrap();
        let mut store = PositionStore::open(&state).unwrap();
        let position = DeliveredPosition { offset: 5, lines: 2, last_record: None, header_offset: 0 };
        store.track(TrackedFile { path: delivered.clone(), identity, epoch: 1, delivered: position });
        store.persist().unwrap();

        let saved = SavedPositions::read(&state).unwrap();
        assert_eq!(saved.delivered(&File::open(&delivered).unwrap()).unwrap(), Some(position));
        assert_eq!(saved.delivered(&File::open(&unknown).unwrap()).unwrap(), None);
        fs::write(&delivered, "xx\n1\n2\n").unwrap();
        assert_eq!(saved.delivered(&File::open(&delivered).unwrap()).unwrap(), None, "rewritten: another file");
    }

    /// The store's bytes as the producer writes them: `orderstream-status`
    /// and `orderstream-verify` read this file while the producer is down,
    /// and a producer of another version resumes from it.
    #[test]
    fn the_store_file_bytes_stay_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PositionStore::open(dir.path()).unwrap();
        store.raise_floor(41);
        let epoch = store.allocate_epoch(at("2020-01-01T00:00:00Z")).unwrap();
        let mut file = tracked(2, epoch, 120);
        file.delivered.last_record = Some(RecordCheck { start: 100, crc: 9 });
        file.delivered.header_offset = 60;
        store.track(file);
        store.track(tracked(3, epoch, 0));
        store.persist().unwrap();
        assert_eq!(fs::read_to_string(dir.path().join(FILE_NAME)).unwrap(), STORE_SAMPLE);
    }

    /// A store written by [`the_store_file_bytes_stay_the_same`]; the
    /// `contract` crate's reader is tested on the same file.
    const STORE_SAMPLE: &str = include_str!("../../contract/testdata/positions-layout-2.json");

    #[test]
    fn corrupt_store_is_refused_not_reset() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), b"{ half a").unwrap();
        let error = PositionStore::open(dir.path()).unwrap_err();
        assert!(matches!(error, PositionStoreError::File(PositionsFileError::Corrupt { .. })), "{error}");
    }

    #[test]
    fn failed_write_keeps_the_previous_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PositionStore::open(dir.path()).unwrap();
        store.track(tracked(2, 1, 10));
        store.persist().unwrap();
        // A folder where the temporary file should go makes the write fail.
        fs::create_dir(dir.path().join("positions.json.tmp")).unwrap();
        store.track(tracked(2, 1, 20));
        assert!(store.persist().is_err());
        assert!(store.is_dirty(), "still to be saved");
        assert_eq!(PositionStore::open(dir.path()).unwrap().get((1, 2)).unwrap().delivered.offset, 10);
    }

    #[test]
    fn forgotten_file_is_removed_on_persist() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PositionStore::open(dir.path()).unwrap();
        store.track(tracked(2, 1, 10));
        store.persist().unwrap();
        store.forget((1, 2));
        store.persist().unwrap();
        assert_eq!(PositionStore::open(dir.path()).unwrap().get((1, 2)), None);
    }
}
