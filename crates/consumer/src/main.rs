//! `orderstream-consumer`: the command line over this crate (run, `migrate`,
//! `redrive`, `dead-letters`, `replay`). Parsing, validation and error
//! reporting only; the work is in the library, where tests can call it.

use anyhow::Context;
use clients::Database;
use orderstream_consumer::config::{Command, DeadLettersCommand};
use orderstream_consumer::migrate::{migrate_database, MigrateError};
use orderstream_consumer::triage::{self, ListFilter, ResolveSelector};
use orderstream_consumer::{dead_letters, redrive, replay, run, Config};

fn main() -> anyhow::Result<()> {
    // See `telemetry::allocator`: glibc's fastbins cost a tenth of the CPU.
    telemetry::allocator::without_fastbins();
    // Before the runtime starts its threads: the aliases change the environment.
    let config: Config = telemetry::startup(telemetry::Logging::On).context("invalid configuration")?;
    main_with(config)
}

#[tokio::main]
async fn main_with(mut config: Config) -> anyhow::Result<()> {
    // Reads FAILPOINTS in test builds with the `failpoints` feature; does nothing otherwise.
    let _failpoints = fail::FailScenario::setup();
    config.kafka.load_password_file()?;
    match config.command.clone() {
        None | Some(Command::Run) => {
            // One early look at the schema, so a role that may not migrate a
            // schema that is behind stops at once, saying what to do. Anything
            // else (the database not up yet) is for `run` to retry.
            let database = Database::from_args(&config.database)?;
            if let Err(error @ (MigrateError::NotPermitted { .. } | MigrateError::Mismatch { .. })) =
                migrate_database(&database).await
            {
                return Err(error.into());
            }
            run(config, telemetry::shutdown_signal()).await?
        }
        Some(Command::Migrate) => {
            let database = Database::from_args(&config.database)?;
            let applied = migrate_database(&database).await?;
            println!("schema is current: {applied} migration(s) applied");
        }
        Some(Command::Redrive { reason, batch_size }) => {
            redrive(&config, reason.as_deref(), batch_size).await?;
        }
        Some(Command::DeadLetters(DeadLettersCommand::Export { output, reason, pending })) => {
            let database = Database::from_args(&config.database)?;
            let client = database
                .connect()
                .await
                .with_context(|| format!("cannot connect to PostgreSQL at {}", database.redacted_url()))?;
            let target = dead_letters::ExportTarget::from_arg(output);
            let count = dead_letters::export_csv(&client, &target, reason.as_deref(), pending).await?;
            // On standard error: standard output may be the CSV itself.
            eprintln!("{count} dead letter(s) written to {}", target.describe());
        }
        Some(Command::Replay(args)) => println!("{}", replay::replay_topic(&config, &args).await?),
        Some(Command::DeadLetters(DeadLettersCommand::List { reason, pending, stage, limit })) => {
            let client = connect(&config).await?;
            let filter =
                ListFilter { reason: reason.as_deref(), stage: stage.map(|stage| stage.as_str()), pending, limit };
            let rows = triage::list(&client, &filter).await.context("cannot read dead_letters")?;
            print!("{}", triage::render(&rows));
            println!("{} dead letter(s) shown", rows.len());
        }
        Some(Command::DeadLetters(DeadLettersCommand::Resolve { id, file, reason })) => {
            let client = connect(&config).await?;
            let selector = ResolveSelector { ids: &id, file: file.as_deref(), reason: reason.as_deref() };
            let resolved = triage::resolve(&client, &selector).await.context("cannot update dead_letters")?;
            println!("{resolved} producer dead letter(s) resolved");
        }
    }
    Ok(())
}

/// One connection for a short command, the URL redacted in the error.
async fn connect(config: &Config) -> anyhow::Result<tokio_postgres::Client> {
    let database = Database::from_args(&config.database)?;
    database.connect().await.with_context(|| format!("cannot connect to PostgreSQL at {}", database.redacted_url()))
}
