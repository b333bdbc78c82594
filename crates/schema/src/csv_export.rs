//! CSV written for people: safe to open in a spreadsheet.
//!
//! A text cell starting with `=`, `+`, `-` or `@` (or a tab or carriage
//! return, which some spreadsheets skip before such a character) is taken
//! for a formula by Excel, LibreOffice and Google Sheets: a dead letter's
//! payload `=HYPERLINK(...)` would run when an analyst opens the export. Every
//! such text cell is prefixed with a single quote (OWASP's advice), which
//! spreadsheets show as text. Numbers are written as numbers: `-12.5` stays a
//! negative number, because only [`Cell::Text`] is neutralised.

use std::borrow::Cow;

/// One cell of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell<'a> {
    /// Text: neutralised when it could be read as a formula, quoted as needed.
    Text(&'a str),
    /// A number, written as is (a value that is not a number is written as text).
    Number(&'a str),
    /// No value: an empty field.
    Null,
}

/// The characters that make a spreadsheet read a cell as a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `text` prefixed with `'` when a spreadsheet would take it for a formula.
pub(crate) fn neutralise_formula(text: &str) -> Cow<'_, str> {
    if text.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// One field, quoted (RFC 4180) when it holds a comma, a quote or a line break.
fn field(value: &str) -> Cow<'_, str> {
    if value.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", value.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(value)
    }
}

/// One CSV line (ending with `\n`) of safe cells.
pub fn row(cells: &[Cell<'_>]) -> String {
    let mut line = String::new();
    for (index, cell) in cells.iter().enumerate() {
        if index > 0 {
            line.push(',');
        }
        match cell {
            Cell::Number(number) if number.trim() == *number && number.parse::<f64>().is_ok() => line.push_str(number),
            Cell::Number(text) | Cell::Text(text) => line.push_str(&field(&neutralise_formula(text))),
            Cell::Null => {}
        }
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_a_spreadsheet_would_run_is_neutralised() {
        for dangerous in ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "=HYPERLINK(\"http://x\")"] {
            assert_eq!(neutralise_formula(dangerous), format!("'{dangerous}"), "{dangerous:?}");
        }
        for harmless in ["", "abc", "1", " =1", "'=1", "a=b", "bad_header"] {
            assert_eq!(neutralise_formula(harmless), harmless, "{harmless:?}");
        }
    }

    #[test]
    fn negative_numbers_stay_numbers_while_negative_looking_text_is_neutralised() {
        assert_eq!(row(&[Cell::Number("-12.50"), Cell::Text("-12.50")]), "-12.50,'-12.50\n");
        assert_eq!(row(&[Cell::Number("=1+1")]), "'=1+1\n", "a number that is not one is text");
    }

    #[test]
    fn fields_are_quoted_as_rfc_4180_says() {
        assert_eq!(
            row(&[
                Cell::Text("a,b"),
                Cell::Text("say \"hi\""),
                Cell::Text("two\nlines"),
                Cell::Null,
                Cell::Number("7")
            ]),
            "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",,7\n"
        );
        assert_eq!(row(&[Cell::Text("=a,b")]), "\"'=a,b\"\n", "neutralised, then quoted");
    }
}
