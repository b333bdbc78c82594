//! The verdict: one line per export, the lines to look at, a total, the
//! exit code; as text for people and JSON for scripts.

use std::fmt::Write;

use serde::Serialize;

use crate::account::{FileAccount, NamedLine};

/// Exit code when every line is accounted for and no row was altered.
pub const ALL_ACCOUNTED: i32 = 0;
/// Exit code when a line is missing or a row altered.
pub const LINES_MISSING: i32 = 1;
/// Exit code when an export or the database could not be read.
pub const CANNOT_VERIFY: i32 = 2;

/// An export that could not be read: it is not verified, and says why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    /// The export.
    pub file: String,
    /// Why.
    pub error: String,
}

/// Every export's account and their total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// One account per export, in the order verified.
    pub files: Vec<FileAccount>,
    /// The sum over every export.
    pub total: FileAccount,
    /// Records on the orders topic not yet applied; `None` when Kafka did
    /// not answer (lines delivered and not stored then count as missing).
    pub consumer_lag: Option<i64>,
    /// Exports that could not be read.
    pub unreadable: Vec<Unreadable>,
}

impl Report {
    /// Adds one export's account.
    pub fn push(&mut self, account: FileAccount) {
        self.total.add(&account);
        self.files.push(account);
    }

    /// 0 when everything is accounted for, 1 when a line is missing or a
    /// row altered, 2 when an export could not be read.
    pub fn exit_code(&self) -> i32 {
        if !self.unreadable.is_empty() {
            CANNOT_VERIFY
        } else if self.total.missing > 0 || self.total.altered > 0 {
            LINES_MISSING
        } else {
            ALL_ACCOUNTED
        }
    }

    /// The text for people: a table, then the lines to look at, then the verdict.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<40} {:>9} {:>9} {:>10} {:>14} {:>9} {:>7} {:>7}",
            "file", "lines", "stored", "superseded", "dead-lettered", "in flight", "altered", "missing"
        );
        for account in self.files.iter().chain(std::iter::once(&self.total)) {
            let name = if std::ptr::eq(account, &self.total) { "total" } else { account.file.as_str() };
            let _ = writeln!(
                out,
                "{:<40} {:>9} {:>9} {:>10} {:>14} {:>9} {:>7} {:>7}",
                name,
                account.lines,
                account.stored,
                account.superseded,
                format!("{} ({} pending)", account.dead_lettered, account.dead_lettered_pending),
                account.in_flight(),
                account.altered,
                account.missing
            );
        }
        for account in &self.files {
            name_lines(&mut out, &account.file, "missing", account.missing, &account.first_missing);
            name_lines(&mut out, &account.file, "altered", account.altered, &account.first_altered);
        }
        for unreadable in &self.unreadable {
            let _ = writeln!(out, "{}: not verified: {}", unreadable.file, unreadable.error);
        }
        out.push_str(&self.verdict());
        out.push('\n');
        out
    }

    fn verdict(&self) -> String {
        let total = &self.total;
        let lag = match self.consumer_lag {
            Some(lag) => format!("consumer lag {lag}"),
            None => "consumer lag unknown (Kafka did not answer)".to_string(),
        };
        match self.exit_code() {
            ALL_ACCOUNTED => format!("every line is accounted for ({} in flight, {lag})", total.in_flight()),
            LINES_MISSING => format!(
                "{} line(s) missing, {} altered ({lag}): `make replay FILE=…` brings back rows deleted from the \
                 database; see docs/verify.md",
                total.missing, total.altered
            ),
            _ => format!("{} export(s) could not be read", self.unreadable.len()),
        }
    }
}

fn name_lines(out: &mut String, file: &str, what: &str, count: u64, first: &[NamedLine]) {
    if count == 0 {
        return;
    }
    let named: Vec<String> = first
        .iter()
        .map(|line| match line.order_id {
            Some(id) => format!("line {} (order {id})", line.line),
            None => format!("line {} (no valid order)", line.line),
        })
        .collect();
    let more =
        if count > first.len() as u64 { format!(", … {} more", count - first.len() as u64) } else { String::new() };
    let _ = writeln!(out, "{file}: {what}: {}{more}", named.join(", "));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_lines_are_named_and_make_the_exit_code_one() {
        let mut report = Report { consumer_lag: Some(0), ..Report::default() };
        let mut account = FileAccount::new("/inbox/a.csv".into(), Some(70));
        account.lines = 3;
        account.stored = 2;
        account.missing = 1;
        account.first_missing.push(NamedLine { line: 3, offset: 90, order_id: Some(2), won_by: None });
        report.push(account);
        assert_eq!(report.exit_code(), LINES_MISSING);
        let text = report.render();
        assert!(text.contains("/inbox/a.csv: missing: line 3 (order 2)"), "{text}");
        assert!(text.contains("1 line(s) missing"), "{text}");
    }

    #[test]
    fn nothing_missing_nor_altered_exits_zero_and_unreadable_exits_two() {
        let mut report = Report::default();
        report.push(FileAccount::new("a.csv".into(), None));
        assert_eq!(report.exit_code(), ALL_ACCOUNTED);
        report.unreadable.push(Unreadable { file: "b.csv".into(), error: "gone".into() });
        assert_eq!(report.exit_code(), CANNOT_VERIFY);
    }
}
