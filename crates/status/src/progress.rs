//! `--progress STATE_FILE`: one line saying how far a load is — orders in
//! PostgreSQL of the lines to load, the rate, the time left — for `make run`
//! to print while it waits. The rate needs earlier samples: they are kept in
//! the state file between calls, with the line count of the inbox (counted
//! again only when a file's size changed).

use std::io::Read;
use std::path::{Path, PathBuf};

use globset::GlobMatcher;
use serde::{Deserialize, Serialize};

use crate::inbox::inbox_files;
use crate::report::{Report, Verdict};

/// How far back the rate looks, in milliseconds.
const RATE_WINDOW_MS: i64 = 10_000;

/// What is kept between calls.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ProgressState {
    /// (milliseconds since the epoch, orders in PostgreSQL), oldest first.
    samples: Vec<(i64, i64)>,
    /// The inbox's files and sizes when its lines were counted, and the count.
    counted: Option<(Vec<(PathBuf, u64)>, u64)>,
}

/// Builds the progress line and updates the state file.
pub fn progress_line(report: &Report, state_file: &Path, inbox: &Path, matcher: &GlobMatcher) -> String {
    let mut state: ProgressState =
        std::fs::read(state_file).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
    let files = inbox_files(inbox, matcher);
    let lines = match &state.counted {
        Some((counted, lines)) if *counted == files => *lines,
        _ => {
            let lines = files.iter().map(|(path, _)| data_lines(path)).sum();
            state.counted = Some((files, lines));
            lines
        }
    };
    let Some(orders) = report.orders else {
        return format!("progress: {}", report.unreachable.join("; "));
    };
    let now = chrono::Utc::now().timestamp_millis();
    state.samples.push((now, orders));
    while state.samples.len() > 2 && now - state.samples[1].0 >= RATE_WINDOW_MS {
        state.samples.remove(0);
    }
    let rate = rate(&state.samples);
    let _ = std::fs::write(state_file, serde_json::to_vec(&state).unwrap_or_default());
    describe(report, orders, lines, rate)
}

/// Orders per second between the oldest and newest samples.
fn rate(samples: &[(i64, i64)]) -> f64 {
    match (samples.first(), samples.last()) {
        (Some((from_ms, from)), Some((to_ms, to))) if to_ms > from_ms => {
            (to - from).max(0) as f64 * 1000.0 / (to_ms - from_ms) as f64
        }
        _ => 0.0,
    }
}

fn describe(report: &Report, orders: i64, lines: u64, rate: f64) -> String {
    let percent = if lines == 0 { 100.0 } else { (orders as f64 * 100.0 / lines as f64).min(100.0) };
    let mut line =
        format!("progress: {orders} orders in PostgreSQL of {lines} lines to load ({percent:.1}%), {rate:.0} orders/s");
    match report.state {
        Verdict::CaughtUp => line.push_str(", caught up"),
        _ => {
            let left = (lines as i64 - orders).max(0) as f64;
            if rate > 0.0 && left > 0.0 {
                line.push_str(&format!(", about {:.0} s left", (left / rate).ceil()));
            }
            line.push_str(&format!(
                "; waiting: {}",
                report.unreachable.iter().chain(&report.problems).cloned().collect::<Vec<_>>().join("; ")
            ));
        }
    }
    line
}

/// Complete lines of a file, less its header line if it has one (a first
/// line naming the `id` column).
pub fn data_lines(path: &Path) -> u64 {
    let Ok(mut file) = std::fs::File::open(path) else { return 0 };
    let mut buffer = vec![0u8; 256 * 1024];
    let (mut lines, mut first_line, mut at_start) = (0u64, Vec::new(), true);
    while let Ok(read) = file.read(&mut buffer) {
        if read == 0 {
            break;
        }
        let chunk = &buffer[..read];
        if at_start {
            let end = chunk.iter().position(|&b| b == b'\n').unwrap_or(chunk.len());
            first_line.extend_from_slice(&chunk[..end.min(64)]);
            at_start = false;
        }
        lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    let header = first_line.starts_with(b"id,") || first_line.starts_with(b"\xEF\xBB\xBFid,");
    lines.saturating_sub(u64::from(header && lines > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_lines_are_complete_lines_without_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let with_header = dir.path().join("a.csv");
        std::fs::write(&with_header, "id,user_id\n1,2\n3,4\n5,").unwrap();
        assert_eq!(data_lines(&with_header), 2, "the unfinished last line is not counted yet");
        let headerless = dir.path().join("b.csv");
        std::fs::write(&headerless, "1,2\n3,4\n").unwrap();
        assert_eq!(data_lines(&headerless), 2);
    }

    #[test]
    fn rate_is_between_the_oldest_and_newest_samples() {
        assert_eq!(rate(&[(0, 0), (1_000, 100), (2_000, 400)]), 200.0);
        assert_eq!(rate(&[(0, 5)]), 0.0);
    }
}
