//! `orderstream-consumer dead-letters list` and `resolve`: the dead letters
//! of both stages, operable without SQL.
//!
//! A dead letter is *pending* while it needs someone: neither redriven (the
//! consumer's, once their cause is fixed: `redrive`) nor resolved (the
//! producer's, once the bad lines were dealt with, e.g. by a corrected
//! export: `resolve`). Redriving a producer's dead letter would only fail
//! again (the line itself is bad), so `resolve` is its way out of pending.

use schema::message::stages;
use tokio_postgres::Client;

/// One row of `dead-letters list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The row's id (what `resolve --id` takes).
    pub id: i64,
    /// When it was stored, UTC, to the second.
    pub created_at: String,
    /// `producer` or `consumer`.
    pub stage: String,
    /// The reason.
    pub reason: String,
    /// The source file, when known.
    pub file: Option<String>,
    /// The line in it, when known.
    pub line: Option<i64>,
    /// The explanation.
    pub message: String,
    /// `pending`, `redriven` or `resolved`.
    pub status: String,
}

/// Filters of `dead-letters list`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter<'a> {
    /// Only this reason.
    pub reason: Option<&'a str>,
    /// Only this stage.
    pub stage: Option<&'a str>,
    /// Only pending ones.
    pub pending: bool,
    /// Most rows (the newest).
    pub limit: i64,
}

/// The newest `limit` dead letters matching `filter`, oldest first.
pub async fn list(client: &Client, filter: &ListFilter<'_>) -> Result<Vec<Listed>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT * FROM (
                 SELECT id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), stage, reason,
                        source_file, source_line, message,
                        CASE WHEN resolved_at IS NOT NULL THEN 'resolved'
                             WHEN redriven_at IS NOT NULL THEN 'redriven' ELSE 'pending' END
                 FROM dead_letters
                 WHERE ($1::text IS NULL OR reason = $1) AND ($2::text IS NULL OR stage = $2)
                   AND (NOT $3 OR (redriven_at IS NULL AND resolved_at IS NULL))
                 ORDER BY id DESC LIMIT $4) AS newest
             ORDER BY id",
            &[&filter.reason, &filter.stage, &filter.pending, &filter.limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Listed {
            id: row.get(0),
            created_at: row.get(1),
            stage: row.get(2),
            reason: row.get(3),
            file: row.get(4),
            line: row.get(5),
            message: row.get(6),
            status: row.get(7),
        })
        .collect())
}

/// Which producer dead letters `resolve` marks: all given selectors must
/// match, and at least one is given (the command line refuses none).
#[derive(Debug, Clone, Default)]
pub struct ResolveSelector<'a> {
    /// These ids.
    pub ids: &'a [i64],
    /// This source file: its path as stored, or, without a `/`, its file
    /// name in any folder (the rows hold the path the producer named).
    pub file: Option<&'a str>,
    /// This reason.
    pub reason: Option<&'a str>,
}

impl ResolveSelector<'_> {
    /// Whether the selector selects anything narrower than "every row".
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.file.is_none() && self.reason.is_none()
    }
}

/// Marks the pending producer dead letters the selector matches resolved;
/// returns how many. An empty selector resolves nothing (never "all").
pub async fn resolve(client: &Client, selector: &ResolveSelector<'_>) -> Result<u64, tokio_postgres::Error> {
    if selector.is_empty() {
        return Ok(0);
    }
    let ids = (!selector.ids.is_empty()).then_some(selector.ids);
    client
        .execute(
            "UPDATE dead_letters SET resolved_at = clock_timestamp()
             WHERE stage = $1 AND resolved_at IS NULL AND redriven_at IS NULL
               AND ($2::int8[] IS NULL OR id = ANY($2))
               AND ($3::text IS NULL OR source_file = $3
                    OR (strpos($3, '/') = 0 AND right(source_file, length($3) + 1) = '/' || $3))
               AND ($4::text IS NULL OR reason = $4)",
            &[&stages::PRODUCER, &ids, &selector.file, &selector.reason],
        )
        .await
}

/// Longest message shown in a row of the table.
const MESSAGE_WIDTH: usize = 60;
/// Longest `file:line` shown (the end is kept: it names the file).
const PLACE_WIDTH: usize = 40;

/// The rows as an aligned text table with a header, one line per row.
pub fn render(rows: &[Listed]) -> String {
    let header = ["ID", "WHEN (UTC)", "STAGE", "REASON", "FILE:LINE", "MESSAGE", "STATUS"];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|row| {
            [
                row.id.to_string(),
                row.created_at.clone(),
                row.stage.clone(),
                row.reason.clone(),
                keep_end(&place(row.file.as_deref(), row.line), PLACE_WIDTH),
                keep_start(&one_line(&row.message), MESSAGE_WIDTH),
                row.status.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(|title| title.chars().count());
    for line in &cells {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let mut push = |line: Vec<&str>| {
        let padded: Vec<String> = line.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        text.push_str(padded.join("  ").trim_end());
        text.push('\n');
    };
    push(header.to_vec());
    for line in &cells {
        push(line.iter().map(String::as_str).collect());
    }
    text
}

/// `file:line`, `file`, or `-`.
fn place(file: Option<&str>, line: Option<i64>) -> String {
    match (file, line) {
        (Some(file), Some(line)) => format!("{file}:{line}"),
        (Some(file), None) => file.to_string(),
        _ => "-".to_string(),
    }
}

/// The text on one line: control characters (newlines, tabs) become spaces.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// At most `width` characters, the start kept, `…` marking the cut.
fn keep_start(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let kept: String = text.chars().take(width - 1).collect();
    format!("{kept}…")
}

/// At most `width` characters, the end kept, `…` marking the cut.
fn keep_end(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        return text.to_string();
    }
    let kept: String = text.chars().skip(count - (width - 1)).collect();
    format!("…{kept}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(id: i64, message: &str, file: Option<&str>) -> Listed {
        Listed {
            id,
            created_at: "2026-11-29 01:02:03".into(),
            stage: "producer".into(),
            reason: "invalid_timestamp".into(),
            file: file.map(str::to_string),
            line: file.map(|_| 7),
            message: message.into(),
            status: "pending".into(),
        }
    }

    #[test]
    fn the_table_has_a_header_and_aligned_columns() {
        let text = render(&[listed(3, "bad time", Some("inbox/a.csv")), listed(12, "x", None)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID  WHEN (UTC)"), "{text}");
        assert!(lines[1].contains("inbox/a.csv:7"), "{text}");
        assert!(lines[2].contains(" - "), "an unknown place shows as -: {text}");
        let status_column = lines[0].find("STATUS").unwrap();
        assert_eq!(lines[1].find("pending"), Some(status_column));
        assert_eq!(lines[2].find("pending"), Some(status_column));
    }

    #[test]
    fn long_messages_are_cut_and_kept_on_one_line() {
        let long = format!("line one\nline two {}", "x".repeat(200));
        let text = render(&[listed(1, &long, None)]);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("line one line two"), "{text}");
        assert!(text.contains('…'));
        assert!(!text.contains(&"x".repeat(MESSAGE_WIDTH)));
    }

    #[test]
    fn a_long_path_keeps_its_end() {
        let path = format!("/very/{}/export.csv", "deep/".repeat(20));
        let shown = keep_end(&place(Some(&path), Some(9)), PLACE_WIDTH);
        assert_eq!(shown.chars().count(), PLACE_WIDTH);
        assert!(shown.starts_with('…') && shown.ends_with("export.csv:9"), "{shown}");
    }

    #[test]
    fn an_empty_selector_selects_nothing() {
        assert!(ResolveSelector::default().is_empty());
        assert!(!ResolveSelector { ids: &[1], ..Default::default() }.is_empty());
        assert!(!ResolveSelector { file: Some("a.csv"), ..Default::default() }.is_empty());
    }
}
