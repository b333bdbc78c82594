//! The test data: CSV lines and exports, records published straight to a
//! topic, and the totals a consumer reports.

use std::path::{Path, PathBuf};

use rust_decimal::Decimal;

/// The header of every order export.
pub const HEADER: &str = "id,user_id,completed_at,item_total,shipment_total\n";

/// A CSV line for an order with the given values.
pub fn order_line(id: i64, user_id: i64, item_total: &str, shipment_total: &str) -> String {
    format!("{id},{user_id},2022-07-01 10:{:02},{item_total},{shipment_total}\n", id % 60)
}

/// The seed exports shared by the workplace, if present: `../shared` beside
/// the checkout is not part of the repository.
pub fn seed_files() -> Option<Vec<PathBuf>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/seed-orders");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "csv"))
        .collect();
    files.sort();
    (!files.is_empty()).then_some(files)
}

/// One record to publish directly to a scenario's topic, bypassing the
/// producer, so consumer tests control keys, partitions, headers and values.
#[derive(Debug, Clone)]
pub struct OutgoingRecord {
    /// Kafka key.
    pub key: Option<String>,
    /// The value's bytes.
    pub payload: Vec<u8>,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// A fixed partition, or the partitioner's choice by key.
    pub partition: Option<i32>,
}

/// A valid order record as the producer would publish it, with a
/// `source_version` header (none when `version` is `None`).
pub fn order_record(id: i64, user_id: i64, item_total: &str, version: Option<i64>) -> OutgoingRecord {
    use std::str::FromStr;
    let order = schema::Order {
        id,
        user_id,
        completed_at: chrono::DateTime::parse_from_rfc3339("2022-07-01T10:00:00Z").unwrap().into(),
        item_total: Decimal::from_str(item_total).unwrap(),
        shipment_total: Decimal::new(25, 1),
    };
    let message = schema::OrderMessage::new(order, Vec::new());
    let mut headers = vec![
        (schema::message::headers::SOURCE_FILE.to_string(), "test.csv".to_string()),
        (schema::message::headers::LINE.to_string(), (id + 1).to_string()),
    ];
    if let Some(version) = version {
        headers.push((schema::message::headers::SOURCE_VERSION.to_string(), version.to_string()));
    }
    OutgoingRecord { key: Some(message.key()), payload: message.encode(), headers, partition: None }
}

/// The totals a consumer wrote to its final report at shutdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerTotals {
    /// Rows inserted.
    pub inserted: u64,
    /// Rows updated.
    pub updated: u64,
    /// Duplicates, replays, older versions.
    pub unchanged: u64,
    /// Records dead-lettered.
    pub dead_lettered: u64,
}

impl ConsumerTotals {
    /// Reads a consumer's final report (`--ready-file` + `.final.json`).
    pub(crate) fn read(path: &Path) -> Option<ConsumerTotals> {
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        let field = |name: &str| report[name].as_u64();
        Some(ConsumerTotals {
            inserted: field("inserted")?,
            updated: field("updated")?,
            unchanged: field("unchanged")?,
            dead_lettered: field("dead_lettered")?,
        })
    }
}
