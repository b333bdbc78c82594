//! The verifier's configuration: which exports, where the database and
//! Kafka are, and how the producer reads exports (the producer's own
//! variables, so a line is read here as it was read there).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::builder::TypedValueParser as _;
use clap::Parser;
use producer::export::TailerSettings;
use thiserror::Error;

/// Accounts for every line of every export against PostgreSQL: stored,
/// superseded, dead-lettered, in flight or missing (and altered rows).
/// Exit code 0: nothing missing or altered; 1: some line is missing or
/// altered; 2: an export or PostgreSQL could not be read.
#[derive(Clone, Debug, Parser)]
#[command(name = "orderstream-verify", version)]
pub struct Config {
    /// The exports to verify, wherever they are (renamed, archived,
    /// copied). Without any: every export in the inbox and the archive.
    pub files: Vec<PathBuf>,

    /// Only exports modified within this long (`24h`, `7d`), when no file
    /// is named.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub since: Option<Duration>,

    /// Print JSON instead of text, for scripts and the chaos suite.
    #[arg(long)]
    pub json: bool,

    /// How many missing (and altered, and superseded) lines are named per file.
    #[arg(long, default_value_t = 5)]
    pub examples: usize,

    /// Verify again every this long (`1h`), serving `orderstream_verify_*`
    /// metrics on `--metrics-addr`, until stopped; without it, verify once,
    /// print and exit with the verdict.
    #[arg(long, env = "ORDERSTREAM_VERIFY_EVERY", value_parser = humantime::parse_duration)]
    pub every: Option<Duration>,

    /// Where `--every` serves `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "ORDERSTREAM_VERIFY_METRICS_ADDR", default_value = "127.0.0.1:9104")]
    pub metrics_addr: std::net::SocketAddr,

    /// The database the consumer writes (reading only).
    #[command(flatten)]
    pub database: clients::DatabaseArgs,

    /// Brokers, TLS, SASL: for the consumer's lag (a line delivered but not
    /// yet applied is in flight while the group is behind).
    #[command(flatten)]
    pub kafka: clients::KafkaArgs,

    /// The topic of the orders.
    #[command(flatten)]
    pub topic: clients::TopicArgs,

    /// The consumer group whose lag counts.
    #[command(flatten)]
    pub group: clients::GroupArgs,

    /// The producer's inbox: its exports are verified by default.
    #[arg(help_heading = "Inputs", long, env = "ORDERSTREAM_INBOX", default_value = "data/inbox")]
    pub inbox: PathBuf,

    /// The producer's archive (`--archive-dir`): its exports are verified by default too.
    #[arg(help_heading = "Inputs", long, env = "ORDERSTREAM_ARCHIVE_DIR")]
    pub archive_dir: Option<PathBuf>,

    /// Which files of the inbox and archive are exports, as the producer's `--pattern`.
    #[arg(help_heading = "Inputs", long, env = "ORDERSTREAM_PATTERN", default_value = "*.csv")]
    pub pattern: String,

    /// The producer's state folder: its saved positions say which lines it
    /// has not delivered yet, and each file's epoch.
    #[arg(help_heading = "Inputs", long, env = "ORDERSTREAM_STATE_DIR", default_value = ".local/state/producer")]
    pub producer_state_dir: PathBuf,

    /// Longest Kafka may take to answer the lag question.
    #[arg(help_heading = "Inputs", long, env = "ORDERSTREAM_VERIFY_KAFKA_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub kafka_timeout: Duration,

    /// As the producer's `--max-record-bytes`.
    #[arg(help_heading = "Reading", long, env = "ORDERSTREAM_MAX_RECORD_BYTES", default_value_t = 64 * 1024,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(64..))]
    pub max_record_bytes: usize,

    /// As the producer's `--unknown-columns`.
    #[arg(help_heading = "Reading", long, env = "ORDERSTREAM_UNKNOWN_COLUMNS", default_value = "keep",
          value_parser = clap::builder::PossibleValuesParser::new(schema::UnknownColumns::NAMES)
              .try_map(|mode| mode.parse::<schema::UnknownColumns>()))]
    pub unknown_columns: schema::UnknownColumns,

    /// As the producer's `--column-alias FROM=TO`.
    #[arg(
        help_heading = "Reading",
        long = "column-alias",
        value_name = "FROM=TO",
        env = "ORDERSTREAM_COLUMN_ALIASES",
        value_delimiter = ','
    )]
    pub column_aliases: Vec<schema::ColumnAlias>,
}

/// Why the configuration is unusable, found before anything is read.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// `--pattern` is not a glob.
    #[error("--pattern is not a glob")]
    Pattern(#[from] globset::Error),
    /// The database URL is unusable.
    #[error(transparent)]
    Database(#[from] clients::DatabaseConfigError),
    /// `--every 0` would verify without pause.
    #[error("--every must be more than 0")]
    ZeroInterval,
    /// The Kafka settings contradict each other.
    #[error(transparent)]
    Kafka(#[from] clients::kafka::KafkaConfigError),
}

/// Why the list of exports could not be made.
#[derive(Debug, Error)]
#[error("cannot list the exports in {folder}")]
pub struct ListError {
    /// The inbox or archive.
    pub folder: PathBuf,
    /// The I/O error.
    pub source: std::io::Error,
}

impl telemetry::Configuration for Config {
    type Invalid = ConfigError;

    fn validate(&self) -> Result<(), ConfigError> {
        Config::validate(self)
    }
}

impl Config {
    /// Checks what can be checked before reading anything.
    pub fn validate(&self) -> Result<(), ConfigError> {
        globset::Glob::new(&self.pattern)?;
        if self.every.is_some_and(|every| every.is_zero()) {
            return Err(ConfigError::ZeroInterval);
        }
        self.kafka.validate()?;
        Ok(self.database.validate()?)
    }

    /// How exports are read: exactly the producer's settings (flags do not
    /// matter for accounting, so the producer's defaults are used). Each
    /// file is read as finished, as `replay` reads it: a last line without
    /// its newline is a line like any other, stored once the producer
    /// published it as the file's final line, in flight until then.
    pub fn reading(&self) -> TailerSettings {
        TailerSettings {
            max_record_bytes: self.max_record_bytes,
            header_rules: schema::HeaderRules { aliases: self.column_aliases.clone(), unknown: self.unknown_columns },
            flag_rules: schema::FlagRules::default(),
            final_line_after: std::time::Duration::ZERO,
        }
    }

    /// The exports to verify, in name order: the named files, else every
    /// export of the inbox and the archive (modified within `--since`).
    /// A missing archive is no error (nothing was archived yet); a missing
    /// inbox is.
    pub fn exports(&self) -> Result<Vec<PathBuf>, ListError> {
        if !self.files.is_empty() {
            return Ok(self.files.clone());
        }
        let matcher = globset::Glob::new(&self.pattern).expect("validated pattern").compile_matcher();
        let mut files = exports_in(&self.inbox, &matcher, self.since)?;
        if let Some(archive) = &self.archive_dir {
            if archive.exists() {
                files.extend(exports_in(archive, &matcher, self.since)?);
            }
        }
        Ok(files)
    }

    /// Whether `path` is in the producer's inbox (a file the producer has
    /// not picked up yet is then in flight, not missing).
    pub fn in_inbox(&self, path: &Path) -> bool {
        let folder = path.parent().unwrap_or(Path::new("."));
        let folder = if folder.as_os_str().is_empty() { Path::new(".") } else { folder };
        folder == self.inbox || matches!((folder.canonicalize(), self.inbox.canonicalize()), (Ok(a), Ok(b)) if a == b)
    }
}

fn exports_in(
    folder: &Path,
    matcher: &globset::GlobMatcher,
    since: Option<Duration>,
) -> Result<Vec<PathBuf>, ListError> {
    let list_error = |source| ListError { folder: folder.to_path_buf(), source };
    let oldest = since.and_then(|since| SystemTime::now().checked_sub(since));
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(list_error)? {
        let entry = entry.map_err(list_error)?;
        let metadata = match entry.metadata() {
            Ok(metadata) if metadata.is_file() => metadata,
            _ => continue,
        };
        let recent = match (oldest, metadata.modified()) {
            (Some(oldest), Ok(modified)) => modified >= oldest,
            _ => true,
        };
        if recent && matcher.is_match(entry.file_name()) {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_files_win_over_the_inbox_and_the_archive() {
        let config = Config::try_parse_from(["v", "a.csv", "/elsewhere/b.csv"]).unwrap();
        config.validate().unwrap();
        assert_eq!(config.exports().unwrap(), [PathBuf::from("a.csv"), PathBuf::from("/elsewhere/b.csv")]);
    }

    #[test]
    fn by_default_every_export_of_the_inbox_and_the_archive_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let (inbox, archive) = (dir.path().join("inbox"), dir.path().join("archive"));
        for (folder, name) in [(&inbox, "b.csv"), (&inbox, "a.csv"), (&inbox, "notes.txt"), (&archive, "old.csv")] {
            std::fs::create_dir_all(folder).unwrap();
            std::fs::write(folder.join(name), "id\n").unwrap();
        }
        let config = Config::try_parse_from([
            "v".as_ref(),
            "--inbox".as_ref(),
            inbox.as_os_str(),
            "--archive-dir".as_ref(),
            archive.as_os_str(),
        ])
        .unwrap();
        assert_eq!(config.exports().unwrap(), [inbox.join("a.csv"), inbox.join("b.csv"), archive.join("old.csv")]);
        assert!(config.in_inbox(&inbox.join("a.csv")));
        assert!(!config.in_inbox(&archive.join("old.csv")));
    }
}
