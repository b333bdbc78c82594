//! Applies the schema crate's migrations: `orderstream-consumer migrate` as
//! the database's owner, and the consumer at start.
//!
//! A consumer may run as a role that cannot change the schema (the writer of
//! the least-privilege roles, see migration 4): it first reads which
//! migrations are applied, with no lock and no DDL, and starts at once when
//! none is pending. Only when one is pending does it try to apply it, and a
//! role without the right gets [`MigrateError::NotPermitted`], which says to
//! run `migrate` as the owner.
//!
//! Several consumers may start at once: the first takes a transaction-scoped
//! advisory lock, the others wait for it and then find nothing left to do.
//! Each migration and its bookkeeping row commit together, so a crash never
//! leaves a migration half-recorded.

use crate::events::MigrationApplied;
use clients::Database;
use schema::migrations::{Migration, MIGRATIONS};
use thiserror::Error;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

/// An arbitrary constant naming orderstream's migration lock.
const MIGRATION_LOCK: i64 = 0x6f72_6465_7273; // "orders"

/// Why the schema could not be brought up to date.
#[derive(Debug, Error)]
pub enum MigrateError {
    /// No connection could be opened (the URL is shown without its password).
    #[error("cannot connect to PostgreSQL at {url}: {reason}")]
    Connect {
        /// The database URL, password redacted.
        url: String,
        /// Why, with its causes (a TLS failure's reason is a cause).
        reason: String,
    },
    /// The database refused a statement.
    #[error("migration failed")]
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
    /// The schema is behind this build and the role connected may not change it.
    #[error(
        "the database schema is behind this build ({pending}) and role `{role}` may not migrate it: \
         run `orderstream-consumer migrate` as the database owner first"
    )]
    NotPermitted {
        /// The role connected.
        role: String,
        /// The migrations not applied yet, or why that is unknown.
        pending: String,
    },
}

/// Connects to `database` and applies what is pending; returns how many
/// migrations it applied.
pub async fn migrate_database(database: &Database) -> Result<usize, MigrateError> {
    let mut client = database.connect().await.map_err(|error| MigrateError::Connect {
        url: database.redacted_url().to_string(),
        reason: clients::postgres::describe(&error),
    })?;
    migrate(&mut client).await
}

/// Applies every migration not yet applied; returns how many it applied.
/// Nothing is locked or created when the schema is current.
pub async fn migrate(client: &mut Client) -> Result<usize, MigrateError> {
    let pending = match pending(client).await {
        Ok(pending) if pending.is_empty() => return Ok(0),
        Ok(pending) => pending.iter().map(|m| format!("{} `{}`", m.version, m.name)).collect::<Vec<_>>().join(", "),
        Err(MigrateError::Database(error)) if is_not_permitted(&error) => "applied migrations unreadable".into(),
        Err(error) => return Err(error),
    };
    match apply_pending(client).await {
        Err(MigrateError::Database(error)) if is_not_permitted(&error) => {
            let role = current_role(client).await.unwrap_or_else(|_| "?".into());
            Err(MigrateError::NotPermitted { role, pending: format!("pending: {pending}") })
        }
        other => other,
    }
}

/// The migrations of this build the database has not applied, read without
/// a lock or any DDL. Fails on a name mismatch.
pub async fn pending(client: &Client) -> Result<Vec<&'static Migration>, MigrateError> {
    let exists: bool = client.query_one("SELECT to_regclass('orderstream_migrations') IS NOT NULL", &[]).await?.get(0);
    if !exists {
        return Ok(MIGRATIONS.iter().collect());
    }
    let applied = client.query("SELECT version, name FROM orderstream_migrations ORDER BY version", &[]).await?;
    let mut pending = Vec::new();
    for migration in MIGRATIONS {
        match applied.iter().find(|row| row.get::<_, i32>(0) == migration.version).map(|row| row.get::<_, String>(1)) {
            Some(name) if name == migration.name => {}
            Some(found) => {
                return Err(MigrateError::Mismatch { version: migration.version, found, expected: migration.name })
            }
            None => pending.push(migration),
        }
    }
    Ok(pending)
}

async fn apply_pending(client: &mut Client) -> Result<usize, MigrateError> {
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
        MigrationApplied { version: migration.version, name: migration.name }.emit();
        count += 1;
    }
    transaction.commit().await?;
    Ok(count)
}

/// A privilege the role lacks (a table it does not own, CREATE on the
/// schema, CREATEROLE).
fn is_not_permitted(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE)
}

async fn current_role(client: &Client) -> Result<String, tokio_postgres::Error> {
    Ok(client.query_one("SELECT current_user::text", &[]).await?.get(0))
}
