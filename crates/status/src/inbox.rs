//! The inbox as the status sees it: its matching files and their sizes.

use std::path::{Path, PathBuf};

use globset::GlobMatcher;

/// The inbox's matching files and their sizes, by name.
pub(crate) fn inbox_files(inbox: &Path, matcher: &GlobMatcher) -> Vec<(PathBuf, u64)> {
    let Ok(listing) = std::fs::read_dir(inbox) else { return Vec::new() };
    let mut files: Vec<(PathBuf, u64)> = listing
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.file_name().is_some_and(|name| matcher.is_match(name)))
        .filter_map(|path| std::fs::metadata(&path).ok().filter(|m| m.is_file()).map(|m| (path, m.len())))
        .collect();
    files.sort();
    files
}
