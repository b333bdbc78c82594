//! One export read from its first byte exactly as the producer reads it, for
//! tools that account for its lines afterwards (`orderstream-verify`).
//!
//! The same tailer, header handling, record splitting, validation and
//! line numbering as the running producer: a line verified is the line
//! that was published, at the same offset and line number, with the same
//! verdict. Nothing is published and no position is saved.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::identity::FileIdentity;
use crate::positions::{DeliveredPosition, TrackedFile};
use crate::tailer::{FileTailer, Poll};

pub use crate::tailer::{RecordOutcome, TailedRecord, TailerSettings};

/// Reads one export from its first byte to its last complete record.
pub struct ExportReader {
    tailer: FileTailer,
}

impl ExportReader {
    /// Opens `path`; its records' versions carry epoch 0 (only their
    /// offsets and lines are the producer's: the epoch is given when a file
    /// is first read, and a reader cannot know it).
    pub fn open(path: &Path, settings: TailerSettings) -> io::Result<ExportReader> {
        let file = File::open(path)?;
        let identity = FileIdentity::of(&file)?;
        let tracked =
            TrackedFile { path: path.to_path_buf(), identity, epoch: 0, delivered: DeliveredPosition::default() };
        Ok(ExportReader { tailer: FileTailer::new(path, file, &tracked, settings)? })
    }

    /// The file's fingerprint now (device, inode, checksum of its first
    /// bytes), as in the `source_fingerprint` header.
    pub fn fingerprint(&self) -> String {
        self.tailer.identity().fingerprint()
    }

    /// Up to `max` next complete records (headers included, as
    /// [`RecordOutcome::Header`]); none once the file has no more complete
    /// record. A file that became shorter while read is an error
    /// (`UnexpectedEof`): what was read no longer describes it.
    pub fn next_records(&mut self, max: usize) -> io::Result<Vec<TailedRecord>> {
        match self.tailer.next_records(max, chrono::Utc::now())? {
            Poll::Records(records) => Ok(records),
            Poll::Truncated => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file was truncated while read")),
        }
    }

    /// Bytes at the end of the file that are not a complete record yet (a
    /// line still being written): the producer has not published them.
    pub fn partial_bytes(&self) -> u64 {
        self.tailer.partial_bytes()
    }

    /// Where the complete records end.
    pub fn position(&self) -> u64 {
        self.tailer.position()
    }
}
