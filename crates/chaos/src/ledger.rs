//! What the pipeline must end up with, recorded by the load writer as it
//! writes each line: the oracle the invariant is checked against.
//!
//! The expected state is derived from the lines written, never from the
//! pipeline's own parser: a valid line's values are the ones the writer chose,
//! an invalid line's reason is the rule the writer broke on purpose.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

/// The values an order row must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedRow {
    /// Customer.
    pub user_id: i64,
    /// Completion time, UTC.
    pub completed_at: DateTime<Utc>,
    /// Basket value.
    pub item_total: Decimal,
    /// Shipping fee.
    pub shipment_total: Decimal,
}

/// A dead letter as the checker identifies it: the record's bytes as kept on
/// the dead-letter topic, and the reason.
pub type DeadLetterKey = (Vec<u8>, String);

/// Everything written so far and what it must become.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// Order id → its newest version (the line written last).
    pub orders: BTreeMap<i64, ExpectedRow>,
    /// Dead letters the producer must publish: (bytes, reason) → how many
    /// input lines carry them (a file dropped twice counts twice).
    pub producer_dead_letters: BTreeMap<DeadLetterKey, u32>,
    /// Records the consumer must dead-letter (and store in `dead_letters`).
    pub consumer_dead_letters: BTreeMap<DeadLetterKey, u32>,
    /// Lines written, valid or not (headers excluded).
    pub lines_in: u64,
}

impl Ledger {
    /// A valid line: its values replace any older version of the order.
    pub fn valid(&mut self, id: i64, row: ExpectedRow) {
        self.orders.insert(id, row);
        self.lines_in += 1;
    }

    /// An invalid line the producer must dead-letter with `reason`; `kept`
    /// is the part of the line the dead letter carries.
    pub fn rejected(&mut self, kept: &[u8], reason: &str) {
        *self.producer_dead_letters.entry((kept.to_vec(), reason.to_string())).or_default() += 1;
        self.lines_in += 1;
    }

    /// A record published straight to the orders topic that the consumer
    /// must dead-letter with `reason`.
    pub fn poison(&mut self, payload: &[u8], reason: &str) {
        *self.consumer_dead_letters.entry((payload.to_vec(), reason.to_string())).or_default() += 1;
    }

    /// Adds what another ledger expects, as if its lines were written here
    /// too (a file dropped a second time under another name).
    pub fn merge(&mut self, other: &Ledger) {
        self.orders.extend(other.orders.iter().map(|(id, row)| (*id, row.clone())));
        for (key, count) in &other.producer_dead_letters {
            *self.producer_dead_letters.entry(key.clone()).or_default() += count;
        }
        for (key, count) in &other.consumer_dead_letters {
            *self.consumer_dead_letters.entry(key.clone()).or_default() += count;
        }
        self.lines_in += other.lines_in;
    }

    /// Every dead letter expected on the topic, producer's and consumer's.
    pub fn all_dead_letters(&self) -> BTreeMap<DeadLetterKey, u32> {
        let mut all = self.producer_dead_letters.clone();
        for (key, count) in &self.consumer_dead_letters {
            *all.entry(key.clone()).or_default() += count;
        }
        all
    }

    /// How many records the producer must publish to the orders topic: one
    /// per valid line written.
    pub fn order_records(&self) -> u64 {
        let rejected: u64 = self.producer_dead_letters.values().map(|&count| u64::from(count)).sum();
        self.lines_in - rejected
    }

    /// How many dead letters are expected on the topic.
    pub fn dead_letter_count(&self) -> u64 {
        self.all_dead_letters().values().map(|&count| u64::from(count)).sum()
    }
}
