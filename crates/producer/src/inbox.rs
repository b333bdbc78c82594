//! The inbox's files: which are followed and under which name, the epochs
//! new ones get, files that left the inbox (renamed away, archived while the
//! producer was down), `--archive-after`'s hand-off to the archive, and the
//! release of files that left once nothing of them is at risk.
//!
//! The loop calls these steps in turn; what they change besides the inbox's
//! own state (saved positions, metrics, `/status`) it lends them as
//! [`Bookkeeping`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use globset::GlobMatcher;
use schema::message::EpochOutOfRange;
use tracing::{info, warn};

use crate::archive::{copy_of, ArchiveFolder, Moved};
use crate::config::Config;
use crate::epoch_floor::EpochFloorReader;
use crate::error::ProducerError;
use crate::events::{FileArchived, FileFollowed, FileMissing, FileRenamed, FileUnreadable};
use crate::followed::Followed;
use crate::identity::{FileIdentity, FileKey};
use crate::metrics::ProducerMetrics;
use crate::positions::{DeliveredPosition, PositionStore, TrackedFile};
use crate::status::StatusBoard;
use crate::tailer::{start_point, FileTailer, StartPoint, TailerSettings};

/// How long the same read may take before new files get their epochs; past
/// it (Kafka away) they get them from the counter and the clock alone.
const EPOCH_REFRESH_TIMEOUT: Duration = Duration::from_secs(2);

/// What the inbox's steps change outside the inbox, lent by the producer for
/// one step: a file followed, moved or released changes its saved position,
/// the metrics and what `/status` says.
pub struct Bookkeeping<'a> {
    /// The files' delivered positions and the epoch counter.
    pub store: &'a mut PositionStore,
    /// Where the inbox's events are counted.
    pub metrics: &'a ProducerMetrics,
    /// Where a file that cannot be opened or listed is named.
    pub status: &'a StatusBoard,
}

/// The files followed from the inbox, and what the inbox needs to find,
/// follow, archive and release them.
pub struct Inbox {
    /// `--inbox`: the folder listed on every pass of the loop.
    folder: PathBuf,
    /// `--pattern`: which of the folder's files are orders.
    matcher: GlobMatcher,
    /// How every followed file is read.
    settings: TailerSettings,
    /// `--archive-dir`, checked at start.
    archive: Option<ArchiveFolder>,
    /// `--archive-after`: how long a delivered file stays unchanged before it is archived.
    archive_after: Option<Duration>,
    /// `--close-inactive`: how long a file that left stays unchanged before it is released.
    close_inactive: Duration,
    /// The orders and dead-letter topics, whose highest epoch new files stay above.
    topics: [String; 2],
    /// Reads the highest epoch on the topics before new files get theirs.
    epoch_floor: Arc<EpochFloorReader>,
    /// Every followed file, by identity: in the inbox, or left it and not
    /// yet released. The loop reads them and counts their confirmations.
    pub followed: BTreeMap<FileKey, Followed>,
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
}

impl Inbox {
    /// An inbox with no file followed yet; the first [`Inbox::discover`]
    /// (after [`Inbox::find_files_that_left_the_inbox`]) finds them.
    pub fn new(config: &Config, archive: Option<ArchiveFolder>, epoch_floor: Arc<EpochFloorReader>) -> Inbox {
        Inbox {
            folder: config.inbox.clone(),
            matcher: config.matcher(),
            settings: config.tailer_settings(),
            archive,
            archive_after: config.archive_after,
            close_inactive: config.close_inactive,
            topics: [config.kafka.topic.name.clone(), config.kafka.dlq_topic.name.clone()],
            epoch_floor,
            followed: BTreeMap::new(),
            unreadable: BTreeMap::new(),
            unarchivable: BTreeSet::new(),
            epochs_exhausted: None,
        }
    }

    /// Why a file could not get an epoch, once: the loop then stops with
    /// [`ProducerError::NoEpochLeft`].
    pub fn take_epochs_exhausted(&mut self) -> Option<EpochOutOfRange> {
        self.epochs_exhausted.take()
    }

    /// Inbox files that cannot be opened, with why, for `/status`.
    pub fn unreadable(&self) -> &BTreeMap<PathBuf, String> {
        &self.unreadable
    }

    /// Starts following new matching files, notes renames, and detaches
    /// files that no longer match.
    pub fn discover(&mut self, books: &mut Bookkeeping<'_>) {
        let listing = match std::fs::read_dir(&self.folder) {
            Ok(listing) => listing,
            Err(error) => {
                warn!(message = "Cannot list the inbox; will retry.", inbox = %self.folder.display(), %error);
                books.status.last_error.set(&format!("cannot list the inbox {}: {error}", self.folder.display()));
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
            self.refresh_epoch_floor(books);
        }
        let listed: BTreeSet<PathBuf> = files.iter().map(|(path, _)| path.clone()).collect();
        self.unreadable.retain(|path, _| listed.contains(path));
        for (path, metadata) in files {
            let key = (metadata.dev(), metadata.ino());
            present.insert(key);
            match self.followed.get_mut(&key) {
                Some(followed) if followed.tailer.path() != path => {
                    FileRenamed { from: followed.tailer.path(), to: &path }.emit(books.metrics);
                    followed.tailer.set_path(&path);
                    followed.detached_since = None;
                    books.store.moved(key, &path);
                }
                Some(_) => {}
                None => self.follow(&path, false, books),
            }
        }
        for (key, followed) in &mut self.followed {
            if !present.contains(key) && followed.detached_since.is_none() {
                info!(message = "File left the inbox; following it until it is delivered and inactive.",
                      file = %followed.tailer.path().display(),
                      close_inactive = ?self.close_inactive);
                followed.detached_since = Some(Instant::now());
            }
        }
        books.metrics.files_tracked.set(self.followed.len() as i64);
        books.metrics.unreadable_files.set(self.unreadable.len() as i64);
    }

    /// At start: files whose delivery was recorded but that are no longer in
    /// the inbox (moved to the archive, renamed away, or deleted while the
    /// producer was down). Those found in `--archive-dir`, by device and
    /// inode or, moved from another filesystem, by name and content, are
    /// followed there until delivered; the others are reported and
    /// forgotten, since nothing of them can be read any more. An archive
    /// that cannot be listed stops the start: it would forget them all.
    pub fn find_files_that_left_the_inbox(&mut self, books: &mut Bookkeeping<'_>) -> Result<(), ProducerError> {
        let in_inbox: BTreeSet<FileKey> = match std::fs::read_dir(&self.folder) {
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
            books.store.files().filter(|file| !in_inbox.contains(&file.identity.key())).cloned().collect();
        let by_key: BTreeMap<FileKey, &PathBuf> =
            archived.iter().map(|(path, metadata)| ((metadata.dev(), metadata.ino()), path)).collect();
        let (same_inode, moved_away): (Vec<TrackedFile>, Vec<TrackedFile>) =
            gone.into_iter().partition(|tracked| by_key.contains_key(&tracked.identity.key()));
        for tracked in &same_inode {
            let path = by_key[&tracked.identity.key()];
            info!(message = "Tracked file found in the archive; finishing its delivery there.",
                  file = %path.display(), was = %tracked.path.display());
            self.follow(path, true, books);
        }
        // Copies are looked for among files no tracked file owns by inode.
        let owned: BTreeSet<FileKey> = books.store.files().map(|tracked| tracked.identity.key()).collect();
        let mut unowned: Vec<_> =
            archived.into_iter().filter(|(_, metadata)| !owned.contains(&(metadata.dev(), metadata.ino()))).collect();
        for tracked in moved_away {
            self.follow_copy_or_forget(&tracked, &mut unowned, books);
        }
        Ok(())
    }

    /// A tracked file whose device and inode are nowhere: follows its copy
    /// in the archive (a move from another filesystem), found by name and
    /// content, from the delivered position; or reports and forgets it.
    fn follow_copy_or_forget(
        &mut self,
        tracked: &TrackedFile,
        unowned: &mut Vec<(PathBuf, std::fs::Metadata)>,
        books: &mut Bookkeeping<'_>,
    ) {
        match copy_of(tracked, unowned) {
            Ok(Some((path, file, copy))) => {
                info!(message = "Tracked file found copied into the archive; finishing its delivery there.",
                      file = %path.display(), was = %tracked.path.display(),
                      delivered_bytes = tracked.delivered.offset);
                unowned.retain(|(candidate, _)| *candidate != path);
                books.store.forget(tracked.identity.key());
                self.follow_resumed(&path, file, copy, true, books);
            }
            Ok(None) => {
                FileMissing { file: &tracked.path, delivered_bytes: tracked.delivered.offset }.emit(books.metrics);
                books.store.forget(tracked.identity.key());
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
    pub fn refresh_epoch_floor(&mut self, books: &mut Bookkeeping<'_>) {
        let topics = self.topics.each_ref().map(String::as_str);
        let highest =
            tokio::task::block_in_place(|| self.epoch_floor.highest_epoch_on_topics(&topics, EPOCH_REFRESH_TIMEOUT));
        match highest {
            Ok(Some(epoch)) => books.store.raise_floor(epoch),
            Ok(None) => {}
            Err(error) => {
                books.metrics.epoch_floor_errors.inc();
                books.status.last_error.set(&format!("cannot read the highest epoch on the topics: {error}"));
                warn!(message = "Cannot read the highest epoch on the topics; new files are versioned by this producer's counter and clock.", %error);
            }
        }
    }

    /// Opens a newly found file and decides where reading starts; `detached`
    /// for a file found outside the inbox (in the archive).
    fn follow(&mut self, path: &Path, detached: bool, books: &mut Bookkeeping<'_>) {
        let opened = File::open(path).and_then(|file| {
            let identity = FileIdentity::of(&file)?;
            let start = start_point(&file, books.store.get(identity.key()))?;
            Ok((file, identity, start))
        });
        let (file, identity, start) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                if self.unreadable.insert(path.to_path_buf(), error.to_string()).is_none() {
                    FileUnreadable { file: path, error: &error }.emit();
                    books.status.last_error.set(&format!("cannot open {}: {error}", path.display()));
                }
                return;
            }
        };
        self.unreadable.remove(path);
        let tracked = match (start, books.store.get(identity.key())) {
            (StartPoint::Resumed, Some(known)) => TrackedFile { path: path.to_path_buf(), ..known.clone() },
            _ => {
                let Some(epoch) = self.new_epoch(books) else { return };
                TrackedFile { path: path.to_path_buf(), identity, epoch, delivered: DeliveredPosition::default() }
            }
        };
        FileFollowed { file: path, start }.emit(books.metrics);
        self.start_tailing(path, file, tracked, detached, books);
    }

    /// Follows a file from the position `tracked` holds, already checked
    /// against its bytes (a copy found in the archive).
    fn follow_resumed(
        &mut self,
        path: &Path,
        file: File,
        tracked: TrackedFile,
        detached: bool,
        books: &mut Bookkeeping<'_>,
    ) {
        FileFollowed { file: path, start: StartPoint::Resumed }.emit(books.metrics);
        self.start_tailing(path, file, tracked, detached, books);
    }

    /// Starts tailing an open file and tracks it under its identity.
    fn start_tailing(
        &mut self,
        path: &Path,
        file: File,
        tracked: TrackedFile,
        detached: bool,
        books: &mut Bookkeeping<'_>,
    ) {
        let key = tracked.identity.key();
        match FileTailer::new(path, file, &tracked, self.settings.clone()) {
            Ok(tailer) => {
                books.store.track(tracked);
                self.followed.insert(key, Followed::new(tailer, detached));
            }
            Err(error) => warn!(message = "Cannot resume file; will retry.", file = %path.display(), %error),
        }
    }

    /// A new file epoch, or `None` when none is left: then the loop stops
    /// (see [`Inbox::epochs_exhausted`]) rather than version the file by
    /// wrapping below every record already stored.
    pub fn new_epoch(&mut self, books: &mut Bookkeeping<'_>) -> Option<u64> {
        match books.store.allocate_epoch(Utc::now()) {
            Ok(epoch) => Some(epoch),
            Err(refused) => {
                self.epochs_exhausted = Some(refused);
                None
            }
        }
    }

    /// `--archive-after`: moves inbox files that are fully delivered and
    /// have not changed for that long into `--archive-dir` (see
    /// [`ArchiveFolder::move_in`]). The file stays followed (detached) through
    /// its open handle until `--close-inactive` releases it; after a copy to
    /// another filesystem its saved position names the copy, which a restart
    /// finds by name and content.
    pub fn archive_finished(&mut self, books: &mut Bookkeeping<'_>) {
        let Some(after) = self.archive_after else { return };
        let due = |followed: &Followed| {
            followed.detached_since.is_none() && followed.fully_delivered() && followed.idle_for() >= after
        };
        // A file leaves the inbox only once its delivered position is on
        // disk: else a crash after a copy would leave an untracked inbox
        // file, read again as new, beside its archived copy.
        if !self.followed.values().any(due) || (books.store.is_dirty() && books.store.persist().is_err()) {
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
                    FileArchived { from: &from, to: &to }.emit(books.metrics);
                    followed.tailer.set_path(&to);
                    followed.detached_since = Some(Instant::now());
                    books.store.moved(*key, &to);
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
    pub fn release_finished(&mut self, books: &mut Bookkeeping<'_>) {
        let close_inactive = self.close_inactive;
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
            books.store.forget(key);
        }
        books.metrics.files_tracked.set(self.followed.len() as i64);
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
}
