//! The inbox's delivery from the producer's saved positions, for when the
//! producer does not answer: how far it got before it stopped is exactly
//! what an operator asks then.
//!
//! The store's format is `contract::positions` ([`SavedPositions`]);
//! this module only sets each inbox file's delivered bytes against its size
//! now. A file the store does not know shows 0 delivered. Files the store
//! tracks that are no longer in the inbox are not listed: their size cannot
//! be read where the inbox is.

use std::path::{Path, PathBuf};

use contract::positions::SavedPositions;
use globset::GlobMatcher;
use serde::Serialize;

use crate::inbox::inbox_files;

/// Where each file's delivery was read: the `source` of a file in `--json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileSource {
    /// The producer's `/status`: live.
    Producer,
    /// The producer's positions store, because it did not answer.
    SavedPositions,
}

/// The inbox as the saved positions see it.
#[derive(Debug, Clone)]
pub struct SavedDelivery {
    /// The store read (`positions.json` in the producer's state folder).
    pub store: PathBuf,
    /// Each inbox file.
    pub files: Vec<SavedFile>,
}

/// One inbox file, as far as the saved positions say it was delivered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SavedFile {
    /// The file in the inbox.
    pub path: String,
    /// Its size now.
    pub size: u64,
    /// Bytes Kafka confirmed, as last saved by the producer.
    pub delivered_bytes: u64,
    /// Newlines within those bytes.
    pub delivered_lines: u64,
    /// Delivered share of the size now, rounded down to a tenth (100 only
    /// when every byte is delivered).
    pub percent: f64,
    /// Every byte of the file is delivered.
    pub caught_up: bool,
    /// Always [`FileSource::SavedPositions`].
    pub source: FileSource,
    /// Why the file cannot be opened, when it cannot: the producer cannot
    /// read it either, and its lines wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

/// Reads the store in `state_dir` and each inbox file matching `matcher`;
/// the error says why the store cannot be read.
pub fn saved_delivery(state_dir: &Path, inbox: &Path, matcher: &GlobMatcher) -> Result<SavedDelivery, String> {
    let saved = SavedPositions::read(state_dir).map_err(|error| error.to_string())?;
    let files = inbox_files(inbox, matcher).into_iter().map(|(path, size)| saved_file(&saved, &path, size)).collect();
    Ok(SavedDelivery { store: saved.path().to_path_buf(), files })
}

/// One file against the store; a file that cannot be opened counts as
/// nothing delivered.
fn saved_file(saved: &SavedPositions, path: &Path, size: u64) -> SavedFile {
    let opened = std::fs::File::open(path);
    let unreadable = opened.as_ref().err().map(|error| error.to_string());
    let delivered = opened.and_then(|file| saved.delivered(&file)).ok().flatten();
    let (delivered_bytes, delivered_lines) = delivered.map_or((0, 0), |position| (position.offset, position.lines));
    let (percent, caught_up) = share(delivered_bytes, size);
    SavedFile {
        path: path.to_string_lossy().into_owned(),
        size,
        delivered_bytes,
        delivered_lines,
        percent,
        caught_up: caught_up && unreadable.is_none(),
        source: FileSource::SavedPositions,
        unreadable,
    }
}

/// Delivered share of `size`, rounded down to a tenth, and whether it is all.
fn share(delivered: u64, size: u64) -> (f64, bool) {
    if delivered >= size {
        return (100.0, true);
    }
    ((delivered as f64 * 1000.0 / size as f64).floor() / 10.0, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_is_rounded_down_and_100_only_when_all_is_delivered() {
        assert_eq!(share(0, 0), (100.0, true), "an empty file is delivered");
        assert_eq!(share(10, 10), (100.0, true));
        assert_eq!(share(9_999, 10_000), (99.9, false));
        assert_eq!(share(0, 7), (0.0, false));
    }

    #[test]
    fn inbox_files_unknown_to_the_store_show_nothing_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("inbox");
        std::fs::create_dir(&inbox).unwrap();
        std::fs::write(inbox.join("a.csv"), "id\n1\n").unwrap();
        let matcher = globset::Glob::new("*.csv").unwrap().compile_matcher();
        let delivery = saved_delivery(&dir.path().join("state"), &inbox, &matcher).unwrap();
        assert!(delivery.store.ends_with("state/positions.json"), "{}", delivery.store.display());
        let files = delivery.files;
        assert_eq!(files.len(), 1);
        assert_eq!((files[0].size, files[0].delivered_bytes, files[0].percent), (5, 0, 0.0));
        assert_eq!(files[0].source, FileSource::SavedPositions);
    }

    #[test]
    fn a_corrupt_store_is_reported_not_read_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("positions.json"), "{ half").unwrap();
        let matcher = globset::Glob::new("*.csv").unwrap().compile_matcher();
        assert!(saved_delivery(dir.path(), dir.path(), &matcher).is_err());
    }
}
