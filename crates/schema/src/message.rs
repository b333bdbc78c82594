//! The Kafka wire format of an order: a versioned JSON value, keyed by the
//! order id, with the record's origin in headers.
//!
//! The value carries `schema_version` so that a consumer meeting a version it
//! does not know dead-letters the record instead of misreading it.
//!
//! | version | layout                                                                  |
//! |---------|-------------------------------------------------------------------------|
//! | 1       | the order's five fields, and `flags` when there are some                |
//! | 2       | version 1, and `extra`: the export's other columns, name → value, in file order |
//! | 3       | version 2's value; the provenance packed in one `provenance` header ([`crate::provenance`]) |
//!
//! The producer writes version 3 for every order. The value's layout did
//! not change with it: the version tells a consumer from before it, which
//! would find none of the six provenance headers it reads and store the
//! order as the oldest version of nowhere, to dead-letter it instead
//! (`unknown_schema_version`; upgrade consumers first and redrive, see
//! docs/upgrading.md). Versions 1 and 2, with their six headers, are still
//! read.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::columns::Extra;
use crate::{Flag, Order};

/// The wire version this build writes, the newest it reads (it reads every
/// version from [`OLDEST_SCHEMA_VERSION`] on).
pub const SCHEMA_VERSION: u32 = 3;

/// The oldest wire version this build still reads.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;

/// Names of the Kafka headers of the wire format.
pub mod headers {
    /// Since version 3, on every record the producer writes: its
    /// provenance packed, in place of the six headers below it
    /// (see [`crate::provenance`]).
    pub const PROVENANCE: &str = "provenance";
    /// Before version 3, on every record: path of the CSV file the record
    /// was read from; each of the next five is a field of [`PROVENANCE`]
    /// since.
    pub const SOURCE_FILE: &str = "source_file";
    /// 1-based line number where the record starts.
    pub const LINE: &str = "line";
    /// Byte offset where the record starts in its file.
    pub const BYTE_OFFSET: &str = "byte_offset";
    /// When the producer read the record: Unix milliseconds, for end-to-end latency.
    pub const READ_AT_MS: &str = "read_at_ms";
    /// The source file's identity (device, inode, checksum of its first
    /// bytes), so records of one file are recognised across renames.
    pub const SOURCE_FINGERPRINT: &str = "source_fingerprint";
    /// The record's place in source order, a non-negative integer: a record
    /// with a larger version is newer. See [`crate::message::source_version`].
    pub const SOURCE_VERSION: &str = "source_version";
    /// On an order: its [`crate::Flag`] names, comma-separated (absent if none).
    pub const FLAGS: &str = "flags";
    /// On a dead letter: the [`crate::RejectionKind`] name.
    pub const ERROR_KIND: &str = "error_kind";
    /// On a dead letter: the human explanation.
    pub const ERROR_MESSAGE: &str = "error_message";
    /// The header in force where the record was read: its names, normalised,
    /// as a JSON array of strings. The consumer records it per file, so that
    /// a change of export between files shows in the data-quality question.
    ///
    /// Absent when the names are exactly [`crate::columns::EXPECTED_HEADER`]
    /// (or the file has no header line, which is read by those): the
    /// consumer then takes [`crate::columns::STANDARD_COLUMNS_JSON`]. Sent on
    /// every record, the usual list cost ~70 bytes a record once
    /// decompressed, in the broker's validation and in every consumer's
    /// fetch memory, for no information.
    pub const COLUMNS: &str = "columns";
    /// On a dead letter: who dead-lettered it, [`super::stages`]. The
    /// consumer reads the dead-letter topic into its table and passes the
    /// records it published itself (already in the table).
    pub const STAGE: &str = "stage";
}

/// Values of the [`headers::STAGE`] header and of `dead_letters.stage`.
pub mod stages {
    /// A CSV line the producer could not read (or Kafka refused for good).
    pub const PRODUCER: &str = "producer";
    /// A record the consumer could not decode or write.
    pub const CONSUMER: &str = "consumer";
}

/// Bits of [`source_version`] given to the byte offset: 64 GiB per file.
/// Offsets beyond that share the file's last version (see [`source_version`]).
pub const OFFSET_BITS: u32 = 36;

/// Seconds of wall-clock time per step of a file's epoch.
pub(crate) const EPOCH_STEP_SECONDS: i64 = 10;

/// Where epochs count from: 2020-01-01T00:00:00Z. With 27 bits of epoch in
/// 10-second steps, versions stay positive `i64`s until 2062.
pub(crate) const EPOCH_ORIGIN_UNIX_SECONDS: i64 = 1_577_836_800;

/// The largest epoch: every version of it, up to the largest offset, is
/// still a positive `i64` (2⁶³ − 1 at most). Reached by the wall clock in
/// 2062 (see [`clock_epoch`]); no epoch past it is ever given or accepted.
pub const MAX_EPOCH: u64 = (1 << (63 - OFFSET_BITS)) - 1;

/// An epoch past [`MAX_EPOCH`]: its versions would wrap to negative numbers,
/// which read as older than every record and would lose every later
/// correction, so it is refused wherever an epoch enters the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error(
    "epoch {epoch} is past the largest epoch, {MAX_EPOCH} (2062 in wall-clock epochs): \
     its versions would not fit a signed 64-bit integer"
)]
pub struct EpochOutOfRange {
    /// The refused epoch.
    pub epoch: u64,
}

/// `epoch` itself when it is at most [`MAX_EPOCH`]: the one check every
/// place an epoch comes from (the clock, the counter, a flag, a saved
/// state) goes through before a version is made of it.
pub fn check_epoch(epoch: u64) -> Result<u64, EpochOutOfRange> {
    if epoch <= MAX_EPOCH {
        Ok(epoch)
    } else {
        Err(EpochOutOfRange { epoch })
    }
}

/// Versions written before epochs existed (file sequence × 2⁴⁰ + offset)
/// read as epochs below every clock epoch from 2020 on: an upgrade never
/// makes new records older than stored ones.
pub(crate) const LEGACY_OFFSET_BITS: u32 = 40;

/// The version of a record in source order: `epoch × 2³⁶ + byte offset`.
///
/// The **epoch** is a hybrid logical clock the producer gives each file when
/// it starts reading it (a new file, or one rewritten or truncated): the
/// larger of the wall clock in `EPOCH_STEP_SECONDS` steps since
/// `EPOCH_ORIGIN_UNIX_SECONDS` ([`clock_epoch`]), one more than the last
/// epoch it gave, and one more than the highest epoch on the topics when it
/// started. The rule, and why it holds:
///
/// - later bytes of a file are newer (the offset grows);
/// - a file started later is newer than every file started before it, by the
///   same producer (the counter) or by another one (the clock, and the
///   topics' highest epoch read at start);
/// - the order survives the loss of the producer's state folder: the counter
///   restarts from the clock and the topics, never from 0, so a lost folder
///   re-reads the inbox with the same or newer versions and a new export's
///   correction still wins.
///
/// Byte offsets at or past 64 GiB are clamped to the largest offset, so the
/// version never spills into the epoch; an epoch past [`MAX_EPOCH`] is
/// refused, so the version never wraps to a negative number.
pub fn source_version(epoch: u64, byte_offset: u64) -> Result<i64, EpochOutOfRange> {
    let epoch = check_epoch(epoch)?;
    let offset = byte_offset.min((1 << OFFSET_BITS) - 1);
    Ok(((epoch << OFFSET_BITS) | offset) as i64)
}

/// The epoch part of a version (for a legacy version, an epoch at least as
/// large as the one it would have had).
pub fn epoch_of_version(version: i64) -> u64 {
    (version.max(0) as u64) >> OFFSET_BITS
}

/// The wall clock as an epoch: 10-second steps since 2020 (0 before then).
/// Past [`MAX_EPOCH`] from 2062 on: callers check it ([`check_epoch`]).
pub fn clock_epoch(now: chrono::DateTime<chrono::Utc>) -> u64 {
    (now.timestamp() - EPOCH_ORIGIN_UNIX_SECONDS).max(0) as u64 / EPOCH_STEP_SECONDS as u64
}

/// The epoch under which a file sequence of a legacy (pre-epoch) producer
/// state keeps its place: every legacy version of that file is below
/// `source_version(legacy_epoch(sequence), 0)`'s epoch + 1.
pub fn legacy_epoch(sequence: u64) -> u64 {
    ((sequence + 1) << (LEGACY_OFFSET_BITS - OFFSET_BITS)) - 1
}

/// The JSON value of a record on the `orders` topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderMessage {
    /// Layout version; see [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The order itself.
    #[serde(flatten)]
    pub order: Order,
    /// Why the order looks odd, if it does; absent when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
    /// The export's columns beyond the known ones, name → value in file
    /// order (version 2); absent when empty.
    #[serde(default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

/// [`OrderMessage`]'s JSON with the order's fields written out rather than
/// `#[serde(flatten)]`ed, for reading: serde reads a flattened struct through
/// a buffered map of every field, which with the separate pass for the
/// version made decoding twice as costly (callgrind: 10,581 → 5,444
/// instructions per record). The layout is the same, field order included.
#[derive(Serialize, Deserialize)]
struct FlatMessage<'a> {
    schema_version: u32,
    id: i64,
    user_id: i64,
    completed_at: chrono::DateTime<chrono::Utc>,
    #[serde(with = "rust_decimal::serde::str")]
    item_total: rust_decimal::Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    shipment_total: rust_decimal::Decimal,
    #[serde(default, skip_serializing_if = "<[Flag]>::is_empty", borrow)]
    flags: std::borrow::Cow<'a, [Flag]>,
    #[serde(default, skip_serializing_if = "Extra::is_empty")]
    extra: Extra,
}

#[cfg(test)]
impl<'a> From<&'a OrderMessage> for FlatMessage<'a> {
    fn from(message: &'a OrderMessage) -> Self {
        let Order { id, user_id, completed_at, item_total, shipment_total } = message.order;
        FlatMessage {
            schema_version: message.schema_version,
            id,
            user_id,
            completed_at,
            item_total,
            shipment_total,
            flags: std::borrow::Cow::Borrowed(&message.flags),
            extra: message.extra.clone(),
        }
    }
}

impl From<FlatMessage<'_>> for OrderMessage {
    fn from(flat: FlatMessage<'_>) -> Self {
        let FlatMessage { schema_version, id, user_id, completed_at, item_total, shipment_total, flags, extra } = flat;
        OrderMessage {
            schema_version,
            order: Order { id, user_id, completed_at, item_total, shipment_total },
            flags: flags.into_owned(),
            extra,
        }
    }
}

/// Why a Kafka value cannot be read as an order. Both are permanent: the same
/// bytes will never decode, so the record is dead-lettered, not retried.
#[derive(Debug, Error)]
pub enum DecodeError {
    /// Written by a producer with a layout this consumer does not know.
    #[error("unknown schema_version {found} (this build reads {OLDEST_SCHEMA_VERSION} to {SCHEMA_VERSION})")]
    UnknownVersion {
        /// The version the record claims.
        found: u64,
    },
    /// Not JSON, or JSON without the order's fields.
    #[error("value is not an order message")]
    Malformed(#[from] serde_json::Error),
}

impl DecodeError {
    /// A stable name for metrics and dead-letter headers.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::UnknownVersion { .. } => "unknown_schema_version",
            DecodeError::Malformed(_) => "undecodable_value",
        }
    }
}

impl OrderMessage {
    /// Wraps an order without extra values.
    pub fn new(order: Order, flags: Vec<Flag>) -> Self {
        OrderMessage::with_extra(order, flags, Extra::new())
    }

    /// Wraps an order and its extra values, as this build's version.
    pub fn with_extra(order: Order, flags: Vec<Flag>, extra: Extra) -> Self {
        OrderMessage { schema_version: SCHEMA_VERSION, order, flags, extra }
    }

    /// Serialises to the JSON value. (Written out through `FlatMessage`
    /// it costs the same: `flatten` is slow to read, not to write.)
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an order always serialises")
    }

    /// Reads a JSON value; a record of a layout this build does not know is
    /// reported as such, not as a malformed record. One pass for a record
    /// of the current layout; the version alone is read again only for a
    /// record that does not decode, to say why.
    pub fn decode(bytes: &[u8]) -> Result<OrderMessage, DecodeError> {
        #[derive(Deserialize)]
        struct Versioned {
            schema_version: u64,
        }
        let readable = u64::from(OLDEST_SCHEMA_VERSION)..=u64::from(SCHEMA_VERSION);
        let malformed = match serde_json::from_slice::<FlatMessage>(bytes) {
            Ok(flat) if readable.contains(&u64::from(flat.schema_version)) => return Ok(flat.into()),
            Ok(flat) => return Err(DecodeError::UnknownVersion { found: flat.schema_version.into() }),
            Err(malformed) => malformed,
        };
        match serde_json::from_slice::<Versioned>(bytes) {
            Err(unversioned) => Err(DecodeError::Malformed(unversioned)),
            Ok(Versioned { schema_version }) if !readable.contains(&schema_version) => {
                Err(DecodeError::UnknownVersion { found: schema_version })
            }
            Ok(_) => Err(DecodeError::Malformed(malformed)),
        }
    }

    /// The Kafka key: the order id in decimal, so every version of an order
    /// goes to the same partition and is applied in order.
    pub fn key(&self) -> String {
        self.order.id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal::Decimal;

    fn sample() -> OrderMessage {
        OrderMessage::new(
            Order {
                id: 236777,
                user_id: 7258,
                completed_at: chrono::Utc.with_ymd_and_hms(2022, 7, 1, 0, 19, 0).unwrap(),
                item_total: Decimal::new(3914, 2),
                shipment_total: Decimal::new(25, 1),
            },
            Vec::new(),
        )
    }

    #[test]
    fn round_trips_exactly() {
        let message = sample();
        assert_eq!(OrderMessage::decode(&message.encode()).unwrap(), message);
    }

    #[test]
    fn money_travels_as_strings_not_floats() {
        let json: serde_json::Value = serde_json::from_slice(&sample().encode()).unwrap();
        assert_eq!(json["item_total"], "39.14");
        assert_eq!(json["shipment_total"], "2.5");
        assert_eq!(json["schema_version"], 3);
        assert_eq!(json["id"], 236777);
    }

    #[test]
    fn extra_values_travel_in_file_order() {
        let mut message = sample();
        message.extra = [("currency", "EUR"), ("coupon_code", "SUMMER")]
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        let message = OrderMessage::with_extra(message.order, message.flags, message.extra);
        let bytes = message.encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(r#""extra":{"currency":"EUR","coupon_code":"SUMMER"}"#), "{text}");
        assert!(text.starts_with(r#"{"schema_version":3,"#), "{text}");
        let decoded = OrderMessage::decode(&bytes).unwrap();
        assert_eq!(decoded, message);
        assert_eq!(decoded.extra.keys().collect::<Vec<_>>(), ["currency", "coupon_code"]);
    }

    #[test]
    fn version_1_without_extra_is_still_read() {
        let value = br#"{"schema_version":1,"id":7,"user_id":3,"completed_at":"2022-07-01T00:19:00Z","item_total":"39.14","shipment_total":"2.5"}"#;
        let decoded = OrderMessage::decode(value).unwrap();
        assert_eq!((decoded.schema_version, decoded.order.id, decoded.extra.len()), (1, 7, 0));
    }

    #[test]
    fn unknown_version_is_reported_as_such() {
        let value = br#"{"schema_version":4,"id":1}"#;
        let error = OrderMessage::decode(value).unwrap_err();
        assert!(matches!(error, DecodeError::UnknownVersion { found: 4 }), "{error}");
        assert_eq!(error.kind(), "unknown_schema_version");
    }

    #[test]
    fn garbage_is_malformed() {
        for value in [&b"not json"[..], br#"{"schema_version":1,"id":"x"}"#, b""] {
            let error = OrderMessage::decode(value).unwrap_err();
            assert_eq!(error.kind(), "undecodable_value");
        }
    }

    #[test]
    fn flags_round_trip_and_are_absent_when_empty() {
        let json: serde_json::Value = serde_json::from_slice(&sample().encode()).unwrap();
        assert!(json.get("flags").is_none());
        let mut flagged = sample();
        flagged.flags = vec![Flag::ZeroTotals];
        let json: serde_json::Value = serde_json::from_slice(&flagged.encode()).unwrap();
        assert_eq!(json["flags"], serde_json::json!(["zero_totals"]));
        assert_eq!(OrderMessage::decode(&flagged.encode()).unwrap(), flagged);
    }

    /// A version of an epoch known to be in range.
    fn version(epoch: u64, byte_offset: u64) -> i64 {
        source_version(epoch, byte_offset).unwrap()
    }

    #[test]
    fn later_files_and_later_bytes_are_newer_versions() {
        assert!(version(1, 500) < version(1, 501));
        assert!(version(1, (1 << OFFSET_BITS) - 1) < version(2, 0));
        assert!(version(0, 0) >= 0);
        assert_eq!(epoch_of_version(version(77, 12_345)), 77);
    }

    #[test]
    fn offsets_past_64_gib_never_reach_the_next_epoch() {
        assert_eq!(version(3, 1 << OFFSET_BITS), version(3, (1 << OFFSET_BITS) - 1));
        assert!(version(3, u64::MAX) < version(4, 0));
    }

    #[test]
    fn clock_epochs_grow_in_ten_second_steps_and_last_until_2062() {
        let at = |text: &str| text.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        assert_eq!(clock_epoch(at("2019-06-01T00:00:00Z")), 0);
        assert_eq!(clock_epoch(at("2020-01-01T00:00:09Z")), 0);
        assert_eq!(clock_epoch(at("2020-01-01T00:00:10Z")), 1);
        let late = clock_epoch(at("2062-01-01T00:00:00Z"));
        assert!(version(late, (1 << OFFSET_BITS) - 1) > 0, "still a positive i64 in 2062");
    }

    #[test]
    fn an_epoch_past_the_largest_is_refused_and_never_wraps() {
        assert_eq!(version(MAX_EPOCH, u64::MAX), i64::MAX, "the largest version is the largest i64");
        assert_eq!(source_version(MAX_EPOCH + 1, 0), Err(EpochOutOfRange { epoch: MAX_EPOCH + 1 }));
        assert_eq!(source_version(u64::MAX, 7), Err(EpochOutOfRange { epoch: u64::MAX }));
        let message = EpochOutOfRange { epoch: MAX_EPOCH + 1 }.to_string();
        assert!(message.contains("largest epoch, 134217727"), "{message}");
    }

    #[test]
    fn the_clock_passes_the_largest_epoch_in_2062() {
        let at = |text: &str| text.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        assert!(check_epoch(clock_epoch(at("2062-07-01T00:00:00Z"))).is_ok());
        let past = clock_epoch(at("2063-01-01T00:00:00Z"));
        assert_eq!(check_epoch(past), Err(EpochOutOfRange { epoch: past }));
    }

    #[test]
    fn legacy_versions_stay_below_their_file_epoch_and_every_clock_epoch() {
        let legacy = |sequence: u64, offset: u64| ((sequence << LEGACY_OFFSET_BITS) | offset) as i64;
        for sequence in [0, 1, 5, 1_000] {
            let epoch = legacy_epoch(sequence);
            assert!(legacy(sequence, (1 << LEGACY_OFFSET_BITS) - 1) < version(epoch, 0) + (1 << OFFSET_BITS));
            assert!(legacy(sequence, 0) >= version(epoch - 15, 0));
        }
        let today = clock_epoch("2026-11-29T00:00:00Z".parse().unwrap());
        assert!(legacy(1_000, (1 << LEGACY_OFFSET_BITS) - 1) < version(today, 0));
    }

    #[test]
    fn the_written_out_layout_gives_the_same_bytes_as_the_flattened_one() {
        let mut flagged = sample();
        flagged.flags = vec![Flag::ZeroTotals, Flag::UnusualAmount];
        let mut extra = Extra::new();
        extra.insert("currency".to_string(), "EUR".to_string());
        let widened = OrderMessage::with_extra(sample().order, vec![Flag::ZeroTotals], extra);
        for message in [sample(), flagged, widened] {
            let flattened = message.encode();
            let written_out = serde_json::to_vec(&FlatMessage::from(&message)).unwrap();
            assert_eq!(written_out, flattened, "{}", String::from_utf8_lossy(&flattened));
            assert_eq!(OrderMessage::decode(&flattened).unwrap(), message);
        }
    }

    #[test]
    fn a_future_layout_is_unknown_even_when_its_fields_do_not_decode() {
        let value = br#"{"schema_version":4,"id":"a-string-now","extra":[1]}"#;
        assert!(matches!(OrderMessage::decode(value), Err(DecodeError::UnknownVersion { found: 4 })));
        let decodable = br#"{"schema_version":4,"id":1,"user_id":2,"completed_at":"2022-07-01T00:19:00Z","item_total":"1","shipment_total":"2"}"#;
        assert!(matches!(OrderMessage::decode(decodable), Err(DecodeError::UnknownVersion { found: 4 })));
    }

    #[test]
    fn key_is_the_order_id() {
        assert_eq!(sample().key(), "236777");
    }
}
