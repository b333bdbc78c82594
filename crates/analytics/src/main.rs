//! `orderstream-analytics`: the command line over this crate: `report`
//! writes the HTML report, `provision-metabase` builds the Metabase dashboard.
//! Parsing and error reporting only; the work is in the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use clients::Database;
use orderstream_analytics::metabase::{provision, MetabaseArgs};
use orderstream_analytics::questions::{default_folder, load_questions};
use orderstream_analytics::{answers, report};

/// The "Orders and baskets analysis" from the SQL files in metabase/questions/.
#[derive(Parser)]
#[command(name = "orderstream-analytics", version)]
struct Cli {
    /// Folder of the question files.
    #[arg(long, env = "ORDERSTREAM_QUESTIONS", default_value_os_t = default_folder(), global = true)]
    questions: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render every question into one self-contained HTML file.
    Report {
        /// The PostgreSQL URL (with `sslmode`) and CA file. The analyst role
        /// (`orderstream_analyst`, SELECT on the analysis views only) is enough.
        #[command(flatten)]
        database: clients::DatabaseArgs,
        /// Month to report on, `YYYY-MM` (e.g. 2022-07); the data's latest
        /// complete month if absent. A day inside a month, or a month without
        /// orders, is refused.
        #[arg(long, value_parser = report::month::parse)]
        month: Option<chrono::NaiveDate>,
        /// Where to write the report.
        #[arg(long, default_value = "report.html")]
        output: PathBuf,
    },
    /// Create or update the Metabase collection, questions and dashboard (idempotent).
    ProvisionMetabase(Box<MetabaseArgs>),
}

/// Nothing to check before the subcommand runs: `report` validates its
/// database flags itself, `provision-metabase` its secrets.
impl telemetry::Configuration for Cli {
    type Invalid = std::convert::Infallible;

    fn validate(&self) -> Result<(), Self::Invalid> {
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    // Before the runtime starts its threads: the aliases change the environment.
    let cli: Cli = telemetry::startup(telemetry::Logging::On)?;
    main_with(cli)
}

#[tokio::main]
async fn main_with(cli: Cli) -> anyhow::Result<()> {
    let questions = load_questions(&cli.questions)?;
    match cli.command {
        Command::Report { database, month, output } => {
            database.validate()?;
            let database = Database::from_args(&database)?;
            let client = database
                .connect()
                .await
                .with_context(|| format!("cannot connect to PostgreSQL at {}", database.redacted_url()))?;
            let span = answers::data_span(&client, month).await.context("cannot read the orders' time span")?;
            if let Some((month, span)) = month.zip(span.as_ref()) {
                report::month::check_in_data(month, span)?;
            }
            let mut answered = Vec::new();
            for question in questions.into_iter().filter(|question| question.in_report()) {
                let answer = answers::answer(&client, &question, month)
                    .await
                    .with_context(|| format!("question {} failed", question.key))?;
                answered.push((question, answer));
            }
            let html = report::render(&answered, span, chrono::Utc::now().naive_utc());
            if let Some(folder) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(folder)?;
            }
            std::fs::write(&output, html).with_context(|| format!("cannot write {}", output.display()))?;
            println!("report written to {}", output.display());
        }
        Command::ProvisionMetabase(args) => {
            match tokio::task::spawn_blocking(move || provision(&args, &questions)).await? {
                Ok(provisioned) => println!("{provisioned}"),
                Err(error) => {
                    // Its own exit code, so that a wrong secret (3) or no
                    // Metabase at the URL (4) can be told apart by a script.
                    let code = error.exit_code();
                    eprintln!("Error: {:#}", anyhow::Error::from(error));
                    std::process::exit(code.into());
                }
            }
        }
    }
    Ok(())
}
