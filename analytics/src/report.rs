//! A self-contained HTML report of every question: key figures as text,
//! charts as inline SVG, tables as HTML. No JavaScript, no BI server: one
//! file anyone can open.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use plotters::prelude::*;

use crate::answers::{Answer, Cell};
use crate::questions::Question;

/// Chart size in pixels.
const CHART: (u32, u32) = (760, 300);

/// One chart's series: a name and its (day number, value) points.
type Series = Vec<(String, Vec<(f64, f64)>)>;

/// Renders the report of `answered` questions, generated at `generated_at`.
pub fn render(answered: &[(Question, Answer)], generated_at: NaiveDateTime) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Orders and baskets analysis</title>\
         <style>{STYLE}</style></head><body><h1>Orders and baskets analysis</h1>\
         <p class=\"meta\">Generated {} UTC by <code>orderstream-analytics report</code> from PostgreSQL. \
         “Last month” is the latest complete month in the data.</p>",
        generated_at.format("%Y-%m-%d %H:%M")
    );
    html.push_str("<section class=\"figures\">");
    for (question, answer) in answered.iter().filter(|(q, _)| q.display == "scalar") {
        html.push_str(&figure(question, answer));
    }
    html.push_str("</section>");
    for (question, answer) in answered.iter().filter(|(q, _)| q.display != "scalar") {
        let _ = write!(html, "<section><h2>{}</h2><p>{}</p>", escape(&question.title), escape(&question.description));
        if let Some(svg) = chart(answer, question.display == "bar") {
            html.push_str(&svg);
        }
        html.push_str(&table(answer));
        html.push_str("</section>");
    }
    html.push_str("</body></html>\n");
    html
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:820px;margin:2em auto;color:#222}\
h1{font-size:1.6em}h2{font-size:1.15em;margin-top:2em}.meta{color:#666}\
.figures{display:flex;flex-wrap:wrap;gap:1em}.figure{flex:1 1 240px;border:1px solid #ddd;border-radius:6px;padding:.8em}\
.figure h2{margin:0 0 .4em;font-size:1em}.figure dl{margin:0}.figure dt{color:#666;font-size:.85em}.figure dd{margin:0 0 .3em;font-size:1.3em}\
table{border-collapse:collapse;font-size:.85em;margin-top:.6em}td,th{border:1px solid #ddd;padding:.2em .6em;text-align:right}\
th{background:#f4f4f4}svg{max-width:100%;height:auto}";

fn figure(question: &Question, answer: &Answer) -> String {
    let mut html = format!("<div class=\"figure\"><h2>{}</h2><dl>", escape(&question.title));
    if let Some(row) = answer.rows.first() {
        for (column, cell) in answer.columns.iter().zip(row) {
            let _ = write!(html, "<dt>{}</dt><dd>{}</dd>", escape(&column.replace('_', " ")), escape(&cell.display()));
        }
    }
    html.push_str("</dl></div>");
    html
}

fn table(answer: &Answer) -> String {
    let mut html = String::from("<table><tr>");
    for column in &answer.columns {
        let _ = write!(html, "<th>{}</th>", escape(column));
    }
    html.push_str("</tr>");
    for row in &answer.rows {
        html.push_str("<tr>");
        for cell in row {
            let _ = write!(html, "<td>{}</td>", escape(&cell.display()));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>");
    html
}

/// The chart's series: x from the first date column, y from the first
/// numeric column, one series per value of a text column if there is one
/// (e.g. customer type).
fn series(answer: &Answer) -> Option<(String, Series)> {
    let row = answer.rows.first()?;
    let x = row.iter().position(|cell| matches!(cell, Cell::Date(_)))?;
    let y = row.iter().position(|cell| matches!(cell, Cell::Number { .. }))?;
    let group = row.iter().position(|cell| matches!(cell, Cell::Text(_)));
    let mut by_name: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for row in &answer.rows {
        let (Cell::Date(date), Some(value)) = (&row[x], row[y].number()) else { continue };
        let name = group.map_or_else(|| answer.columns[y].clone(), |g| row[g].display());
        by_name.entry(name).or_default().push((day_number(*date), value));
    }
    Some((answer.columns[y].replace('_', " "), by_name.into_iter().collect()))
}

fn day_number(date: NaiveDate) -> f64 {
    f64::from(date.num_days_from_ce())
}

fn date_of(day: f64) -> String {
    NaiveDate::from_num_days_from_ce_opt(day.round() as i32).map_or_else(String::new, |d| d.format("%d %b").to_string())
}

/// An SVG line (or bar) chart of the answer, if it has dates and numbers.
fn chart(answer: &Answer, bars: bool) -> Option<String> {
    let (y_name, series) = series(answer)?;
    let points = series.iter().flat_map(|(_, points)| points.iter());
    let (mut x_min, mut x_max, mut y_max) = (f64::MAX, f64::MIN, 0.0_f64);
    for (x, y) in points {
        x_min = x_min.min(*x);
        x_max = x_max.max(*x);
        y_max = y_max.max(*y);
    }
    let (x_min, x_max) = (x_min - 4.0, x_max + 4.0);
    let mut svg = String::new();
    draw(&mut svg, &y_name, &series, (x_min, x_max), y_max * 1.15 + 1e-9, bars).ok()?;
    Some(svg)
}

fn draw(svg: &mut String, y_name: &str, series: &Series, x: (f64, f64), y_max: f64, bars: bool) -> Result<(), String> {
    let root = SVGBackend::with_string(svg, CHART).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(x.0..x.1, 0.0..y_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_labels(8)
        .x_label_formatter(&|day| date_of(*day))
        .y_desc(y_name)
        .draw()
        .map_err(|e| e.to_string())?;
    for (index, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        if bars {
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|(day, value)| Rectangle::new([(day - 2.5, 0.0), (day + 2.5, *value)], color.filled())),
                )
                .map_err(|e| e.to_string())?;
        } else {
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        }
    }
    if !bars && series.len() > 1 {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(value: f64) -> Cell {
        Cell::Number { text: value.to_string(), value }
    }

    fn question(display: &str, title: &str) -> Question {
        Question {
            key: title.into(),
            title: title.into(),
            display: display.into(),
            description: "why".into(),
            sql: String::new(),
        }
    }

    #[test]
    fn report_has_figures_charts_and_tables_and_no_script() {
        let week = |d: u32| Cell::Date(NaiveDate::from_ymd_opt(2022, 7, d).unwrap());
        let weekly = Answer {
            columns: vec!["week".into(), "customer_type".into(), "average_basket".into()],
            rows: vec![
                vec![week(4), Cell::Text("recurring".into()), number(53.2)],
                vec![week(4), Cell::Text("one-time".into()), number(45.7)],
                vec![week(11), Cell::Text("recurring".into()), number(57.5)],
                vec![week(11), Cell::Text("one-time".into()), number(45.6)],
            ],
        };
        let sales = Answer { columns: vec!["sales".into()], rows: vec![vec![number(67330.96)]] };
        let html = render(
            &[(question("scalar", "Total <sales>"), sales), (question("line", "Weekly basket"), weekly)],
            NaiveDate::from_ymd_opt(2026, 11, 27).unwrap().and_hms_opt(12, 0, 0).unwrap(),
        );
        assert!(html.contains("Total &lt;sales&gt;"), "titles are escaped");
        assert!(html.contains("67330.96"));
        assert_eq!(html.matches("<svg").count(), 1, "one chart for the line question");
        assert!(html.contains("recurring") && html.contains("one-time"), "one series per customer type");
        assert!(!html.contains("<script"));
    }

    #[test]
    fn answers_without_dates_get_no_chart() {
        let answer = Answer { columns: vec!["ratio".into()], rows: vec![vec![number(2.45)]] };
        assert!(chart(&answer, false).is_none());
    }
}
