//! Text from outside (Kafka headers, file names, decoder messages) made
//! acceptable to PostgreSQL.
//!
//! PostgreSQL refuses the NUL character in `text` (SQLSTATE 22021) and the
//! escape `\u0000` in `jsonb` (22P05). Any record may carry one, and a
//! refusal that no retry can fix must never stop the consumer, so every
//! readable column written from a record goes through [`storable`]. The
//! readable form is for people; where the exact bytes matter they are kept
//! beside it as `bytea` (a dead letter's key, payload and headers). Values
//! an index keys on are also [`bounded`] in length, or keyed by a digest.

use std::borrow::Cow;

/// What a NUL becomes in readable text: the JSON spelling, visibly an
/// escape, and never refused by `text` or `jsonb`.
pub const NUL_ESCAPE: &str = "\\u0000";

/// The text with every NUL replaced by [`NUL_ESCAPE`]; borrowed when there is
/// none (the common case costs no allocation).
pub fn storable(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', NUL_ESCAPE))
    } else {
        Cow::Borrowed(text)
    }
}

/// What ends a text [`bounded`] cut: visibly not the whole value.
pub const CUT_MARK: char = '…';

/// The text cut to at most `max_bytes` bytes, at a character boundary and
/// ending in [`CUT_MARK`] when cut; borrowed when it fits. For values an
/// index keys on: a btree entry wider than about a third of a page makes
/// PostgreSQL refuse the whole statement. Where the exact value matters it
/// is kept beside (a dead letter's `raw_headers`).
pub fn bounded(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    let mut end = max_bytes.saturating_sub(CUT_MARK.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}{CUT_MARK}", &text[..end]))
}

/// Bytes as storable text: invalid UTF-8 becomes U+FFFD, NUL the escape.
pub fn storable_lossy(bytes: &[u8]) -> String {
    storable(&String::from_utf8_lossy(bytes)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_nul_is_borrowed_unchanged() {
        assert!(matches!(storable("inbox/a.csv"), Cow::Borrowed("inbox/a.csv")));
    }

    #[test]
    fn every_nul_becomes_a_visible_escape() {
        assert_eq!(storable("a\0b\0"), "a\\u0000b\\u0000");
        assert!(!storable("\0").contains('\0'));
    }

    #[test]
    fn text_that_fits_is_borrowed_and_longer_text_is_cut_at_a_character_with_a_mark() {
        assert!(matches!(bounded("invalid_amount", 64), Cow::Borrowed("invalid_amount")));
        assert_eq!(bounded("abcdefgh", 6), "abc…");
        let cut = bounded("ééééé", 7);
        assert_eq!(cut, "éé…", "never inside a character");
        assert!(cut.len() <= 7);
    }

    #[test]
    fn bytes_that_are_not_utf8_or_hold_nul_become_storable_text() {
        assert_eq!(storable_lossy(b"ok\0\xff"), "ok\\u0000\u{fffd}");
    }

    #[test]
    fn escaped_text_serialises_to_json_that_jsonb_accepts() {
        let json = serde_json::to_string(&storable("x\0y")).unwrap();
        assert_eq!(json, r#""x\\u0000y""#, "an escaped backslash, not the escape jsonb refuses");
    }
}
