//! The archive folder (`--archive-dir`): checked at start, searched at start
//! for tracked files that left the inbox, and where `--archive-after` moves
//! delivered files.
//!
//! A move is a rename when the archive is on the inbox's filesystem. On
//! another filesystem (rename fails with `EXDEV`) it is what `mv` and other
//! careful movers do: copy under a temporary name in the archive, fsync the
//! copy and the folder, rename it into place, and only then remove the inbox
//! file and fsync the inbox. A crash at any step leaves the file whole in at
//! least one of the two folders:
//!
//! - before the rename into place: the inbox file and, at most, a temporary
//!   copy that the next attempt overwrites and no lookup ever takes;
//! - after it, before the removal: the same bytes in both folders. The inbox
//!   file is followed by its own identity (nothing is published again) and
//!   the next attempt finds an identical archived copy, so it only removes
//!   the inbox file;
//! - after the removal: the copy alone, a new inode, which the restart finds
//!   by the tracked file's name and content ([`copy_of`]) and resumes at the
//!   delivered position.

use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::identity::FileIdentity;
use crate::positions::TrackedFile;
use crate::tailer::{start_point, StartPoint};

/// What a temporary copy's name ends with: such files are never taken for
/// archived exports.
const PARTIAL_SUFFIX: &str = ".orderstream-partial";

/// How the file written and removed at start to prove the archive is
/// writable is named (then a process id: producers may share an archive).
const WRITE_PROBE: &str = ".orderstream-write-check";

/// The archive folder cannot be used; the producer refuses to start rather
/// than forget (or fail to archive) files silently.
#[derive(Debug, Error)]
pub enum ArchiveError {
    /// The folder does not exist and cannot be created (or a file is there).
    #[error("cannot create the archive folder {path}")]
    Create {
        /// The archive folder.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The folder cannot be listed: files that left the inbox could not be
    /// found there, and their unread rest would be forgotten.
    #[error("cannot list the archive folder {path}")]
    List {
        /// The archive folder.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// `--archive-after` cannot write into the folder.
    #[error("cannot write into the archive folder {path} (needed by --archive-after)")]
    Write {
        /// The archive folder.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// Why one file could not be archived (it stays in the inbox; the move is
/// tried again later).
#[derive(Debug, Error)]
pub enum MoveError {
    /// Another file of that name is already archived; it is never replaced.
    #[error("another file named {to} is already archived")]
    NameTaken {
        /// The archived file in the way.
        to: PathBuf,
    },
    /// The file changed while it was copied to another filesystem: the copy
    /// is dropped, and the file is archived once it is delivered and idle again.
    #[error("{from} changed while it was copied into the archive")]
    ChangedWhileCopied {
        /// The inbox file.
        from: PathBuf,
    },
    /// A filesystem operation of the move failed.
    #[error("cannot {step} {path}: {source}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// How a file got into the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    /// Renamed there (same filesystem): same inode, same identity.
    Renamed(PathBuf),
    /// Copied there and removed from the inbox (another filesystem): the
    /// archived copy is a new inode.
    Copied(PathBuf),
}

/// A checked archive folder.
#[derive(Debug, Clone)]
pub struct ArchiveFolder {
    path: PathBuf,
}

impl ArchiveFolder {
    /// Checks the folder at start: it exists or can be created, it can be
    /// listed, and, when the producer moves files there itself (`writable`),
    /// a file can be created in it.
    pub fn open(path: &Path, writable: bool) -> Result<ArchiveFolder, ArchiveError> {
        let folder = ArchiveFolder { path: path.to_path_buf() };
        fs::create_dir_all(path).map_err(|source| ArchiveError::Create { path: folder.path.clone(), source })?;
        folder.files()?;
        if writable {
            let probe = path.join(format!("{WRITE_PROBE}-{}", std::process::id()));
            File::create(&probe)
                .and_then(|_| fs::remove_file(&probe))
                .map_err(|source| ArchiveError::Write { path: folder.path.clone(), source })?;
        }
        Ok(folder)
    }

    /// The regular files of the folder (temporary copies left out), with
    /// their metadata. A listing error is returned, never taken for an empty
    /// folder: that would forget every file that left the inbox.
    pub fn files(&self) -> Result<Vec<(PathBuf, Metadata)>, ArchiveError> {
        let listing =
            fs::read_dir(&self.path).map_err(|source| ArchiveError::List { path: self.path.clone(), source })?;
        let mut files = Vec::new();
        for entry in listing {
            let entry = entry.map_err(|source| ArchiveError::List { path: self.path.clone(), source })?;
            let path = entry.path();
            if is_temporary(&path) {
                continue;
            }
            if let Ok(metadata) = fs::metadata(&path) {
                if metadata.is_file() {
                    files.push((path, metadata));
                }
            }
        }
        Ok(files)
    }

    /// Moves `from` into the folder under its own name (see the module
    /// documentation for the steps and what a crash between them leaves).
    pub fn move_in(&self, from: &Path) -> Result<Moved, MoveError> {
        let name = from.file_name().ok_or_else(|| MoveError::Io {
            step: "archive",
            path: from.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "no file name"),
        })?;
        let to = self.path.join(name);
        if to.symlink_metadata().is_ok() {
            return self.finish_interrupted_copy(from, to);
        }
        match fs::rename(from, &to) {
            Ok(()) => {
                sync_folder(&self.path)?;
                sync_folder(parent(from))?;
                Ok(Moved::Renamed(to))
            }
            Err(error) if error.kind() == io::ErrorKind::CrossesDevices => self.copy_then_remove(from, to),
            Err(source) => Err(MoveError::Io { step: "rename into the archive", path: from.to_path_buf(), source }),
        }
    }

    /// `to` is taken: when it holds exactly `from`'s bytes, a copy was put in
    /// place before a crash or a failed removal, and only the removal is left.
    fn finish_interrupted_copy(&self, from: &Path, to: PathBuf) -> Result<Moved, MoveError> {
        let same =
            same_bytes(from, &to).map_err(|source| MoveError::Io { step: "compare", path: to.clone(), source })?;
        if !same {
            return Err(MoveError::NameTaken { to });
        }
        remove_from_inbox(from)?;
        Ok(Moved::Copied(to))
    }

    /// The move across filesystems: copy, fsync, rename into place, remove.
    fn copy_then_remove(&self, from: &Path, to: PathBuf) -> Result<Moved, MoveError> {
        let partial =
            self.path.join(format!(".{}{PARTIAL_SUFFIX}", to.file_name().unwrap_or_default().to_string_lossy()));
        let before = fs::metadata(from).map_err(io_error("read", from))?;
        fs::copy(from, &partial).map_err(io_error("copy into the archive", from))?;
        let copy = File::options().write(true).open(&partial).map_err(io_error("open", &partial))?;
        // Like mv: the copy keeps the file's modification time.
        copy.set_modified(before.modified().map_err(io_error("read", from))?)
            .map_err(io_error("set the time of", &partial))?;
        copy.sync_all().map_err(io_error("fsync", &partial))?;
        let after = fs::metadata(from).map_err(io_error("read", from))?;
        let copied = copy.metadata().map_err(io_error("read", &partial))?;
        if unchanged(&before, &after) && copied.len() == before.len() {
            fs::rename(&partial, &to).map_err(io_error("rename into place", &partial))?;
            sync_folder(&self.path)?;
            // Chaos suite and tests: a crash with the file in both folders.
            fail::fail_point!("producer-archive-before-inbox-removal", |_| std::process::abort());
            remove_from_inbox(from)?;
            Ok(Moved::Copied(to))
        } else {
            let _ = fs::remove_file(&partial);
            Err(MoveError::ChangedWhileCopied { from: from.to_path_buf() })
        }
    }
}

/// The archived copy of `tracked`, a file that left the inbox and whose
/// device and inode are in no folder any more (moved to another filesystem):
/// a file of `candidates` with the same name, the same first bytes, at least
/// the delivered bytes and the same last delivered record. Returns it open,
/// with the tracked state under the copy's device and inode.
pub fn copy_of(
    tracked: &TrackedFile,
    candidates: &[(PathBuf, Metadata)],
) -> io::Result<Option<(PathBuf, File, TrackedFile)>> {
    let Some(name) = tracked.path.file_name() else { return Ok(None) };
    for (path, metadata) in candidates.iter().filter(|(path, _)| path.file_name() == Some(name)) {
        let file = File::open(path)?;
        let rekeyed = TrackedFile {
            path: path.clone(),
            identity: FileIdentity { device: metadata.dev(), inode: metadata.ino(), ..tracked.identity },
            ..tracked.clone()
        };
        if matches!(start_point(&file, Some(&rekeyed))?, StartPoint::Resumed) {
            return Ok(Some((path.clone(), file, rekeyed)));
        }
    }
    Ok(None)
}

/// The error of one step of a move, for `map_err`.
fn io_error(step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> MoveError {
    let path = path.to_path_buf();
    move |source| MoveError::Io { step, path, source }
}

/// Whether `path` is a temporary copy of a move in progress.
fn is_temporary(path: &Path) -> bool {
    path.file_name().is_some_and(|name| {
        let name = name.to_string_lossy();
        name.ends_with(PARTIAL_SUFFIX) || name.starts_with(WRITE_PROBE)
    })
}

/// Whether a file's size and modification time are what they were.
fn unchanged(before: &Metadata, after: &Metadata) -> bool {
    (before.len(), before.mtime(), before.mtime_nsec(), before.ino())
        == (after.len(), after.mtime(), after.mtime_nsec(), after.ino())
}

/// Removes the inbox file once its copy is durable in the archive, and makes
/// the removal durable too.
fn remove_from_inbox(from: &Path) -> Result<(), MoveError> {
    fs::remove_file(from).map_err(|source| MoveError::Io {
        step: "remove from the inbox",
        path: from.to_path_buf(),
        source,
    })?;
    sync_folder(parent(from))
}

/// The folder a file is in.
fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// Makes the entries of a folder (a rename, a removal) durable.
fn sync_folder(folder: &Path) -> Result<(), MoveError> {
    File::open(folder).and_then(|folder| folder.sync_all()).map_err(|source| MoveError::Io {
        step: "fsync the folder",
        path: folder.to_path_buf(),
        source,
    })
}

/// Whether two files hold the same bytes, compared a chunk at a time.
fn same_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut a, mut b) = (File::open(a)?, File::open(b)?);
    if a.metadata()?.len() != b.metadata()?.len() {
        return Ok(false);
    }
    let (mut chunk_a, mut chunk_b) = (vec![0; 64 * 1024], vec![0; 64 * 1024]);
    loop {
        let read = a.read(&mut chunk_a)?;
        if read == 0 {
            return Ok(true);
        }
        b.read_exact(&mut chunk_b[..read])?;
        if chunk_a[..read] != chunk_b[..read] {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::positions::{DeliveredPosition, RecordCheck};

    /// A folder on another filesystem than the temporary folder (tmpfs).
    fn other_filesystem() -> tempfile::TempDir {
        tempfile::tempdir_in("/dev/shm").unwrap()
    }

    const EXPORT: &str = "id,user_id,completed_at,item_total,shipment_total\n1,2,2022-07-01 00:19,10.00,2.5\n";

    #[test]
    fn a_file_is_renamed_on_the_same_filesystem_and_copied_across() {
        for (archive, across) in [(tempfile::tempdir().unwrap(), false), (other_filesystem(), true)] {
            let inbox = tempfile::tempdir().unwrap();
            let from = inbox.path().join("a.csv");
            fs::write(&from, EXPORT).unwrap();
            let folder = ArchiveFolder::open(archive.path(), true).unwrap();
            let moved = folder.move_in(&from).unwrap();
            let to = archive.path().join("a.csv");
            let expected = if across { Moved::Copied(to.clone()) } else { Moved::Renamed(to.clone()) };
            assert_eq!(moved, expected);
            assert!(!from.exists());
            assert_eq!(fs::read_to_string(&to).unwrap(), EXPORT);
            assert_eq!(folder.files().unwrap().len(), 1, "only the archived file is left");
        }
    }

    #[test]
    fn a_copy_interrupted_before_the_inbox_removal_is_finished_not_refused() {
        let (inbox, archive) = (tempfile::tempdir().unwrap(), other_filesystem());
        let from = inbox.path().join("a.csv");
        fs::write(&from, EXPORT).unwrap();
        // The crash left the same bytes in both folders.
        fs::write(archive.path().join("a.csv"), EXPORT).unwrap();
        let folder = ArchiveFolder::open(archive.path(), true).unwrap();
        assert_eq!(folder.move_in(&from).unwrap(), Moved::Copied(archive.path().join("a.csv")));
        assert!(!from.exists());
    }

    #[test]
    fn another_archived_file_of_the_same_name_is_never_replaced() {
        let (inbox, archive) = (tempfile::tempdir().unwrap(), other_filesystem());
        let from = inbox.path().join("a.csv");
        fs::write(&from, EXPORT).unwrap();
        fs::write(archive.path().join("a.csv"), "id\n9\n").unwrap();
        let refused = ArchiveFolder::open(archive.path(), true).unwrap().move_in(&from).unwrap_err();
        assert!(matches!(refused, MoveError::NameTaken { .. }), "{refused}");
        assert!(from.exists());
        assert_eq!(fs::read_to_string(archive.path().join("a.csv")).unwrap(), "id\n9\n");
    }

    #[test]
    fn temporary_copies_are_not_archived_files() {
        let archive = tempfile::tempdir().unwrap();
        fs::write(archive.path().join(format!(".a.csv{PARTIAL_SUFFIX}")), EXPORT).unwrap();
        assert!(ArchiveFolder::open(archive.path(), true).unwrap().files().unwrap().is_empty());
    }

    #[test]
    fn a_path_that_is_a_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive");
        fs::write(&path, "").unwrap();
        let refused = ArchiveFolder::open(&path, false).unwrap_err();
        assert!(refused.to_string().contains(&path.display().to_string()), "{refused}");
    }

    #[test]
    fn a_copy_is_found_by_name_and_content_and_resumes_under_its_own_inode() {
        let (inbox, archive) = (tempfile::tempdir().unwrap(), other_filesystem());
        let original = inbox.path().join("a.csv");
        fs::write(&original, EXPORT).unwrap();
        let identity = FileIdentity::of(&File::open(&original).unwrap()).unwrap();
        let header = EXPORT.find('\n').unwrap() as u64 + 1;
        let delivered = DeliveredPosition {
            offset: header,
            lines: 1,
            last_record: Some(RecordCheck { start: 0, crc: crc32fast::hash(&EXPORT.as_bytes()[..header as usize]) }),
            header_offset: 0,
        };
        let tracked = TrackedFile { path: original.clone(), identity, epoch: 7, delivered };
        fs::write(archive.path().join("a.csv"), EXPORT).unwrap();
        fs::write(archive.path().join("b.csv"), EXPORT).unwrap();
        let candidates = ArchiveFolder::open(archive.path(), false).unwrap().files().unwrap();
        let (path, _, rekeyed) = copy_of(&tracked, &candidates).unwrap().expect("the copy is found");
        assert_eq!(path, archive.path().join("a.csv"), "the same name, not another file with the same bytes");
        let copy = fs::metadata(&path).unwrap();
        assert_eq!(rekeyed.identity.key(), (copy.dev(), copy.ino()));
        assert_eq!((rekeyed.epoch, rekeyed.delivered), (7, delivered), "the delivered position is kept");

        fs::write(archive.path().join("a.csv"), EXPORT.replace("10.00", "99.00")).unwrap();
        let candidates = ArchiveFolder::open(archive.path(), false).unwrap().files().unwrap();
        assert!(copy_of(&tracked, &candidates).unwrap().is_none(), "other bytes: another file");
    }
}
