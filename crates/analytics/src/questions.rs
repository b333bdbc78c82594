//! The questions of the "Orders and baskets analysis" dashboard, one SQL file
//! each in `metabase/questions/`, with a small header:
//!
//! ```sql
//! -- title: Total sales, last complete month
//! -- display: scalar
//! -- description: Sum of item_total in the latest complete month ...
//! SELECT ...
//! ```
//!
//! `display` is Metabase's visualisation name (`scalar`, `smartscalar` — the
//! "trend" card —, `line`, `bar`, `table`). Further header keys say how the
//! answer is shown ([`crate::presentation`]); `metabase/README.md` lists them
//! all. Queries may hold Metabase optional clauses (`[[ … {{month}} … ]]`):
//! Metabase fills them from its filter, and [`Question::sql_with`] fills or
//! removes them for everyone else.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::presentation::{self, Presentation, PresentationError, QuestionText};

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The file's name without `.sql`, e.g. `01_total_sales_last_month`: a
    /// stable key, and the order of the dashboard.
    pub key: String,
    /// The title shown on cards and in the report.
    pub title: String,
    /// Metabase's visualisation: `scalar`, `smartscalar`, `line`, `bar` or `table`.
    pub display: String,
    /// What the question answers, for readers.
    pub description: String,
    /// The file as written: its header comments, then the SQL with
    /// Metabase's optional clauses.
    pub sql: String,
}

/// Why a question file cannot be used.
#[derive(Debug, Error)]
pub enum QuestionError {
    /// The folder or a file cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A header line is missing.
    #[error("{path} lacks the header line `-- {field}: …`")]
    MissingHeader {
        /// The file.
        path: PathBuf,
        /// The missing field.
        field: &'static str,
    },
    /// The display is not one we can render.
    #[error("{path}: display `{display}` is not one of scalar, smartscalar, line, bar, table")]
    UnknownDisplay {
        /// The file.
        path: PathBuf,
        /// The value found.
        display: String,
    },
    /// A presentation key (`value`, `x`, `money`, `only-in`, …) is wrong.
    #[error("{path}: {source}")]
    Presentation {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: PresentationError,
    },
}

const DISPLAYS: [&str; 5] = ["scalar", "smartscalar", "line", "bar", "table"];

/// Loads every `*.sql` question of `folder`, in file-name order.
pub fn load_questions(folder: &Path) -> Result<Vec<Question>, QuestionError> {
    let read_error = |source| QuestionError::Read { path: folder.to_path_buf(), source };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(read_error)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    paths.sort();
    paths.iter().map(|path| load_question(path)).collect()
}

/// Loads one question file.
pub fn load_question(path: &Path) -> Result<Question, QuestionError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| QuestionError::Read { path: path.to_path_buf(), source })?;
    let header = |field: &'static str| {
        header_value(&text, field)
            .map(str::to_string)
            .ok_or(QuestionError::MissingHeader { path: path.to_path_buf(), field })
    };
    let display = header("display")?;
    if !DISPLAYS.contains(&display.as_str()) {
        return Err(QuestionError::UnknownDisplay { path: path.to_path_buf(), display });
    }
    let question = Question {
        key: path.file_stem().expect("a .sql file has a stem").to_string_lossy().into_owned(),
        title: header("title")?,
        description: header("description")?,
        display,
        sql: text.clone(),
    };
    let invalid = |source| QuestionError::Presentation { path: path.to_path_buf(), source };
    Presentation::from_question(&question).map_err(invalid)?;
    presentation::audience(&question).map_err(invalid)?;
    Ok(question)
}

/// The value of the header line `-- field: value`, trimmed.
fn header_value<'a>(text: &'a str, field: &str) -> Option<&'a str> {
    text.lines().find_map(|line| line.strip_prefix("-- ")?.strip_prefix(field)?.strip_prefix(':').map(str::trim))
}

impl Question {
    /// The SQL to run outside Metabase: each optional clause `[[ … ]]` is kept
    /// with `{{month}}` replaced by a date literal when a month is given, and
    /// removed otherwise (so the data's own latest complete month is used).
    pub fn sql_with(&self, month: Option<chrono::NaiveDate>) -> String {
        let mut sql = String::with_capacity(self.sql.len());
        let mut rest = self.sql.as_str();
        while let Some(start) = rest.find("[[") {
            sql.push_str(&rest[..start]);
            let Some(end) = rest[start..].find("]]") else { break };
            if let Some(month) = month {
                let clause = &rest[start + 2..start + end];
                sql.push_str(&clause.replace("{{month}}", &format!("'{}'", month.format("%Y-%m-%d"))));
            }
            rest = &rest[start + end + 2..];
        }
        sql.push_str(rest);
        sql
    }

    /// A header line not every question has (`-- if empty: …`), read from
    /// the file's text.
    pub fn optional_header(&self, field: &str) -> Option<&str> {
        self.sql
            .lines()
            .take_while(|line| line.starts_with("--"))
            .find_map(|line| line.strip_prefix("-- ")?.strip_prefix(field)?.strip_prefix(':').map(str::trim))
    }

    /// Whether the query has the optional `month` filter.
    pub fn has_month_parameter(&self) -> bool {
        self.sql.contains("{{month}}")
    }

    /// The value of the header line `-- field: value`, if the file has it.
    pub fn header(&self, field: &str) -> Option<&str> {
        header_value(&self.sql, field)
    }

    /// The SQL without its leading comment lines (the header).
    pub fn body(&self) -> &str {
        let mut rest = self.sql.as_str();
        while rest.starts_with("--") {
            rest = rest.split_once('\n').map_or("", |(_, after)| after);
        }
        rest
    }

    /// How the answer is shown, from the header (checked at load).
    pub fn presentation(&self) -> Result<Presentation, PresentationError> {
        Presentation::from_question(self)
    }

    /// Whether the Metabase dashboard shows this question (`-- only-in:`).
    pub fn in_metabase(&self) -> bool {
        presentation::audience(self).is_ok_and(|audience| audience != presentation::Audience::Report)
    }

    /// Whether the HTML report shows this question (`-- only-in:`).
    pub fn in_report(&self) -> bool {
        presentation::audience(self).is_ok_and(|audience| audience != presentation::Audience::Metabase)
    }
}

/// The repository's questions folder.
pub fn default_folder() -> PathBuf {
    PathBuf::from("metabase/questions")
}

impl QuestionText for Question {
    fn header(&self, key: &str) -> Option<&str> {
        Question::header(self, key)
    }

    fn body(&self) -> &str {
        Question::body(self)
    }

    fn display(&self) -> &str {
        &self.display
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(sql: &str) -> Question {
        Question {
            key: "q".into(),
            title: "t".into(),
            display: "scalar".into(),
            description: "d".into(),
            sql: sql.into(),
        }
    }

    #[test]
    fn optional_clause_is_removed_without_a_month() {
        let q = question("SELECT coalesce([[ {{month}}::date, ]] last_month) FROM analysis_anchor");
        assert_eq!(q.sql_with(None), "SELECT coalesce( last_month) FROM analysis_anchor");
    }

    #[test]
    fn optional_clause_is_filled_with_a_month() {
        let q = question("SELECT coalesce([[ {{month}}::date, ]] last_month) FROM analysis_anchor");
        let month = chrono::NaiveDate::from_ymd_opt(2022, 7, 1).unwrap();
        assert_eq!(q.sql_with(Some(month)), "SELECT coalesce( '2022-07-01'::date,  last_month) FROM analysis_anchor");
    }

    #[test]
    fn repository_questions_all_load_with_headers() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../metabase/questions");
        let questions = load_questions(&folder).unwrap();
        assert_eq!(questions.len(), 10);
        assert!(questions.iter().all(|q| !q.title.is_empty() && !q.description.is_empty()));
        assert_eq!(questions[0].key, "01_total_sales_last_month");
        assert_eq!(questions.iter().filter(|q| q.in_report()).count(), 8, "the report keeps its eight questions");
        assert_eq!(questions.iter().filter(|q| q.in_metabase()).count(), 8, "the trend cards replace two key figures");
        let trends: Vec<&str> =
            questions.iter().filter(|q| q.display == "smartscalar").map(|q| q.key.as_str()).collect();
        assert_eq!(trends, ["01_total_sales_trend", "02_average_basket_trend"]);
        assert!(trends.iter().all(|key| questions.iter().any(|q| q.key == *key && !q.in_report())));
    }

    #[test]
    fn body_is_the_sql_after_the_header() {
        let q = question("-- title: t\n-- display: scalar\nSELECT 1 -- trailing\n-- not a header\n");
        assert_eq!(q.body(), "SELECT 1 -- trailing\n-- not a header\n");
        assert_eq!(q.header("display"), Some("scalar"));
        assert_eq!(q.header("value"), None);
    }

    #[test]
    fn a_wrong_presentation_key_is_named_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.sql");
        std::fs::write(&path, "-- title: X\n-- display: scalar\n-- description: d\n-- value: salse\nSELECT 1 AS sales")
            .unwrap();
        let error = load_question(&path).unwrap_err();
        assert!(matches!(error, QuestionError::Presentation { .. }), "{error:?}");
        assert!(error.to_string().contains("salse"), "{error}");
    }

    #[test]
    fn optional_headers_are_read_from_the_header_only() {
        let q = question("-- title: T\n-- if empty: Nothing to report.\nSELECT 1 -- if empty: not this");
        assert_eq!(q.optional_header("if empty"), Some("Nothing to report."));
        assert_eq!(q.optional_header("unit"), None);
    }

    #[test]
    fn missing_header_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.sql");
        std::fs::write(&path, "-- title: X\n-- display: line\nSELECT 1").unwrap();
        let error = load_question(&path).unwrap_err();
        assert!(error.to_string().contains("description"), "{error}");
    }
}
