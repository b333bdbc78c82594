//! Metabase's `visualization_settings` for a card, from the question's
//! [`Presentation`] and the shared vocabulary of [`crate::labels`]: the key
//! figure's column, the trend comparison, the axes and their titles, and per
//! column its title and number format, the same the HTML report uses.
//!
//! The keys are Metabase's own, as its front end reads them (metabase/metabase,
//! `frontend/src/metabase-types/api/card.ts`, type `VisualizationSettings` and
//! `ColumnSettings`): `scalar.field`, `scalar.comparisons` (the trend card,
//! `frontend/src/metabase/visualizations/visualizations/SmartScalar/definition.ts`),
//! `graph.dimensions`, `graph.metrics`, `graph.x_axis.title_text`,
//! `graph.y_axis.title_text`, and `column_settings` keyed by
//! `["name","<column>"]` (`getColumnKey` in
//! `frontend/src/metabase-lib/v1/queries/utils/column-key.ts`) with
//! `column_title`, `number_style`, `currency`, `currency_style`, `decimals`, `scale`.

use serde_json::{json, Map, Value};

use crate::labels::{self, Format};
use crate::presentation::Presentation;

/// The trend card's comparison id; stable, so the settings hash the same
/// from one run to the next.
const TREND_COMPARISON_ID: &str = "orderstream-previous-value";

/// The settings for a card of `display` presented as `presentation`.
pub fn settings(display: &str, presentation: &Presentation) -> Value {
    let mut settings = Map::new();
    if let Some(value) = &presentation.value {
        settings.insert("scalar.field".into(), json!(value));
    }
    if display == "smartscalar" {
        // A native query has no date unit for Metabase to compare "the
        // previous period" with, so the trend compares the last row with
        // the row before: the question returns one row per month.
        settings.insert("scalar.comparisons".into(), json!([{ "id": TREND_COMPARISON_ID, "type": "previousValue" }]));
    }
    if !presentation.x.is_empty() {
        settings.insert("graph.dimensions".into(), json!(presentation.x));
    }
    if !presentation.y.is_empty() {
        settings.insert("graph.metrics".into(), json!(presentation.y));
    }
    if let Some(x) = presentation.x.first() {
        settings.insert("graph.x_axis.title_text".into(), json!(labels::heading(x)));
    }
    if let Some(title) = labels::axis_title(&presentation.y) {
        settings.insert("graph.y_axis.title_text".into(), json!(title));
    }
    let columns = column_settings(presentation);
    if !columns.is_empty() {
        settings.insert("column_settings".into(), Value::Object(columns));
    }
    Value::Object(settings)
}

/// One entry per labelled column the question mentions, keyed as Metabase
/// keys result columns: its title and its number format.
fn column_settings(presentation: &Presentation) -> Map<String, Value> {
    presentation
        .labelled
        .iter()
        .filter_map(|column| Some((column, labels::label(column)?)))
        .map(|(column, label)| {
            let mut setting = number_format(label.format, presentation.currency.as_deref());
            setting.insert("column_title".into(), json!(label.heading));
            (column_key(column), Value::Object(setting))
        })
        .collect()
}

/// Metabase's number format for `format`, as the report writes the same values.
fn number_format(format: Format, currency: Option<&str>) -> Map<String, Value> {
    let format = match (format, currency) {
        (Format::Money, Some(currency)) => {
            json!({ "number_style": "currency", "currency": currency, "currency_style": "symbol", "decimals": 2 })
        }
        (Format::Money | Format::Ratio | Format::Days, _) => json!({ "number_style": "decimal", "decimals": 2 }),
        (Format::Count, _) => json!({ "number_style": "decimal", "decimals": 0 }),
        // The questions compute changes as numbers of percent (-3.8);
        // Metabase's percent style multiplies by 100, so scale them back first.
        (Format::Change, _) => json!({ "number_style": "percent", "scale": 0.01, "decimals": 1 }),
        (Format::Week | Format::Month | Format::Day | Format::Text, _) => json!({}),
    };
    match format {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Metabase's key for a result column in `column_settings`.
fn column_key(column: &str) -> String {
    json!(["name", column]).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labelled(columns: &[&str]) -> Vec<String> {
        columns.iter().map(|column| column.to_string()).collect()
    }

    #[test]
    fn a_trend_card_shows_its_value_against_the_previous_row() {
        let presentation =
            Presentation { value: Some("sales".into()), labelled: labelled(&["month", "sales"]), ..Default::default() };
        let settings = settings("smartscalar", &presentation);
        assert_eq!(settings["scalar.field"], "sales");
        assert_eq!(settings["scalar.comparisons"][0]["type"], "previousValue");
        assert_eq!(settings["column_settings"]["[\"name\",\"sales\"]"]["decimals"], 2);
        assert_eq!(settings["column_settings"]["[\"name\",\"month\"]"], json!({ "column_title": "Month" }));
    }

    #[test]
    fn charts_get_the_shared_axis_titles_and_formats() {
        let presentation = Presentation {
            x: vec!["week".into(), "customer_type".into()],
            y: vec!["average_basket".into()],
            currency: Some("EUR".into()),
            labelled: labelled(&["week", "customer_type", "average_basket", "orders", "change_percent"]),
            ..Default::default()
        };
        let settings = settings("line", &presentation);
        assert_eq!(settings["graph.dimensions"], json!(["week", "customer_type"]));
        assert_eq!(settings["graph.metrics"], json!(["average_basket"]));
        assert_eq!(settings["graph.x_axis.title_text"], "Week (Monday to Sunday)");
        assert_eq!(settings["graph.y_axis.title_text"], "Average basket (shop currency)");
        let columns = &settings["column_settings"];
        assert_eq!(
            columns["[\"name\",\"average_basket\"]"],
            json!({ "column_title": "Average basket", "number_style": "currency", "currency": "EUR", "currency_style": "symbol", "decimals": 2 })
        );
        assert_eq!(
            columns["[\"name\",\"change_percent\"]"],
            json!({ "column_title": "Change", "number_style": "percent", "scale": 0.01, "decimals": 1 })
        );
        assert_eq!(columns["[\"name\",\"orders\"]"]["decimals"], 0);
        assert!(settings.get("scalar.comparisons").is_none());
    }

    #[test]
    fn no_presentation_means_metabase_defaults() {
        assert_eq!(settings("table", &Presentation::default()), json!({}));
    }
}
