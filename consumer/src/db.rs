//! The PostgreSQL connection pool and the classification of its errors.
//!
//! Whether an error is worth retrying decides whether data waits or is
//! dead-lettered, so the rule lives in one place: connection trouble, server
//! restarts, serialization failures and deadlocks pass; anything the database
//! says about the data itself does not.

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use thiserror::Error;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

/// A database failure, classified.
#[derive(Debug, Error)]
pub enum DbError {
    /// No connection could be had from the pool.
    #[error("no database connection: {0}")]
    Pool(#[from] PoolError),
    /// A statement failed.
    #[error("database error: {0}")]
    Statement(#[from] tokio_postgres::Error),
}

impl DbError {
    /// Whether the same write may succeed if tried again later.
    pub fn is_transient(&self) -> bool {
        match self {
            DbError::Pool(PoolError::Backend(error)) | DbError::Statement(error) => is_transient(error),
            DbError::Pool(_) => true,
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

/// Creates the pool; connections are opened lazily, on first use.
pub fn pool(database_url: &str, size: usize) -> Result<Pool, tokio_postgres::Error> {
    let config: tokio_postgres::Config = database_url.parse()?;
    let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Ok(Pool::builder(manager).max_size(size).build().expect("a pool without a runtime-specific setting builds"))
}
