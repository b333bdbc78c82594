//! The PostgreSQL schema, as ordered migrations embedded in the binary.
//!
//! `orderstream-consumer migrate` applies them, as the database's owner; the
//! consumer also applies them at start when its role may (see its `migrate`
//! module). Keeping the SQL here, beside the record it stores, means the
//! record and its table change together. A migration, once released, is never
//! edited: a change is a new migration.

/// One schema change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Applied in ascending order; recorded once applied.
    pub version: i32,
    /// A short name, recorded beside the version so that a database migrated
    /// by a different build is recognised.
    pub name: &'static str,
    /// The SQL, run in one transaction.
    pub sql: &'static str,
}

/// Every migration, in the order they are applied.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "orders", sql: include_str!("../migrations/0001_orders.sql") },
    Migration { version: 2, name: "exactly_once", sql: include_str!("../migrations/0002_exactly_once.sql") },
    Migration { version: 3, name: "analysis_views", sql: include_str!("../migrations/0003_analysis_views.sql") },
    Migration {
        version: 4,
        name: "least_privilege_roles",
        sql: include_str!("../migrations/0004_least_privilege_roles.sql"),
    },
    Migration {
        version: 5,
        name: "dead_letter_raw_headers",
        sql: include_str!("../migrations/0005_dead_letter_raw_headers.sql"),
    },
    Migration {
        version: 6,
        name: "dead_letters_of_both_stages",
        sql: include_str!("../migrations/0006_dead_letters_of_both_stages.sql"),
    },
    Migration { version: 7, name: "export_columns", sql: include_str!("../migrations/0007_export_columns.sql") },
    Migration {
        version: 8,
        name: "bounded_index_keys",
        sql: include_str!("../migrations/0008_bounded_index_keys.sql"),
    },
    Migration {
        version: 9,
        name: "consumer_dead_letters_once",
        sql: include_str!("../migrations/0009_consumer_dead_letters_once.sql"),
    },
];

/// The consumer's role: read and write its tables, no DDL. Created NOLOGIN
/// by migration 4 when missing; a migration adding a table the consumer
/// writes grants it to this role.
pub const WRITER_ROLE: &str = "orderstream_writer";

/// The analysts' role (Metabase, the report, the lag exporter): SELECT on
/// the `analysis_*` views and `pipeline_freshness` only. A migration adding
/// such a view grants it to this role.
pub const ANALYST_ROLE: &str = "orderstream_analyst";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_strictly_increase_from_one() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, index as i32 + 1, "{}", migration.name);
            assert!(!migration.sql.trim().is_empty(), "{}", migration.name);
        }
    }
}
