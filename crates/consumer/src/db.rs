//! The PostgreSQL connection pool and the classification of its errors.
//!
//! Whether an error is worth retrying decides whether data waits or is
//! dead-lettered, so the rule lives in one place: connection trouble, server
//! restarts, serialization failures and deadlocks pass; anything the database
//! says about the data itself does not.

use clients::{Database, DatabaseArgs, DatabaseConfigError};
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use thiserror::Error;
use tokio_postgres::error::SqlState;

/// A database failure, classified.
#[derive(Debug, Error)]
pub enum DbError {
    /// No connection could be had from the pool.
    #[error("no database connection")]
    Pool(#[from] PoolError),
    /// A statement failed (or a connection: the causes say why, such as
    /// why a TLS handshake failed).
    #[error("database error")]
    Statement(#[from] tokio_postgres::Error),
    /// The schema was migrated by another build: nothing to retry.
    #[error("{0}")]
    Migration(String),
    /// The database did not answer in time (a hung server or network).
    #[error("database did not answer within {0:?}")]
    Timeout(std::time::Duration),
}

/// The conversions `?` needs to turn a driver or pool error into `$error`'s
/// `Database` variant (a [`DbError`]): declared once for every error that
/// wraps one, since `?` applies a single `From`.
macro_rules! from_db_errors {
    ($error:ty) => {
        impl From<tokio_postgres::Error> for $error {
            fn from(error: tokio_postgres::Error) -> Self {
                <$error>::Database($crate::db::DbError::Statement(error))
            }
        }

        impl From<deadpool_postgres::PoolError> for $error {
            fn from(error: deadpool_postgres::PoolError) -> Self {
                <$error>::Database($crate::db::DbError::Pool(error))
            }
        }
    };
}
pub(crate) use from_db_errors;

impl DbError {
    /// Whether the same write may succeed if tried again later.
    pub fn is_transient(&self) -> bool {
        match self {
            DbError::Pool(PoolError::Backend(error)) | DbError::Statement(error) => is_transient(error),
            DbError::Pool(_) | DbError::Timeout(_) => true,
            DbError::Migration(_) => false,
        }
    }

    /// Whether the database refused the *data* of a statement (a data
    /// exception such as a numeric overflow, a constraint violation, or a
    /// value too wide for a row or an index entry, SQLSTATE 54000): the
    /// fault lies with some row, which bisection can find and dead-letter.
    /// Any other permanent error (a missing table, a privilege) would hit
    /// every row alike, so it stops the consumer instead of dead-lettering
    /// everything.
    pub fn is_record_specific(&self) -> bool {
        match self {
            DbError::Statement(error) => error.code().is_some_and(|code| {
                let class = &code.code()[..2];
                class == "22" || class == "23" || code == &SqlState::PROGRAM_LIMIT_EXCEEDED
            }),
            _ => false,
        }
    }
}

fn is_transient(error: &tokio_postgres::Error) -> bool {
    let Some(code) = error.code() else {
        // No SQLSTATE: the connection broke, timed out, or never opened.
        return true;
    };
    const TRANSIENT: [&SqlState; 8] = [
        &SqlState::T_R_SERIALIZATION_FAILURE,
        &SqlState::T_R_DEADLOCK_DETECTED,
        &SqlState::ADMIN_SHUTDOWN,
        &SqlState::CRASH_SHUTDOWN,
        &SqlState::CANNOT_CONNECT_NOW,
        &SqlState::TOO_MANY_CONNECTIONS,
        &SqlState::QUERY_CANCELED,
        &SqlState::LOCK_NOT_AVAILABLE,
    ];
    code.code().starts_with("08") || TRANSIENT.contains(&code)
}

/// Creates the pool (TLS as the URL's `sslmode` says; see the `clients`
/// crate); connections are opened lazily, on first use.
pub fn pool(database: &DatabaseArgs, size: usize) -> Result<Pool, DatabaseConfigError> {
    let database = Database::from_args(database)?;
    let mut config = database.config().clone();
    config.keepalives_idle(std::time::Duration::from_secs(30));
    let manager =
        Manager::from_config(config, database.tls(), ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Ok(Pool::builder(manager).max_size(size).build().expect("a pool without a runtime-specific setting builds"))
}
