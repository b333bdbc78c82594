//! Orders as the Debezium JDBC sink reads them without a schema registry:
//! Kafka Connect's `JsonConverter` with `schemas.enable=true`, the schema
//! inline in every record (the connector needs typed fields and a key).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rust_decimal::Decimal;
use schema::Order;
use serde_json::{json, Value};

/// The scale of both money columns (cents), in the schema and the bytes.
const MONEY_SCALE: u32 = 2;

/// The inline schema: `id` the primary key, `completed_at` a Connect
/// `Timestamp` (ms since the epoch), money a Connect `Decimal` of scale 2
/// (the peer's table gets `numeric`, as `orders`).
fn order_schema() -> Value {
    let decimal = |field: &str| {
        json!({"field": field, "type": "bytes", "optional": false, "name": "org.apache.kafka.connect.data.Decimal",
               "version": 1, "parameters": {"scale": MONEY_SCALE.to_string()}})
    };
    json!({
        "type": "struct", "name": "order", "optional": false,
        "fields": [
            {"field": "id", "type": "int64", "optional": false},
            {"field": "user_id", "type": "int64", "optional": false},
            {"field": "completed_at", "type": "int64", "optional": false,
             "name": "org.apache.kafka.connect.data.Timestamp", "version": 1},
            decimal("item_total"),
            decimal("shipment_total"),
        ]
    })
}

/// A Connect `Decimal`'s bytes: the unscaled value, two's complement,
/// big-endian, as short as Java's `BigInteger.toByteArray` makes it.
fn decimal_bytes(value: Decimal) -> String {
    let mut scaled = value;
    scaled.rescale(MONEY_SCALE);
    let bytes = scaled.mantissa().to_be_bytes();
    let negative = scaled.mantissa() < 0;
    let filler = if negative { 0xff } else { 0x00 };
    // Drop leading filler bytes while the next byte's sign bit still says the same.
    let mut start = 0;
    while start + 1 < bytes.len() && bytes[start] == filler && (bytes[start + 1] & 0x80 != 0) == negative {
        start += 1;
    }
    STANDARD.encode(&bytes[start..])
}

/// Encodes orders with one schema value built once.
pub struct ConnectJsonEncoder {
    /// The inline schema, the same in every record.
    schema: Value,
}

impl Default for ConnectJsonEncoder {
    fn default() -> Self {
        ConnectJsonEncoder { schema: order_schema() }
    }
}

impl ConnectJsonEncoder {
    /// One order's record value.
    pub fn encode(&self, order: &Order) -> Vec<u8> {
        let record = json!({
            "schema": self.schema,
            "payload": {
                "id": order.id,
                "user_id": order.user_id,
                "completed_at": order.completed_at.timestamp_millis(),
                "item_total": decimal_bytes(order.item_total),
                "shipment_total": decimal_bytes(order.shipment_total),
            }
        });
        serde_json::to_vec(&record).expect("a JSON value serialises")
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn bytes_of(text: &str) -> String {
        decimal_bytes(Decimal::from_str(text).unwrap())
    }

    #[test]
    fn decimals_are_minimal_twos_complement_like_java_big_integer() {
        // 37403 = 0x00921B: a leading zero keeps the sign bit clear.
        assert_eq!(bytes_of("374.03"), "AJIb");
        assert_eq!(bytes_of("168.16"), "QbA=");
        assert_eq!(bytes_of("2.5"), "APo=");
        assert_eq!(bytes_of("0"), "AA==");
        assert_eq!(bytes_of("-1.28"), "gA==");
    }

    #[test]
    fn a_record_carries_schema_and_payload() {
        let order = Order {
            id: 7,
            user_id: 3,
            completed_at: chrono::DateTime::from_timestamp(1_656_633_601, 0).unwrap(),
            item_total: Decimal::from_str("374.03").unwrap(),
            shipment_total: Decimal::from_str("17.51").unwrap(),
        };
        let value: Value = serde_json::from_slice(&ConnectJsonEncoder::default().encode(&order)).unwrap();
        assert_eq!(value["schema"]["fields"][0]["field"], "id");
        assert_eq!(value["payload"]["id"], 7);
        assert_eq!(value["payload"]["completed_at"], 1_656_633_601_000_i64);
        assert_eq!(value["payload"]["item_total"], "AJIb");
    }
}
