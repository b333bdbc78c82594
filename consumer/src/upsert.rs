//! Writes a batch of orders with one multi-row upsert.
//!
//! The rows travel as arrays and are expanded by `unnest`, so a batch of
//! thousands is one statement and one round trip. A row whose business values
//! equal the stored ones is left untouched, so a replayed or twice-delivered
//! record changes nothing and is counted as unchanged.

use deadpool_postgres::GenericClient;

use crate::batch::Rows;

/// How the rows of a batch landed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertOutcome {
    /// New order ids.
    pub inserted: u64,
    /// Known ids whose values changed.
    pub updated: u64,
    /// Known ids with the same values: duplicates and replays.
    pub unchanged: u64,
}

impl std::ops::AddAssign for UpsertOutcome {
    fn add_assign(&mut self, other: Self) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

const UPSERT: &str = "
INSERT INTO orders AS stored
    (id, user_id, completed_at, item_total, shipment_total, source_file, source_line, source_offset, read_at)
SELECT * FROM unnest($1::int8[], $2::int8[], $3::timestamptz[], $4::numeric[], $5::numeric[],
                     $6::text[], $7::int8[], $8::int8[], $9::timestamptz[])
ON CONFLICT (id) DO UPDATE SET
    user_id = EXCLUDED.user_id,
    completed_at = EXCLUDED.completed_at,
    item_total = EXCLUDED.item_total,
    shipment_total = EXCLUDED.shipment_total,
    source_file = EXCLUDED.source_file,
    source_line = EXCLUDED.source_line,
    source_offset = EXCLUDED.source_offset,
    read_at = EXCLUDED.read_at,
    written_at = clock_timestamp()
WHERE (stored.user_id, stored.completed_at, stored.item_total, stored.shipment_total)
      IS DISTINCT FROM (EXCLUDED.user_id, EXCLUDED.completed_at, EXCLUDED.item_total, EXCLUDED.shipment_total)
RETURNING (xmax = 0) AS inserted";

/// Upserts the rows (ids must be unique, see [`crate::batch::last_per_id`]).
pub async fn upsert_orders(client: &impl GenericClient, rows: &Rows) -> Result<UpsertOutcome, tokio_postgres::Error> {
    if rows.records.is_empty() {
        return Ok(UpsertOutcome::default());
    }
    let records = &rows.records;
    let ids: Vec<i64> = records.iter().map(|r| r.order.id).collect();
    let user_ids: Vec<i64> = records.iter().map(|r| r.order.user_id).collect();
    let completed_at: Vec<_> = records.iter().map(|r| r.order.completed_at).collect();
    let item_totals: Vec<_> = records.iter().map(|r| r.order.item_total).collect();
    let shipment_totals: Vec<_> = records.iter().map(|r| r.order.shipment_total).collect();
    let files: Vec<&str> = records.iter().map(|r| r.source.file.as_str()).collect();
    let lines: Vec<i64> = records.iter().map(|r| r.source.line).collect();
    let offsets: Vec<i64> = records.iter().map(|r| r.source.offset).collect();
    let read_at: Vec<_> = records.iter().map(|r| r.source.read_at).collect();
    let statement = client.prepare_cached(UPSERT).await?;
    let written = client
        .query(
            &statement,
            &[&ids, &user_ids, &completed_at, &item_totals, &shipment_totals, &files, &lines, &offsets, &read_at],
        )
        .await?;
    let inserted = written.iter().filter(|row| row.get::<_, bool>(0)).count() as u64;
    let updated = written.len() as u64 - inserted;
    Ok(UpsertOutcome { inserted, updated, unchanged: records.len() as u64 - inserted - updated })
}
