//! The analysis questions, answered for real: the seed sample goes through the
//! pipeline, every SQL file runs against the result, and each answer is
//! checked against figures computed here, independently, from the CSV files.

// End-to-end: built only with the feature `make test` turns on (docs/testing.md).
#![cfg(feature = "integration-tests")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use analytics::answers::{answer, Answer, Cell};
use analytics::questions::{load_questions, Question};
use chrono::{Datelike, Duration as Days, NaiveDate, NaiveDateTime};
use harness::{report_skipped, seed_files, Scenario};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

/// One seed order, read straight from the CSV.
#[derive(Clone)]
struct SeedOrder {
    id: i64,
    user: i64,
    at: NaiveDateTime,
    item_total: Decimal,
}

fn read_seed(files: &[std::path::PathBuf]) -> Vec<SeedOrder> {
    let mut orders = Vec::new();
    for file in files {
        for line in std::fs::read_to_string(file).unwrap().lines().skip(1).filter(|l| !l.is_empty()) {
            let f: Vec<&str> = line.split(',').collect();
            orders.push(SeedOrder {
                id: f[0].parse().unwrap(),
                user: f[1].parse().unwrap(),
                at: NaiveDateTime::parse_from_str(f[2], "%Y-%m-%d %H:%M").unwrap(),
                item_total: Decimal::from_str(f[3]).unwrap(),
            });
        }
    }
    orders
}

fn month_of(at: NaiveDateTime) -> NaiveDate {
    NaiveDate::from_ymd_opt(at.year(), at.month(), 1).unwrap()
}

fn week_of(at: NaiveDateTime) -> NaiveDate {
    at.date() - Days::days(at.weekday().num_days_from_monday().into())
}

fn months_back(month: NaiveDate, n: u32) -> NaiveDate {
    month.checked_sub_months(chrono::Months::new(n)).unwrap()
}

fn mean(values: &[Decimal]) -> Decimal {
    (values.iter().sum::<Decimal>() / Decimal::from(values.len())).round_dp(2)
}

fn num(cell: &Cell) -> Decimal {
    match cell {
        Cell::Number { text, .. } => Decimal::from_str(text).unwrap(),
        other => panic!("not a number: {other:?}"),
    }
}

fn date(cell: &Cell) -> NaiveDate {
    match cell {
        Cell::Date(date) => *date,
        other => panic!("not a date: {other:?}"),
    }
}

/// Rows of an answer keyed by their first columns, for comparing sets.
fn by_key(answer: &Answer, key_columns: usize) -> BTreeMap<Vec<String>, Vec<Cell>> {
    answer.rows.iter().map(|row| (row[..key_columns].iter().map(Cell::display).collect(), row.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_question_answers_the_seed_sample_like_the_csv_does() {
    let Some(files) = seed_files() else {
        report_skipped(
            "every_question_answers_the_seed_sample_like_the_csv_does",
            "../shared/data/seed-orders is absent (it is not part of the repository)",
        );
        return;
    };
    let seed = read_seed(&files);
    let scenario = Scenario::new("analytics").await;
    for file in &files {
        std::fs::copy(file, scenario.inbox().join(file.file_name().unwrap())).unwrap();
    }
    let _consumer = scenario.start_consumer();
    let _producer = scenario.start_producer();
    scenario.wait_for_orders(seed.len() as i64, Duration::from_secs(120)).await;

    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../metabase/questions");
    let questions: BTreeMap<String, Question> =
        load_questions(&folder).unwrap().into_iter().map(|q| (q.key.clone(), q)).collect();
    assert_eq!(questions.len(), 10);
    let client = scenario.db().await;
    let mut answers = BTreeMap::new();
    for (key, question) in &questions {
        let result = answer(&client, question, None).await;
        answers.insert(key.clone(), result.unwrap_or_else(|error| panic!("question {key} failed: {error}")));
    }

    // Monthly figures, straight from the CSV.
    let mut monthly: BTreeMap<NaiveDate, Vec<Decimal>> = BTreeMap::new();
    for order in &seed {
        monthly.entry(month_of(order.at)).or_default().push(order.item_total);
    }
    let july = NaiveDate::from_ymd_opt(2022, 7, 1).unwrap();
    let august = NaiveDate::from_ymd_opt(2022, 8, 1).unwrap();
    assert_eq!(monthly[&july].len(), 1359);
    assert_eq!(monthly[&july].iter().sum::<Decimal>(), Decimal::from_str("67330.96").unwrap());
    assert_eq!(mean(&monthly[&july]), Decimal::from_str("49.54").unwrap());

    // 1 and 2: the data reaches 31 August, so August is the last complete month.
    let sales = &answers["01_total_sales_last_month"];
    assert_eq!(date(sales.first("month").unwrap()), august);
    assert_eq!(num(sales.first("sales").unwrap()), monthly[&august].iter().sum::<Decimal>());
    assert_eq!(num(sales.first("previous_sales").unwrap()), monthly[&july].iter().sum::<Decimal>());
    let basket = &answers["02_average_basket_last_month"];
    assert_eq!(num(basket.first("average_basket").unwrap()), mean(&monthly[&august]));
    assert_eq!(num(basket.first("previous_average_basket").unwrap()), mean(&monthly[&july]));
    // With the month parameter: July, the dashboard's example figures.
    let july_sales = answer(&client, &questions["01_total_sales_last_month"], Some(july)).await.unwrap();
    assert_eq!(num(july_sales.first("sales").unwrap()), Decimal::from_str("67330.96").unwrap());
    let july_basket = answer(&client, &questions["02_average_basket_last_month"], Some(july)).await.unwrap();
    assert_eq!(num(july_basket.first("orders").unwrap()), Decimal::from(1359));
    assert_eq!(num(july_basket.first("average_basket").unwrap()), Decimal::from_str("49.54").unwrap());

    // 1 and 2 as Metabase's trend cards: one row per month up to the last
    // complete one, which the card compares with the row before it.
    let last_two = |answer: &Answer, value: &str| {
        let (month, value) = (answer.column("month").unwrap(), answer.column(value).unwrap());
        let rows: Vec<(NaiveDate, Decimal)> =
            answer.rows.iter().map(|row| (date(&row[month]), num(&row[value]))).collect();
        assert!(rows.windows(2).all(|pair| pair[0].0 < pair[1].0), "months in order: {rows:?}");
        rows[rows.len().saturating_sub(2)..].to_vec()
    };
    let monthly_sales = |month: &NaiveDate| monthly[month].iter().sum::<Decimal>();
    assert_eq!(
        last_two(&answers["01_total_sales_trend"], "sales"),
        [(july, monthly_sales(&july)), (august, monthly_sales(&august))]
    );
    assert_eq!(
        last_two(&answers["02_average_basket_trend"], "average_basket"),
        [(july, mean(&monthly[&july])), (august, mean(&monthly[&august]))]
    );
    let july_trend = answer(&client, &questions["01_total_sales_trend"], Some(july)).await.unwrap();
    assert_eq!(
        last_two(&july_trend, "sales").last(),
        Some(&(july, Decimal::from_str("67330.96").unwrap())),
        "the month filter ends the series"
    );

    // 3: recurring customers' basket by month (2+ orders in the 3 months ending that month).
    let recurring_in = |month: NaiveDate| -> BTreeSet<i64> {
        let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
        for order in seed.iter().filter(|o| month_of(o.at) > months_back(month, 3) && month_of(o.at) <= month) {
            *counts.entry(order.user).or_default() += 1;
        }
        counts.into_iter().filter(|(_, n)| *n >= 2).map(|(user, _)| user).collect()
    };
    let by_month = by_key(&answers["03_recurring_basket_by_month"], 1);
    for month in [july, august] {
        let recurring = recurring_in(month);
        let baskets: Vec<Decimal> = seed
            .iter()
            .filter(|o| month_of(o.at) == month && recurring.contains(&o.user))
            .map(|o| o.item_total)
            .collect();
        let row = &by_month[&vec![month.to_string()]];
        assert_eq!(num(&row[1]), mean(&baskets), "recurring basket of {month}");
        assert_eq!(num(&row[2]), Decimal::from(baskets.len()));
    }

    // 4: one-time over recurring sales, 3 months ending August.
    let window: Vec<&SeedOrder> = seed.iter().filter(|o| month_of(o.at) > months_back(august, 3)).collect();
    let mut per_user: BTreeMap<i64, (usize, Decimal)> = BTreeMap::new();
    for order in &window {
        let entry = per_user.entry(order.user).or_default();
        entry.0 += 1;
        entry.1 += order.item_total;
    }
    let one_time: Decimal = per_user.values().filter(|(n, _)| *n == 1).map(|(_, s)| *s).sum();
    let recurring: Decimal = per_user.values().filter(|(n, _)| *n >= 2).map(|(_, s)| *s).sum();
    let ratio = &answers["04_one_time_vs_recurring_sales"];
    assert_eq!(num(ratio.first("one_time_sales").unwrap()), one_time);
    assert_eq!(num(ratio.first("recurring_sales").unwrap()), recurring);
    assert_eq!(num(ratio.first("ratio").unwrap()), (one_time / recurring).round_dp(2));

    // 5: weekly basket per customer type in that window.
    let mut weekly_type: BTreeMap<(NaiveDate, &str), Vec<Decimal>> = BTreeMap::new();
    for order in &window {
        let kind = if per_user[&order.user].0 >= 2 { "recurring" } else { "one-time" };
        weekly_type.entry((week_of(order.at), kind)).or_default().push(order.item_total);
    }
    let answered = by_key(&answers["05_weekly_basket_by_customer_type"], 2);
    assert_eq!(answered.len(), weekly_type.len());
    for ((week, kind), baskets) in &weekly_type {
        let row = &answered[&vec![week.to_string(), kind.to_string()]];
        assert_eq!(num(&row[2]), mean(baskets), "{week} {kind}");
    }

    // 6: weekly mean days between consecutive orders of a customer, 2 months ending August.
    let mut sorted = seed.clone();
    sorted.sort_by_key(|o| (o.user, o.at, o.id));
    let mut gaps: BTreeMap<NaiveDate, Vec<f64>> = BTreeMap::new();
    for pair in sorted.windows(2) {
        let (previous, order) = (&pair[0], &pair[1]);
        if previous.user == order.user && month_of(order.at) > months_back(august, 2) {
            gaps.entry(week_of(order.at)).or_default().push((order.at - previous.at).num_seconds() as f64 / 86_400.0);
        }
    }
    let answered = by_key(&answers["06_weekly_time_between_orders"], 1);
    assert_eq!(answered.len(), gaps.len());
    for (week, days) in &gaps {
        let expected = days.iter().sum::<f64>() / days.len() as f64;
        let row = &answered[&vec![week.to_string()]];
        assert!((num(&row[1]).to_f64().unwrap() - expected).abs() < 0.006, "{week}: {:?} vs {expected}", row[1]);
        assert_eq!(num(&row[2]), Decimal::from(days.len()));
    }

    // 7: weekly sales and order count.
    let mut weekly: BTreeMap<NaiveDate, Vec<Decimal>> = BTreeMap::new();
    for order in &seed {
        weekly.entry(week_of(order.at)).or_default().push(order.item_total);
    }
    let answered = by_key(&answers["07_weekly_sales_and_orders"], 1);
    assert_eq!(answered.len(), weekly.len());
    for (week, totals) in &weekly {
        let row = &answered[&vec![week.to_string()]];
        assert_eq!(num(&row[1]), totals.iter().sum::<Decimal>(), "{week}");
        assert_eq!(num(&row[2]), Decimal::from(totals.len()));
    }

    // 8: the seed's one order with both totals zero (247792) is flagged; nothing is dead-lettered.
    let quality = &answers["08_data_quality"];
    let flagged: Vec<String> = quality.rows.iter().map(|r| format!("{} {}", r[1].display(), r[2].display())).collect();
    assert_eq!(flagged, ["flagged order zero_totals"]);
}
