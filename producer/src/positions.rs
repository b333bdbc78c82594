//! How far each file has been delivered to Kafka, kept on disk.
//!
//! A position is recorded only after Kafka confirmed every record before it,
//! so a restart resumes there and loses nothing; at most the records that were
//! in flight at a crash are sent again, which the consumer makes harmless.
//!
//! The store is one JSON file replaced atomically: written to a temporary
//! file, fsynced, renamed over the old one, and the folder fsynced, so that a
//! crash or power cut leaves either the old or the new positions, never a
//! mixture or an empty file.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Name of the store's file inside the state folder.
const FILE_NAME: &str = "positions.json";

/// Where delivery of one file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveredPosition {
    /// The file's device and inode when it was read: a different file now at
    /// the same path (replaced, not appended) must not inherit this position.
    pub device: u64,
    /// See `device`.
    pub inode: u64,
    /// Bytes from the start of the file up to the end of the last record
    /// Kafka confirmed: reading resumes here.
    pub offset: u64,
    /// Newlines within those bytes, so line numbers stay right after a restart.
    pub lines: u64,
}

/// What went wrong with the position store.
#[derive(Debug, Error)]
pub enum PositionStoreError {
    /// The store exists but cannot be read.
    #[error("cannot read the position store {path}: {source}")]
    Read {
        /// The store's path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The store exists but is not valid JSON: refusing to start beats
    /// re-publishing every file from the start.
    #[error("the position store {path} is corrupt ({source}); move it away to re-read every file from the start")]
    Corrupt {
        /// The store's path.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The new positions could not be saved (disk full, permissions, …).
    #[error("cannot save the position store {path}: {source}")]
    Write {
        /// The store's path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// The delivered position of every file, by path.
#[derive(Debug)]
pub struct PositionStore {
    path: PathBuf,
    positions: BTreeMap<PathBuf, DeliveredPosition>,
    dirty: bool,
}

impl PositionStore {
    /// Opens the store in `state_dir`, creating the folder if needed; a
    /// missing store means nothing was delivered yet.
    pub fn open(state_dir: &Path) -> Result<Self, PositionStoreError> {
        let path = state_dir.join(FILE_NAME);
        fs::create_dir_all(state_dir).map_err(|source| PositionStoreError::Write { path: path.clone(), source })?;
        let positions = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| PositionStoreError::Corrupt { path: path.clone(), source })?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(PositionStoreError::Read { path, source }),
        };
        Ok(PositionStore { path, positions, dirty: false })
    }

    /// The delivered position of a file, if any was recorded.
    pub fn get(&self, file: &Path) -> Option<DeliveredPosition> {
        self.positions.get(file).copied()
    }

    /// Records a newly confirmed position (in memory until [`Self::persist`]).
    pub fn record(&mut self, file: &Path, position: DeliveredPosition) {
        if self.positions.get(file) != Some(&position) {
            self.positions.insert(file.to_path_buf(), position);
            self.dirty = true;
        }
    }

    /// Forgets a file that is gone, so the store does not grow forever.
    pub fn forget(&mut self, file: &Path) {
        if self.positions.remove(file).is_some() {
            self.dirty = true;
        }
    }

    /// Whether there are recorded positions not yet on disk.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Writes the positions to disk atomically and durably, if they changed.
    pub fn persist(&mut self) -> Result<(), PositionStoreError> {
        if !self.dirty {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&self.positions).expect("positions always serialise");
        write_atomically(&self.path, &bytes)
            .map_err(|source| PositionStoreError::Write { path: self.path.clone(), source })?;
        self.dirty = false;
        Ok(())
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let folder = path.parent().expect("the store lives in a folder");
    let temporary = path.with_extension("json.tmp");
    let mut file = File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, path)?;
    File::open(folder)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(offset: u64) -> DeliveredPosition {
        DeliveredPosition { device: 1, inode: 2, offset, lines: offset / 10 }
    }

    #[test]
    fn persisted_positions_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PositionStore::open(dir.path()).unwrap();
        store.record(Path::new("/inbox/a.csv"), position(120));
        store.persist().unwrap();
        let reopened = PositionStore::open(dir.path()).unwrap();
        assert_eq!(reopened.get(Path::new("/inbox/a.csv")), Some(position(120)));
        assert_eq!(reopened.get(Path::new("/inbox/b.csv")), None);
    }

    #[test]
    fn unpersisted_positions_are_not_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PositionStore::open(dir.path()).unwrap();
        store.record(Path::new("/inbox/a.csv"), position(120));
        assert!(store.is_dirty());
        assert_eq!(PositionStore::open(dir.path()).unwrap().get(Path::new("/inbox/a.csv")), None);
    }

    #[test]
    fn corrupt_store_is_refused_not_reset() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), b"{ half a").unwrap();
        let error = PositionStore::open(dir.path()).unwrap_err();
        assert!(matches!(error, PositionStoreError::Corrupt { .. }), "{error}");
    }

    #[test]
    fn forgotten_file_is_removed_on_persist() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PositionStore::open(dir.path()).unwrap();
        store.record(Path::new("/inbox/a.csv"), position(10));
        store.persist().unwrap();
        store.forget(Path::new("/inbox/a.csv"));
        store.persist().unwrap();
        assert_eq!(PositionStore::open(dir.path()).unwrap().get(Path::new("/inbox/a.csv")), None);
    }
}
