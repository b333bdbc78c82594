//! The producer's positions file (`positions.json` in its state folder):
//! how far each file has been delivered to Kafka. The producer writes it
//! (`orderstream_producer`'s position store); `orderstream-status` and
//! `orderstream-verify` read it with [`SavedPositions`] while the producer
//! is down, which is when an operator asks how far it got.
//!
//! Files are kept by identity (device and inode, see [`crate::identity`]),
//! not by path, so a renamed file keeps its position and a new file under
//! an old name does not inherit one.
//!
//! The format: `{"layout": 2, "last_epoch": N, "files": {"DEVICE:INODE":
//! TrackedFile}}`, written pretty-printed. Layout 1 (before epochs) called
//! the epochs file sequences; [`PositionsFile::upgrade`] turns them into
//! epochs with the version arithmetic it is given.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::identity::{FileIdentity, FileKey};

/// Name of the positions file inside the producer's state folder.
pub const FILE_NAME: &str = "positions.json";

/// The layout of the stored versions: 1 wrote file sequences (versions
/// `sequence × 2⁴⁰ + offset`), 2 writes epochs (`epoch × 2³⁶ + offset`).
pub const LAYOUT: u32 = 2;

/// A checksum of the last delivered record, so a restart can check that the
/// bytes before its position are still the ones it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCheck {
    /// Where the record's bytes start.
    pub start: u64,
    /// CRC-32 of the record's bytes, from `start` to the delivered offset.
    pub crc: u32,
}

/// Where delivery of one file stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveredPosition {
    /// Bytes from the start of the file up to the end of the last record
    /// Kafka confirmed: reading resumes here.
    pub offset: u64,
    /// Newlines within those bytes, so line numbers stay right after a restart.
    pub lines: u64,
    /// The last delivered record, if any.
    pub last_record: Option<RecordCheck>,
    /// Byte offset of the header in force at `offset`: the first record, or
    /// a header line further down the file (an export appended with a
    /// changed header). A restart reads the records after `offset` by it.
    /// Stores from before header changes were honoured lack it: 0.
    #[serde(default)]
    pub header_offset: u64,
}

/// One file the producer follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedFile {
    /// Where the file was last seen (informational: files are kept by identity).
    pub path: PathBuf,
    /// Which file it is.
    pub identity: FileIdentity,
    /// The file's epoch in source order (see `schema::message::source_version`):
    /// a new, rewritten or truncated file gets a new, larger one. Stores
    /// written before epochs existed call it `sequence`.
    #[serde(alias = "sequence")]
    pub epoch: u64,
    /// How far it was delivered.
    pub delivered: DeliveredPosition,
}

/// Why the positions file cannot be read.
#[derive(Debug, Error)]
pub enum PositionsFileError {
    /// The file exists but cannot be read.
    #[error("cannot read the position store {path}")]
    Read {
        /// The file's path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file exists but is not valid JSON: refusing to start beats
    /// re-publishing every file from the start.
    #[error("the position store {path} is corrupt; move it away to re-read every file from the start")]
    Corrupt {
        /// The file's path.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// The whole positions file, as stored.
#[derive(Debug, Serialize, Deserialize)]
pub struct PositionsFile {
    /// [`LAYOUT`]; missing in files written before epochs: layout 1.
    #[serde(default = "legacy_layout")]
    pub layout: u32,
    /// The last epoch given to a file (`next_sequence` in layout 1), so a
    /// restarted producer gives larger ones.
    #[serde(alias = "next_sequence")]
    pub last_epoch: u64,
    /// Every tracked file, by [`key_name`].
    pub files: BTreeMap<String, TrackedFile>,
}

impl Default for PositionsFile {
    fn default() -> Self {
        PositionsFile { layout: LAYOUT, last_epoch: 0, files: BTreeMap::new() }
    }
}

fn legacy_layout() -> u32 {
    1
}

impl PositionsFile {
    /// Reads the file at `path`, as stored (see [`Self::upgrade`]); a
    /// missing file means nothing was delivered yet.
    pub fn read(path: &Path) -> Result<PositionsFile, PositionsFileError> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| PositionsFileError::Corrupt { path: path.to_path_buf(), source }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(PositionsFile::default()),
            Err(source) => Err(PositionsFileError::Read { path: path.to_path_buf(), source }),
        }
    }

    /// Moves a layout-1 file to epochs: each file sequence becomes
    /// `legacy_epoch(sequence)` (`schema::message::legacy_epoch`: the epoch
    /// just above every version that sequence wrote), so records read after
    /// the upgrade are newer than those read before it. Given, not called
    /// here, to keep the schema crate's dependencies out of this one.
    pub fn upgrade(mut self, legacy_epoch: impl Fn(u64) -> u64) -> PositionsFile {
        if self.layout < LAYOUT {
            for file in self.files.values_mut() {
                file.epoch = legacy_epoch(file.epoch);
            }
            self.last_epoch = legacy_epoch(self.last_epoch);
            self.layout = LAYOUT;
        }
        self
    }
}

/// The key a file is stored under: `DEVICE:INODE`.
pub fn key_name((device, inode): FileKey) -> String {
    format!("{device}:{inode}")
}

/// Calls `use_name` with [`key_name`]'s text, formatted on the stack: the
/// producer looks it up for every confirmed record.
pub fn with_key_name<R>((device, inode): FileKey, use_name: impl FnOnce(&str) -> R) -> R {
    use std::io::Write;
    // Two 20-digit numbers and a colon.
    let mut bytes = [0u8; 41];
    let mut unwritten = &mut bytes[..];
    write!(unwritten, "{device}:{inode}").expect("41 bytes hold two u64 and a colon");
    let len = 41 - unwritten.len();
    use_name(std::str::from_utf8(&bytes[..len]).expect("digits and a colon"))
}

/// The positions the producer last saved, read without creating or changing
/// anything: `orderstream-status` shows them when the producer does not
/// answer, which is when an operator asks how far it got.
#[derive(Debug)]
pub struct SavedPositions {
    /// The store that was read.
    path: PathBuf,
    /// The file as read.
    stored: PositionsFile,
}

impl SavedPositions {
    /// Reads the store in `state_dir`, epochs as stored (see
    /// [`Self::upgrade`]); a missing store (or folder) means nothing was
    /// delivered yet.
    pub fn read(state_dir: &Path) -> Result<Self, PositionsFileError> {
        let path = state_dir.join(FILE_NAME);
        let stored = PositionsFile::read(&path)?;
        Ok(SavedPositions { path, stored })
    }

    /// The epochs of a layout-1 store made epochs, as the producer would
    /// resume with them (see [`PositionsFile::upgrade`]); delivered
    /// positions are the same either way.
    pub fn upgrade(self, legacy_epoch: impl Fn(u64) -> u64) -> Self {
        SavedPositions { path: self.path, stored: self.stored.upgrade(legacy_epoch) }
    }

    /// Where the store is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Nothing is tracked: no store yet, or every file was released.
    pub fn is_empty(&self) -> bool {
        self.stored.files.is_empty()
    }

    /// How far `file` was delivered, if the store knows it: the same
    /// identity as the producer's (device, inode and first bytes), so a
    /// renamed file keeps its position and a rewritten one has none, exactly
    /// as the producer would resume.
    pub fn delivered(&self, file: &File) -> io::Result<Option<DeliveredPosition>> {
        Ok(self.tracked(file)?.map(|tracked| tracked.delivered))
    }

    /// What the store knows of `file` (its epoch and delivered position),
    /// by the producer's identity as in [`Self::delivered`]: a verifier
    /// needs the epoch to tell this file's versions from another's (after
    /// [`Self::upgrade`] for a layout-1 store).
    pub fn tracked(&self, file: &File) -> io::Result<Option<&TrackedFile>> {
        let metadata = file.metadata()?;
        let Some(tracked) = self.stored.files.get(&key_name((metadata.dev(), metadata.ino()))) else {
            return Ok(None);
        };
        Ok(tracked.identity.same_file(file)?.then_some(tracked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store as the producer writes it (its `the_store_file_bytes_stay_the_same`
    /// pins its writer to these same bytes).
    const STORE_SAMPLE: &str = include_str!("../testdata/positions-layout-2.json");

    #[test]
    fn a_store_written_by_the_producer_reads_and_writes_back_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), STORE_SAMPLE).unwrap();
        let stored = PositionsFile::read(&dir.path().join(FILE_NAME)).unwrap();
        assert_eq!((stored.layout, stored.last_epoch, stored.files.len()), (2, 42, 2));
        let file = &stored.files["1:2"];
        assert_eq!((file.identity.key(), file.epoch), ((1, 2), 42));
        assert_eq!(file.delivered.last_record, Some(RecordCheck { start: 100, crc: 9 }));
        assert_eq!(String::from_utf8(serde_json::to_vec_pretty(&stored).unwrap()).unwrap(), STORE_SAMPLE);
    }

    #[test]
    fn saved_positions_find_a_file_by_its_identity_only() {
        let dir = tempfile::tempdir().unwrap();
        let delivered = dir.path().join("delivered.csv");
        fs::write(&delivered, "id\n1\n2\n").unwrap();
        let identity = FileIdentity::of(&File::open(&delivered).unwrap()).unwrap();
        let position = DeliveredPosition { offset: 5, lines: 2, last_record: None, header_offset: 0 };
        let tracked = TrackedFile { path: "/elsewhere/old-name.csv".into(), identity, epoch: 3, delivered: position };
        let stored =
            PositionsFile { files: BTreeMap::from([(key_name(identity.key()), tracked)]), ..Default::default() };
        fs::write(dir.path().join(FILE_NAME), serde_json::to_vec_pretty(&stored).unwrap()).unwrap();

        let saved = SavedPositions::read(dir.path()).unwrap();
        assert_eq!(saved.delivered(&File::open(&delivered).unwrap()).unwrap(), Some(position), "renamed: same file");
        fs::write(&delivered, "xx\n1\n2\n").unwrap();
        assert_eq!(saved.delivered(&File::open(&delivered).unwrap()).unwrap(), None, "rewritten: another file");
    }

    #[test]
    fn a_missing_store_is_empty_and_reading_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let saved = SavedPositions::read(&state).unwrap();
        assert!(saved.is_empty());
        assert_eq!(saved.path(), state.join(FILE_NAME));
        assert!(!state.exists());
    }

    #[test]
    fn a_corrupt_store_is_refused_not_read_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), b"{ half a").unwrap();
        let error = SavedPositions::read(dir.path()).unwrap_err();
        assert!(matches!(error, PositionsFileError::Corrupt { .. }), "{error}");
        assert!(error.to_string().ends_with("is corrupt; move it away to re-read every file from the start"));
    }

    #[test]
    fn a_layout_1_store_is_upgraded_only_when_asked_and_only_once() {
        let legacy = r#"{"next_sequence": 3, "files": {"1:2": {"path": "/inbox/a.csv",
            "identity": {"device": 1, "inode": 2, "head_len": 10, "head_crc": 7}, "sequence": 3,
            "delivered": {"offset": 120, "lines": 3, "last_record": null}}}}"#;
        let stored: PositionsFile = serde_json::from_str(legacy).unwrap();
        assert_eq!((stored.layout, stored.files["1:2"].epoch), (1, 3), "as stored");
        let upgraded = stored.upgrade(|sequence| sequence * 100);
        assert_eq!((upgraded.layout, upgraded.last_epoch, upgraded.files["1:2"].epoch), (LAYOUT, 300, 300));
        assert_eq!(upgraded.upgrade(|sequence| sequence * 100).last_epoch, 300, "layout 2 stays as it is");
    }

    #[test]
    fn key_name_on_the_stack_is_the_stored_key_name() {
        for key in [(0, 0), (2049, 131_074), (u64::MAX, u64::MAX)] {
            assert_eq!(with_key_name(key, str::to_string), key_name(key));
        }
    }
}
