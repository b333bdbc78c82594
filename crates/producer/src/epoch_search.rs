//! Which epoch a file being replayed was first published with: the pure
//! half of `replay`'s search (the topics are read in [`crate::replay`]).
//!
//! Two steps, because a name and a few bytes can lie:
//! 1. *Candidates.* A record on the topics may be the file's when its
//!    fingerprint names the file's device and inode, or its `source_file`
//!    has the file's name (a copy), **and** the checksum in its fingerprint
//!    is that of one of the file's first 0 to 4,096 bytes: a file first read
//!    while shorter carries the checksum of the bytes it had then, so a file
//!    that grew since (or a copy of it) is still found.
//! 2. *Agreement.* Every record of a candidate epoch that lies within the
//!    file must be the file's record at that byte offset: same line number
//!    and same content (the order it decodes to; for a dead letter, its
//!    bytes). A later export with the same name and first bytes (a corrected
//!    re-export) has other content or other offsets after its first change,
//!    and is set aside: replaying an older copy with its epoch would make
//!    the copy's lines beat the correction.
//!
//! Of the candidates that agree, the one that has the most of the file's
//! lines is taken, and of those the highest epoch (the same file read again
//! after a lost state folder: same lines, and its rows were stored last).
//! When none agrees, nothing is chosen: the caller refuses and names them.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use schema::message::epoch_of_version;
use schema::Order;

/// What identifies the file being replayed among the topics' records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOrigin {
    /// Device of the file now.
    pub device: u64,
    /// Inode of the file now.
    pub inode: u64,
    /// Its file name (without folder): a copy keeps it.
    pub name: String,
    /// The checksum of each of its prefixes up to 4 KiB
    /// (`identity::prefix_checksums`): one of them is the one its
    /// fingerprint had when it was first read, however long it was then.
    pub head_checksums: HashSet<u32>,
}

/// Why a record was taken for the file's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MatchKind {
    /// Same file name and first bytes: a copy.
    NameAndHead,
    /// Same device and inode and first bytes: the file itself, renamed or not.
    Fingerprint,
}

impl fmt::Display for MatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchKind::Fingerprint => "by fingerprint",
            MatchKind::NameAndHead => "by file name and first bytes",
        })
    }
}

impl FileOrigin {
    /// Whether a record with this `source_fingerprint` and `source_file` may
    /// be the file's, and why.
    pub fn matches(&self, fingerprint: &str, file: Option<&str>) -> Option<MatchKind> {
        let (device, inode, head_crc) = parse_fingerprint(fingerprint)?;
        if !self.head_checksums.contains(&head_crc) {
            return None;
        }
        if (device, inode) == (self.device, self.inode) {
            Some(MatchKind::Fingerprint)
        } else if file.map(file_name) == Some(self.name.as_str()) {
            Some(MatchKind::NameAndHead)
        } else {
            None
        }
    }
}

/// The last part of a path.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `device:inode:head_crc`, hexadecimal (see `FileIdentity::fingerprint`).
fn parse_fingerprint(fingerprint: &str) -> Option<(u64, u64, u32)> {
    let mut parts = fingerprint.split(':');
    let device = u64::from_str_radix(parts.next()?, 16).ok()?;
    let inode = u64::from_str_radix(parts.next()?, 16).ok()?;
    let head_crc = u32::from_str_radix(parts.next()?, 16).ok()?;
    parts.next().is_none().then_some((device, inode, head_crc))
}

/// What a record says about its line's content, to compare with the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineContent {
    /// An order: the checksum of the order it decodes to ([`order_digest`]).
    Order(u32),
    /// A producer's dead letter: the checksum of the line's bytes it carries.
    Raw(u32),
    /// A consumer's dead letter (its value is the order record's, not the
    /// line): only its place is compared.
    Unchecked,
    /// A value on the orders topic that does not decode: it agrees with no line.
    Unreadable,
}

/// The checksum of an order's fields, compared between a record and a line:
/// the same whichever layout version the record was written with.
pub fn order_digest(order: &Order) -> u32 {
    crc32fast::hash(&serde_json::to_vec(order).expect("an order always serialises"))
}

/// The headers and content of one record on the topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRecord {
    /// `source_fingerprint`.
    pub fingerprint: Option<String>,
    /// `source_file`.
    pub file: Option<String>,
    /// `source_version`.
    pub version: Option<i64>,
    /// `byte_offset`: where the line starts in its file.
    pub offset: Option<u64>,
    /// `line`: its 1-based line number.
    pub line: Option<u64>,
    /// `read_at_ms`: when the producer read it.
    pub read_at_ms: Option<i64>,
    /// What it says the line held.
    pub content: LineContent,
}

/// One record of the file being replayed, as the producer reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLine {
    /// Where it starts.
    pub offset: u64,
    /// Its 1-based line number.
    pub line: u64,
    /// [`order_digest`] of the order it is, if it is a valid one.
    pub order: Option<u32>,
    /// The checksum of its bytes (what a dead letter of it carries).
    pub raw: u32,
}

/// What a candidate record says about one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Claim {
    line: Option<u64>,
    content: LineContent,
}

impl Claim {
    fn agrees_with(&self, line: &FileLine) -> bool {
        let same_line = self.line.is_none_or(|number| number == line.line);
        let same_content = match self.content {
            LineContent::Order(digest) => line.order == Some(digest),
            LineContent::Raw(crc) => line.raw == crc,
            LineContent::Unchecked => true,
            LineContent::Unreadable => false,
        };
        same_line && same_content
    }
}

/// Where a candidate epoch and the file part ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disagreement {
    /// Its record of the line at this offset has another line number or content.
    LineDiffers {
        /// The line's number in the file being replayed.
        line: u64,
    },
    /// It has a record starting at this offset; the file has no line starting there.
    NoLineAt {
        /// The byte offset.
        offset: u64,
    },
    /// None of its records lies within the file.
    NothingInCommon,
}

impl fmt::Display for Disagreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disagreement::LineDiffers { line } => write!(f, "line {line} differs"),
            Disagreement::NoLineAt { offset } => write!(f, "no line of the file starts at byte {offset}"),
            Disagreement::NothingInCommon => f.write_str("no line in common"),
        }
    }
}

/// One epoch whose records may be the file's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The epoch.
    pub epoch: u64,
    /// The strongest reason one of its records was taken.
    pub found_by: MatchKind,
    /// The `source_file` of its first record seen: where it was read from.
    pub file: String,
    /// The earliest `read_at_ms` among its records: when it was read.
    pub read_at_ms: Option<i64>,
    /// Its records not yet compared with the file, by byte offset.
    unchecked: BTreeMap<u64, Vec<Claim>>,
    /// How many of the file's lines it agrees with so far.
    pub lines_agreeing: u64,
    /// The first place it and the file part ways, if any.
    pub disagreement: Option<Disagreement>,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "epoch {} from {}", self.epoch, self.file)?;
        if let Some(read_at) = self.read_at_ms.and_then(chrono::DateTime::from_timestamp_millis) {
            write!(f, ", read {}", read_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))?;
        }
        match self.disagreement {
            Some(disagreement) => write!(f, " ({disagreement})"),
            None => write!(f, " (agrees on {} lines)", self.lines_agreeing),
        }
    }
}

/// The epoch chosen, and the others set aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    /// The epoch to replay with.
    pub epoch: u64,
    /// Why its records were taken for the file's.
    pub found_by: MatchKind,
    /// Every other candidate, agreeing or not.
    pub set_aside: Vec<Candidate>,
}

/// Every candidate epoch of a file, gathered from the topics and then
/// compared with the file's lines; see the module doc.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Candidates {
    by_epoch: BTreeMap<u64, Candidate>,
}

impl Candidates {
    /// Takes one record of the topics into account.
    pub fn note(&mut self, origin: &FileOrigin, seen: SeenRecord) {
        let (Some(fingerprint), Some(version)) = (&seen.fingerprint, seen.version) else { return };
        let Some(found_by) = origin.matches(fingerprint, seen.file.as_deref()) else { return };
        let epoch = epoch_of_version(version);
        let offset = seen.offset.unwrap_or(version as u64 & ((1 << schema::message::OFFSET_BITS) - 1));
        let candidate = self.by_epoch.entry(epoch).or_insert_with(|| Candidate {
            epoch,
            found_by,
            file: seen.file.clone().unwrap_or_default(),
            read_at_ms: seen.read_at_ms,
            unchecked: BTreeMap::new(),
            lines_agreeing: 0,
            disagreement: None,
        });
        candidate.found_by = candidate.found_by.max(found_by);
        candidate.read_at_ms = match (candidate.read_at_ms, seen.read_at_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        candidate.unchecked.entry(offset).or_default().push(Claim { line: seen.line, content: seen.content });
    }

    /// Whether no record on the topics may be the file's.
    pub fn is_empty(&self) -> bool {
        self.by_epoch.is_empty()
    }

    /// Compares one line of the file, in file order, with every candidate.
    pub fn compare(&mut self, line: &FileLine) {
        for candidate in self.by_epoch.values_mut() {
            if candidate.disagreement.is_some() {
                continue;
            }
            if let Some((&skipped, _)) = candidate.unchecked.range(..line.offset).next() {
                candidate.disagreement = Some(Disagreement::NoLineAt { offset: skipped });
                continue;
            }
            let Some(claims) = candidate.unchecked.remove(&line.offset) else { continue };
            if claims.iter().all(|claim| claim.agrees_with(line)) {
                candidate.lines_agreeing += 1;
            } else {
                candidate.disagreement = Some(Disagreement::LineDiffers { line: line.line });
            }
        }
    }

    /// Once every line of the file was compared, ending at byte `end` (after
    /// its last complete line): the epoch to replay with, or, when none
    /// agrees, every candidate with where it parts ways. Records past the
    /// file's end do not count against a candidate: a copy taken before
    /// lines were appended is still the file.
    pub fn choose(mut self, end: u64) -> Result<Chosen, Vec<Candidate>> {
        for candidate in self.by_epoch.values_mut() {
            if candidate.disagreement.is_none() {
                candidate.disagreement = match candidate.unchecked.range(..end).next() {
                    Some((&offset, _)) => Some(Disagreement::NoLineAt { offset }),
                    None if candidate.lines_agreeing == 0 => Some(Disagreement::NothingInCommon),
                    None => None,
                };
            }
        }
        let best = self
            .by_epoch
            .values()
            .filter(|candidate| candidate.disagreement.is_none())
            .max_by_key(|candidate| (candidate.lines_agreeing, candidate.epoch))
            .map(|candidate| (candidate.epoch, candidate.found_by));
        match best {
            Some((epoch, found_by)) => {
                self.by_epoch.remove(&epoch);
                Ok(Chosen { epoch, found_by, set_aside: self.by_epoch.into_values().collect() })
            }
            None => Err(self.by_epoch.into_values().collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::prefix_checksums;
    use schema::message::source_version;

    const HEAD: &[u8] = b"id,user_id\n1,10\n2,11\n";

    fn origin(file: &[u8]) -> FileOrigin {
        FileOrigin { device: 0x801, inode: 0x1f, name: "2022_07.csv".into(), head_checksums: prefix_checksums(file) }
    }

    fn fingerprint(inode: u64, head: &[u8]) -> String {
        format!("801:{inode:x}:{:08x}", crc32fast::hash(head))
    }

    fn order(id: i64) -> u32 {
        crc32fast::hash(format!("order {id}").as_bytes())
    }

    fn seen(fingerprint: &str, file: &str, epoch: u64, offset: u64, line: u64, id: i64) -> SeenRecord {
        SeenRecord {
            fingerprint: Some(fingerprint.into()),
            file: Some(file.into()),
            version: Some(source_version(epoch, offset).unwrap()),
            offset: Some(offset),
            line: Some(line),
            read_at_ms: Some(1_700_000_000_000),
            content: LineContent::Order(order(id)),
        }
    }

    fn line(offset: u64, line: u64, id: i64) -> FileLine {
        FileLine { offset, line, order: Some(order(id)), raw: 0 }
    }

    #[test]
    fn a_file_read_while_shorter_is_found_by_the_checksum_of_its_prefix() {
        let origin = origin(b"id,user_id\n1,10\n2,11\n3,12\n");
        assert_eq!(origin.matches(&fingerprint(0x1f, HEAD), Some("/inbox/x.csv")), Some(MatchKind::Fingerprint));
        assert_eq!(origin.matches(&fingerprint(0x99, HEAD), Some("/arch/2022_07.csv")), Some(MatchKind::NameAndHead));
        assert_eq!(origin.matches(&fingerprint(0x99, HEAD), Some("/arch/2022_08.csv")), None, "another name");
        assert_eq!(origin.matches(&fingerprint(0x1f, b"id,user_id\n9"), Some("/inbox/x.csv")), None);
        assert_eq!(origin.matches("not a fingerprint", Some("2022_07.csv")), None);
    }

    #[test]
    fn a_grown_file_agrees_with_its_records_and_takes_their_epoch() {
        let origin = origin(HEAD);
        let mut candidates = Candidates::default();
        for (offset, number, id) in [(11, 2, 1), (16, 3, 2)] {
            candidates.note(&origin, seen(&fingerprint(0x1f, HEAD), "/inbox/2022_07.csv", 70, offset, number, id));
        }
        for file_line in [line(11, 2, 1), line(16, 3, 2), line(21, 4, 3)] {
            candidates.compare(&file_line);
        }
        let chosen = candidates.choose(26).unwrap();
        assert_eq!((chosen.epoch, chosen.found_by), (70, MatchKind::Fingerprint));
    }

    #[test]
    fn a_corrected_reexport_with_the_same_head_is_set_aside_for_the_original() {
        let origin = origin(HEAD);
        let mut candidates = Candidates::default();
        let copy = fingerprint(0x99, HEAD);
        // The original: lines 2-4. The correction: line 3 shortened, so line 4 moved.
        for (offset, number, id) in [(11, 2, 1), (16, 3, 2), (21, 4, 3)] {
            candidates.note(&origin, seen(&copy, "/inbox/2022_07.csv", 70, offset, number, id));
        }
        for (offset, number, id) in [(11, 2, 1), (16, 3, 2), (20, 4, 3)] {
            candidates.note(&origin, seen(&copy, "/inbox/2022_07.csv", 90, offset, number, id));
        }
        for file_line in [line(11, 2, 1), line(16, 3, 2), line(21, 4, 3)] {
            candidates.compare(&file_line);
        }
        let chosen = candidates.choose(26).unwrap();
        assert_eq!(chosen.epoch, 70);
        assert_eq!(chosen.set_aside[0].epoch, 90);
        assert_eq!(chosen.set_aside[0].disagreement, Some(Disagreement::NoLineAt { offset: 20 }));
    }

    #[test]
    fn when_no_candidate_agrees_every_one_is_named_with_where_it_parts_ways() {
        let origin = origin(HEAD);
        let mut candidates = Candidates::default();
        let copy = fingerprint(0x99, HEAD);
        candidates.note(&origin, seen(&copy, "/inbox/2022_07.csv", 90, 16, 3, 22));
        candidates.note(&origin, seen(&copy, "/inbox/2022_07.csv", 95, 40, 5, 5));
        for file_line in [line(11, 2, 1), line(16, 3, 2), line(21, 4, 3)] {
            candidates.compare(&file_line);
        }
        let refused = candidates.choose(26).unwrap_err();
        let reasons: Vec<_> = refused.iter().map(|candidate| (candidate.epoch, candidate.disagreement)).collect();
        assert_eq!(
            reasons,
            [(90, Some(Disagreement::LineDiffers { line: 3 })), (95, Some(Disagreement::NothingInCommon))]
        );
        assert!(refused[0].to_string().starts_with("epoch 90 from /inbox/2022_07.csv, read 2023-11-14T22:13:20Z"));
    }

    #[test]
    fn of_agreeing_candidates_the_one_with_most_lines_then_the_highest_epoch_wins() {
        let origin = origin(HEAD);
        let mut candidates = Candidates::default();
        let file = fingerprint(0x1f, HEAD);
        // Read twice after a lost state folder (70, 80), and a shorter export (95).
        for epoch in [70, 80] {
            for (offset, number, id) in [(11, 2, 1), (16, 3, 2)] {
                candidates.note(&origin, seen(&file, "/inbox/2022_07.csv", epoch, offset, number, id));
            }
        }
        candidates.note(&origin, seen(&file, "/inbox/2022_07.csv", 95, 11, 2, 1));
        for file_line in [line(11, 2, 1), line(16, 3, 2)] {
            candidates.compare(&file_line);
        }
        let chosen = candidates.choose(21).unwrap();
        assert_eq!(chosen.epoch, 80);
        assert_eq!(chosen.set_aside.len(), 2);
    }

    #[test]
    fn a_dead_letter_agrees_by_its_bytes_and_a_consumer_one_by_its_place() {
        let origin = origin(HEAD);
        let mut candidates = Candidates::default();
        let file = fingerprint(0x1f, HEAD);
        let mut bad = seen(&file, "/inbox/2022_07.csv", 70, 11, 2, 0);
        bad.content = LineContent::Raw(crc32fast::hash(b"1,x"));
        let mut unwritable = seen(&file, "/inbox/2022_07.csv", 70, 16, 3, 0);
        unwritable.content = LineContent::Unchecked;
        candidates.note(&origin, bad);
        candidates.note(&origin, unwritable);
        candidates.compare(&FileLine { offset: 11, line: 2, order: None, raw: crc32fast::hash(b"1,x") });
        candidates.compare(&line(16, 3, 2));
        assert_eq!(candidates.choose(21).unwrap().epoch, 70);
    }

    #[test]
    fn records_past_the_end_of_the_file_do_not_count_against_it() {
        let origin = origin(HEAD);
        let mut candidates = Candidates::default();
        let file = fingerprint(0x1f, HEAD);
        for (offset, number, id) in [(11, 2, 1), (16, 3, 2), (21, 4, 3)] {
            candidates.note(&origin, seen(&file, "/inbox/2022_07.csv", 70, offset, number, id));
        }
        candidates.compare(&line(11, 2, 1));
        assert_eq!(candidates.choose(16).unwrap().epoch, 70, "a backup taken before line 3 was appended");
    }
}
