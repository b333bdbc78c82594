//! Which weeks and months the data covers only in part. A week the data
//! enters on a Friday, or a month it leaves on the 4th, holds a fraction of a
//! period's orders: charted like the others it looks like a collapse. The
//! report marks such periods instead.

use chrono::{Duration, Months, NaiveDate};

use crate::answers::DataSpan;

use super::format;

/// The length of the periods a question groups by, named by its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// `week`: Monday to Sunday (PostgreSQL's `date_trunc('week', …)`).
    Week,
    /// `month`: calendar month.
    Month,
    /// `day`: one calendar day.
    Day,
}

impl Period {
    /// The period a date column holds, from its name.
    pub fn of_column(name: &str) -> Option<Period> {
        match name {
            "week" => Some(Period::Week),
            "month" => Some(Period::Month),
            "day" => Some(Period::Day),
            _ => None,
        }
    }

    /// The last day of the period that starts on `start`.
    pub fn last_day(self, start: NaiveDate) -> NaiveDate {
        match self {
            Period::Week => start + Duration::days(6),
            Period::Month => start.checked_add_months(Months::new(1)).map_or(start, |next| next - Duration::days(1)),
            Period::Day => start,
        }
    }

    /// Whether the data covers the period starting on `start` only in part:
    /// its first order came after the period's first day, or its newest
    /// order before the period's last day. (A month is complete once the
    /// data reaches its last day, as `analysis_anchor` decides.) Days are
    /// never partial: they are the unit, and the data-quality table's days
    /// count dead letters by when they were recorded, not orders.
    pub fn is_partial(self, start: NaiveDate, span: &DataSpan) -> bool {
        self != Period::Day && (span.first_order.date() > start || span.newest_order.date() < self.last_day(start))
    }

    /// The period in words, with its year: "Week of 29 Aug 2022", "August 2022".
    pub fn words(self, start: NaiveDate) -> String {
        match self {
            Period::Week => format!("Week of {}", format::day(start)),
            Period::Month => format::month(start),
            Period::Day => format::day(start),
        }
    }

    /// The short label of a chart's axis tick: "29 Aug 2022", "Aug 2022".
    pub fn tick(self, start: NaiveDate) -> String {
        match self {
            Period::Month => start.format("%b %Y").to_string(),
            Period::Week | Period::Day => format::day(start),
        }
    }

    /// The period's name in a sentence: "week", "month", "day".
    pub fn noun(self) -> &'static str {
        match self {
            Period::Week => "week",
            Period::Month => "month",
            Period::Day => "day",
        }
    }
}

/// The part of `span` a question over the `months` months ending with
/// `span.last_month` sees: a week cut by the window's first or last day is
/// as partial as one cut by the data's.
pub fn within_months(span: &DataSpan, months: u32) -> DataSpan {
    let window_start =
        span.last_month.checked_sub_months(Months::new(months.saturating_sub(1))).unwrap_or(span.last_month);
    let window_end = Period::Month.last_day(span.last_month).and_hms_opt(23, 59, 59).unwrap_or(span.newest_order);
    DataSpan {
        first_order: span.first_order.max(window_start.and_hms_opt(0, 0, 0).unwrap_or(span.first_order)),
        newest_order: span.newest_order.min(window_end),
        last_month: span.last_month,
    }
}

/// Why the partial periods of a chart are partial, in one sentence, e.g.
/// "Partial weeks, drawn lighter: the week of 27 Jun 2022 (the data starts
/// on Wednesday 13 Jul 2022) and the week of 3 Oct 2022 (it ends on Tuesday
/// 4 Oct 2022)." `None` when every period is complete.
pub fn partial_note(period: Period, starts: &[NaiveDate], span: &DataSpan) -> Option<String> {
    let partial: Vec<&NaiveDate> = starts.iter().filter(|start| period.is_partial(**start, span)).collect();
    if partial.is_empty() {
        return None;
    }
    let named: Vec<String> = partial.iter().map(|start| period.words(**start)).collect();
    let first = span.first_order.date();
    let newest = span.newest_order.date();
    Some(format!(
        "Partial {noun}s, shaded and marked “partial” in the table: {list}. The orders this question covers run from {first_day} {first} \
         to {newest_day} {newest}, so {these} {noun_plural} {hold} only part of {their} orders.",
        noun = period.noun(),
        list = named.join(", "),
        first_day = first.format("%A"),
        first = format::day(first),
        newest_day = newest.format("%A"),
        newest = format::day(newest),
        these = if partial.len() == 1 { "this" } else { "these" },
        noun_plural = if partial.len() == 1 { period.noun().to_string() } else { format!("{}s", period.noun()) },
        hold = if partial.len() == 1 { "holds" } else { "hold" },
        their = if partial.len() == 1 { "its" } else { "their" },
    ))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::report) fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// Orders from Wednesday 13 July 2022 10:00 to Tuesday 4 October 2022 13:20.
    pub(in crate::report) fn span() -> DataSpan {
        DataSpan {
            first_order: date(2022, 7, 13).and_hms_opt(10, 0, 0).unwrap(),
            newest_order: date(2022, 10, 4).and_hms_opt(13, 20, 0).unwrap(),
            last_month: date(2022, 9, 1),
        }
    }

    #[test]
    fn a_window_of_months_cuts_the_weeks_at_its_ends() {
        let window = within_months(&span(), 2);
        // August and September 2022: 1 August is a Monday, 30 September a Friday.
        assert_eq!(window.first_order, date(2022, 8, 1).and_hms_opt(0, 0, 0).unwrap());
        assert_eq!(window.newest_order, date(2022, 9, 30).and_hms_opt(23, 59, 59).unwrap());
        assert!(!Period::Week.is_partial(date(2022, 8, 1), &window));
        assert!(Period::Week.is_partial(date(2022, 9, 26), &window), "cut by the window, not the data");
        let wider = within_months(&span(), 3);
        assert_eq!(wider.first_order, span().first_order, "the data starts after the window");
    }

    #[test]
    fn the_first_week_starting_before_the_data_is_partial() {
        assert!(Period::Week.is_partial(date(2022, 7, 11), &span()));
        assert!(!Period::Week.is_partial(date(2022, 7, 18), &span()));
    }

    #[test]
    fn the_last_week_not_reached_by_the_newest_order_is_partial() {
        assert!(Period::Week.is_partial(date(2022, 10, 3), &span()));
        assert!(!Period::Week.is_partial(date(2022, 9, 26), &span()));
    }

    #[test]
    fn months_are_partial_at_both_ends_only() {
        assert!(Period::Month.is_partial(date(2022, 7, 1), &span()));
        assert!(!Period::Month.is_partial(date(2022, 8, 1), &span()));
        assert!(!Period::Month.is_partial(date(2022, 9, 1), &span()));
        assert!(Period::Month.is_partial(date(2022, 10, 1), &span()));
    }

    #[test]
    fn a_month_is_complete_once_the_data_reaches_its_last_day() {
        let span = DataSpan {
            first_order: date(2022, 7, 1).and_hms_opt(0, 19, 0).unwrap(),
            newest_order: date(2022, 8, 31).and_hms_opt(0, 5, 0).unwrap(),
            last_month: date(2022, 8, 1),
        };
        assert!(!Period::Month.is_partial(date(2022, 7, 1), &span));
        assert!(!Period::Month.is_partial(date(2022, 8, 1), &span));
        // 1 July 2022 is a Friday: its week started before the data; 31 August a Wednesday.
        assert!(Period::Week.is_partial(date(2022, 6, 27), &span));
        assert!(Period::Week.is_partial(date(2022, 8, 29), &span));
    }

    #[test]
    fn days_are_never_partial() {
        assert!(!Period::Day.is_partial(date(2026, 11, 29), &span()), "a dead letter recorded after the newest order");
    }

    #[test]
    fn february_ends_on_its_own_last_day() {
        assert_eq!(Period::Month.last_day(date(2024, 2, 1)), date(2024, 2, 29));
        assert_eq!(Period::Month.last_day(date(2022, 12, 1)), date(2022, 12, 31));
    }

    #[test]
    fn the_note_names_the_partial_periods_and_why() {
        let starts = [date(2022, 7, 11), date(2022, 7, 18), date(2022, 10, 3)];
        let note = partial_note(Period::Week, &starts, &span()).unwrap();
        assert!(note.contains("Week of 11 Jul 2022, Week of 3 Oct 2022"), "{note}");
        assert!(note.contains("run from Wednesday 13 Jul 2022 to Tuesday 4 Oct 2022"), "{note}");
        assert!(note.contains("so these weeks hold only part of their orders"), "{note}");
        assert!(partial_note(Period::Week, &[date(2022, 7, 18)], &span()).is_none());
    }

    #[test]
    fn one_partial_period_holds_in_the_singular() {
        let note = partial_note(Period::Month, &[date(2022, 8, 1), date(2022, 10, 1)], &span()).unwrap();
        assert!(note.contains("so this month holds only part of its orders"), "{note}");
    }
}
