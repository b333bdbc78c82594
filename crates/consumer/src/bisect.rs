//! Finds the rows a database refuses without giving up the rest of the batch.
//!
//! A batch whose write fails for a record-specific reason is split in halves,
//! each tried on its own (in a savepoint); a failing half is split again,
//! until the failing rows stand alone. A batch with one bad row among `n`
//! costs about `2·log2(n)` extra statements; the good rows are all written.
//!
//! Pure bookkeeping, so the plan is unit-tested without a database.

use std::ops::Range;

/// The state of one bisection over `len` rows.
#[derive(Debug)]
pub struct Bisection {
    /// Ranges still to try, the next on top.
    pending: Vec<Range<usize>>,
    /// Rows that failed on their own, with the database's reason.
    rejected: Vec<(usize, String)>,
}

impl Bisection {
    /// Starts with the whole batch as one range.
    pub fn new(len: usize) -> Self {
        let mut pending = Vec::new();
        if len > 0 {
            pending.push(0..len);
        }
        Bisection { pending, rejected: Vec::new() }
    }

    /// The next range to try, lowest rows first (so rows are written in id order).
    pub fn next_range(&mut self) -> Option<Range<usize>> {
        self.pending.pop()
    }

    /// Records that writing `range` failed: a single row is rejected, a
    /// larger range is split and both halves are tried.
    pub fn failed(&mut self, range: Range<usize>, reason: String) {
        if range.len() <= 1 {
            self.rejected.push((range.start, reason));
            return;
        }
        let middle = range.start + range.len() / 2;
        self.pending.push(middle..range.end);
        self.pending.push(range.start..middle);
    }

    /// The rejected rows, once no range is pending.
    pub fn into_rejected(self) -> Vec<(usize, String)> {
        self.rejected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a bisection against a fake database that refuses any range
    /// holding a bad row; returns (written rows, rejected rows, attempts).
    fn run(len: usize, bad: &[usize]) -> (Vec<usize>, Vec<usize>, usize) {
        let mut bisection = Bisection::new(len);
        let mut written = Vec::new();
        let mut attempts = 0;
        while let Some(range) = bisection.next_range() {
            attempts += 1;
            if range.clone().any(|row| bad.contains(&row)) {
                bisection.failed(range, "refused".into());
            } else {
                written.extend(range);
            }
        }
        (written, bisection.into_rejected().into_iter().map(|(row, _)| row).collect(), attempts)
    }

    #[test]
    fn a_clean_batch_is_written_in_one_attempt() {
        assert_eq!(run(1000, &[]), ((0..1000).collect(), vec![], 1));
    }

    #[test]
    fn one_bad_row_is_found_and_every_other_row_written_in_order() {
        let (written, rejected, attempts) = run(1000, &[613]);
        assert_eq!(rejected, vec![613]);
        assert_eq!(written, (0..1000).filter(|row| *row != 613).collect::<Vec<_>>());
        assert!(attempts <= 2 * 10 + 1, "{attempts} attempts");
    }

    #[test]
    fn several_bad_rows_are_all_found() {
        let (written, rejected, _) = run(64, &[0, 31, 32, 63]);
        assert_eq!(rejected, vec![0, 31, 32, 63]);
        assert_eq!(written.len(), 60);
    }

    #[test]
    fn a_single_bad_row_alone_is_rejected() {
        assert_eq!(run(1, &[0]), (vec![], vec![0], 1));
    }

    #[test]
    fn an_empty_batch_needs_no_attempt() {
        assert_eq!(run(0, &[]), (vec![], vec![], 0));
    }
}
