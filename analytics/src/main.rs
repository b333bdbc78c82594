use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use orderstream_analytics::metabase::{provision, MetabaseArgs};
use orderstream_analytics::questions::{default_folder, load_questions};
use orderstream_analytics::{answers, report};
use tokio_postgres::NoTls;

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
        /// PostgreSQL URL (a read-only role is enough). Never logged.
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "postgres://orderstream@127.0.0.1:5433/orderstream",
            hide_env_values = true
        )]
        database_url: String,
        /// Month to report on (first day, `YYYY-MM-01`); the data's latest complete month if absent.
        #[arg(long)]
        month: Option<chrono::NaiveDate>,
        /// Where to write the report.
        #[arg(long, default_value = "report.html")]
        output: PathBuf,
    },
    /// Create or update the Metabase collection, questions and dashboard (idempotent).
    ProvisionMetabase(Box<MetabaseArgs>),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_logging();
    let cli = Cli::parse();
    let questions = load_questions(&cli.questions)?;
    match cli.command {
        Command::Report { database_url, month, output } => {
            let (client, connection) =
                tokio_postgres::connect(&database_url, NoTls).await.context("cannot connect to PostgreSQL")?;
            tokio::spawn(connection);
            let mut answered = Vec::new();
            for question in questions {
                let answer = answers::answer(&client, &question, month)
                    .await
                    .with_context(|| format!("question {} failed", question.key))?;
                answered.push((question, answer));
            }
            let html = report::render(&answered, chrono::Utc::now().naive_utc());
            if let Some(folder) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(folder)?;
            }
            std::fs::write(&output, html).with_context(|| format!("cannot write {}", output.display()))?;
            println!("report written to {}", output.display());
        }
        Command::ProvisionMetabase(args) => {
            let provisioned = tokio::task::spawn_blocking(move || provision(&args, &questions)).await??;
            println!("{provisioned}");
        }
    }
    Ok(())
}
