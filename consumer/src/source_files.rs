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
    /// The header's names as a JSON array, each made [`storable`].
    pub columns: String,
    /// The smallest source version of the batch's records read with it.
    pub first_version: i64,
    /// When the producer read that record.
    pub first_read_at: DateTime<Utc>,
}

/// The distinct (file, header) pairs of the records, each with its earliest
/// record. Records without a readable `columns` header (older producers)
/// are left out.
pub fn file_headers<'a>(records: impl IntoIterator<Item = &'a OrderRecord>) -> Vec<FileHeader> {
    let mut earliest: BTreeMap<(&str, &str), (i64, DateTime<Utc>)> = BTreeMap::new();
    for record in records {
        let Some(columns) = record.source.columns.as_deref() else { continue };
        let seen = (record.source.version, record.source.read_at);
        earliest
            .entry((record.source.file.as_str(), columns))
            .and_modify(|kept| *kept = (*kept).min(seen))
            .or_insert(seen);
    }
    earliest
        .into_iter()
        .filter_map(|((file, columns), (first_version, first_read_at))| {
            let names: Vec<String> = serde_json::from_str(columns).ok()?;
            let names: Vec<String> = names.iter().map(|name| storable(name).into_owned()).collect();
            let columns = serde_json::to_string(&names).expect("names serialise");
            Some(FileHeader { file: file.to_string(), columns, first_version, first_read_at })
        })
        .collect()
}

const RECORD_HEADERS: &str = "
INSERT INTO source_files AS known (source_file, columns, first_version, first_read_at)
SELECT f, ARRAY(SELECT jsonb_array_elements_text(c::jsonb)), v, r
FROM unnest($1::text[], $2::text[], $3::int8[], $4::timestamptz[]) AS t(f, c, v, r)
ON CONFLICT (source_file, columns) DO UPDATE SET
    first_version = EXCLUDED.first_version,
    first_read_at = EXCLUDED.first_read_at
WHERE EXCLUDED.first_version < known.first_version";

/// Records the headers (in the caller's transaction).
pub async fn record(client: &impl GenericClient, headers: &[FileHeader]) -> Result<(), tokio_postgres::Error> {
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
        record.source.columns = columns.map(str::to_string);
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
    fn a_nul_in_a_column_name_is_escaped() {
        let headers = file_headers(&[with("a.csv", Some(r#"["id","a\u0000b"]"#), 1)]);
        assert_eq!(headers[0].columns, r#"["id","a\\u0000b"]"#);
    }
}
