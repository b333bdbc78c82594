//! A steady load of order lines written into inbox files, each line recorded
//! in the [`Ledger`] with what it must become.
//!
//! Lines look like the seed exports (`2022-07-01 00:19`, shipping 2.5 or 6,
//! repeat customers). Some lines are newer versions of orders written in an
//! earlier, finished file; some break one validation rule each, on purpose.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;

use crate::ledger::{ExpectedRow, Ledger};

/// The header every file starts with.
pub const HEADER: &[u8] = b"id,user_id,completed_at,item_total,shipment_total\n";

/// Makes a line that breaks one rule, unique by its number.
type BadLine = fn(i64) -> Vec<u8>;

/// Each broken on purpose, with the reason the producer must give.
const BAD_LINES: [(&str, BadLine); 8] = [
    ("field_count", |n| format!("{n},1,2022-07-01 10:00,1.00").into_bytes()),
    ("invalid_id", |n| format!("id{n},1,2022-07-01 10:00,1.00,2.5").into_bytes()),
    ("invalid_timestamp", |n| format!("{n},1,yesterday,1.00,2.5").into_bytes()),
    ("future_timestamp", |n| format!("{n},1,2999-01-01 00:00,1.00,2.5").into_bytes()),
    ("invalid_amount", |n| format!("{n},1,2022-07-01 10:00,abc,2.5").into_bytes()),
    ("negative_amount", |n| format!("{n},1,2022-07-01 10:00,-1.00,2.5").into_bytes()),
    ("too_many_decimals", |n| format!("{n},1,2022-07-01 10:00,1.001,2.5").into_bytes()),
    ("invalid_utf8", |n| [format!("{n},1,2022-07-01 10:00,1.00,").into_bytes(), vec![0xff, 0xfe]].concat()),
];

/// Writes order files into an inbox and records every line in a ledger.
pub struct LoadWriter {
    inbox: PathBuf,
    prefix: String,
    ledger: Arc<Mutex<Ledger>>,
    rng: fastrand::Rng,
    next_id: i64,
    file_index: u32,
    lines_per_file: usize,
    lines_in_file: usize,
    current: Option<(PathBuf, File)>,
    /// Ids of finished files: a newer version may be written for them.
    finished_ids: Vec<i64>,
    ids_in_file: Vec<i64>,
    /// One line in this many breaks a rule (0: none).
    bad_every: u64,
    written: u64,
}

impl LoadWriter {
    /// A writer of files named `{prefix}-NNNN.csv`; its order ids start
    /// above `id_base`, so several writers never share an id.
    pub fn new(inbox: &Path, prefix: &str, ledger: Arc<Mutex<Ledger>>, seed: u64, id_base: i64) -> LoadWriter {
        LoadWriter {
            inbox: inbox.to_path_buf(),
            prefix: prefix.to_string(),
            ledger,
            rng: fastrand::Rng::with_seed(seed),
            next_id: id_base,
            file_index: 0,
            lines_per_file: 5_000,
            lines_in_file: 0,
            current: None,
            finished_ids: Vec::new(),
            ids_in_file: Vec::new(),
            bad_every: 50,
            written: 0,
        }
    }

    /// Lines per file before the writer moves on to a new file.
    pub fn lines_per_file(mut self, lines: usize) -> Self {
        self.lines_per_file = lines.max(1);
        self
    }

    /// One line in `every` breaks a rule; 0 writes only valid lines.
    pub fn bad_every(mut self, every: u64) -> Self {
        self.bad_every = every;
        self
    }

    /// Lines written by this writer.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The file being written, if any.
    pub fn current_file(&self) -> Option<&Path> {
        self.current.as_ref().map(|(path, _)| path.as_path())
    }

    /// Appends `count` lines (valid, newer versions and broken ones mixed).
    pub fn write_lines(&mut self, count: usize) -> io::Result<()> {
        let mut remaining = count;
        while remaining > 0 {
            if self.current.is_none() {
                self.open_next_file()?;
            }
            let room = (self.lines_per_file - self.lines_in_file).min(remaining);
            let mut buffer = Vec::with_capacity(room * 48);
            {
                let shared = self.ledger.clone();
                let mut ledger = shared.lock().unwrap();
                for _ in 0..room {
                    self.line(&mut ledger, &mut buffer);
                }
            }
            let (_, file) = self.current.as_mut().expect("opened above");
            file.write_all(&buffer)?;
            self.lines_in_file += room;
            self.written += room as u64;
            remaining -= room;
            if self.lines_in_file >= self.lines_per_file {
                self.finish_file();
            }
        }
        Ok(())
    }

    /// Writes `total` lines at `per_second`, in 20 slices a second.
    pub async fn steady(&mut self, total: u64, per_second: u64) -> io::Result<()> {
        let slice = (per_second / 20).max(1);
        let mut ticker = tokio::time::interval(Duration::from_millis(50));
        let mut left = total;
        while left > 0 {
            ticker.tick().await;
            let now = slice.min(left);
            self.write_lines(now as usize)?;
            left -= now;
        }
        Ok(())
    }

    /// Writes one whole new file of `count` new, valid orders; their ids.
    pub fn write_new_file(&mut self, count: usize) -> io::Result<Vec<i64>> {
        self.finish_file();
        let ids: Vec<i64> = (0..count)
            .map(|_| {
                self.next_id += 1;
                self.next_id
            })
            .collect();
        self.write_file_of(&ids)?;
        Ok(ids)
    }

    /// Writes one whole new file holding a newer version of each order.
    pub fn write_versions(&mut self, ids: &[i64]) -> io::Result<()> {
        self.finish_file();
        self.write_file_of(ids)
    }

    fn write_file_of(&mut self, ids: &[i64]) -> io::Result<()> {
        self.open_next_file()?;
        let mut buffer = Vec::new();
        {
            let ledger = self.ledger.clone();
            let mut ledger = ledger.lock().unwrap();
            for &id in ids {
                let (text, row) = self.order(id);
                ledger.valid(id, row);
                buffer.extend_from_slice(text.as_bytes());
            }
        }
        let (_, file) = self.current.as_mut().expect("opened above");
        file.write_all(&buffer)?;
        self.written += ids.len() as u64;
        self.current = None;
        Ok(())
    }

    /// One valid order line and what it must become, not written anywhere:
    /// for lines a scenario writes itself (in two parts, say).
    pub fn order_line(&mut self) -> (i64, String, ExpectedRow) {
        self.next_id += 1;
        let id = self.next_id;
        let (text, row) = self.order(id);
        (id, text, row)
    }

    /// Closes the current file; the next line starts a new one.
    pub fn finish_file(&mut self) {
        if self.current.take().is_some() {
            self.finished_ids.append(&mut self.ids_in_file);
            self.lines_in_file = 0;
        }
    }

    fn open_next_file(&mut self) -> io::Result<()> {
        self.file_index += 1;
        let path = self.inbox.join(format!("{}-{:04}.csv", self.prefix, self.file_index));
        let mut file = OpenOptions::new().create_new(true).append(true).open(&path)?;
        file.write_all(HEADER)?;
        self.current = Some((path, file));
        Ok(())
    }

    fn line(&mut self, ledger: &mut Ledger, out: &mut Vec<u8>) {
        self.next_id += 1;
        let serial = self.next_id;
        if self.bad_every > 0 && self.rng.u64(0..self.bad_every) == 0 {
            let (reason, make) = BAD_LINES[self.rng.usize(0..BAD_LINES.len())];
            let line = make(serial);
            ledger.rejected(&line, reason);
            out.extend_from_slice(&line);
            out.push(b'\n');
            return;
        }
        let id = if !self.finished_ids.is_empty() && self.rng.u8(0..20) == 0 {
            self.finished_ids[self.rng.usize(0..self.finished_ids.len())]
        } else {
            self.ids_in_file.push(serial);
            serial
        };
        let (text, row) = self.order(id);
        ledger.valid(id, row);
        out.extend_from_slice(text.as_bytes());
    }

    /// A random order shaped like the seed sample.
    fn order(&mut self, id: i64) -> (String, ExpectedRow) {
        let user_id = self.rng.i64(1..=4_000);
        let minutes = self.rng.i64(0..60 * 24 * 60);
        let day = NaiveDate::from_ymd_opt(2022, 7, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
        let completed = day + chrono::Duration::minutes(minutes);
        let cents = self.rng.i64(100..15_000);
        let (shipment_text, shipment) = match self.rng.u8(0..10) {
            0..=5 => ("2.5", Decimal::new(25, 1)),
            6..=8 => ("6", Decimal::new(6, 0)),
            _ => ("0", Decimal::ZERO),
        };
        let item = Decimal::new(cents, 2);
        let text = format!("{id},{user_id},{},{item},{shipment_text}\n", completed.format("%Y-%m-%d %H:%M"));
        let row = ExpectedRow {
            user_id,
            completed_at: Utc.from_utc_datetime(&completed),
            item_total: item,
            shipment_total: shipment,
        };
        (text, row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_written_line_is_in_the_ledger() {
        let inbox = tempfile::tempdir().unwrap();
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let mut writer = LoadWriter::new(inbox.path(), "t", ledger.clone(), 7, 0).lines_per_file(100).bad_every(10);
        writer.write_lines(1_000).unwrap();
        let ledger = ledger.lock().unwrap();
        let files: Vec<_> = std::fs::read_dir(inbox.path()).unwrap().collect();
        assert_eq!(files.len(), 10);
        let lines: usize = files
            .iter()
            .map(|f| std::fs::read(f.as_ref().unwrap().path()).unwrap().split(|&b| b == b'\n').count() - 2)
            .sum();
        assert_eq!(lines, 1_000);
        assert_eq!(ledger.lines_in, 1_000);
        let rejected: u32 = ledger.producer_dead_letters.values().sum();
        assert!(rejected > 50 && rejected < 150, "about one line in ten is broken: {rejected}");
        assert!(ledger.orders.len() + rejected as usize <= 1_000, "updates reuse ids");
    }

    #[test]
    fn newer_versions_only_target_finished_files() {
        let inbox = tempfile::tempdir().unwrap();
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let mut writer = LoadWriter::new(inbox.path(), "t", ledger.clone(), 3, 0).lines_per_file(500).bad_every(0);
        writer.write_lines(500).unwrap();
        assert_eq!(ledger.lock().unwrap().orders.len(), 500, "the first file holds only new orders");
        writer.write_lines(500).unwrap();
        let distinct = ledger.lock().unwrap().orders.len();
        assert!(distinct < 1_000, "the second file rewrote some orders of the first: {distinct}");
    }
}
