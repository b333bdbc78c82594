//! The order record.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One completed order, as exported by the shop.
///
/// Money is a [`Decimal`] so that totals add up to the cent; it is carried as
/// a JSON string on the wire so that no JSON reader turns it into a float.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The shop's order id: the Kafka key and the table's primary key, so
    /// every version of one order lands on one partition and one row.
    pub id: i64,
    /// The customer, needed to tell recurring from one-time customers.
    pub user_id: i64,
    /// When the order was completed, normalised to UTC.
    pub completed_at: DateTime<Utc>,
    /// Sum of the items, without shipping.
    #[serde(with = "rust_decimal::serde::str")]
    pub item_total: Decimal,
    /// Shipping fee.
    #[serde(with = "rust_decimal::serde::str")]
    pub shipment_total: Decimal,
}
