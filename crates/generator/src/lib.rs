//! Realistic, reproducible order exports.
//!
//! The shape follows the shop's real sample (July–August 2022): shipping fees
//! mostly 2.5 and 6 with a few others, baskets log-normally distributed around
//! 43 with a long tail, and about a quarter of orders from customers who
//! ordered before. The same seed always gives the same bytes, so a benchmark
//! or a failing test can be re-run on identical input.

use std::io::{self, Write};

use chrono::{Duration, NaiveDateTime};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// How many orders.
    pub orders: u64,
    /// Seed of the random generator.
    pub seed: u64,
    /// Id of the first order; the rest follow consecutively.
    pub first_id: i64,
    /// Completion time of the first order.
    pub start: NaiveDateTime,
    /// Mean time between two orders.
    pub mean_interval: Duration,
}

/// Shipping fees and their weights, as seen in the sample.
const SHIPMENT_FEES: [(&str, u32); 5] = [("2.5", 820), ("6", 168), ("5.5", 6), ("5", 3), ("8.5", 3)];

/// Share of orders placed by a customer who ordered before.
const RETURNING_SHARE: f64 = 0.25;

/// Writes the header and `spec.orders` lines to `out`.
pub fn write_orders(spec: &Spec, out: &mut impl Write) -> io::Result<()> {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let typical = LogNormal::new(43.2_f64.ln(), 0.37).expect("valid parameters");
    let tail = LogNormal::new(60.0_f64.ln(), 0.8).expect("valid parameters");
    let fee_weight: u32 = SHIPMENT_FEES.iter().map(|(_, weight)| weight).sum();
    let mut customers: Vec<i64> = Vec::new();
    let mut next_customer = 1_i64;
    let mut time = spec.start;
    let mean_ms = spec.mean_interval.num_milliseconds().max(1) as f64;

    writeln!(out, "id,user_id,completed_at,item_total,shipment_total")?;
    for index in 0..spec.orders {
        let user_id = if !customers.is_empty() && rng.random_bool(RETURNING_SHARE) {
            customers[rng.random_range(0..customers.len())]
        } else {
            next_customer += 1;
            customers.push(next_customer);
            next_customer
        };
        let basket = if rng.random_bool(0.05) { tail.sample(&mut rng) } else { typical.sample(&mut rng) };
        let mut pick = rng.random_range(0..fee_weight);
        let fee = SHIPMENT_FEES
            .iter()
            .find(|(_, weight)| {
                let hit = pick < *weight;
                pick = pick.saturating_sub(*weight);
                hit
            })
            .map_or("2.5", |(fee, _)| fee);
        writeln!(
            out,
            "{},{user_id},{},{:.2},{fee}",
            spec.first_id + index as i64,
            time.format("%Y-%m-%d %H:%M"),
            basket.min(5_000.0),
        )?;
        time += Duration::milliseconds((rng.random::<f64>() * 2.0 * mean_ms) as i64);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(orders: u64, seed: u64) -> Spec {
        Spec {
            orders,
            seed,
            first_id: 1,
            start: "2022-07-01T00:00:00".parse().unwrap(),
            mean_interval: Duration::minutes(30),
        }
    }

    fn generate(spec: &Spec) -> String {
        let mut out = Vec::new();
        write_orders(spec, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn same_seed_gives_same_bytes_and_another_seed_does_not() {
        assert_eq!(generate(&spec(500, 7)), generate(&spec(500, 7)));
        assert_ne!(generate(&spec(500, 7)), generate(&spec(500, 8)));
    }

    #[test]
    fn output_has_the_export_header_and_one_line_per_order() {
        let text = generate(&spec(1_000, 1));
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("id,user_id,completed_at,item_total,shipment_total"));
        assert_eq!(lines.count(), 1_000);
    }

    #[test]
    fn shape_follows_the_sample() {
        let text = generate(&spec(20_000, 3));
        let rows: Vec<Vec<&str>> = text.lines().skip(1).map(|l| l.split(',').collect()).collect();
        let share = |fee: &str| rows.iter().filter(|r| r[4] == fee).count() as f64 / rows.len() as f64;
        assert!((0.78..0.86).contains(&share("2.5")), "2.5 share {}", share("2.5"));
        assert!((0.13..0.21).contains(&share("6")), "6 share {}", share("6"));
        let mut users: Vec<&str> = rows.iter().map(|r| r[1]).collect();
        users.sort_unstable();
        users.dedup();
        let returning = 1.0 - users.len() as f64 / rows.len() as f64;
        assert!((0.2..0.3).contains(&returning), "returning share {returning}");
        let mut baskets: Vec<f64> = rows.iter().map(|r| r[3].parse().unwrap()).collect();
        baskets.sort_by(f64::total_cmp);
        let median = baskets[baskets.len() / 2];
        assert!((38.0..50.0).contains(&median), "median basket {median}");
    }
}
