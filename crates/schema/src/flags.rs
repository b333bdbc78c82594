//! Suspicious but valid orders: kept, and flagged so they can be counted and
//! shown, instead of being rejected.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::Order;

/// Why an order looks odd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// Both totals are zero (a test order, a full refund, a voucher order).
    ZeroTotals,
    /// A total is far above what the shop usually sees.
    UnusualAmount,
}

impl Flag {
    /// Every flag, for pre-registering metric labels.
    pub const ALL: [Flag; 2] = [Flag::ZeroTotals, Flag::UnusualAmount];

    /// The stable snake_case name used in headers, metrics and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::ZeroTotals => "zero_totals",
            Flag::UnusualAmount => "unusual_amount",
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The thresholds for [`Flag::UnusualAmount`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagRules {
    /// An `item_total` above this is unusual. The seed sample's largest basket
    /// is 458.34 and its 99th percentile 175.22.
    pub max_usual_item_total: Decimal,
    /// A `shipment_total` above this is unusual (the sample's largest is 14.5).
    pub max_usual_shipment_total: Decimal,
}

impl Default for FlagRules {
    fn default() -> Self {
        FlagRules { max_usual_item_total: Decimal::new(2_000, 0), max_usual_shipment_total: Decimal::new(50, 0) }
    }
}

impl FlagRules {
    /// The flags an order earns, in a fixed order.
    pub fn flags(&self, order: &Order) -> Vec<Flag> {
        let mut flags = Vec::new();
        if order.item_total.is_zero() && order.shipment_total.is_zero() {
            flags.push(Flag::ZeroTotals);
        }
        if order.item_total > self.max_usual_item_total || order.shipment_total > self.max_usual_shipment_total {
            flags.push(Flag::UnusualAmount);
        }
        flags
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn order(item_total: Decimal, shipment_total: Decimal) -> Order {
        Order {
            id: 247792,
            user_id: 1,
            completed_at: chrono::Utc.with_ymd_and_hms(2022, 7, 15, 10, 0, 0).unwrap(),
            item_total,
            shipment_total,
        }
    }

    #[test]
    fn both_totals_zero_is_flagged() {
        assert_eq!(FlagRules::default().flags(&order(Decimal::ZERO, Decimal::ZERO)), vec![Flag::ZeroTotals]);
    }

    #[test]
    fn one_zero_total_is_normal() {
        assert!(FlagRules::default().flags(&order(Decimal::new(3914, 2), Decimal::ZERO)).is_empty());
    }

    #[test]
    fn amounts_far_above_the_usual_are_flagged() {
        let rules = FlagRules::default();
        assert_eq!(rules.flags(&order(Decimal::new(200_001, 2), Decimal::ZERO)), vec![Flag::UnusualAmount]);
        assert_eq!(rules.flags(&order(Decimal::ONE, Decimal::new(51, 0))), vec![Flag::UnusualAmount]);
        assert!(rules.flags(&order(Decimal::new(45_834, 2), Decimal::new(145, 1))).is_empty());
    }
}
