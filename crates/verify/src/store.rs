//! The database side: one export's lines go into a temporary table by
//! `COPY`, then one join with `orders` and `dead_letters` gives every line
//! its facts, streamed back in line order. Never one query per line, and
//! memory independent of the file's size.
//!
//! The table is the session's own (`verify_lines`, dropped with the
//! connection) and only read from `orders` and `dead_letters`: verifying
//! changes nothing.

use bytes::{Bytes, BytesMut};
use futures::{pin_mut, SinkExt, StreamExt};
use tokio_postgres::{Client, Row};

use crate::account::{DeadLetterFact, LineFacts, StoredRow};

/// How many bytes of `COPY` data are sent at a time.
const COPY_CHUNK: usize = 256 * 1024;

const CREATE_LINES: &str = "
CREATE TEMPORARY TABLE IF NOT EXISTS verify_lines (
    line           BIGINT NOT NULL,
    byte_offset    BIGINT NOT NULL,
    end_offset     BIGINT NOT NULL,
    order_id       BIGINT,
    user_id        BIGINT,
    completed_at   TIMESTAMPTZ,
    item_total     NUMERIC,
    shipment_total NUMERIC,
    extra          JSONB,
    raw_sha256     TEXT
)";

const COPY_LINES: &str = "COPY verify_lines FROM STDIN";

/// The epoch most of the file's lines are stored with at their own place
/// (offset and line); rows read from a file of the same name count first,
/// so a correction laid out like the original does not pass for it.
const STORED_EPOCH: &str = "
SELECT o.source_version >> 36 AS epoch, regexp_replace(o.source_file, '^.*/', '') = $1 AS same_name,
       count(*) AS lines
FROM verify_lines l
JOIN orders o ON o.id = l.order_id AND o.source_offset = l.byte_offset AND o.source_line = l.line
GROUP BY 1, 2
ORDER BY same_name DESC, lines DESC, epoch DESC
LIMIT 1";

/// Every line with its row and the dead letter naming it, in line order. A
/// producer's dead letter names a line by place and bytes (renames and
/// copies keep both); a consumer's, and Kafka's refusal of a valid order,
/// by place and order id.
const LINE_FACTS: &str = "
WITH named AS (
    SELECT DISTINCT ON (l.line) l.line, d.reason,
           d.redriven_at IS NULL AND d.resolved_at IS NULL AS pending
    FROM verify_lines l
    JOIN dead_letters d ON d.source_offset = l.byte_offset AND d.source_line = l.line
    WHERE (d.stage = 'producer' AND l.raw_sha256 IS NOT NULL AND encode(sha256(d.payload), 'hex') = l.raw_sha256)
       OR (d.stage = 'producer' AND l.order_id IS NOT NULL AND d.reason = 'refused_by_kafka')
       OR (d.stage = 'consumer' AND l.order_id IS NOT NULL AND d.record_key = convert_to(l.order_id::text, 'UTF8'))
    ORDER BY l.line, pending DESC, d.id DESC
)
SELECT l.line, l.byte_offset, l.end_offset, l.order_id,
       o.source_version, o.source_file, o.source_line, o.source_offset,
       (o.user_id, o.completed_at, o.item_total, o.shipment_total, o.extra)
           IS NOT DISTINCT FROM (l.user_id, l.completed_at, l.item_total, l.shipment_total, l.extra),
       n.reason, n.pending
FROM verify_lines l
LEFT JOIN orders o ON o.id = l.order_id
LEFT JOIN named n ON n.line = l.line
ORDER BY l.line";

/// One line as it goes into `verify_lines`.
#[derive(Debug, Clone, PartialEq)]
pub enum LineRow<'a> {
    /// A valid order and its values.
    Order {
        /// 1-based line number.
        line: u64,
        /// Where it starts.
        offset: u64,
        /// Where it ends.
        end: u64,
        /// The order.
        order: &'a schema::Order,
        /// The export's extra columns (empty: none, stored as NULL).
        extra: &'a schema::Extra,
    },
    /// A line that is no valid order: found again by its bytes.
    Rejected {
        /// 1-based line number.
        line: u64,
        /// Where it starts.
        offset: u64,
        /// Where it ends.
        end: u64,
        /// sha256 of its original bytes, hexadecimal.
        raw_sha256: String,
    },
}

/// `COPY` text for one line, appended to `out`.
pub fn encode_line(row: &LineRow<'_>, out: &mut BytesMut) {
    use std::fmt::Write;
    // Writing into a `BytesMut` cannot fail.
    let _ = match row {
        LineRow::Order { line, offset, end, order, extra } => {
            let extra = if extra.is_empty() {
                "\\N".to_string()
            } else {
                copy_escape(&serde_json::to_string(extra).expect("extra columns serialise"))
            };
            writeln!(
                out,
                "{line}\t{offset}\t{end}\t{}\t{}\t{}\t{}\t{}\t{extra}\t\\N",
                order.id,
                order.user_id,
                order.completed_at.to_rfc3339(),
                order.item_total,
                order.shipment_total
            )
        }
        LineRow::Rejected { line, offset, end, raw_sha256 } => {
            writeln!(out, "{line}\t{offset}\t{end}\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t{raw_sha256}")
        }
    };
}

/// Escapes text for `COPY`'s text format.
fn copy_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\t', "\\t").replace('\n', "\\n").replace('\r', "\\r")
}

/// Empties (or creates) the session's `verify_lines`.
pub async fn prepare(client: &Client) -> Result<(), tokio_postgres::Error> {
    client.batch_execute(CREATE_LINES).await?;
    client.batch_execute("TRUNCATE verify_lines").await
}

/// A `COPY` into `verify_lines` that sends in chunks as lines come.
pub struct LineCopy {
    sink: std::pin::Pin<Box<tokio_postgres::CopyInSink<Bytes>>>,
    buffer: BytesMut,
}

impl LineCopy {
    /// Starts the `COPY`.
    pub async fn start(client: &Client) -> Result<LineCopy, tokio_postgres::Error> {
        let sink = client.copy_in(COPY_LINES).await?;
        Ok(LineCopy { sink: Box::pin(sink), buffer: BytesMut::with_capacity(COPY_CHUNK) })
    }

    /// Adds one line; sends once a chunk is full.
    pub async fn push(&mut self, row: &LineRow<'_>) -> Result<(), tokio_postgres::Error> {
        encode_line(row, &mut self.buffer);
        if self.buffer.len() >= COPY_CHUNK {
            let chunk = self.buffer.split().freeze();
            self.sink.send(chunk).await?;
        }
        Ok(())
    }

    /// Sends the rest and ends the `COPY`; then lets the planner see the table.
    pub async fn finish(mut self, client: &Client) -> Result<u64, tokio_postgres::Error> {
        if !self.buffer.is_empty() {
            let chunk = self.buffer.split().freeze();
            self.sink.send(chunk).await?;
        }
        let copied = self.sink.as_mut().finish().await?;
        client.batch_execute("ANALYZE verify_lines").await?;
        Ok(copied)
    }
}

/// The epoch most of the copied lines are stored with; `file_name` (without
/// folder) is preferred over other files' rows at the same places.
pub async fn stored_epoch(client: &Client, file_name: &str) -> Result<Option<u64>, tokio_postgres::Error> {
    let row = client.query_opt(STORED_EPOCH, &[&file_name]).await?;
    Ok(row.map(|row| row.get::<_, i64>(0) as u64))
}

/// Streams every copied line's facts, in line order, to `each`.
pub async fn each_line_facts(client: &Client, mut each: impl FnMut(LineFacts)) -> Result<(), tokio_postgres::Error> {
    let rows = client.query_raw(LINE_FACTS, std::iter::empty::<i64>()).await?;
    pin_mut!(rows);
    while let Some(row) = rows.next().await {
        each(line_facts(&row?));
    }
    Ok(())
}

fn line_facts(row: &Row) -> LineFacts {
    let version: Option<i64> = row.get(4);
    let stored = version.map(|version| StoredRow {
        version,
        file: row.get(5),
        line: row.get(6),
        offset: row.get(7),
        same_values: row.get(8),
    });
    let reason: Option<String> = row.get(9);
    let dead_letter = reason.map(|reason| DeadLetterFact { reason, pending: row.get(10) });
    LineFacts {
        line: row.get::<_, i64>(0) as u64,
        offset: row.get::<_, i64>(1) as u64,
        end: row.get::<_, i64>(2) as u64,
        order_id: row.get(3),
        stored,
        dead_letter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_copy_row_with_escaped_extra_columns() {
        let order = schema::Order {
            id: 42,
            user_id: 7,
            completed_at: chrono::DateTime::parse_from_rfc3339("2022-07-01T10:19:00Z").unwrap().into(),
            item_total: rust_decimal::Decimal::new(3914, 2),
            shipment_total: rust_decimal::Decimal::new(25, 1),
        };
        let mut extra = schema::Extra::new();
        extra.insert("note".into(), "tab\there \\ ok".into());
        let mut out = BytesMut::new();
        encode_line(&LineRow::Order { line: 2, offset: 51, end: 90, order: &order, extra: &extra }, &mut out);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "2\t51\t90\t42\t7\t2022-07-01T10:19:00+00:00\t39.14\t2.5\t{\"note\":\"tab\\\\there \\\\\\\\ ok\"}\t\\N\n"
        );
        out.clear();
        encode_line(&LineRow::Rejected { line: 3, offset: 90, end: 99, raw_sha256: "ab".into() }, &mut out);
        assert_eq!(std::str::from_utf8(&out).unwrap(), "3\t90\t99\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\tab\n");
    }
}
