//! The header each file was read with, recorded in `source_files` from the
//! `columns` header that travels with every order, so that the data-quality
//! question can list the files whose export changed.
//!
//! Written in the batch's transaction: the rows commit with the orders and
//! offsets they come from, and a replay only confirms what is there (the
//! earliest version seen with a header is kept).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::batch::OrderRecord;
use crate::storable::storable;

/// One file's header, from the first record (in source order) of the batch
/// read with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHeader {
    /// The file.
    pub file: String,
    /// The header's names as a JSON array, each made `storable`.
    pub columns: String,
    /// The smallest source version of the batch's records read with it.
    pub first_version: i64,
    /// When the producer read that record.
    pub first_read_at: DateTime<Utc>,
}

/// The distinct (file, header) pairs of the records, each with its earliest
/// record. Records without a readable `columns` header (older producers)
/// are left out. Pairs are told apart by the header as it is stored (names
/// made `storable`, re-serialised), so two spellings of one header (JSON
/// whitespace, a NUL and its escape) are one pair, as the table sees them.
pub fn file_headers<'a>(records: impl IntoIterator<Item = &'a OrderRecord>) -> Vec<FileHeader> {
    let mut earliest_as_sent: BTreeMap<(&str, &str), (i64, DateTime<Utc>)> = BTreeMap::new();
    for record in records {
        let Some(columns) = record.source.columns.as_deref() else { continue };
        keep_earliest(&mut earliest_as_sent, (&*record.source.file, columns), first_seen(record));
    }
    let mut earliest_as_stored: BTreeMap<(&str, String), (i64, DateTime<Utc>)> = BTreeMap::new();
    for ((file, columns), seen) in earliest_as_sent {
        let Some(columns) = storable_columns(columns) else { continue };
        keep_earliest(&mut earliest_as_stored, (file, columns), seen);
    }
    earliest_as_stored
        .into_iter()
        .map(|((file, columns), (first_version, first_read_at))| FileHeader {
            file: file.to_string(),
            columns,
            first_version,
            first_read_at,
        })
        .collect()
}

/// The record's version and read time: what a header keeps of its earliest record.
fn first_seen(record: &OrderRecord) -> (i64, DateTime<Utc>) {
    (record.source.version, record.source.read_at)
}

/// Keeps the smaller of what `key` already has and `seen`.
fn keep_earliest<K: Ord>(earliest: &mut BTreeMap<K, (i64, DateTime<Utc>)>, key: K, seen: (i64, DateTime<Utc>)) {
    earliest.entry(key).and_modify(|kept| *kept = (*kept).min(seen)).or_insert(seen);
}

/// A `columns` header as `source_files` stores it: a JSON array of
/// `storable` names; `None` when it is not a JSON array of strings.
fn storable_columns(columns: &str) -> Option<String> {
    let names: Vec<String> = serde_json::from_str(columns).ok()?;
    let names: Vec<String> = names.iter().map(|name| storable(name).into_owned()).collect();
    Some(serde_json::to_string(&names).expect("names serialise"))
}

/// Keyed on digests (migration 8): a header or a path of any width fits the
/// index. `columns_md5` is computed here from the array, as the migration
/// computed it for the rows before it, so both agree. Rows of one statement
/// that share a key (only an md5 collision can still make two) are reduced
/// to the earliest first: `ON CONFLICT` refuses to touch a row twice.
const RECORD_HEADERS: &str = "
INSERT INTO source_files AS known (source_file, columns, columns_md5, first_version, first_read_at)
SELECT DISTINCT ON (md5(f), columns_md5) f, names, columns_md5, v, r
FROM unnest($1::text[], $2::text[], $3::int8[], $4::timestamptz[]) AS t(f, c, v, r)
CROSS JOIN LATERAL (SELECT ARRAY(SELECT jsonb_array_elements_text(c::jsonb)) AS names) AS header
CROSS JOIN LATERAL (SELECT md5(array_to_json(names)::text) AS columns_md5) AS digest
ORDER BY md5(f), columns_md5, v
ON CONFLICT (md5(source_file), columns_md5) DO UPDATE SET
    first_version = EXCLUDED.first_version,
    first_read_at = EXCLUDED.first_read_at
WHERE EXCLUDED.first_version < known.first_version";

/// Records the headers (in the caller's transaction; the caller isolates a
/// refused one, see `apply`).
pub async fn record(client: &impl GenericClient, headers: &[&FileHeader]) -> Result<(), tokio_postgres::Error> {
    if headers.is_empty() {
        return Ok(());
    }
    let files: Vec<&str> = headers.iter().map(|h| h.file.as_str()).collect();
    let columns: Vec<&str> = headers.iter().map(|h| h.columns.as_str()).collect();
    let versions: Vec<i64> = headers.iter().map(|h| h.first_version).collect();
    let read_at: Vec<DateTime<Utc>> = headers.iter().map(|h| h.first_read_at).collect();
    client.execute(RECORD_HEADERS, &[&files, &columns, &versions, &read_at]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::record as order;

    fn with(file: &str, columns: Option<&str>, version: i64) -> OrderRecord {
        let mut record = order(version, 100, version, version);
        record.source.file = file.into();
        record.source.columns = columns.map(|columns| columns.to_string().into());
        record
    }

    #[test]
    fn one_row_per_file_and_header_with_its_earliest_record() {
        let standard = r#"["id","user_id"]"#;
        let changed = r#"["id","user_id","currency"]"#;
        let records = [
            with("a.csv", Some(standard), 5),
            with("a.csv", Some(standard), 3),
            with("a.csv", Some(changed), 9),
            with("b.csv", None, 1),
            with("c.csv", Some("not json"), 1),
        ];
        let headers = file_headers(&records);
        let mut summary: Vec<_> =
            headers.iter().map(|h| (h.file.as_str(), h.columns.as_str(), h.first_version)).collect();
        summary.sort_by_key(|(_, _, version)| *version);
        assert_eq!(summary, [("a.csv", standard, 3), ("a.csv", changed, 9)]);
    }

    #[test]
    fn two_spellings_of_one_header_are_one_row_with_the_earliest_record() {
        let records =
            [with("a.csv", Some(r#"["id","a\u0000b"]"#), 7), with("a.csv", Some(r#"[ "id", "a\\u0000b" ]"#), 4)];
        let headers = file_headers(&records);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert_eq!((headers[0].columns.as_str(), headers[0].first_version), (r#"["id","a\\u0000b"]"#, 4));
    }

    #[test]
    fn a_nul_in_a_column_name_is_escaped() {
        let headers = file_headers(&[with("a.csv", Some(r#"["id","a\u0000b"]"#), 1)]);
        assert_eq!(headers[0].columns, r#"["id","a\\u0000b"]"#);
    }
}
