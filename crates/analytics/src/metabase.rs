//! Idempotent provisioning of Metabase over its REST API.
//!
//! Run it once or a hundred times: the result is one admin, one warehouse
//! connection, one collection, one card per question file shown in Metabase
//! (all but `-- only-in: report`) and one dashboard. Every object is looked
//! up by name before anything is created and existing ones are updated in
//! place, so a second run creates nothing; and a card or the dashboard that
//! is as its files say is left alone, judged by the version it carries in its
//! description ([`crate::unchanged`]), since Metabase returns a card's query in
//! another shape than it was sent.
//!
//! Every request and body field below is checked against Metabase's OpenAPI
//! document for the version compose pins (see "Checked against Metabase's
//! API" in `docs/analysis.md`; the stub's test
//! `requests_match_the_openapi_extract` keeps them in step).
//!
//! The request sequence, one function per step:
//!
//! 1. `wait_until_ready`: `GET /api/health` until `{"status":"ok"}`,
//!    waiting (with a progress line every 10 s) only while Metabase answers
//!    that it is starting, or, for at most a minute, while nothing answers at
//!    all; anything else there (Grafana, say) is not Metabase, and stops the
//!    run at once.
//! 2. `open_session`: `GET /api/session/properties`; while Metabase has no
//!    user yet, claim its setup token with `POST /api/setup` and the admin from
//!    the environment, so no one else can claim the instance; otherwise use
//!    the API key when one is given (every later request carries it in
//!    `x-api-key`), else log in with `POST /api/session` (every later request
//!    carries the session in `X-Metabase-Session`). Rejected credentials stop
//!    the run with an error of their own ([`MetabaseError::Credentials`]).
//! 3. `ensure_database`: `GET /api/database`, then `PUT /api/database/:id`
//!    (so a rotated password is applied) or `POST /api/database`, always as the
//!    read-only analyst role.
//! 4. `ensure_collection`: `GET /api/collection`, then `POST /api/collection`
//!    when missing.
//! 5. `ensure_cards`: `GET /api/card?f=all`, then per question `POST
//!    /api/card`, or `PUT /api/card/:id` when the card differs from its file.
//!    Each card's `visualization_settings` come from its file's header
//!    ([`crate::visualization`]).
//! 6. `ensure_dashboard`: `GET /api/collection/:id/items?models=dashboard`,
//!    `POST /api/dashboard` when missing, `GET /api/dashboard/:id`, then `PUT
//!    /api/dashboard/:id` with the dashcards and the month filter when the
//!    layout of its own cards differs. Dashcards it does not own (a card or a
//!    text an analyst added) are sent back as they are, so Metabase keeps
//!    them.
//!
//! Secrets never reach a log line, an error or a `Debug` output: they are
//! [`Secret`]s, and error bodies are scrubbed of them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use thiserror::Error;
use tracing::{info, warn};

use crate::presentation::PresentationError;
use crate::questions::Question;
use crate::unchanged::{native_sql, stamped, version_in, version_of};
use crate::visualization;

/// The header Metabase reads the session from.
const SESSION_HEADER: &str = "X-Metabase-Session";
/// The header Metabase reads an API key from (Metabase 0.49 and later).
const API_KEY_HEADER: &str = "x-api-key";
/// Where Metabase is when nothing says otherwise: the port Compose publishes
/// it on (Grafana has 3000).
pub const DEFAULT_METABASE_URL: &str = "http://127.0.0.1:3030";
/// How long a run waits while nothing answers at the URL at all: long enough
/// for Metabase's JVM to open its port, short enough that a wrong address
/// fails within a minute.
const UNREACHABLE_GRACE: Duration = Duration::from_secs(60);
/// How often a progress line is logged while waiting for Metabase.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// Metabase's dashboard grid is 24 columns wide.
const GRID_COLUMNS: u32 = 24;
/// The dashboard filter's id; stable so that card mappings keep pointing at it.
const MONTH_PARAMETER_ID: &str = "orderstream-month";
/// The template tag the questions' optional clauses use (`{{month}}`).
const MONTH_TAG: &str = "month";
/// How often the health check is retried while Metabase starts.
const HEALTH_POLL: Duration = Duration::from_millis(500);
/// Largest response read; `GET /api/card` lists every card with its metadata.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;
/// Longest error body kept in an error, so a stack trace does not flood logs.
const MAX_ERROR_BODY_CHARS: usize = 500;
/// What the dashboard's description says, before its version.
const DASHBOARD_DESCRIPTION: &str = "The orderstream analysis questions.";
/// Where the dashboard comes from, as its description says.
const DASHBOARD_SOURCE: &str = "metabase/questions/ in the orderstream repository";

/// Where Metabase is, who administers it, and which warehouse it reads.
///
/// Every flag has an environment variable; secrets have no default, can come
/// from a `*_FILE` path instead (Docker and Kubernetes secrets), and are
/// redacted from `Debug`.
#[derive(Debug, Clone, clap::Args)]
pub struct MetabaseArgs {
    /// Metabase's base URL (Compose publishes Metabase on port 3030; inside
    /// the Compose network it is http://metabase:3000).
    #[arg(long, env = "ORDERSTREAM_METABASE_URL", default_value = DEFAULT_METABASE_URL)]
    pub metabase_url: String,

    /// A Metabase API key (Admin settings → Authentication → API keys, in a
    /// group that may manage the collection and the database): used instead
    /// of logging in as the admin once Metabase is set up. Sent in the
    /// `x-api-key` header, never logged.
    #[arg(long, env = "ORDERSTREAM_METABASE_API_KEY", hide_env_values = true)]
    pub api_key: Option<Secret>,

    /// A file holding the API key, used when `--api-key` is not given.
    #[arg(long, env = "ORDERSTREAM_METABASE_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,

    /// The admin's email: the first user at setup, the login afterwards.
    #[arg(long, env = "ORDERSTREAM_METABASE_ADMIN_EMAIL", default_value = "admin@orderstream.local")]
    pub admin_email: String,

    /// The admin's password, here or in `--admin-password-file`. Required
    /// without an API key, and to claim the first-time setup.
    #[arg(long, env = "ORDERSTREAM_METABASE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,

    /// A file holding the admin's password, used when `--admin-password` is not given.
    #[arg(long, env = "ORDERSTREAM_METABASE_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,

    /// The warehouse host as Metabase reaches it (inside compose: the service name).
    #[arg(long, env = "ORDERSTREAM_ANALYST_HOST", default_value = "127.0.0.1")]
    pub warehouse_host: String,

    /// The warehouse port as Metabase reaches it.
    #[arg(long, env = "ORDERSTREAM_ANALYST_PORT", default_value_t = 5433)]
    pub warehouse_port: u16,

    /// The warehouse database name.
    #[arg(long, env = "ORDERSTREAM_ANALYST_DB", default_value = "orderstream")]
    pub warehouse_db: String,

    /// The read-only role Metabase connects as: `orderstream_analyst`, which
    /// schema migration 4 creates (SELECT on the analysis views only), or a
    /// login role that is a member of it. A dashboard can then never write to
    /// the warehouse, nor read a dead letter's payload, whatever SQL someone
    /// types into Metabase.
    #[arg(long, env = "ORDERSTREAM_ANALYST_USER", default_value = "orderstream_analyst")]
    pub warehouse_user: String,

    /// Whether Metabase connects to the warehouse over TLS.
    #[arg(long, env = "ORDERSTREAM_ANALYST_SSL", default_value_t = false)]
    pub warehouse_ssl: bool,

    /// The read-only role's password. Required, here or in `--warehouse-password-file`.
    #[arg(long, env = "ORDERSTREAM_ANALYST_PASSWORD", hide_env_values = true)]
    pub warehouse_password: Option<Secret>,

    /// A file holding the read-only role's password, used when `--warehouse-password` is not given.
    #[arg(long, env = "ORDERSTREAM_ANALYST_PASSWORD_FILE")]
    pub warehouse_password_file: Option<PathBuf>,

    /// The collection holding the cards and the dashboard.
    #[arg(long, env = "ORDERSTREAM_METABASE_COLLECTION", default_value = "orderstream")]
    pub collection: String,

    /// The dashboard's name.
    #[arg(long, env = "ORDERSTREAM_METABASE_DASHBOARD", default_value = "Orders and baskets analysis")]
    pub dashboard: String,

    /// The name of the warehouse connection in Metabase: how it is found again.
    #[arg(long, env = "ORDERSTREAM_METABASE_DATABASE_NAME", default_value = "orderstream warehouse")]
    pub database_name: String,

    /// How long to wait while Metabase answers that it is still starting
    /// (its first start migrates its own database and takes minutes).
    /// Nothing answering at all is waited for at most a minute. Humantime;
    /// `--wait-secs` and `ORDERSTREAM_METABASE_WAIT_SECS`, its old names,
    /// read a bare number as seconds.
    #[arg(long, alias = "wait-secs", env = "ORDERSTREAM_METABASE_WAIT", default_value = "5m",
          value_parser = telemetry::duration::DurationParser::bare_secs())]
    pub wait: Duration,
}

/// A password: never printed, never logged (one type for every binary).
pub use clients::Secret;

/// The secrets, resolved from flags, environment or files before any
/// request is sent.
#[derive(Debug)]
struct Secrets {
    /// The Metabase admin's password: to claim setup, and to log in when
    /// there is no API key.
    admin: Option<Secret>,
    /// The API key, when given: replaces the admin's login.
    api_key: Option<Secret>,
    /// The read-only warehouse role's password.
    warehouse: Secret,
}

impl MetabaseArgs {
    /// Resolves the secrets: the value if given, otherwise the file's
    /// content (without its trailing newline). The admin's password is
    /// required unless an API key is given. Fails before any I/O on Metabase.
    fn secrets(&self) -> Result<Secrets, MetabaseError> {
        let api_key = optional_secret(&self.api_key, &self.api_key_file)?;
        let admin = optional_secret(&self.admin_password, &self.admin_password_file)?;
        if admin.is_none() && api_key.is_none() {
            return Err(MetabaseError::MissingSecret {
                flag: "--admin-password",
                env: "ORDERSTREAM_METABASE_ADMIN_PASSWORD",
            });
        }
        Ok(Secrets {
            admin,
            api_key,
            warehouse: resolve_secret(
                &self.warehouse_password,
                &self.warehouse_password_file,
                "--warehouse-password",
                "ORDERSTREAM_ANALYST_PASSWORD",
            )?,
        })
    }

    /// The base URL without a trailing slash, so paths can be appended.
    fn base_url(&self) -> &str {
        self.metabase_url.trim_end_matches('/')
    }
}

fn resolve_secret(
    value: &Option<Secret>,
    file: &Option<PathBuf>,
    flag: &'static str,
    env: &'static str,
) -> Result<Secret, MetabaseError> {
    let secret = match (value, file) {
        (Some(secret), _) => secret.clone(),
        (None, Some(path)) => read_secret_file(path)?,
        (None, None) => return Err(MetabaseError::MissingSecret { flag, env }),
    };
    if secret.is_empty() {
        return Err(MetabaseError::MissingSecret { flag, env });
    }
    Ok(secret)
}

/// A secret that may be absent: the value, else the file's content; an empty one counts as absent.
fn optional_secret(value: &Option<Secret>, file: &Option<PathBuf>) -> Result<Option<Secret>, MetabaseError> {
    let secret = match (value, file) {
        (Some(secret), _) => secret.clone(),
        (None, Some(path)) => read_secret_file(path)?,
        (None, None) => return Ok(None),
    };
    Ok((!secret.is_empty()).then_some(secret))
}

fn read_secret_file(path: &Path) -> Result<Secret, MetabaseError> {
    Secret::from_file(path).map_err(|source| MetabaseError::SecretFile { path: path.to_path_buf(), source })
}

/// The step of provisioning a request belongs to, so an error says what was
/// being done and not only which URL failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Waiting for `GET /api/health`.
    Health,
    /// Reading whether setup is done (`GET /api/session/properties`).
    Properties,
    /// Claiming first-time setup (`POST /api/setup`).
    Setup,
    /// Logging in as the admin (`POST /api/session`).
    Login,
    /// Adding or updating the warehouse connection.
    Database,
    /// Finding or creating the collection.
    Collection,
    /// Creating or updating the cards.
    Cards,
    /// Creating the dashboard and laying out its cards.
    Dashboard,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Health => "waiting for Metabase to be healthy",
            Step::Properties => "reading Metabase's setup state",
            Step::Setup => "claiming Metabase's first-time setup",
            Step::Login => "logging in as the Metabase admin",
            Step::Database => "adding the warehouse connection",
            Step::Collection => "creating the collection",
            Step::Cards => "creating the cards",
            Step::Dashboard => "laying out the dashboard",
        })
    }
}

/// Why provisioning stopped. No variant ever holds a password.
#[derive(Debug, Error)]
pub enum MetabaseError {
    /// A password was given neither directly nor as a file.
    #[error("{flag} is required (or the environment variable {env}, or {env}_FILE naming a file that holds it)")]
    MissingSecret {
        /// The flag that takes the value.
        flag: &'static str,
        /// The environment variable that takes the value.
        env: &'static str,
    },
    /// A `*_FILE` secret cannot be read.
    #[error("cannot read the secret file {path}")]
    SecretFile {
        /// The file named.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Metabase was still starting when the wait ran out.
    #[error("Metabase at {url} was still starting after {waited_secs}s (last answer: {last}); raise --wait if its first start takes longer")]
    NotHealthy {
        /// The base URL.
        url: String,
        /// How long we waited.
        waited_secs: u64,
        /// The last answer or connection error.
        last: String,
    },
    /// Nothing answered at the URL within `UNREACHABLE_GRACE` (or the wait, if shorter).
    #[error("nothing answers at {url} (waited {waited_secs}s; last error: {last}): is Metabase running there? Compose publishes it on http://127.0.0.1:3030")]
    Unreachable {
        /// The base URL.
        url: String,
        /// How long we waited.
        waited_secs: u64,
        /// The last connection error.
        last: String,
    },
    /// Something answers at the URL, but not as Metabase does.
    #[error("{url} is not Metabase: GET /api/health answered {status} {answer}{hint}")]
    NotMetabase {
        /// The base URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of what it answered.
        answer: String,
        /// What it looks like instead, when we can tell.
        hint: &'static str,
    },
    /// Metabase refused the credentials: a wrong admin email or password, an
    /// unknown or revoked API key, or a key whose group may not do this.
    /// Running again cannot help, so it has an exit code of its own.
    #[error("Metabase at {url} refused the {credentials}: {method} {path} answered {status}: {body}")]
    Credentials {
        /// The base URL.
        url: String,
        /// Which credentials: "admin email and password" or "API key".
        credentials: &'static str,
        /// The HTTP method.
        method: &'static str,
        /// The path requested.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer, scrubbed of secrets.
        body: String,
    },
    /// An API key was given, but Metabase is not set up yet, so no key can exist.
    #[error("Metabase at {url} is not set up yet, so no API key can exist: give --admin-password (or ORDERSTREAM_METABASE_ADMIN_PASSWORD) so this run claims its setup")]
    SetupNeedsPassword {
        /// The base URL.
        url: String,
    },
    /// Metabase answered with an error status.
    #[error("{step}: {method} {path} answered {status}: {body}")]
    Rejected {
        /// What was being done.
        step: Step,
        /// The HTTP method.
        method: &'static str,
        /// The path requested.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer, scrubbed of secrets.
        body: String,
    },
    /// The request could not be sent or its answer not read.
    #[error("{step}: {method} {path} failed")]
    Transport {
        /// What was being done.
        step: Step,
        /// The HTTP method.
        method: &'static str,
        /// The path requested.
        path: String,
        /// The transport error.
        source: Box<ureq::Error>,
    },
    /// A question's presentation header cannot be turned into card settings.
    #[error("question {key}: {source}")]
    Question {
        /// The question's key (file name without `.sql`).
        key: String,
        /// What is wrong with its header.
        source: PresentationError,
    },
    /// Metabase answered 2xx with something we cannot use.
    #[error("{step}: {method} {path} answered unexpectedly: {detail}")]
    Unexpected {
        /// What was being done.
        step: Step,
        /// The HTTP method.
        method: &'static str,
        /// The path requested.
        path: String,
        /// What was wrong with the answer.
        detail: String,
    },
}

impl MetabaseError {
    /// Whether running again later may succeed (Metabase busy or restarting),
    /// as opposed to a configuration mistake such as a wrong password.
    pub fn is_transient(&self) -> bool {
        match self {
            MetabaseError::NotHealthy { .. } | MetabaseError::Unreachable { .. } | MetabaseError::Transport { .. } => {
                true
            }
            MetabaseError::Rejected { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The process exit code for this error, so a script or an orchestrator
    /// can tell a wrong secret (3: fix it, do not retry) from a Metabase
    /// that is absent or elsewhere (4) and from a missing flag (2).
    pub fn exit_code(&self) -> u8 {
        match self {
            MetabaseError::MissingSecret { .. }
            | MetabaseError::SecretFile { .. }
            | MetabaseError::SetupNeedsPassword { .. } => EXIT_USAGE,
            MetabaseError::Credentials { .. } => EXIT_CREDENTIALS,
            MetabaseError::NotHealthy { .. }
            | MetabaseError::Unreachable { .. }
            | MetabaseError::NotMetabase { .. } => EXIT_NO_METABASE,
            _ => EXIT_OTHER,
        }
    }
}

/// Exit code: any other failure (Metabase refused a request, an answer we cannot use).
pub const EXIT_OTHER: u8 = 1;
/// Exit code: a secret is missing or unreadable (clap's own usage errors are 2 too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: Metabase refused the admin's credentials or the API key.
pub const EXIT_CREDENTIALS: u8 = 3;
/// Exit code: no Metabase at the URL, or it did not finish starting in time.
pub const EXIT_NO_METABASE: u8 = 4;

/// What one run did to one kind of object: the CLI prints it, the tests pin
/// idempotence on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Objects that did not exist and were created.
    pub created: usize,
    /// Objects that existed and were changed.
    pub updated: usize,
    /// Objects that existed as they should.
    pub unchanged: usize,
}

impl Tally {
    fn record(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
        }
    }

    fn of(outcome: Outcome) -> Self {
        let mut tally = Tally::default();
        tally.record(outcome);
        tally
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "created {}, updated {}, unchanged {}", self.created, self.updated, self.unchanged)
    }
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Created,
    Updated,
    Unchanged,
}

/// How the session was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupOutcome {
    /// This run claimed the setup token and created the admin.
    Claimed,
    /// Metabase was already set up; this run logged in.
    AlreadyDone,
    /// Metabase was already set up; this run used the API key.
    ApiKey,
}

/// What a provisioning run did, per kind of object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    /// Whether first-time setup was claimed by this run.
    pub setup: SetupOutcome,
    /// The warehouse connection (always updated when it exists, since
    /// Metabase never shows its stored password to compare).
    pub database: Tally,
    /// The collection.
    pub collection: Tally,
    /// The cards, one per question.
    pub cards: Tally,
    /// The dashboard (updated when its layout or filter changed).
    pub dashboard: Tally,
}

impl fmt::Display for Provisioned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let setup = match self.setup {
            SetupOutcome::Claimed => "claimed first-time setup",
            SetupOutcome::AlreadyDone => "logged in",
            SetupOutcome::ApiKey => "used the API key",
        };
        write!(
            f,
            "{setup}; database: {}; collection: {}; cards: {}; dashboard: {}",
            self.database, self.collection, self.cards, self.dashboard
        )
    }
}

/// Provisions Metabase: see the module documentation for the sequence.
/// Blocking; safe to run again at any time.
pub fn provision(args: &MetabaseArgs, questions: &[Question]) -> Result<Provisioned, MetabaseError> {
    let secrets = args.secrets()?;
    let questions: Vec<Question> = questions.iter().filter(|question| question.in_metabase()).cloned().collect();
    let questions = questions.as_slice();
    let mut client = Client::new(args.base_url(), &secrets);
    wait_until_ready(&client, args.wait)?;
    let setup = open_session(&mut client, args, &secrets)?;
    let (database_id, database) = ensure_database(&client, args, &secrets)?;
    let (collection_id, collection) = ensure_collection(&client, &args.collection)?;
    let (card_ids, cards) = ensure_cards(&client, questions, database_id, collection_id)?;
    let dashboard = ensure_dashboard(&client, args, collection_id, questions, &card_ids)?;
    let provisioned = Provisioned {
        setup,
        database: Tally::of(database),
        collection: Tally::of(collection),
        cards,
        dashboard: Tally::of(dashboard),
    };
    info!(message = "Metabase provisioned.", %provisioned);
    Ok(provisioned)
}

/// What `GET /api/health` told about the server at the URL.
#[derive(Debug, Clone, PartialEq)]
enum Health {
    /// Metabase is up: `{"status":"ok"}`.
    Ready,
    /// Metabase answers that it is starting (`503 {"status":"initializing","progress":0.4}`).
    Starting {
        /// How far its start is, 0 to 1, when it says.
        progress: Option<f64>,
    },
    /// Nothing answers (connection refused, no such host), or a proxy in
    /// front says its backend is down: maybe Metabase's JVM is not listening yet.
    Unreachable {
        /// The connection error or the proxy's answer.
        last: String,
    },
    /// Something else answers: not Metabase.
    NotMetabase {
        /// The HTTP status.
        status: u16,
        /// The start of the answer.
        answer: String,
    },
}

/// Classifies one health answer.
fn health_of(answer: Result<Value, MetabaseError>) -> Health {
    match answer {
        Ok(answer) if answer["status"] == "ok" => Health::Ready,
        Ok(answer) => Health::NotMetabase { status: 200, answer: answer.to_string() },
        Err(MetabaseError::Rejected { status, body, .. }) => {
            let metabase_status = serde_json::from_str::<Value>(&body).ok().filter(|json| json["status"].is_string());
            match (status, metabase_status) {
                (503, Some(json)) if json["status"] == "initializing" || json["status"] == "starting" => {
                    Health::Starting { progress: json["progress"].as_f64() }
                }
                (502..=504, None) => Health::Unreachable { last: format!("{status} {body}") },
                _ => Health::NotMetabase { status, answer: body },
            }
        }
        Err(MetabaseError::Unexpected { detail, .. }) => Health::NotMetabase { status: 200, answer: detail },
        Err(error) => Health::Unreachable { last: clients::postgres::describe(&error) },
    }
}

/// What an answer that is not Metabase's looks like, to say in the error.
fn not_metabase_hint(answer: &str) -> &'static str {
    if answer.contains("\"database\"") && answer.contains("\"version\"") {
        ": that is Grafana's answer (Compose publishes Grafana on port 3000 and Metabase on 3030)"
    } else {
        " (Compose publishes Metabase on http://127.0.0.1:3030)"
    }
}

/// Polls `GET /api/health` until Metabase says `ok`. Waits up to `wait`
/// while Metabase says it is starting, and up to [`UNREACHABLE_GRACE`]
/// while nothing answers, logging a progress line every [`PROGRESS_EVERY`];
/// anything else at the URL fails at once.
fn wait_until_ready(client: &Client, wait: Duration) -> Result<(), MetabaseError> {
    let started = Instant::now();
    let mut last_progress: Option<Instant> = None;
    loop {
        let health = health_of(client.get(Step::Health, "/api/health"));
        let waited = started.elapsed();
        let url = client.base.clone();
        let limit = match &health {
            Health::Ready => return Ok(()),
            Health::NotMetabase { status, answer } => {
                let answer: String = answer.chars().take(MAX_ERROR_BODY_CHARS).collect();
                let hint = not_metabase_hint(&answer);
                return Err(MetabaseError::NotMetabase { url, status: *status, answer, hint });
            }
            Health::Starting { .. } => wait,
            Health::Unreachable { .. } => wait.min(UNREACHABLE_GRACE),
        };
        if waited >= limit {
            let waited_secs = waited.as_secs();
            return Err(match health {
                Health::Unreachable { last } => MetabaseError::Unreachable { url, waited_secs, last },
                _ => MetabaseError::NotHealthy { url, waited_secs, last: format!("{health:?}") },
            });
        }
        if last_progress.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY) {
            log_progress(&url, &health, waited, limit);
            last_progress = Some(Instant::now());
        }
        std::thread::sleep(HEALTH_POLL.min(limit.saturating_sub(waited)));
    }
}

/// One progress line while waiting: what is waited for, for how long yet.
fn log_progress(url: &str, health: &Health, waited: Duration, limit: Duration) {
    let (waited_secs, gives_up_after_secs) = (waited.as_secs(), limit.as_secs());
    match health {
        Health::Starting { progress } => {
            let progress = progress.map_or_else(|| "unknown".to_string(), |p| format!("{:.0} %", p * 100.0));
            info!(message = "Waiting for Metabase to finish starting.", url, %progress, waited_secs, gives_up_after_secs);
        }
        Health::Unreachable { last } => {
            info!(message = "Nothing answers at the Metabase URL yet; waiting.", url, %last, waited_secs, gives_up_after_secs);
        }
        Health::Ready | Health::NotMetabase { .. } => {}
    }
}

/// Claims first-time setup if nobody has; otherwise uses the API key if one
/// is given, or logs in as the admin. Either way the client then carries
/// the credentials every later request needs.
fn open_session(client: &mut Client, args: &MetabaseArgs, secrets: &Secrets) -> Result<SetupOutcome, MetabaseError> {
    let properties = client.get(Step::Properties, "/api/session/properties")?;
    let unclaimed_token = match (&properties["setup-token"], &properties["has-user-setup"]) {
        (Value::String(token), Value::Bool(false)) => Some(token.clone()),
        _ => None,
    };
    if let Some(token) = unclaimed_token {
        let admin =
            secrets.admin.as_ref().ok_or_else(|| MetabaseError::SetupNeedsPassword { url: client.base.clone() })?;
        let answer = client.post(Step::Setup, "/api/setup", &setup_body(&token, args, admin))?;
        client.session = Some(required_session(&answer, Step::Setup, "/api/setup")?);
        client.credentials = Some(ADMIN_CREDENTIALS);
        info!(message = "Metabase setup claimed.", admin = %args.admin_email);
        return Ok(SetupOutcome::Claimed);
    }
    if let Some(api_key) = &secrets.api_key {
        // Checked by the very next request, before anything is changed.
        client.api_key = Some(api_key.expose().to_string());
        client.credentials = Some(API_KEY_CREDENTIALS);
        info!(message = "Metabase API key in use.");
        return Ok(SetupOutcome::ApiKey);
    }
    let admin = secrets
        .admin
        .as_ref()
        .ok_or(MetabaseError::MissingSecret { flag: "--admin-password", env: "ORDERSTREAM_METABASE_ADMIN_PASSWORD" })?;
    let answer = client.post(Step::Login, "/api/session", &login_body(args, admin))?;
    client.session = Some(required_session(&answer, Step::Login, "/api/session")?);
    client.credentials = Some(ADMIN_CREDENTIALS);
    info!(message = "Metabase session opened.", admin = %args.admin_email);
    Ok(SetupOutcome::AlreadyDone)
}

/// How the admin's credentials are named in an error.
const ADMIN_CREDENTIALS: &str = "admin email and password";
/// How the API key is named in an error.
const API_KEY_CREDENTIALS: &str = "API key";

fn setup_body(token: &str, args: &MetabaseArgs, admin: &Secret) -> Value {
    json!({
        "token": token,
        "user": {
            "first_name": "Orderstream",
            "last_name": "Admin",
            "email": args.admin_email,
            "password": admin.expose(),
        },
        // Anonymous tracking is off through MB_ANON_TRACKING_ENABLED in
        // compose: `allow_tracking` is no longer a documented preference.
        "prefs": { "site_name": "orderstream", "site_locale": "en" },
    })
}

fn login_body(args: &MetabaseArgs, admin: &Secret) -> Value {
    json!({ "username": args.admin_email, "password": admin.expose() })
}

/// Adds the warehouse connection, or re-applies its details (a rotated
/// password) when it exists. Returns its id.
fn ensure_database(client: &Client, args: &MetabaseArgs, secrets: &Secrets) -> Result<(i64, Outcome), MetabaseError> {
    let databases = client.get(Step::Database, "/api/database")?;
    let existing = listed(&databases)
        .iter()
        .find(|database| database["name"] == args.database_name.as_str())
        .and_then(|database| database["id"].as_i64());
    let (id, outcome) = match existing {
        Some(id) => {
            client.put(Step::Database, &format!("/api/database/{id}"), &database_body(args, secrets))?;
            (id, Outcome::Updated)
        }
        None => {
            let mut body = database_body(args, secrets);
            // Only creation documents `is_full_sync` (`PUT` does not).
            body["is_full_sync"] = json!(true);
            let answer = client.post(Step::Database, "/api/database", &body)?;
            (required_id(&answer, Step::Database, "POST", "/api/database")?, Outcome::Created)
        }
    };
    info!(message = "Metabase warehouse connection applied.", database_id = id, role = %args.warehouse_user, ?outcome);
    Ok((id, outcome))
}

fn database_body(args: &MetabaseArgs, secrets: &Secrets) -> Value {
    json!({
        "engine": "postgres",
        "name": args.database_name,
        "details": {
            "host": args.warehouse_host,
            "port": args.warehouse_port,
            "dbname": args.warehouse_db,
            "user": args.warehouse_user,
            "password": secrets.warehouse.expose(),
            "ssl": args.warehouse_ssl,
        },
    })
}

/// Finds the non-archived collection by name, or creates it. Returns its id.
fn ensure_collection(client: &Client, name: &str) -> Result<(i64, Outcome), MetabaseError> {
    let collections = client.get(Step::Collection, "/api/collection")?;
    let existing = listed(&collections)
        .iter()
        .filter(|collection| collection["archived"] != true && collection["name"] == name)
        .find_map(|collection| collection["id"].as_i64());
    if let Some(id) = existing {
        return Ok((id, Outcome::Unchanged));
    }
    let body = json!({ "name": name, "parent_id": null });
    let id = required_id(
        &client.post(Step::Collection, "/api/collection", &body)?,
        Step::Collection,
        "POST",
        "/api/collection",
    )?;
    info!(message = "Metabase collection created.", collection_id = id, name);
    Ok((id, Outcome::Created))
}

/// Creates or updates one card per question, matched by title within the
/// collection. Returns the card ids in question order.
fn ensure_cards(
    client: &Client,
    questions: &[Question],
    database_id: i64,
    collection_id: i64,
) -> Result<(Vec<i64>, Tally), MetabaseError> {
    let cards = client.get(Step::Cards, "/api/card?f=all")?;
    let in_collection: Vec<&Value> = listed(&cards)
        .iter()
        .filter(|card| card["collection_id"] == collection_id && card["archived"] != true)
        .collect();
    let mut tally = Tally::default();
    let mut ids = Vec::with_capacity(questions.len());
    for question in questions {
        let body = card_body(question, database_id, collection_id)?;
        let existing = in_collection
            .iter()
            .filter(|card| card["name"] == question.title.as_str())
            .min_by_key(|card| card["id"].as_i64());
        let (id, outcome) = match existing {
            Some(card) => update_card(client, card, &body, question)?,
            None => (
                required_id(&client.post(Step::Cards, "/api/card", &body)?, Step::Cards, "POST", "/api/card")?,
                Outcome::Created,
            ),
        };
        if outcome != Outcome::Unchanged {
            info!(message = "Metabase card applied.", card_id = id, question = %question.key, ?outcome);
        }
        tally.record(outcome);
        ids.push(id);
    }
    Ok((ids, tally))
}

/// Updates an existing card unless it is as `body` would make it.
fn update_card(
    client: &Client,
    card: &Value,
    body: &Value,
    question: &Question,
) -> Result<(i64, Outcome), MetabaseError> {
    let id = required_id(card, Step::Cards, "GET", "/api/card?f=all")?;
    if card_is_current(card, body, question) {
        return Ok((id, Outcome::Unchanged));
    }
    client.put(Step::Cards, &format!("/api/card/{id}"), body)?;
    Ok((id, Outcome::Updated))
}

/// Whether the card Metabase returned was written from `body` and still has
/// its file's SQL and display (which a person could have edited in Metabase).
fn card_is_current(card: &Value, body: &Value, question: &Question) -> bool {
    let wanted = body["description"].as_str().and_then(version_in);
    wanted.is_some()
        && card["description"].as_str().and_then(version_in) == wanted
        && card["display"] == body["display"]
        && native_sql(&card["dataset_query"]) == Some(question.sql.as_str())
}

/// The card as Metabase stores it: a native query with the file's SQL, and
/// the `month` template tag when the SQL has the optional month clause; the
/// header's presentation as `visualization_settings`; the description ends
/// with the version of all that.
fn card_body(question: &Question, database_id: i64, collection_id: i64) -> Result<Value, MetabaseError> {
    let presentation =
        question.presentation().map_err(|source| MetabaseError::Question { key: question.key.clone(), source })?;
    let mut native = json!({ "query": question.sql });
    if question.has_month_parameter() {
        native["template-tags"] = json!({
            MONTH_TAG: {
                "id": stable_uuid(&format!("orderstream/{}/{MONTH_TAG}", question.key)),
                "name": MONTH_TAG,
                "display-name": "Month",
                "type": "date",
            }
        });
    }
    let mut body = json!({
        "name": question.title,
        "description": question.description,
        "display": question.display,
        "collection_id": collection_id,
        "visualization_settings": visualization::settings(&question.display, &presentation),
        "dataset_query": { "type": "native", "database": database_id, "native": native },
    });
    let source = format!("metabase/questions/{}.sql", question.key);
    body["description"] = json!(stamped(&question.description, &source, &version_of(&body)));
    Ok(body)
}

/// Finds or creates the dashboard, then lays out one dashcard per card and
/// the month filter, when they are not already so.
fn ensure_dashboard(
    client: &Client,
    args: &MetabaseArgs,
    collection_id: i64,
    questions: &[Question],
    card_ids: &[i64],
) -> Result<Outcome, MetabaseError> {
    let (dashboard_id, created) = match find_dashboard(client, collection_id, &args.dashboard)? {
        Some(id) => (id, false),
        None => (create_dashboard(client, collection_id, &args.dashboard)?, true),
    };
    let dashboard = client.get(Step::Dashboard, &format!("/api/dashboard/{dashboard_id}"))?;
    let dashcards = Dashcards::sort(&existing_dashcards(&dashboard), card_ids);
    let layout = layout_body(questions, card_ids, &dashcards.managed);
    if !created && dashcards.retired.is_empty() && layout_is_current(&dashboard, &dashcards.managed, &layout) {
        return Ok(Outcome::Unchanged);
    }
    let body = with_what_others_added(layout, &dashcards.others, &dashboard);
    client.put(Step::Dashboard, &format!("/api/dashboard/{dashboard_id}"), &body)?;
    info!(
        message = "Metabase dashboard laid out.",
        dashboard_id,
        dashcards = card_ids.len(),
        kept_unmanaged = dashcards.others.len(),
        removed_retired = dashcards.retired.len()
    );
    Ok(if created { Outcome::Created } else { Outcome::Updated })
}

fn find_dashboard(client: &Client, collection_id: i64, name: &str) -> Result<Option<i64>, MetabaseError> {
    let items = client.get(Step::Dashboard, &format!("/api/collection/{collection_id}/items?models=dashboard"))?;
    Ok(listed(&items)
        .iter()
        .filter(|item| item["model"] == "dashboard" && item["name"] == name && item["archived"] != true)
        .find_map(|item| item["id"].as_i64()))
}

fn create_dashboard(client: &Client, collection_id: i64, name: &str) -> Result<i64, MetabaseError> {
    let body = json!({ "name": name, "collection_id": collection_id, "description": DASHBOARD_DESCRIPTION });
    required_id(&client.post(Step::Dashboard, "/api/dashboard", &body)?, Step::Dashboard, "POST", "/api/dashboard")
}

/// The dashboard's dashcards, found under `dashcards` (Metabase ≥ 0.47) or
/// `ordered_cards` (before).
fn existing_dashcards(dashboard: &Value) -> Vec<Value> {
    let cards = dashboard.get("dashcards").or_else(|| dashboard.get("ordered_cards"));
    cards.and_then(Value::as_array).cloned().unwrap_or_default()
}

/// A dashboard's dashcards, by who owns them.
struct Dashcards {
    /// The first dashcard of each card provisioned now: laid out by us.
    managed: Vec<Value>,
    /// Dashcards of cards provisioning once wrote (their description carries
    /// a version) but no question file asks for any more: removed.
    retired: Vec<Value>,
    /// Everything else (an analyst's card, a text, a second copy of one of
    /// ours): sent back as it is, so Metabase keeps it.
    others: Vec<Value>,
}

impl Dashcards {
    fn sort(existing: &[Value], card_ids: &[i64]) -> Dashcards {
        let mut sorted = Dashcards { managed: Vec::new(), retired: Vec::new(), others: Vec::new() };
        for dashcard in existing {
            let card_id = dashcard["card_id"].as_i64();
            let ours_now = card_id.is_some_and(|id| card_ids.contains(&id));
            let first_of_its_card = !sorted.managed.iter().any(|managed| managed["card_id"].as_i64() == card_id);
            let provisioned_once = dashcard["card"]["description"].as_str().and_then(version_in).is_some();
            if ours_now && first_of_its_card {
                sorted.managed.push(dashcard.clone());
            } else if !ours_now && provisioned_once {
                sorted.retired.push(dashcard.clone());
            } else {
                sorted.others.push(dashcard.clone());
            }
        }
        sorted
    }
}

/// The dashcard keys sent back for a dashcard we do not own: the documented
/// ones (and `card_id`), each as Metabase gave it. Metabase updates only the
/// keys a dashcard carries, so its settings (a text card's text) stay; the
/// `series` must be sent, or Metabase would drop a combined chart's extra series.
const KEPT_DASHCARD_KEYS: [&str; 9] =
    ["id", "card_id", "row", "col", "size_x", "size_y", "parameter_mappings", "series", "inline_parameters"];

/// `layout` with the dashcards and the filters we do not own added back as
/// they are, so that the `PUT` (which deletes every dashcard it does not
/// list) keeps them.
fn with_what_others_added(mut layout: Value, others: &[Value], dashboard: &Value) -> Value {
    let kept = others.iter().map(|dashcard| {
        let fields = KEPT_DASHCARD_KEYS
            .iter()
            .filter_map(|key| dashcard.get(*key).map(|value| (key.to_string(), value.clone())))
            .collect();
        Value::Object(fields)
    });
    if let Some(dashcards) = layout["dashcards"].as_array_mut() {
        dashcards.extend(kept);
    }
    let other_filters = dashboard["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|parameter| parameter["id"] != MONTH_PARAMETER_ID)
        .cloned();
    if let Some(parameters) = layout["parameters"].as_array_mut() {
        parameters.extend(other_filters);
    }
    layout
}

/// The `PUT /api/dashboard/:id` body: every card placed, existing dashcards
/// kept by id (so Metabase updates rather than recreates them), new ones with
/// negative ids as the API asks; the description ends with the version of the
/// layout (without the dashcard ids, which Metabase assigns).
fn layout_body(questions: &[Question], card_ids: &[i64], existing: &[Value]) -> Value {
    let mut next_new_id = 0;
    let dashcards: Vec<Value> = questions
        .iter()
        .zip(card_ids)
        .zip(layout(questions))
        .map(|((question, &card_id), place)| {
            let id = existing
                .iter()
                .find(|dashcard| dashcard["card_id"] == card_id)
                .and_then(|dashcard| dashcard["id"].as_i64());
            let id = id.unwrap_or_else(|| {
                next_new_id -= 1;
                next_new_id
            });
            dashcard(id, question, card_id, place)
        })
        .collect();
    let mut layout = json!({ "dashcards": dashcards, "parameters": [month_parameter()] });
    let version = version_of(&without_dashcard_ids(&layout));
    layout["description"] = json!(stamped(DASHBOARD_DESCRIPTION, DASHBOARD_SOURCE, &version));
    layout
}

fn without_dashcard_ids(layout: &Value) -> Value {
    let mut layout = layout.clone();
    for dashcard in layout["dashcards"].as_array_mut().into_iter().flatten() {
        if let Some(fields) = dashcard.as_object_mut() {
            fields.remove("id");
        }
    }
    layout
}

fn dashcard(id: i64, question: &Question, card_id: i64, place: Placement) -> Value {
    let mappings: Vec<Value> = if question.has_month_parameter() {
        vec![json!({
            "parameter_id": MONTH_PARAMETER_ID,
            "card_id": card_id,
            "target": ["variable", ["template-tag", MONTH_TAG]],
        })]
    } else {
        Vec::new()
    };
    json!({
        "id": id,
        "card_id": card_id,
        "row": place.row,
        "col": place.col,
        "size_x": place.size_x,
        "size_y": place.size_y,
        "parameter_mappings": mappings,
    })
}

/// The dashboard's one filter: the month the monthly questions look at
/// (empty: the data's latest complete month).
fn month_parameter() -> Value {
    json!({ "id": MONTH_PARAMETER_ID, "name": "Month", "slug": "month", "type": "date/single", "sectionId": "date" })
}

/// Whether the dashboard was laid out from this very layout (its version)
/// and its grid is still so: the same cards in the same places (plain
/// numbers, which Metabase returns as they were sent).
fn layout_is_current(dashboard: &Value, existing: &[Value], layout: &Value) -> bool {
    let wanted = layout["description"].as_str().and_then(version_in);
    let grid = |dashcard: &Value| {
        ["card_id", "row", "col", "size_x", "size_y"].map(|field| dashcard[field].as_i64().unwrap_or(-1))
    };
    let mut wanted_grid: Vec<_> = layout["dashcards"].as_array().into_iter().flatten().map(grid).collect();
    let mut current_grid: Vec<_> = existing.iter().map(grid).collect();
    wanted_grid.sort_unstable();
    current_grid.sort_unstable();
    wanted.is_some() && dashboard["description"].as_str().and_then(version_in) == wanted && wanted_grid == current_grid
}

/// Where a card sits on the 24-column grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Placement {
    row: u32,
    col: u32,
    size_x: u32,
    size_y: u32,
}

/// Lays the questions out in bands: the key figures and trends 6×4 side by side, then the
/// charts 12×6 two per row, then tables full width at the bottom; file order
/// within a band. Returns the placements in question order.
fn layout(questions: &[Question]) -> Vec<Placement> {
    let band = |display: &str| match display {
        "scalar" | "smartscalar" => 0,
        "table" => 2,
        _ => 1,
    };
    let size = |band: u32| match band {
        0 => (6, 4),
        1 => (12, 6),
        _ => (GRID_COLUMNS, 6),
    };
    let mut placements = vec![None; questions.len()];
    let mut top = 0;
    for current in 0..3 {
        let (size_x, size_y) = size(current);
        let (mut row, mut col, mut used) = (top, 0, false);
        for (index, _) in questions.iter().enumerate().filter(|(_, question)| band(&question.display) == current) {
            if col + size_x > GRID_COLUMNS {
                row += size_y;
                col = 0;
            }
            placements[index] = Some(Placement { row, col, size_x, size_y });
            col += size_x;
            used = true;
        }
        if used {
            top = row + size_y;
        }
    }
    placements.into_iter().map(|placement| placement.expect("every display falls in a band")).collect()
}

/// A UUID-shaped id derived from `seed`, so that a template tag keeps its id
/// from one run to the next (Metabase links filters by these ids).
fn stable_uuid(seed: &str) -> String {
    let hash = |salt: u64| {
        seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64 ^ salt, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let (high, low) = (hash(0), hash(0x9e37_79b9_7f4a_7c15));
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

/// The items of a list answer: newer Metabase wraps some lists in
/// `{"data": [...]}`, older returns the array itself.
fn listed(answer: &Value) -> &[Value] {
    answer.get("data").unwrap_or(answer).as_array().map(Vec::as_slice).unwrap_or_default()
}

fn required_id(answer: &Value, step: Step, method: &'static str, path: &str) -> Result<i64, MetabaseError> {
    answer["id"].as_i64().ok_or_else(|| unexpected(step, method, path, "an object with an integer `id`"))
}

fn required_session(answer: &Value, step: Step, path: &str) -> Result<String, MetabaseError> {
    answer["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| unexpected(step, "POST", path, "a session object with a string `id`"))
}

fn unexpected(step: Step, method: &'static str, path: &str, wanted: &str) -> MetabaseError {
    MetabaseError::Unexpected { step, method, path: path.to_string(), detail: format!("expected {wanted}") }
}

/// A blocking JSON client for Metabase that carries the session once there is
/// one and scrubs secrets from the error bodies it keeps.
struct Client {
    /// The HTTP agent; statuses are read, not turned into errors, so that
    /// error bodies can be reported.
    agent: ureq::Agent,
    /// The base URL without a trailing slash.
    base: String,
    /// The admin's session id, after setup or login.
    session: Option<String>,
    /// The API key, when the run uses one instead of a session.
    api_key: Option<String>,
    /// Which credentials the requests carry, once they carry any: a 401
    /// then means these were refused.
    credentials: Option<&'static str>,
    /// Values that must never appear in an error.
    secrets: Vec<String>,
}

impl Client {
    fn new(base: &str, secrets: &Secrets) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(120)))
            .build();
        Client {
            agent: ureq::Agent::new_with_config(config),
            base: base.to_string(),
            session: None,
            api_key: None,
            credentials: None,
            secrets: [secrets.admin.as_ref(), secrets.api_key.as_ref(), Some(&secrets.warehouse)]
                .into_iter()
                .flatten()
                .map(|secret| secret.expose().to_string())
                .collect(),
        }
    }

    /// `request` with the session or the API key, whichever the run has.
    fn authorised<B>(&self, mut request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        if let Some(session) = &self.session {
            request = request.header(SESSION_HEADER, session);
        }
        if let Some(api_key) = &self.api_key {
            request = request.header(API_KEY_HEADER, api_key);
        }
        request
    }

    fn get(&self, step: Step, path: &str) -> Result<Value, MetabaseError> {
        let request = self.authorised(self.agent.get(format!("{}{path}", self.base)));
        self.answer(step, "GET", path, request.call())
    }

    fn post(&self, step: Step, path: &str, body: &Value) -> Result<Value, MetabaseError> {
        let request = self.authorised(self.agent.post(format!("{}{path}", self.base)));
        self.answer(step, "POST", path, request.send_json(body))
    }

    fn put(&self, step: Step, path: &str, body: &Value) -> Result<Value, MetabaseError> {
        let request = self.authorised(self.agent.put(format!("{}{path}", self.base)));
        self.answer(step, "PUT", path, request.send_json(body))
    }

    /// Which credentials an error status means were refused, if any: the
    /// login's 400 or 401, a 401 once credentials are carried, and a 403 to
    /// an API key (its group may not do this).
    fn refused_credentials(&self, step: Step, status: u16) -> Option<&'static str> {
        match (step, status, self.credentials) {
            (Step::Login, 400 | 401, _) => Some(ADMIN_CREDENTIALS),
            (Step::Health | Step::Properties | Step::Setup, ..) => None,
            (_, 401, credentials) => credentials,
            (_, 403, Some(API_KEY_CREDENTIALS)) => Some(API_KEY_CREDENTIALS),
            _ => None,
        }
    }

    /// Turns a response into JSON, or into an error naming the step, the
    /// status and the (scrubbed) body.
    fn answer(
        &self,
        step: Step,
        method: &'static str,
        path: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, MetabaseError> {
        let transport =
            |source| MetabaseError::Transport { step, method, path: path.to_string(), source: Box::new(source) };
        let mut response = response.map_err(transport)?;
        let status = response.status().as_u16();
        let text = response.body_mut().with_config().limit(MAX_RESPONSE_BYTES).read_to_string().map_err(transport)?;
        if !(200..300).contains(&status) {
            let body = self.scrub(&text);
            if step != Step::Health {
                warn!(message = "Metabase rejected a request.", %step, method, path, status, %body);
            }
            if let Some(credentials) = self.refused_credentials(step, status) {
                let (url, path) = (self.base.clone(), path.to_string());
                return Err(MetabaseError::Credentials { url, credentials, method, path, status, body });
            }
            return Err(MetabaseError::Rejected { step, method, path: path.to_string(), status, body });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|error| MetabaseError::Unexpected {
            step,
            method,
            path: path.to_string(),
            detail: format!("not JSON: {error}"),
        })
    }

    /// The start of an error body with every secret replaced.
    fn scrub(&self, text: &str) -> String {
        let scrubbed = self
            .secrets
            .iter()
            .filter(|secret| !secret.is_empty())
            .fold(text.to_string(), |text, secret| text.replace(secret.as_str(), "<redacted>"));
        scrubbed.chars().take(MAX_ERROR_BODY_CHARS).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(key: &str, display: &str) -> Question {
        Question {
            key: key.into(),
            title: key.into(),
            display: display.into(),
            description: "d".into(),
            sql: "SELECT 1".into(),
        }
    }

    #[test]
    fn layout_puts_scalars_first_charts_in_pairs_and_tables_at_the_bottom() {
        let questions: Vec<Question> = ["scalar", "scalar", "line", "scalar", "line", "line", "bar", "table"]
            .iter()
            .enumerate()
            .map(|(i, d)| question(&i.to_string(), d))
            .collect();
        let placements = layout(&questions);
        let at = |i: usize| (placements[i].row, placements[i].col, placements[i].size_x, placements[i].size_y);
        assert_eq!([at(0), at(1), at(3)], [(0, 0, 6, 4), (0, 6, 6, 4), (0, 12, 6, 4)]);
        assert_eq!([at(2), at(4), at(5), at(6)], [(4, 0, 12, 6), (4, 12, 12, 6), (10, 0, 12, 6), (10, 12, 12, 6)]);
        assert_eq!(at(7), (16, 0, 24, 6));
    }

    #[test]
    fn layout_wraps_a_fifth_scalar_to_a_new_row() {
        let questions: Vec<Question> = (0..5).map(|i| question(&i.to_string(), "scalar")).collect();
        let placements = layout(&questions);
        assert_eq!((placements[4].row, placements[4].col), (4, 0));
    }

    #[test]
    fn stable_uuid_is_stable_and_uuid_shaped() {
        let id = stable_uuid("orderstream/01/month");
        assert_eq!(id, stable_uuid("orderstream/01/month"));
        assert_ne!(id, stable_uuid("orderstream/02/month"));
        let lengths: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(lengths, [8, 4, 4, 4, 12]);
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "<redacted>");
    }
}
