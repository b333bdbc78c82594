//! The report a shop manager forwards: one self-contained HTML file (inline
//! CSS and SVG, no JavaScript, nothing fetched) with the key figures as
//! cards, a chart per measure, short tables and how fresh the data is.
//!
//! # Layout
//!
//! | module      | responsibility                                                 |
//! |-------------|----------------------------------------------------------------|
//! | `format`    | numbers, changes and dates as people write them                |
//! | `periods`   | weeks and months the data covers only in part                  |
//! | `columns`   | each answer column's heading in words, unit and value format   |
//! | `cards`     | the key-figure cards of single-number questions                |
//! | `charts`    | SVG charts with titles, axis units and partial periods marked  |
//! | `tables`    | short tables, earlier periods folded in `<details>`            |
//! | `history`   | figures leaning on history before the data's first order       |
//! | `month`     | `--month`: whole months the data reaches, nothing else         |
//! | this file   | the page: order of sections, "data as of", staleness, style    |

mod cards;
mod charts;
mod columns;
mod format;
mod history;
pub mod month;
mod periods;
mod tables;

use std::fmt::Write;

use chrono::{Duration, NaiveDateTime};

use crate::answers::{Answer, DataSpan};
use crate::questions::Question;
use charts::Width;

/// The header line a question may carry to say what an empty answer means
/// (`-- if empty: No dead letters …`): "nothing to report" is news too.
const IF_EMPTY_HEADER: &str = "if empty";

/// The header line of a question over the last N months (`-- window months:
/// 3`): the weeks its window cuts are partial too.
const WINDOW_HEADER: &str = "window months";

/// How old the newest order may be when the report is generated before the
/// page warns that its figures are stale: orders arrive every day, and a
/// weekend or a holiday without any is the longest quiet spell expected.
const STALE_AFTER: Duration = Duration::days(3);

/// Renders the report of `answered` questions over the orders of `span`
/// (`None` when there are none), generated at `generated_at` (UTC).
pub fn render(answered: &[(Question, Answer)], span: Option<DataSpan>, generated_at: NaiveDateTime) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Orders and baskets analysis</title><style>{STYLE}</style></head><body><main>\
         <h1>Orders and baskets analysis</h1>{}\
         <p class=\"meta\">“Last month” is the latest complete month in the data. \
         Generated {} UTC by <code>orderstream-analytics report</code> from PostgreSQL.</p>{}",
        as_of(span.as_ref()),
        generated_at.format("%-d %B %Y, %H:%M"),
        span.as_ref().and_then(|span| staleness(span, generated_at)).unwrap_or_default(),
    );
    html.push_str("<section class=\"cards\">");
    for (question, answer) in answered.iter().filter(|(q, _)| q.display == "scalar") {
        let note = span.as_ref().and_then(|span| history::note(question, answer, span, window_months(question)));
        html.push_str(&cards::card(question, answer, note.as_deref()));
    }
    html.push_str("</section>");
    for (question, answer) in answered.iter().filter(|(q, _)| q.display != "scalar") {
        html.push_str(&section(question, answer, span.as_ref()));
    }
    html.push_str("</main></body></html>\n");
    html
}

/// "Data as of" the newest order: the figures are as fresh as that, not as
/// the time the report was generated.
fn as_of(span: Option<&DataSpan>) -> String {
    match span {
        Some(span) => format!(
            "<p class=\"as-of\">Data as of <strong>{} UTC</strong> (the newest order; the first is from {}).</p>",
            escape(&format::moment(span.newest_order)),
            escape(&format::day(span.first_order.date())),
        ),
        None => "<p class=\"as-of\">No orders in the database yet: every figure below is empty.</p>".to_string(),
    }
}

/// The warning of a report generated long after its newest order: without
/// it, a report made in December from data ending in September reads as
/// current. `None` while the data is fresh.
fn staleness(span: &DataSpan, generated_at: NaiveDateTime) -> Option<String> {
    let age = generated_at - span.newest_order;
    (age > STALE_AFTER).then(|| {
        format!(
            "<p class=\"stale\"><strong>Stale data:</strong> the newest order is from {}, {} days before this report \
             was generated. Orders since then are missing from every figure below: check that the pipeline is \
             running (<code>make status</code>).</p>",
            escape(&format::day(span.newest_order.date())),
            age.num_days(),
        )
    })
}

/// The question's `-- window months:`, if any.
fn window_months(question: &Question) -> Option<u32> {
    question.optional_header(WINDOW_HEADER).and_then(|months| months.parse().ok())
}

/// One question: title, what it measures, its charts, the note on partial
/// periods, its table (or the sentence saying there is nothing to report).
fn section(question: &Question, answer: &Answer, span: Option<&DataSpan>) -> String {
    let mut html = format!(
        "<section class=\"question\"><h2>{}</h2><p class=\"description\">{}</p>",
        escape(&question.title),
        escape(&question.description)
    );
    let window = window_months(question);
    let history_note = span.and_then(|span| history::note(question, answer, span, window));
    let windowed = span.zip(window).map(|(span, months)| periods::within_months(span, months));
    let span = windowed.as_ref().or(span);
    let charts = charts::charts(answer, span, question.display == "bar");
    for chart in &charts {
        match chart.svg(Width::Wide).and_then(|wide| Ok((wide, chart.svg(Width::Narrow)?))) {
            Ok((wide, narrow)) => {
                let _ = write!(
                    html,
                    "<figure><h3>{}</h3><div class=\"wide\">{wide}</div><div class=\"narrow\">{narrow}</div>{}</figure>",
                    escape(&chart.title),
                    legend(chart)
                );
            }
            Err(error) => {
                tracing::warn!(message = "A chart could not be drawn.", chart = %chart.title, %error);
            }
        }
    }
    if let Some(note) = charts.first().zip(span).and_then(|(chart, span)| chart.partial_note(span)) {
        let _ = write!(html, "<p class=\"note\">{}</p>", escape(&note));
    }
    if let Some(note) = history_note {
        let _ = write!(html, "<p class=\"note history\">{}</p>", escape(&note));
    }
    if answer.rows.is_empty() {
        let sentence = question.optional_header(IF_EMPTY_HEADER).unwrap_or("Nothing to report: no rows.");
        let _ = write!(html, "<p class=\"nothing\">{}</p>", escape(sentence));
    } else {
        html.push_str(&tables::table(answer, span));
    }
    html.push_str("</section>");
    html
}

/// The colour of each series, when a chart has more than one.
fn legend(chart: &charts::Chart) -> String {
    if chart.series.len() < 2 {
        return String::new();
    }
    let mut html = String::from("<figcaption class=\"legend\">");
    for (number, (name, _)) in chart.series.iter().enumerate() {
        let colour = charts::COLOURS[number % charts::COLOURS.len()];
        let _ = write!(
            html,
            "<span><i style=\"background:rgb({},{},{})\"></i>{}</span>",
            colour.0,
            colour.1,
            colour.2,
            escape(name)
        );
    }
    html.push_str("</figcaption>");
    html
}

/// Fits 390 px phones to wide screens; charts scale with the page.
const STYLE: &str = "*{box-sizing:border-box}\
body{font-family:system-ui,'DejaVu Sans',sans-serif;margin:0;color:#1d1d1f;background:#fafafa;line-height:1.4}\
main{max-width:960px;margin:0 auto;padding:1.2em 16px 3em;background:#fff}\
h1{font-size:1.7em;margin:.2em 0}h2{font-size:1.2em;margin:0 0 .3em}\
.as-of{font-size:1.05em;margin:.3em 0}.meta{color:#666;font-size:.85em;margin:.2em 0 1.2em}\
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:14px}\
.card{border:1px solid #ddd;border-radius:8px;padding:14px 16px;background:#fff}\
.card h2{font-size:1em;color:#444}.period{margin:0;color:#666;font-size:.9em}\
.figure{font-size:2.1em;font-weight:600;margin:.1em 0;font-variant-numeric:tabular-nums}\
.change{margin:0 0 .4em;font-weight:600}.change span{font-weight:400;color:#666}\
.up{color:#1a7f37}.down{color:#c62828}.flat{color:#666}\
.card dl{display:grid;grid-template-columns:auto auto;gap:2px 12px;margin:.4em 0;font-size:.9em}\
.card dt{color:#666}.card dd{margin:0;text-align:right;font-variant-numeric:tabular-nums}\
.description{color:#555;font-size:.9em;margin:.3em 0}\
.question{margin-top:2.4em;border-top:1px solid #eee;padding-top:1.2em}\
figure{margin:1.2em 0}figure h3{font-size:1.05em;margin:0 0 .3em;text-align:center}svg{display:block;width:100%;height:auto}\
.narrow{display:none}@media (max-width:600px){.wide{display:none}.narrow{display:block}}\
.legend{font-size:.9em;display:flex;flex-wrap:wrap;gap:4px 18px}\
.legend i{display:inline-block;width:14px;height:14px;border-radius:3px;margin-right:6px;vertical-align:-2px}\
.note{font-size:.85em;color:#555;background:#f4f4f4;border-left:3px solid #bbb;padding:6px 10px}\
.stale{font-size:1em;padding:8px 12px;background:#fff4e5;border-left:4px solid #e65100;margin:.4em 0 1em}\
.nothing{font-size:1em;padding:10px 12px;background:#eef7ee;border-left:3px solid #2e7d32}\
.table{overflow-x:auto}table{border-collapse:collapse;font-size:.88em;margin:.4em 0;font-variant-numeric:tabular-nums}\
td,th{border-bottom:1px solid #e4e4e4;padding:4px 10px}th{background:#f4f4f4;font-weight:600}\
.number{text-align:right}.words{text-align:left}.table-caption{margin:.8em 0 0;font-size:.9em;color:#555}\
details{margin:.4em 0}summary{cursor:pointer;color:#0b57d0;font-size:.9em}";

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
    use super::periods::tests::{date, span};
    use super::*;
    use crate::answers::Cell;

    fn number(text: &str) -> Cell {
        Cell::Number { text: text.into(), value: text.parse().unwrap() }
    }

    fn question(display: &str, title: &str, sql: &str) -> Question {
        Question {
            key: title.into(),
            title: title.into(),
            display: display.into(),
            description: "why".into(),
            sql: sql.into(),
        }
    }

    fn generated() -> NaiveDateTime {
        date(2026, 11, 27).and_hms_opt(12, 0, 0).unwrap()
    }

    #[test]
    fn key_figures_are_cards_with_the_change_and_the_period_in_words() {
        let sales = Answer {
            columns: vec!["month".into(), "sales".into(), "previous_sales".into(), "change_percent".into()],
            rows: vec![vec![Cell::Date(date(2022, 9, 1)), number("74120.4"), number("83948.74"), number("-11.7")]],
        };
        let html = render(&[(question("scalar", "Total <sales>", ""), sales)], Some(span()), generated());
        assert!(html.contains("Total &lt;sales&gt;"), "titles are escaped");
        assert!(html.contains("<p class=\"figure\">74,120.40</p>"), "{html}");
        assert!(html.contains("<p class=\"change down\">▼ 11.7 %<span> against 83,948.74</span></p>"), "{html}");
        assert!(html.contains("<p class=\"period\">September 2022 vs August 2022</p>"));
        assert!(html.contains("<p class=\"description\">why</p>"));
        assert!(
            html.contains("Data as of <strong>Tuesday 4 October 2022, 13:20 UTC</strong>"),
            "the time zone is named"
        );
        assert!(!html.contains("<script"), "no JavaScript");
    }

    #[test]
    fn a_window_of_months_is_named() {
        let ratio = Answer {
            columns: vec!["one_time_sales".into(), "ratio".into(), "first_month".into(), "last_month".into()],
            rows: vec![vec![
                number("107389.41"),
                number("2.45"),
                Cell::Date(date(2022, 7, 1)),
                Cell::Date(date(2022, 9, 1)),
            ]],
        };
        let html = render(&[(question("scalar", "Ratio", ""), ratio)], Some(span()), generated());
        assert!(html.contains("<p class=\"period\">July – September 2022</p>"));
        assert!(html.contains("<p class=\"figure\">2.45</p>"));
        assert!(html.contains("<dt>Sales to one-time customers</dt><dd>107,389.41</dd>"));
    }

    #[test]
    fn weekly_sections_chart_sales_and_orders_and_explain_partial_weeks() {
        let week = |d: chrono::NaiveDate| Cell::Date(d);
        let weekly = Answer {
            columns: vec!["week".into(), "sales".into(), "orders".into()],
            rows: vec![
                vec![week(date(2022, 7, 11)), number("4000.5"), number("80")],
                vec![week(date(2022, 7, 18)), number("18000"), number("360")],
                vec![week(date(2022, 10, 3)), number("5000"), number("100")],
            ],
        };
        let html = render(&[(question("bar", "Weekly", ""), weekly)], Some(span()), generated());
        assert_eq!(html.matches("<figure>").count(), 2, "sales and order count");
        assert!(html.contains("<h3>Sales per week</h3>") && html.contains("<h3>Orders per week</h3>"));
        assert_eq!(html.matches("<svg").count(), 4, "each drawn for wide screens and for phones");
        assert!(html.contains("Partial weeks"), "the note says why the ends are low");
        assert!(html.contains("Week of 3 Oct 2022 (partial)"));
    }

    #[test]
    fn an_empty_answer_says_there_is_nothing_to_report() {
        let empty = Answer { columns: vec!["day".into(), "kind".into(), "records".into()], rows: vec![] };
        let q = question("table", "Data quality", "-- if empty: Nothing to report: no dead letters.\nSELECT 1");
        let html = render(&[(q, empty)], Some(span()), generated());
        assert!(html.contains("<p class=\"nothing\">Nothing to report: no dead letters.</p>"));
        assert!(!html.contains("<table"));
    }

    #[test]
    fn a_report_generated_long_after_its_newest_order_says_the_data_is_stale() {
        let html = render(&[], Some(span()), generated());
        assert!(
            html.contains("<strong>Stale data:</strong> the newest order is from 4 Oct 2022, 1514 days before"),
            "{html}"
        );
        let next_day = date(2022, 10, 5).and_hms_opt(9, 0, 0).unwrap();
        assert!(!render(&[], Some(span()), next_day).contains("Stale data"), "fresh data carries no warning");
    }

    #[test]
    fn figures_leaning_on_missing_history_are_marked() {
        let recurring = Answer {
            columns: vec!["month".into(), "recurring_average_basket".into()],
            rows: vec![vec![Cell::Date(date(2022, 8, 1)), number("52.1")]],
        };
        let q = question("line", "Recurring", "-- looks back: 2 months\nSELECT month, recurring_average_basket");
        let html = render(&[(q, recurring)], Some(span()), generated());
        assert!(html.contains("<p class=\"note history\">History begins 13 Jul 2022 (the first order): the first month (August 2022) looks back"), "{html}");
        let ratio = Answer { columns: vec!["ratio".into()], rows: vec![vec![number("2.45")]] };
        let q = question("scalar", "Ratio", "-- window months: 3\n-- looks back: window\nSELECT ratio");
        let html = render(&[(q, ratio)], Some(span()), generated());
        assert!(html.contains("the 3-month window July – September 2022 starts before it"), "the card says so: {html}");
    }

    /// A one-row answer shaped as `question`'s header says (x then y columns).
    fn shaped_like(question: &Question) -> Answer {
        let presentation = question.presentation().unwrap();
        let columns: Vec<String> = presentation.x.iter().chain(&presentation.y).cloned().collect();
        let row = columns
            .iter()
            .enumerate()
            .map(|(index, _)| match index {
                0 => Cell::Date(date(2022, 8, 1)),
                _ if index < presentation.x.len() => Cell::Text("recurring".into()),
                _ => number("42"),
            })
            .collect();
        Answer { columns, rows: vec![row] }
    }

    #[test]
    fn report_charts_and_metabase_cards_carry_the_same_axis_titles() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../metabase/questions");
        let charted: Vec<Question> = crate::questions::load_questions(&folder)
            .unwrap()
            .into_iter()
            .filter(|q| q.in_report() && q.in_metabase() && ["line", "bar"].contains(&q.display.as_str()))
            .collect();
        assert_eq!(charted.len(), 4, "questions 03, 05, 06 and 07");
        for question in charted {
            let settings = crate::visualization::settings(&question.display, &question.presentation().unwrap());
            let metabase_y: Vec<&str> = settings["graph.y_axis.title_text"].as_str().unwrap().split(" / ").collect();
            let charts = charts::charts(&shaped_like(&question), None, question.display == "bar");
            assert!(!charts.is_empty(), "{}", question.key);
            for chart in charts {
                assert_eq!(settings["graph.x_axis.title_text"], chart.x_axis.as_str(), "{}", question.key);
                assert!(
                    metabase_y.contains(&chart.y_axis.as_str()),
                    "{}: {} not in {metabase_y:?}",
                    question.key,
                    chart.y_axis
                );
            }
        }
    }

    #[test]
    fn without_orders_the_page_says_so() {
        let html = render(&[], None, generated());
        assert!(html.contains("No orders in the database yet"));
    }
}
