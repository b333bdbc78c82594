//! Charts as inline SVG, drawn with plotters: one chart per measure of an
//! answer grouped by week or month (sales, order count, average basket…),
//! with a title, axis titles with units, dates with their year, and the
//! periods the data covers only in part shaded and labelled "partial", so a
//! short first or last week does not read as a collapse.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;

use crate::answers::{Answer, Cell, DataSpan};

use super::columns::{self, Column};
use super::format;
use super::periods::{self, Period};

/// The two drawings of every chart: scaling one SVG from a laptop's width
/// down to a phone's would shrink its labels below reading size, so phones
/// get their own, with fewer ticks (the page shows one by CSS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// For screens wider than 600 px: 920 × 380, scaled to the page.
    Wide,
    /// For phones: 400 × 300.
    Narrow,
}

impl Width {
    fn size(self) -> (u32, u32) {
        match self {
            Width::Wide => (920, 380),
            Width::Narrow => (400, 300),
        }
    }

    /// At most this many dated ticks fit side by side.
    fn ticks(self) -> usize {
        match self {
            Width::Wide => 7,
            Width::Narrow => 3,
        }
    }
}

/// Series colours, picked for contrast, in series order (the HTML legend
/// uses the same).
pub const COLOURS: [RGBColor; 4] =
    [RGBColor(31, 119, 180), RGBColor(230, 115, 0), RGBColor(44, 160, 44), RGBColor(214, 39, 40)];

/// The shade behind partial periods.
const PARTIAL_SHADE: RGBColor = RGBColor(236, 236, 236);

/// One chart, ready to draw.
pub struct Chart {
    /// Shown above the plot (in HTML, where it can wrap): "Sales per week".
    pub title: String,
    /// The x axis title: "Week (Monday to Sunday)".
    pub(super) x_axis: String,
    /// The y axis title, with its unit: "Orders (count)".
    pub(super) y_axis: String,
    /// The periods on the x axis.
    period: Period,
    /// The first day of each period on the x axis, in order.
    starts: Vec<NaiveDate>,
    /// Whether each period of `starts` is only partly in the data.
    partial: Vec<bool>,
    /// One series per group (e.g. customer type): name and (period index, value).
    pub series: Vec<(String, Vec<(usize, f64)>)>,
    /// Bars (one series only) rather than lines.
    bars: bool,
}

/// Where an answer's chart data sits: its period column, its optional group
/// column, its charted measures.
struct Layout {
    /// The column of the periods' first days (`week`, `month`).
    period_index: usize,
    /// What those periods are.
    period: Period,
    /// A text column splitting the rows into series (`customer_type`).
    group_index: Option<usize>,
    /// The charted columns and how they read.
    measures: Vec<(usize, Column)>,
}

fn layout(answer: &Answer) -> Option<Layout> {
    let row = answer.rows.first()?;
    let (period_index, period) = answer.columns.iter().enumerate().find_map(|(index, name)| {
        Period::of_column(name).filter(|_| matches!(row[index], Cell::Date(_))).map(|p| (index, p))
    })?;
    let group_index = row.iter().position(|cell| matches!(cell, Cell::Text(_)));
    let measures = answer
        .columns
        .iter()
        .enumerate()
        .map(|(index, name)| (index, columns::describe(name)))
        .filter(|(_, column)| column.axis.is_some())
        .collect::<Vec<_>>();
    (!measures.is_empty()).then_some(Layout { period_index, period, group_index, measures })
}

/// The charts of an answer grouped by period: one per charted measure
/// (none if the answer has no period column or no such measure). `bars`
/// draws single-series charts as bars.
pub fn charts(answer: &Answer, span: Option<&DataSpan>, bars: bool) -> Vec<Chart> {
    let Some(layout) = layout(answer) else { return Vec::new() };
    let starts: Vec<NaiveDate> = answer
        .rows
        .iter()
        .filter_map(|row| match row[layout.period_index] {
            Cell::Date(date) => Some(date),
            _ => None,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let partial: Vec<bool> =
        starts.iter().map(|start| span.is_some_and(|s| layout.period.is_partial(*start, s))).collect();
    let group_heading = layout.group_index.map(|g| columns::heading(&answer.columns[g]).to_lowercase());
    layout
        .measures
        .iter()
        .map(|(measure, column)| {
            let mut by_group: BTreeMap<String, Vec<(usize, f64)>> = BTreeMap::new();
            for row in &answer.rows {
                let (Cell::Date(date), Some(value)) = (&row[layout.period_index], row[*measure].number()) else {
                    continue;
                };
                let Ok(index) = starts.binary_search(date) else { continue };
                let group =
                    layout.group_index.map_or_else(String::new, |g| columns::value(columns::Kind::Text, &row[g]));
                by_group.entry(group).or_default().push((index, value));
            }
            let by = group_heading.as_ref().map_or_else(String::new, |g| format!(", by {g}"));
            Chart {
                title: format!("{} per {}{by}", column.heading, layout.period.noun()),
                x_axis: columns::heading(&answer.columns[layout.period_index]),
                y_axis: column.axis.unwrap_or(column.heading).to_string(),
                period: layout.period,
                starts: starts.clone(),
                partial: partial.clone(),
                bars: bars && by_group.len() == 1,
                series: by_group.into_iter().collect(),
            }
        })
        .collect()
}

impl Chart {
    /// The chart as an SVG element for `width`, or why plotters could not draw it.
    pub fn svg(&self, width: Width) -> Result<String, String> {
        let mut svg = String::new();
        self.draw(&mut svg, width).map_err(|error| error.to_string())?;
        Ok(svg)
    }

    /// Why its partial periods are partial, in a sentence; `None` if none is.
    pub fn partial_note(&self, span: &DataSpan) -> Option<String> {
        periods::partial_note(self.period, &self.starts, span)
    }

    /// The highest value, for the y axis (at least 1, so an all-zero chart still has a scale).
    fn y_max(&self) -> f64 {
        let highest = self.series.iter().flat_map(|(_, points)| points.iter().map(|(_, y)| *y)).fold(0.0, f64::max);
        if highest > 0.0 {
            highest * 1.2
        } else {
            1.0
        }
    }

    fn draw(&self, svg: &mut String, width: Width) -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::with_string(svg, width.size()).into_drawing_area();
        root.fill(&WHITE)?;
        let periods = self.starts.len();
        let x_range = -0.6..(periods as f64 - 0.4);
        let y_max = self.y_max();
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .margin_right(if width == Width::Wide { 48 } else { 36 })
            .x_label_area_size(52)
            .y_label_area_size(if width == Width::Wide { 84 } else { 72 })
            .build_cartesian_2d(x_range, 0.0..y_max)?;
        let tick = |x: &f64| self.tick(*x);
        let y_tick = |y: &f64| y_tick(*y, y_max);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(225, 225, 225))
            .x_labels(periods.clamp(1, width.ticks()))
            .y_labels(6)
            .x_label_formatter(&tick)
            .y_label_formatter(&y_tick)
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 17))
            .x_desc(&self.x_axis)
            .y_desc(&self.y_axis)
            .draw()?;
        let shades = self.partial.iter().enumerate().filter(|(_, partial)| **partial).map(|(index, _)| index);
        chart.draw_series(shades.clone().map(|index| {
            let x = index as f64;
            Rectangle::new([(x - 0.5, 0.0), (x + 0.5, y_max)], PARTIAL_SHADE.filled())
        }))?;
        // The first and last labels grow inwards from the shade's outer edge:
        // centred on a narrow period they would cross the axis.
        let labels = shades.map(|index| {
            let (x, anchor) = match index {
                0 => (-0.45, HPos::Left),
                last if last + 1 == periods => (last as f64 + 0.45, HPos::Right),
                middle => (middle as f64, HPos::Center),
            };
            let font = ("sans-serif", 15).into_font().color(&RGBColor(90, 90, 90)).pos(Pos::new(anchor, VPos::Top));
            Text::new("partial", (x, y_max * 0.985), font)
        });
        chart.draw_series(labels)?;
        for (number, (_, points)) in self.series.iter().enumerate() {
            let colour = COLOURS[number % COLOURS.len()];
            if self.bars {
                chart.draw_series(points.iter().map(|(index, value)| {
                    let x = *index as f64;
                    let fill = if self.partial[*index] { colour.mix(0.4).filled() } else { colour.filled() };
                    Rectangle::new([(x - 0.36, 0.0), (x + 0.36, *value)], fill)
                }))?;
            } else {
                // A segment reaching a partial period is dashed: its fall is the data's edge.
                for pair in points.windows(2) {
                    let ends = pair.iter().map(|(index, value)| (*index as f64, *value));
                    if self.partial[pair[0].0] || self.partial[pair[1].0] {
                        chart.draw_series(DashedLineSeries::new(ends, 6, 5, colour.stroke_width(2)))?;
                    } else {
                        chart.draw_series(LineSeries::new(ends, colour.stroke_width(2)))?;
                    }
                }
                chart.draw_series(points.iter().map(|(index, value)| {
                    let style = if self.partial[*index] { WHITE.filled() } else { colour.filled() };
                    Circle::new((*index as f64, *value), 4, style)
                }))?;
                chart.draw_series(
                    points
                        .iter()
                        .filter(|(index, _)| self.partial[*index])
                        .map(|(index, value)| Circle::new((*index as f64, *value), 4, colour.stroke_width(2))),
                )?;
            }
        }
        root.present()?;
        Ok(())
    }

    /// The x tick of position `x`: its period's date with the year, or
    /// nothing between periods.
    fn tick(&self, x: f64) -> String {
        let index = x.round();
        if (x - index).abs() > 1e-6 || index < 0.0 {
            return String::new();
        }
        self.starts.get(index as usize).map_or_else(String::new, |start| self.period.tick(*start))
    }
}

/// A y tick: thousands separated; one decimal only on scales small enough
/// for plotters to step by less than 1 (below 10), so "5.0, 10.0, 15.0"
/// reads "5, 10, 15".
fn y_tick(y: f64, y_max: f64) -> String {
    let places = if y_max >= 10.0 { 0 } else { 1 };
    Decimal::from_f64(y).map_or_else(String::new, |value| format::thousands(value, places))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(d: u32) -> Cell {
        Cell::Date(NaiveDate::from_ymd_opt(2022, 8, d).unwrap())
    }

    fn number(value: f64) -> Cell {
        Cell::Number { text: value.to_string(), value }
    }

    fn weekly() -> Answer {
        Answer {
            columns: vec!["week".into(), "sales".into(), "orders".into()],
            rows: vec![
                vec![date(1), number(18_000.5), number(360.0)],
                vec![date(8), number(19_000.0), number(380.0)],
                vec![date(29), number(4_000.0), number(80.0)],
            ],
        }
    }

    #[test]
    fn sales_and_order_count_each_get_a_chart_with_titles_and_units() {
        let charts = charts(&weekly(), None, true);
        let titles: Vec<&str> = charts.iter().map(|c| c.title.as_str()).collect();
        assert_eq!(titles, ["Sales per week", "Orders per week"]);
        let svg = charts[1].svg(Width::Wide).unwrap();
        assert!(svg.contains("Orders (count)"), "y axis title with its unit");
        assert!(svg.contains("Week (Monday to Sunday)"), "x axis title");
        assert!(svg.contains("29 Aug 2022"), "ticks carry the year");
    }

    #[test]
    fn partial_periods_are_labelled_in_the_chart() {
        let span = DataSpan {
            first_order: NaiveDate::from_ymd_opt(2022, 8, 1).unwrap().and_hms_opt(0, 5, 0).unwrap(),
            newest_order: NaiveDate::from_ymd_opt(2022, 8, 31).unwrap().and_hms_opt(22, 0, 0).unwrap(),
            last_month: NaiveDate::from_ymd_opt(2022, 8, 1).unwrap(),
        };
        let chart = charts(&weekly(), Some(&span), true).remove(0);
        assert_eq!(chart.partial, [false, false, true], "only the week the data leaves on a Wednesday");
        assert_eq!(chart.svg(Width::Narrow).unwrap().matches(">\npartial\n").count(), 1);
        let complete = charts(&weekly(), None, true).remove(0);
        assert!(!complete.svg(Width::Wide).unwrap().contains(">\npartial\n"));
    }

    #[test]
    fn groups_become_series() {
        let answer = Answer {
            columns: vec!["week".into(), "customer_type".into(), "average_basket".into()],
            rows: vec![
                vec![date(1), Cell::Text("one-time".into()), number(48.0)],
                vec![date(1), Cell::Text("recurring".into()), number(55.0)],
            ],
        };
        let charts = charts(&answer, None, false);
        assert_eq!(charts.len(), 1);
        assert_eq!(charts[0].title, "Average basket per week, by customer type");
        assert_eq!(charts[0].series.len(), 2);
    }

    #[test]
    fn y_ticks_carry_decimals_only_on_small_scales() {
        assert_eq!(y_tick(15.0, 19.2), "15", "days between orders");
        assert_eq!(y_tick(20_000.0, 22_000.0), "20,000");
        assert_eq!(y_tick(2.5, 2.9), "2.5", "a ratio steps by halves");
    }

    #[test]
    fn answers_without_periods_get_no_chart() {
        let answer = Answer { columns: vec!["ratio".into()], rows: vec![vec![number(2.45)]] };
        assert!(charts(&answer, None, false).is_empty());
    }
}
