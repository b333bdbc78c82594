//! Applies the schema crate's migrations, once, at start.
//!
//! Several consumers may start at once: the first takes a transaction-scoped
//! advisory lock, the others wait for it and then find nothing left to do.
//! Each migration and its bookkeeping row commit together, so a crash never
//! leaves a migration half-recorded.

use schema::migrations::MIGRATIONS;
use thiserror::Error;
use tokio_postgres::Client;
use tracing::info;

/// An arbitrary constant naming orderstream's migration lock.
const MIGRATION_LOCK: i64 = 0x6f72_6465_7273; // "orders"

/// Why the schema could not be brought up to date.
#[derive(Debug, Error)]
pub enum MigrateError {
    /// The database refused a statement.
    #[error("migration failed: {0}")]
    Database(#[from] tokio_postgres::Error),
    /// The database records a migration under a name this build does not know
    /// for that version: it was migrated by another build.
    #[error("database has migration {version} `{found}`, this build expects `{expected}`")]
    Mismatch {
        /// The version.
        version: i32,
        /// Name recorded in the database.
        found: String,
        /// Name in this build.
        expected: &'static str,
    },
}

/// Applies every migration not yet applied; returns how many it applied.
pub async fn migrate(client: &mut Client) -> Result<usize, MigrateError> {
    let transaction = client.transaction().await?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS orderstream_migrations (
                 version    INTEGER PRIMARY KEY,
                 name       TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await?;
    let applied = transaction.query("SELECT version, name FROM orderstream_migrations ORDER BY version", &[]).await?;
    let mut count = 0;
    for migration in MIGRATIONS {
        let recorded = applied.iter().find(|row| row.get::<_, i32>(0) == migration.version);
        match recorded.map(|row| row.get::<_, String>(1)) {
            Some(name) if name == migration.name => continue,
            Some(found) => {
                return Err(MigrateError::Mismatch { version: migration.version, found, expected: migration.name })
            }
            None => {}
        }
        transaction.batch_execute(migration.sql).await?;
        transaction
            .execute(
                "INSERT INTO orderstream_migrations (version, name) VALUES ($1, $2)",
                &[&migration.version, &migration.name],
            )
            .await?;
        info!(message = "Migration applied.", version = migration.version, name = migration.name);
        count += 1;
    }
    transaction.commit().await?;
    Ok(count)
}
