//! One environment prefix: every variable orderstream reads is named
//! `ORDERSTREAM_…`. A few older or conventional names are still read as
//! aliases, so a deployment written for them keeps working:
//!
//! - `DATABASE_URL` and `KAFKA_BROKERS`: the names most tools and platforms
//!   set (Heroku, Render, docker-compose examples). Documented, kept.
//! - `PGSSLROOTCERT`: libpq's own name for the CA file. Documented, kept.
//! - the other names used before the prefix (`KAFKA_SASL_PASSWORD`,
//!   `METABASE_URL`, …): deprecated, read with a warning.
//! - the `ORDERSTREAM_…_MS` names of settings that now take a humantime
//!   duration (`ORDERSTREAM_POLL_INTERVAL_MS` for
//!   `ORDERSTREAM_POLL_INTERVAL`): documented, kept; their bare numbers are
//!   still read as milliseconds (see [`crate::duration`]).
//!
//! The `ORDERSTREAM_` name wins when both are set. clap reads one variable
//! per flag, so the aliases are copied to their `ORDERSTREAM_` names before
//! the command line is parsed, in [`apply_aliases`], which
//! [`crate::startup`] calls first thing in `main`, before the runtime starts
//! threads.

/// One alias: the old name and the `ORDERSTREAM_` name it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alias {
    /// The name read when the `ORDERSTREAM_` one is unset.
    pub old: &'static str,
    /// The name the flag reads.
    pub canonical: &'static str,
    /// Whether the alias is kept for good (documented) or on its way out.
    pub kept: bool,
}

const fn kept(old: &'static str, canonical: &'static str) -> Alias {
    Alias { old, canonical, kept: true }
}

const fn deprecated(old: &'static str, canonical: &'static str) -> Alias {
    Alias { old, canonical, kept: false }
}

/// Every alias, for every binary (a binary ignores the names it has no flag for).
pub(crate) const ALIASES: [Alias; 23] = [
    kept("DATABASE_URL", "ORDERSTREAM_DATABASE_URL"),
    kept("KAFKA_BROKERS", "ORDERSTREAM_KAFKA_BROKERS"),
    kept("PGSSLROOTCERT", "ORDERSTREAM_DATABASE_SSL_ROOT_CERT"),
    deprecated("KAFKA_SECURITY_PROTOCOL", "ORDERSTREAM_KAFKA_SECURITY_PROTOCOL"),
    deprecated("KAFKA_SASL_MECHANISM", "ORDERSTREAM_KAFKA_SASL_MECHANISM"),
    deprecated("KAFKA_SASL_USERNAME", "ORDERSTREAM_KAFKA_SASL_USERNAME"),
    deprecated("KAFKA_SASL_PASSWORD", "ORDERSTREAM_KAFKA_SASL_PASSWORD"),
    deprecated("KAFKA_SASL_PASSWORD_FILE", "ORDERSTREAM_KAFKA_SASL_PASSWORD_FILE"),
    deprecated("KAFKA_SSL_CA_LOCATION", "ORDERSTREAM_KAFKA_SSL_CA_LOCATION"),
    deprecated("METABASE_URL", "ORDERSTREAM_METABASE_URL"),
    deprecated("METABASE_ADMIN_EMAIL", "ORDERSTREAM_METABASE_ADMIN_EMAIL"),
    deprecated("METABASE_ADMIN_PASSWORD", "ORDERSTREAM_METABASE_ADMIN_PASSWORD"),
    deprecated("METABASE_ADMIN_PASSWORD_FILE", "ORDERSTREAM_METABASE_ADMIN_PASSWORD_FILE"),
    deprecated("METABASE_COLLECTION", "ORDERSTREAM_METABASE_COLLECTION"),
    deprecated("METABASE_DASHBOARD", "ORDERSTREAM_METABASE_DASHBOARD"),
    deprecated("METABASE_DATABASE_NAME", "ORDERSTREAM_METABASE_DATABASE_NAME"),
    deprecated("METABASE_WAIT_SECS", "ORDERSTREAM_METABASE_WAIT"),
    kept("ORDERSTREAM_METABASE_WAIT_SECS", "ORDERSTREAM_METABASE_WAIT"),
    kept("ORDERSTREAM_POLL_INTERVAL_MS", "ORDERSTREAM_POLL_INTERVAL"),
    kept("ORDERSTREAM_RESCAN_INTERVAL_MS", "ORDERSTREAM_RESCAN_INTERVAL"),
    kept("ORDERSTREAM_POSITION_FLUSH_MS", "ORDERSTREAM_POSITION_FLUSH_INTERVAL"),
    kept("ORDERSTREAM_BATCH_WAIT_MS", "ORDERSTREAM_BATCH_WAIT"),
    kept("ORDERSTREAM_LAG_INTERVAL_MS", "ORDERSTREAM_LAG_INTERVAL"),
];

/// What [`apply_aliases`] would do with this environment: for each alias
/// whose old name is set while its `ORDERSTREAM_` name is not, the alias and
/// the value to copy. Pure, for tests.
pub(crate) fn resolve(
    get: impl Fn(&str) -> Option<std::ffi::OsString>,
    aliases: &[Alias],
) -> Vec<(&Alias, std::ffi::OsString)> {
    aliases
        .iter()
        .filter(|alias| get(alias.canonical).is_none())
        .filter_map(|alias| get(alias.old).map(|value| (alias, value)))
        .collect()
}

/// Copies every set alias to its unset `ORDERSTREAM_` name, and returns the
/// deprecated ones used, for the binary to warn about once logging is up.
///
/// Call it before any thread starts (first thing in `main`, before the
/// Tokio runtime): it changes the process's environment.
pub fn apply_aliases() -> Vec<Alias> {
    let copies = resolve(|name| std::env::var_os(name), &ALIASES);
    let mut deprecated_used = Vec::new();
    for (alias, value) in copies {
        std::env::set_var(alias.canonical, value);
        if !alias.kept {
            deprecated_used.push(*alias);
        }
    }
    deprecated_used
}

/// The message of the warning a deprecated name gets: tests and log
/// searches match this constant, not a copy of its text.
pub const DEPRECATED_VARIABLE: &str = "Deprecated environment variable; rename it.";

/// Logs one warning per deprecated name the environment used.
pub fn warn_deprecated(used: &[Alias]) {
    for alias in used {
        tracing::warn!(message = DEPRECATED_VARIABLE, variable = alias.old, rename_to = alias.canonical);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::ffi::OsString;

    use super::*;

    fn environment(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> =
            pairs.iter().map(|(name, value)| (name.to_string(), OsString::from(value))).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn an_old_name_fills_its_unset_orderstream_name() {
        let copies = resolve(environment(&[("DATABASE_URL", "postgres://a")]), &ALIASES);
        assert_eq!(copies.len(), 1);
        assert_eq!(copies[0].0.canonical, "ORDERSTREAM_DATABASE_URL");
        assert_eq!(copies[0].1, "postgres://a");
    }

    #[test]
    fn the_orderstream_name_wins_over_its_alias() {
        let env = environment(&[("KAFKA_BROKERS", "old:9092"), ("ORDERSTREAM_KAFKA_BROKERS", "new:9092")]);
        assert!(resolve(env, &ALIASES).is_empty());
    }

    #[test]
    fn nothing_set_copies_nothing() {
        assert!(resolve(environment(&[]), &ALIASES).is_empty());
    }

    #[test]
    fn only_the_documented_aliases_are_kept_for_good() {
        let kept: Vec<&str> = ALIASES.iter().filter(|alias| alias.kept).map(|alias| alias.old).collect();
        assert_eq!(
            kept,
            [
                "DATABASE_URL",
                "KAFKA_BROKERS",
                "PGSSLROOTCERT",
                "ORDERSTREAM_METABASE_WAIT_SECS",
                "ORDERSTREAM_POLL_INTERVAL_MS",
                "ORDERSTREAM_RESCAN_INTERVAL_MS",
                "ORDERSTREAM_POSITION_FLUSH_MS",
                "ORDERSTREAM_BATCH_WAIT_MS",
                "ORDERSTREAM_LAG_INTERVAL_MS",
            ]
        );
        assert!(ALIASES.iter().all(|alias| alias.canonical.starts_with("ORDERSTREAM_")));
    }
}
