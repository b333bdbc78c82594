//! One spelling for durations: every duration flag and variable takes a
//! humantime value (`250ms`, `5s`, `5m`, `1h`).
//!
//! Some settings were first named for their unit (`--poll-interval-ms 100`,
//! `ORDERSTREAM_LAG_INTERVAL_MS=5000`) and took a bare number. Those names
//! stay as aliases of the humantime-valued ones, and so that their values
//! keep working, a bare number is still read in the unit the old name had:
//! [`DurationParser::bare_millis`] reads `100` as 100 ms.

use std::time::Duration;

use thiserror::Error;

/// The unit a bare number (no unit written) is read in: the one the
/// setting's old `_MS`/`_SECS` name had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BareNumber {
    /// `100` is 100 ms (old names ending in `_MS`).
    Millis,
    /// `300` is 300 s (old names ending in `_SECS`).
    Secs,
    /// `30` is 30 min (old names ending in `_MINUTES`).
    Mins,
}

impl BareNumber {
    /// The duration a bare number stands for.
    fn duration(self, number: u64) -> Duration {
        match self {
            BareNumber::Millis => Duration::from_millis(number),
            BareNumber::Secs => Duration::from_secs(number),
            BareNumber::Mins => Duration::from_secs(number.saturating_mul(60)),
        }
    }

    /// The unit's name, for error messages.
    fn name(self) -> &'static str {
        match self {
            BareNumber::Millis => "milliseconds",
            BareNumber::Secs => "seconds",
            BareNumber::Mins => "minutes",
        }
    }
}

/// Why a value is not a usable duration; the message names the value and
/// the forms accepted.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DurationError {
    /// Neither humantime nor a bare number.
    #[error(
        "`{value}` is not a duration: write it with a unit (`250ms`, `5s`, `5m`, `1h`) or as a whole number of {unit}"
    )]
    Unreadable {
        /// The value as given.
        value: String,
        /// The unit a bare number would have been read in.
        unit: &'static str,
    },
    /// Shorter than the setting allows (zero, for an interval).
    #[error("`{value}` is too short: at least {minimum} is needed")]
    TooShort {
        /// The value as given.
        value: String,
        /// The shortest accepted, in humantime.
        minimum: String,
    },
}

/// A clap value parser for durations: humantime, or a bare number in the
/// unit of the setting's old name; optionally with a lower bound.
#[derive(Debug, Clone, Copy)]
pub struct DurationParser {
    /// How a number without a unit is read.
    bare_number: BareNumber,
    /// The shortest duration accepted (`Duration::ZERO`: any).
    minimum: Duration,
}

impl DurationParser {
    /// For a setting whose old name ended in `_MS`.
    pub const fn bare_millis() -> Self {
        DurationParser { bare_number: BareNumber::Millis, minimum: Duration::ZERO }
    }

    /// For a setting whose old name ended in `_SECS`.
    pub const fn bare_secs() -> Self {
        DurationParser { bare_number: BareNumber::Secs, minimum: Duration::ZERO }
    }

    /// For a setting whose old name ended in `_MINUTES`.
    pub const fn bare_mins() -> Self {
        DurationParser { bare_number: BareNumber::Mins, minimum: Duration::ZERO }
    }

    /// Refuses zero, and anything under one of the bare number's unit (1 ms
    /// for an old `_MS` name, as its range `1..` did): for intervals, where
    /// zero would spin.
    pub const fn nonzero(self) -> Self {
        let minimum = match self.bare_number {
            BareNumber::Millis => Duration::from_millis(1),
            BareNumber::Secs => Duration::from_secs(1),
            BareNumber::Mins => Duration::from_secs(60),
        };
        DurationParser { minimum, ..self }
    }

    /// Parses one value.
    pub fn parse(&self, value: &str) -> Result<Duration, DurationError> {
        let trimmed = value.trim();
        let duration = match trimmed.parse::<u64>() {
            Ok(number) => self.bare_number.duration(number),
            Err(_) => humantime::parse_duration(trimmed)
                .map_err(|_| DurationError::Unreadable { value: value.to_string(), unit: self.bare_number.name() })?,
        };
        if duration < self.minimum {
            return Err(DurationError::TooShort {
                value: value.to_string(),
                minimum: humantime::format_duration(self.minimum).to_string(),
            });
        }
        Ok(duration)
    }
}

impl clap::builder::TypedValueParser for DurationParser {
    type Value = Duration;

    fn parse_ref(
        &self,
        command: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Duration, clap::Error> {
        let text =
            value.to_str().ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidUtf8).with_cmd(command))?;
        self.parse(text).map_err(|error| {
            let name = arg.map(|arg| arg.to_string()).unwrap_or_else(|| "...".to_string());
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("invalid value for {name}: {error}\n"))
                .with_cmd(command)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_old_bare_number_keeps_its_unit() {
        assert_eq!(DurationParser::bare_millis().parse("100"), Ok(Duration::from_millis(100)));
        assert_eq!(DurationParser::bare_secs().parse("300"), Ok(Duration::from_secs(300)));
        assert_eq!(DurationParser::bare_mins().parse("30"), Ok(Duration::from_secs(1_800)));
        assert_eq!(DurationParser::bare_mins().parse("90s"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn humantime_values_are_read_as_written() {
        let parser = DurationParser::bare_millis();
        assert_eq!(parser.parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parser.parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parser.parse("1s 500ms"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn a_bad_value_is_refused_naming_it_and_the_forms_accepted() {
        let error = DurationParser::bare_millis().parse("fast").unwrap_err();
        assert_eq!(error, DurationError::Unreadable { value: "fast".into(), unit: "milliseconds" });
        let message = error.to_string();
        assert!(
            message.contains("`fast`") && message.contains("250ms") && message.contains("milliseconds"),
            "{message}"
        );
        assert!(DurationParser::bare_millis().parse("-5").is_err(), "negative");
        assert!(DurationParser::bare_millis().parse("5 parsecs").is_err());
    }

    #[test]
    fn zero_is_refused_only_where_an_interval_needs_more() {
        assert_eq!(DurationParser::bare_millis().parse("0"), Ok(Duration::ZERO));
        let nonzero = DurationParser::bare_millis().nonzero();
        for zero in ["0", "0s", "0ms"] {
            let error = nonzero.parse(zero).unwrap_err();
            assert!(matches!(error, DurationError::TooShort { .. }), "{zero}: {error}");
            assert!(error.to_string().contains("at least 1ms"), "{error}");
        }
        assert_eq!(nonzero.parse("1"), Ok(Duration::from_millis(1)));
    }

    #[test]
    fn clap_reports_the_flag_and_the_reason() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Flags {
            #[arg(long, alias = "interval-ms", default_value = "5s", value_parser = DurationParser::bare_millis().nonzero())]
            interval: Duration,
        }
        assert_eq!(Flags::try_parse_from(["t"]).unwrap().interval, Duration::from_secs(5));
        assert_eq!(Flags::try_parse_from(["t", "--interval-ms", "750"]).unwrap().interval, Duration::from_millis(750));
        assert_eq!(Flags::try_parse_from(["t", "--interval", "2m"]).unwrap().interval, Duration::from_secs(120));
        let message = Flags::try_parse_from(["t", "--interval", "soon"]).unwrap_err().to_string();
        assert!(message.contains("--interval") && message.contains("`soon` is not a duration"), "{message}");
    }
}
