//! Which file a path holds: device, inode and a checksum of its first bytes.
//!
//! Every export starts with the same header line, so a checksum of the first
//! line alone cannot tell files apart; the inode can, and the checksum of the
//! first bytes guards against an inode reused after a delete. A rename keeps
//! both, so a renamed file keeps its identity and its position.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use serde::{Deserialize, Serialize};

/// How many leading bytes the checksum covers once the file is that long.
pub const HEAD_BYTES: u64 = 4096;

/// The device and inode of a file: the key under which its position is kept.
pub type FileKey = (u64, u64);

/// A file's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    /// Device of the file.
    pub device: u64,
    /// Inode of the file.
    pub inode: u64,
    /// How many leading bytes `head_crc` covers: up to [`HEAD_BYTES`], fewer
    /// while the file was shorter.
    pub head_len: u64,
    /// CRC-32 of the first `head_len` bytes.
    pub head_crc: u32,
}

impl FileIdentity {
    /// The identity of an open file as it is now.
    pub fn of(file: &File) -> io::Result<FileIdentity> {
        let metadata = file.metadata()?;
        let head_len = metadata.len().min(HEAD_BYTES);
        let head_crc = crc_of_range(file, 0, head_len)?.unwrap_or(0);
        Ok(FileIdentity { device: metadata.dev(), inode: metadata.ino(), head_len, head_crc })
    }

    /// The key of the file this identity names.
    pub fn key(&self) -> FileKey {
        (self.device, self.inode)
    }

    /// Whether `current` (read now) is the same file with the same first
    /// bytes as `self` (recorded earlier); the file may have grown since.
    pub fn same_file(&self, current: &File) -> io::Result<bool> {
        let metadata = current.metadata()?;
        if (metadata.dev(), metadata.ino()) != self.key() {
            return Ok(false);
        }
        Ok(crc_of_range(current, 0, self.head_len)? == Some(self.head_crc))
    }

    /// The fingerprint carried in every record's headers.
    pub fn fingerprint(&self) -> String {
        format!("{:x}:{:x}:{:08x}", self.device, self.inode, self.head_crc)
    }
}

/// The first bytes of a file, up to [`HEAD_BYTES`]: what replay needs to
/// recognise the checksum the file had when it was first read, shorter.
pub fn head_of(file: &File) -> io::Result<Vec<u8>> {
    let len = file.metadata()?.len().min(HEAD_BYTES) as usize;
    let mut head = vec![0; len];
    let mut done = 0;
    while done < len {
        match file.read_at(&mut head[done..], done as u64)? {
            0 => break,
            read => done += read,
        }
    }
    head.truncate(done);
    Ok(head)
}

/// The checksum of every prefix of `head`, the empty one included: a file
/// first read while shorter than [`HEAD_BYTES`] (or while half a line was
/// written) carries the checksum of one of them in its fingerprint. One pass,
/// incremental: 4 KiB of bytes, 4,097 checksums.
pub fn prefix_checksums(head: &[u8]) -> HashSet<u32> {
    let mut hasher = crc32fast::Hasher::new();
    let mut checksums = HashSet::with_capacity(head.len() + 1);
    checksums.insert(hasher.clone().finalize());
    for byte in head {
        hasher.update(std::slice::from_ref(byte));
        checksums.insert(hasher.clone().finalize());
    }
    checksums
}

/// How many bytes [`crc_of_range`] reads at a time: whatever the range's
/// length, the check holds no more than this.
const CRC_CHUNK: usize = 64 * 1024;

/// CRC-32 of `len` bytes at `start`; `None` if the file is shorter than that.
/// Streams: memory stays at `CRC_CHUNK` however long the range.
pub fn crc_of_range(file: &File, start: u64, len: u64) -> io::Result<Option<u32>> {
    let mut chunk = vec![0; CRC_CHUNK.min(len as usize)];
    let mut hasher = crc32fast::Hasher::new();
    let mut done = 0;
    while done < len {
        let want = (len - done).min(chunk.len() as u64) as usize;
        match file.read_at(&mut chunk[..want], start + done)? {
            0 => return Ok(None),
            read => {
                hasher.update(&chunk[..read]);
                done += read as u64;
            }
        }
    }
    Ok(Some(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(dir: &tempfile::TempDir, name: &str, text: &[u8]) -> File {
        let path = dir.path().join(name);
        std::fs::File::create(&path).unwrap().write_all(text).unwrap();
        File::open(path).unwrap()
    }

    #[test]
    fn files_with_the_same_first_bytes_are_distinct() {
        let dir = tempfile::tempdir().unwrap();
        let a = FileIdentity::of(&file_with(&dir, "a.csv", b"id,user_id\n1,2\n")).unwrap();
        let b = FileIdentity::of(&file_with(&dir, "b.csv", b"id,user_id\n1,2\n")).unwrap();
        assert_eq!(a.head_crc, b.head_crc);
        assert_ne!(a.key(), b.key());
    }

    #[test]
    fn a_grown_file_is_still_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let identity = FileIdentity::of(&file_with(&dir, "a.csv", b"id\n1\n")).unwrap();
        std::fs::OpenOptions::new().append(true).open(dir.path().join("a.csv")).unwrap().write_all(b"2\n").unwrap();
        assert!(identity.same_file(&File::open(dir.path().join("a.csv")).unwrap()).unwrap());
    }

    #[test]
    fn rewritten_head_is_another_file() {
        let dir = tempfile::tempdir().unwrap();
        let identity = FileIdentity::of(&file_with(&dir, "a.csv", b"id\n1\n")).unwrap();
        let rewritten = std::fs::OpenOptions::new().write(true).open(dir.path().join("a.csv")).unwrap();
        rewritten.write_at(b"xx", 0).unwrap();
        assert!(!identity.same_file(&File::open(dir.path().join("a.csv")).unwrap()).unwrap());
    }

    #[test]
    fn range_checksum_streams_and_equals_the_checksum_of_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..CRC_CHUNK * 3 + 17).map(|i| (i % 251) as u8).collect();
        let file = file_with(&dir, "a.csv", &bytes);
        assert_eq!(crc_of_range(&file, 5, bytes.len() as u64 - 5).unwrap(), Some(crc32fast::hash(&bytes[5..])));
        assert_eq!(crc_of_range(&file, 0, 0).unwrap(), Some(crc32fast::hash(b"")));
        assert_eq!(crc_of_range(&file, 5, bytes.len() as u64).unwrap(), None, "past the end");
    }

    #[test]
    fn the_checksum_a_grown_file_had_when_shorter_is_among_its_prefix_checksums() {
        let dir = tempfile::tempdir().unwrap();
        let identity = FileIdentity::of(&file_with(&dir, "a.csv", b"id\n1\n")).unwrap();
        std::fs::OpenOptions::new().append(true).open(dir.path().join("a.csv")).unwrap().write_all(b"2\n").unwrap();
        let head = head_of(&File::open(dir.path().join("a.csv")).unwrap()).unwrap();
        assert_eq!(head, b"id\n1\n2\n");
        let prefixes = prefix_checksums(&head);
        assert!(prefixes.contains(&identity.head_crc));
        assert!(prefixes.contains(&crc32fast::hash(b"")), "a file first seen empty");
        assert!(!prefixes.contains(&crc32fast::hash(b"id\n9\n")));
    }

    #[test]
    fn the_head_read_for_replay_stops_at_head_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let long = vec![b'x'; HEAD_BYTES as usize + 10];
        let head = head_of(&file_with(&dir, "a.csv", &long)).unwrap();
        assert_eq!(head.len() as u64, HEAD_BYTES);
        assert_eq!(prefix_checksums(&head).len(), 1 + HEAD_BYTES as usize, "every prefix, none twice here");
    }

    #[test]
    fn head_checksum_stops_at_head_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let long = vec![b'x'; HEAD_BYTES as usize + 10];
        let identity = FileIdentity::of(&file_with(&dir, "a.csv", &long)).unwrap();
        assert_eq!(identity.head_len, HEAD_BYTES);
    }
}
