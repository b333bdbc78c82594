//! Runs a question against PostgreSQL and keeps its answer as plain values,
//! so the report (and tests) can use it without knowing column types.

use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};

use crate::questions::Question;

/// One value of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// A number (exact text kept for display).
    Number {
        /// As written by PostgreSQL, e.g. `67330.96`.
        text: String,
        /// For charts.
        value: f64,
    },
    /// A date (or the date of a timestamp).
    Date(NaiveDate),
    /// Anything else, as text.
    Text(String),
}

impl Cell {
    /// The value for a chart's axis, if numeric.
    pub fn number(&self) -> Option<f64> {
        match self {
            Cell::Number { value, .. } => Some(*value),
            _ => None,
        }
    }

    /// The exact value, if numeric: money is formatted from this, never from
    /// the float kept for charts.
    pub fn decimal(&self) -> Option<Decimal> {
        match self {
            Cell::Number { text, .. } => Decimal::from_str(text).ok(),
            _ => None,
        }
    }

    /// The value as PostgreSQL wrote it, for developers and tests.
    pub fn display(&self) -> String {
        match self {
            Cell::Null => "—".to_string(),
            Cell::Number { text, .. } => text.clone(),
            Cell::Date(date) => date.format("%Y-%m-%d").to_string(),
            Cell::Text(text) => text.clone(),
        }
    }
}

/// A question's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<Vec<Cell>>,
}

impl Answer {
    /// The index of a column by name.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|column| column == name)
    }

    /// The cell of the first row in the named column.
    pub fn first(&self, name: &str) -> Option<&Cell> {
        self.rows.first().and_then(|row| row.get(self.column(name)?))
    }
}

/// The time span the orders cover: the report says how fresh its figures are
/// and which periods are only partly in the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataSpan {
    /// Completion time of the oldest order: a period starting before it is partial.
    pub first_order: NaiveDateTime,
    /// Completion time of the newest order: "data as of", and a period ending
    /// after it is partial.
    pub newest_order: NaiveDateTime,
    /// The month the "last N months" questions end with (first day): the
    /// data's latest complete month, or the one asked for.
    pub last_month: NaiveDate,
}

/// The span of the orders in `analysis_orders`, `None` when there are none;
/// its `last_month` is `month` if given, else `analysis_anchor`'s.
pub async fn data_span(client: &Client, month: Option<NaiveDate>) -> Result<Option<DataSpan>, tokio_postgres::Error> {
    let sql = "SELECT min(completed_time), max(completed_time), (SELECT last_month FROM analysis_anchor) FROM analysis_orders";
    let row = client.query_one(sql, &[]).await?;
    let first: Option<NaiveDateTime> = row.try_get(0)?;
    let newest: Option<NaiveDateTime> = row.try_get(1)?;
    let anchor: Option<NaiveDate> = row.try_get(2)?;
    Ok(match (first, newest, month.or(anchor)) {
        (Some(first_order), Some(newest_order), Some(last_month)) => {
            Some(DataSpan { first_order, newest_order, last_month })
        }
        _ => None,
    })
}

/// Runs `question` (for `month`, or the data's latest complete month).
pub async fn answer(
    client: &Client,
    question: &Question,
    month: Option<NaiveDate>,
) -> Result<Answer, tokio_postgres::Error> {
    let rows = client.query(&question.sql_with(month), &[]).await?;
    let columns = match rows.first() {
        Some(row) => row.columns().iter().map(|c| c.name().to_string()).collect(),
        None => {
            client.prepare(&question.sql_with(month)).await?.columns().iter().map(|c| c.name().to_string()).collect()
        }
    };
    let rows = rows.iter().map(cells).collect::<Result<_, _>>()?;
    Ok(Answer { columns, rows })
}

fn cells(row: &Row) -> Result<Vec<Cell>, tokio_postgres::Error> {
    (0..row.len()).map(|index| cell(row, index)).collect()
}

fn cell(row: &Row, index: usize) -> Result<Cell, tokio_postgres::Error> {
    let kind = row.columns()[index].type_().clone();
    let number = |text: String, value: f64| Cell::Number { text, value };
    Ok(match kind {
        Type::NUMERIC => row
            .try_get::<_, Option<Decimal>>(index)?
            .map_or(Cell::Null, |d| number(d.to_string(), d.to_f64().unwrap_or(f64::NAN))),
        Type::INT8 => row.try_get::<_, Option<i64>>(index)?.map_or(Cell::Null, |v| number(v.to_string(), v as f64)),
        Type::INT4 => row.try_get::<_, Option<i32>>(index)?.map_or(Cell::Null, |v| number(v.to_string(), v.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(index)?.map_or(Cell::Null, |v| number(format!("{v:.2}"), v)),
        Type::DATE => row.try_get::<_, Option<NaiveDate>>(index)?.map_or(Cell::Null, Cell::Date),
        Type::TIMESTAMP => row.try_get::<_, Option<NaiveDateTime>>(index)?.map_or(Cell::Null, |t| Cell::Date(t.date())),
        _ => row.try_get::<_, Option<String>>(index)?.map_or(Cell::Null, Cell::Text),
    })
}
