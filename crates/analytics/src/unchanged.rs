//! How provisioning decides that a card or the dashboard is already as it
//! should be, without comparing what Metabase gives back to what it was sent.
//!
//! Metabase rewrites what it stores: since 0.57 a card's `dataset_query`
//! comes back as MBQL 5 (`{"lib/type": "mbql/query", "stages": [{"lib/type":
//! "mbql.stage/native", "native": "SELECT …", "template-tags": {…}}]}`, see
//! the 0.57 entry of `docs/developers-guide/api-changelog.md` in
//! metabase/metabase), and it may normalise visualization settings too. So
//! every object provisioning writes carries, at the end of its description,
//! a **version**: a hash of the whole body it was written with. The object is
//! unchanged when that version equals the hash of the body provisioning would
//! send now *and* the parts a person could have edited in Metabase and that
//! come back verbatim (a card's SQL, read from either query shape, and its
//! display; the dashboard's grid) still match.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// What introduces the version at the end of a description.
const VERSION_MARKER: &str = "(version ";

/// The version of `body`: the start of its SHA-256, enough to tell edits
/// apart and short enough to read in a description.
pub fn version_of(body: &Value) -> String {
    let digest = Sha256::digest(body.to_string().as_bytes());
    hex::encode(digest)[..16].to_string()
}

/// `description` followed by where the object comes from and its version.
pub fn stamped(description: &str, source: &str, version: &str) -> String {
    format!("{description}\n\nProvisioned from {source} {VERSION_MARKER}{version}): edit that, not this.")
}

/// The version at the end of a description written by [`stamped`].
pub fn version_in(description: &str) -> Option<&str> {
    let (_, rest) = description.rsplit_once(VERSION_MARKER)?;
    rest.split_once(')').map(|(version, _)| version)
}

/// The SQL of a native card as Metabase returns it: MBQL 5 (0.57 and later:
/// the first stage's `native`) or the legacy shape (`native.query`).
pub fn native_sql(dataset_query: &Value) -> Option<&str> {
    let stage = &dataset_query["stages"][0];
    if stage["lib/type"] == "mbql.stage/native" {
        return stage["native"].as_str();
    }
    dataset_query["native"]["query"].as_str()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_version_survives_the_description() {
        let version = version_of(&json!({ "name": "a" }));
        assert_eq!(version.len(), 16);
        let description = stamped("Sum of sales (version 2 of the formula).", "metabase/questions/01.sql", &version);
        assert_eq!(version_in(&description), Some(version.as_str()));
        assert_eq!(version_in("Written by hand."), None);
    }

    #[test]
    fn versions_differ_with_the_body() {
        assert_eq!(version_of(&json!({ "a": 1 })), version_of(&json!({ "a": 1 })));
        assert_ne!(version_of(&json!({ "a": 1 })), version_of(&json!({ "a": 2 })));
    }

    #[test]
    fn sql_is_read_from_either_query_shape() {
        let legacy = json!({ "type": "native", "database": 1, "native": { "query": "SELECT 1" } });
        let mbql5 = json!({
            "lib/type": "mbql/query",
            "database": 1,
            "stages": [{ "lib/type": "mbql.stage/native", "native": "SELECT 1", "template-tags": {} }],
        });
        assert_eq!(native_sql(&legacy), Some("SELECT 1"));
        assert_eq!(native_sql(&mbql5), Some("SELECT 1"));
        assert_eq!(native_sql(&json!({ "stages": [{ "lib/type": "mbql.stage/mbql" }] })), None);
    }
}
