//! Records that can never be written: to the `orders.dlq` topic (for other
//! tools) and to the `dead_letters` table (for operators and analysts).
//!
//! The table holds the dead letters of both stages, once each: the
//! consumer's own ([`DeadLetter`], written here) and the producer's bad CSV
//! lines ([`ProducerDeadLetter`], read from the topic by `intake`).
//! The consumer marks what it publishes with `stage=consumer`, so that the
//! intake passes its own records instead of storing them twice.
//!
//! Readable columns (`source`, `message`, `headers`) hold `storable` text;
//! the record's exact bytes are kept as `bytea` (`record_key`, `payload`,
//! `raw_headers`), so a redrive publishes the original whatever it held.
//!
//! The table row is written in the batch's transaction, beside the offsets
//! that move past the record, so it exists exactly once. The topic copy is
//! published and confirmed *before* that commit: a crash in between publishes
//! it again on replay (at least once on the topic, exactly once in the table).
//!
//! `orderstream-consumer dead-letters export` writes the table as CSV for
//! people ([`export_csv`]), with every text cell neutralised against formula
//! injection (a payload is whatever a file contained).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use deadpool_postgres::GenericClient;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use schema::csv_export::{row, Cell};
use schema::message::{headers, stages};
use schema::FoundProvenance;
use thiserror::Error;

use crate::storable::{bounded, storable, storable_lossy};

/// Why the consumer dead-lettered a record: a bounded set, used as the
/// `reason` column, the `error_kind` header and a metric label.
pub mod reasons {
    /// The value is not JSON of an order.
    pub const UNDECODABLE_VALUE: &str = "undecodable_value";
    /// The value claims a layout this build does not read.
    pub const UNKNOWN_SCHEMA_VERSION: &str = "unknown_schema_version";
    /// PostgreSQL refused the row (constraint, overflow).
    pub const REJECTED_BY_DATABASE: &str = "rejected_by_database";
    /// Every reason, for pre-registering metric labels.
    pub const ALL: [&str; 3] = [UNDECODABLE_VALUE, UNKNOWN_SCHEMA_VERSION, REJECTED_BY_DATABASE];
    /// A producer dead letter's reason when its record had no `error_kind`
    /// header (published by another tool).
    pub const UNKNOWN_KIND: &str = "unknown";

    /// The reasons of the producer's dead letters: its rejection kinds, and
    /// [`UNKNOWN_KIND`]. What `--reason` of `dead-letters resolve` takes.
    pub fn producer() -> Vec<&'static str> {
        schema::parse::RejectionKind::ALL.iter().map(|kind| kind.as_str()).chain([UNKNOWN_KIND]).collect()
    }

    /// Every reason either stage stores: what `--reason` of `dead-letters
    /// list` and `export` takes, so a typo is refused, not answered with an
    /// empty list.
    pub fn every() -> Vec<&'static str> {
        producer().into_iter().chain(ALL).collect()
    }
}

/// The longest `reason` stored, in bytes. The producer's kinds are short
/// names; any `error_kind` header longer (from another tool) is cut to it
/// (see `storable::bounded`), since `reason` is indexed. Its exact value stays in
/// `raw_headers`.
pub const REASON_MAX_BYTES: usize = 64;

/// One record that cannot be written, with everything needed to inspect and
/// redrive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// `topic/partition/offset`, and ` source_file:line` when known.
    pub source: String,
    /// One of [`reasons`].
    pub reason: &'static str,
    /// The human explanation.
    pub message: String,
    /// The Kafka key, kept so a redriven record lands on the same partition.
    pub key: Option<Vec<u8>>,
    /// The raw value.
    pub payload: Vec<u8>,
    /// The original headers, in order (names may repeat in Kafka).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Where its line is, from the producer's headers.
    pub origin: Origin,
    /// The record's place on the topic it was read from: its key in the
    /// table, so that a replay of the topic finds it stored.
    pub place: RecordPlace,
}

/// Where a record sits on Kafka. A consumer's dead letter is stored once per
/// place (and payload, against a topic created again): see migration 9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPlace {
    /// The topic read.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
}

/// Where a dead letter's line is, read from the producer's headers: the
/// `source_*` columns, so that `dead-letters list` shows `file:line` and
/// `resolve --file` finds a file's lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The CSV file (`storable` text).
    pub file: Option<String>,
    /// 1-based line where the record starts.
    pub line: Option<i64>,
    /// Byte offset where the record starts.
    pub byte_offset: Option<i64>,
    /// The file's identity across renames.
    pub fingerprint: Option<String>,
}

impl Origin {
    /// The origin the headers tell; a header that is absent or not a number
    /// (for line and offset) leaves its field empty.
    pub fn from_headers(headers: &[(String, Option<Vec<u8>>)]) -> Self {
        Origin::of(&found_in(headers))
    }

    /// The origin a record's provenance, as found, tells.
    fn of(found: &FoundProvenance<'_>) -> Self {
        let text = |value: Option<&[u8]>| value.map(|value| storable(&String::from_utf8_lossy(value)).into_owned());
        let number = |value: Result<u64, _>| value.ok().and_then(|number| i64::try_from(number).ok());
        Origin {
            file: text(found.source_file_bytes()),
            line: number(found.line()),
            byte_offset: number(found.byte_offset()),
            fingerprint: text(found.fingerprint_bytes()),
        }
    }
}

/// The last value of header `name` as text (lossy), if present.
fn header_text(headers: &[(String, Option<Vec<u8>>)], name: &str) -> Option<String> {
    headers
        .iter()
        .rev()
        .find(|(key, _)| key == name)
        .and_then(|(_, value)| value.as_deref())
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

/// A Kafka message's headers, in order.
fn message_headers(message: &impl Message) -> Vec<(String, Option<Vec<u8>>)> {
    message
        .headers()
        .map(|all| all.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect())
        .unwrap_or_default()
}

/// Which stage dead-lettered a record of the dead-letter topic: its `stage`
/// header, or, on records published before that header existed, its reason
/// (the consumer's [`reasons`] and the producer's kinds are disjoint).
pub fn stage_of(headers: &[(String, Option<Vec<u8>>)]) -> &'static str {
    match header_text(headers, headers::STAGE).as_deref() {
        Some(stages::CONSUMER) => stages::CONSUMER,
        Some(stages::PRODUCER) => stages::PRODUCER,
        _ => match header_text(headers, headers::ERROR_KIND) {
            Some(kind) if reasons::ALL.contains(&kind.as_str()) => stages::CONSUMER,
            _ => stages::PRODUCER,
        },
    }
}

/// A producer's dead letter read from the dead-letter topic: a CSV line it
/// could not read, with the reason in its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerDeadLetter {
    /// `topic/partition/offset` on the dead-letter topic, and ` file:line`.
    pub source: String,
    /// The producer's `error_kind` (`storable`, cut to [`REASON_MAX_BYTES`]),
    /// `unknown` if absent.
    pub reason: String,
    /// The producer's `error_message` (`storable`).
    pub message: String,
    /// The Kafka key (the line's place in its file).
    pub key: Option<Vec<u8>>,
    /// The line's bytes.
    pub payload: Vec<u8>,
    /// The record's headers, in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Where the line is.
    pub origin: Origin,
}

impl ProducerDeadLetter {
    /// Reads a record of the dead-letter topic; `None` when the consumer
    /// published it (see [`stage_of`]): that one is in the table already.
    pub fn from_message(message: &impl Message) -> Option<Self> {
        let headers = message_headers(message);
        if stage_of(&headers) != stages::PRODUCER {
            return None;
        }
        let found = found_in(&headers);
        let origin = Origin::of(&found);
        let text = |name: &str| header_text(&headers, name).map(|value| storable(&value).into_owned());
        Some(ProducerDeadLetter {
            source: source_text(message, &found),
            reason: text(headers::ERROR_KIND)
                .map_or_else(|| reasons::UNKNOWN_KIND.into(), |kind| bounded(&kind, REASON_MAX_BYTES).into_owned()),
            message: text(headers::ERROR_MESSAGE).unwrap_or_default(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers,
            origin,
        })
    }
}

/// The provenance in a record's headers, read once for both its origin and
/// its source text.
fn found_in(headers: &[(String, Option<Vec<u8>>)]) -> FoundProvenance<'_> {
    FoundProvenance::find(headers.iter().map(|(name, value)| (name.as_str(), value.as_deref())))
}

/// `topic/partition/offset`, and ` source_file:line` when known, both as
/// written (a line that is not a number shows as it is).
fn source_text(message: &impl Message, found: &FoundProvenance<'_>) -> String {
    let mut source = format!("{}/{}/{}", message.topic(), message.partition(), message.offset());
    if let (Some(file), Some(line)) = (found.source_file_bytes(), found.line_bytes()) {
        source.push_str(&format!(" {}:{}", String::from_utf8_lossy(file), String::from_utf8_lossy(line)));
    }
    storable(&source).into_owned()
}

impl DeadLetter {
    /// Captures a Kafka record and why it is dead.
    pub fn from_message(message: &impl Message, reason: &'static str, explanation: String) -> Self {
        let headers = message_headers(message);
        let found = found_in(&headers);
        let (source, origin) = (source_text(message, &found), Origin::of(&found));
        DeadLetter {
            source,
            reason,
            message: storable(&explanation).into_owned(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
            origin,
            place: RecordPlace {
                topic: message.topic().to_string(),
                partition: message.partition(),
                offset: message.offset(),
            },
            headers,
        }
    }

    /// The original headers as a JSON object of `storable` text values
    /// (the last value wins for a repeated name), for the `headers` column:
    /// readable, not exact; [`DeadLetter::raw_headers`] is exact.
    pub fn headers_json(&self) -> String {
        headers_json(&self.headers)
    }

    /// The original headers, exactly (order, repeated names, absent values,
    /// any bytes), for the `raw_headers` column; see [`decode_raw_headers`].
    pub fn raw_headers(&self) -> Vec<u8> {
        encode_raw_headers(&self.headers)
    }
}

/// Headers as a JSON object of `storable` text (last value wins).
fn headers_json(headers: &[(String, Option<Vec<u8>>)]) -> String {
    let map: BTreeMap<String, String> = headers
        .iter()
        .map(|(key, value)| (storable(key).into_owned(), storable_lossy(value.as_deref().unwrap_or_default())))
        .collect();
    serde_json::to_string(&map).unwrap_or_else(|_| "{}".into())
}

/// Kafka headers as bytes: per header, the name's length (u32, big endian)
/// and bytes, then 0 for an absent value or 1, the value's length (u32) and
/// bytes. A private framing, read back only by [`decode_raw_headers`].
pub fn encode_raw_headers(headers: &[(String, Option<Vec<u8>>)]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (name, value) in headers {
        bytes.extend_from_slice(&(name.len() as u32).to_be_bytes());
        bytes.extend_from_slice(name.as_bytes());
        match value {
            None => bytes.push(0),
            Some(value) => {
                bytes.push(1);
                bytes.extend_from_slice(&(value.len() as u32).to_be_bytes());
                bytes.extend_from_slice(value);
            }
        }
    }
    bytes
}

/// The headers [`encode_raw_headers`] wrote; `None` if the bytes are not
/// such a framing (then the readable `headers` column is all there is).
pub fn decode_raw_headers(mut bytes: &[u8]) -> Option<Vec<(String, Option<Vec<u8>>)>> {
    fn take<'a>(bytes: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
        let (taken, rest) = (bytes.get(..len)?, bytes.get(len..)?);
        *bytes = rest;
        Some(taken)
    }
    fn length(bytes: &mut &[u8]) -> Option<usize> {
        Some(u32::from_be_bytes(take(bytes, 4)?.try_into().ok()?) as usize)
    }
    let mut headers = Vec::new();
    while !bytes.is_empty() {
        let len = length(&mut bytes)?;
        let name = String::from_utf8(take(&mut bytes, len)?.to_vec()).ok()?;
        let value = match take(&mut bytes, 1)? {
            [0] => None,
            [1] => {
                let len = length(&mut bytes)?;
                Some(take(&mut bytes, len)?.to_vec())
            }
            _ => return None,
        };
        headers.push((name, value));
    }
    Some(headers)
}

/// The insert of the producer's dead letters; a line already stored
/// (re-sent by the producer, or read again by a replay) is passed: see the
/// unique index `dead_letters_producer_line_once` of migrations 6 and 8 (the
/// fingerprint keyed by its digest, so a header of any width fits).
const INSERT_PRODUCER: &str = "INSERT INTO dead_letters (source, reason, message, record_key, payload, headers,
                                  raw_headers, stage, source_file, source_line, source_offset, source_fingerprint)
     VALUES ($1, $2, $3, $4, $5, ($6::text)::jsonb, $7, $8, $9, $10, $11, $12)
     ON CONFLICT (md5(source_fingerprint), source_offset, reason, md5(payload)) WHERE stage = 'producer' DO NOTHING";

/// The insert of the consumer's dead letters; a record already stored (read
/// again by a replay of the topic) is passed, whatever became of its row
/// since (redriven, say): see the unique index
/// `dead_letters_consumer_record_once` of migration 9.
const INSERT_CONSUMER: &str = "INSERT INTO dead_letters (source, reason, message, record_key, payload, headers,
                                  raw_headers, stage, source_file, source_line, source_offset, source_fingerprint,
                                  record_topic, record_partition, record_offset)
     VALUES ($1, $2, $3, $4, $5, ($6::text)::jsonb, $7, $8, $9, $10, $11, $12, $13, $14, $15)
     ON CONFLICT (record_topic, record_partition, record_offset, md5(payload)) WHERE stage = 'consumer' DO NOTHING";

/// One row of `dead_letters`, borrowed from either stage's dead letter.
struct Row<'a> {
    source: &'a str,
    reason: &'a str,
    message: &'a str,
    key: &'a Option<Vec<u8>>,
    payload: &'a [u8],
    headers: &'a [(String, Option<Vec<u8>>)],
    stage: &'static str,
    origin: &'a Origin,
    /// Set for the consumer's dead letters only.
    place: Option<&'a RecordPlace>,
}

/// Inserts the rows; says of each whether it was new in the table (a line
/// already stored is passed by the unique index).
async fn insert_rows(client: &impl GenericClient, rows: Vec<Row<'_>>) -> Result<Vec<bool>, tokio_postgres::Error> {
    let producer = client.prepare_cached(INSERT_PRODUCER).await?;
    let consumer = client.prepare_cached(INSERT_CONSUMER).await?;
    let mut inserted = Vec::with_capacity(rows.len());
    for row in rows {
        let headers = headers_json(row.headers);
        let raw_headers = encode_raw_headers(row.headers);
        let origin = row.origin;
        let common: [&(dyn tokio_postgres::types::ToSql + Sync); 12] = [
            &row.source,
            &row.reason,
            &row.message,
            row.key,
            &row.payload,
            &headers,
            &raw_headers,
            &row.stage,
            &origin.file,
            &origin.line,
            &origin.byte_offset,
            &origin.fingerprint,
        ];
        let count = match row.place {
            None => client.execute(&producer, &common).await?,
            Some(place) => {
                let mut params = common.to_vec();
                params.extend_from_slice(&[&place.topic, &place.partition, &place.offset]);
                client.execute(&consumer, &params).await?
            }
        };
        inserted.push(count > 0);
    }
    Ok(inserted)
}

/// Inserts the consumer's dead letters (inside the batch transaction; the
/// caller isolates a refused one, see `apply`); says of each whether it was
/// new, the others being stored already (the topic replayed).
pub async fn insert_all(
    client: &impl GenericClient,
    letters: &[&DeadLetter],
) -> Result<Vec<bool>, tokio_postgres::Error> {
    if letters.is_empty() {
        return Ok(Vec::new());
    }
    let rows = letters.iter().map(|letter| Row {
        source: &letter.source,
        reason: letter.reason,
        message: &letter.message,
        key: &letter.key,
        payload: &letter.payload,
        headers: &letter.headers,
        stage: stages::CONSUMER,
        origin: &letter.origin,
        place: Some(&letter.place),
    });
    insert_rows(client, rows.collect()).await
}

/// Inserts the producer's dead letters read from the topic (inside the
/// intake's transaction); returns those that were new, the others being
/// already stored.
pub async fn insert_producer_letters<'a>(
    client: &impl GenericClient,
    letters: &'a [ProducerDeadLetter],
) -> Result<Vec<&'a ProducerDeadLetter>, tokio_postgres::Error> {
    if letters.is_empty() {
        return Ok(Vec::new());
    }
    let rows = letters.iter().map(|letter| Row {
        source: &letter.source,
        reason: &letter.reason,
        message: &letter.message,
        key: &letter.key,
        payload: &letter.payload,
        headers: &letter.headers,
        stage: stages::PRODUCER,
        origin: &letter.origin,
        place: None,
    });
    let inserted = insert_rows(client, rows.collect()).await?;
    Ok(letters.iter().zip(inserted).filter_map(|(letter, new)| new.then_some(letter)).collect())
}

/// Publishes the dead letters to the dead-letter topic with the original
/// headers plus `error_kind` and `error_message`, and waits until Kafka
/// confirmed every one.
pub async fn publish_all(producer: &FutureProducer, topic: &str, letters: &[DeadLetter]) -> Result<(), KafkaError> {
    let sends = letters.iter().map(|letter| {
        let mut kafka_headers = OwnedHeaders::new();
        for (key, value) in &letter.headers {
            kafka_headers = kafka_headers.insert(Header { key, value: value.as_deref() });
        }
        let kafka_headers = kafka_headers
            .insert(Header { key: headers::ERROR_KIND, value: Some(letter.reason) })
            .insert(Header { key: headers::ERROR_MESSAGE, value: Some(&letter.message) })
            .insert(Header { key: headers::STAGE, value: Some(stages::CONSUMER) });
        let mut record = FutureRecord::to(topic).payload(&letter.payload).headers(kafka_headers);
        if let Some(key) = &letter.key {
            record = record.key(key);
        }
        producer.send(record, rdkafka::util::Timeout::Never)
    });
    for result in futures::future::join_all(sends).await {
        result.map_err(|(error, _)| error)?;
    }
    Ok(())
}

/// Why an export failed; a file is then left as it was.
#[derive(Debug, Error)]
pub enum ExportError {
    /// Reading the table failed.
    #[error("cannot read dead_letters")]
    Database(#[from] tokio_postgres::Error),
    /// Writing the file (`-`: standard output) failed.
    #[error("cannot write {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The columns of the export, in order (the ones of migration 6 last, so a
/// reader of the older layout still finds its columns where they were).
pub const EXPORT_COLUMNS: [&str; 14] = [
    "id",
    "created_at",
    "reason",
    "source",
    "message",
    "record_key",
    "payload",
    "headers",
    "redriven_at",
    "stage",
    "source_file",
    "source_line",
    "source_offset",
    "resolved_at",
];

/// Where `dead-letters export` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportTarget {
    /// Standard output (`--output` absent or `-`), for a pipe or a redirect.
    Stdout,
    /// A file, replaced whole and atomically (written beside it first).
    File(PathBuf),
}

impl ExportTarget {
    /// `--output`'s value: absent or `-` is standard output.
    pub fn from_arg(output: Option<PathBuf>) -> Self {
        match output {
            Some(path) if path.as_os_str() != "-" => ExportTarget::File(path),
            _ => ExportTarget::Stdout,
        }
    }

    /// How the target is named in messages.
    pub fn describe(&self) -> String {
        match self {
            ExportTarget::Stdout => "standard output".into(),
            ExportTarget::File(path) => path.display().to_string(),
        }
    }
}

/// Writes the dead letters of both stages (only `reason`'s, only those
/// pending, i.e. neither redriven nor resolved, when `pending_only`) to
/// `target` as CSV, in id order; returns how many. Rows are streamed, never
/// all held; a file is replaced atomically.
pub async fn export_csv(
    client: &tokio_postgres::Client,
    target: &ExportTarget,
    reason: Option<&str>,
    pending_only: bool,
) -> Result<u64, ExportError> {
    match target {
        ExportTarget::Stdout => {
            let io = |source| ExportError::Io { path: PathBuf::from("-"), source };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let count = write_csv(client, &mut out, reason, pending_only, io).await?;
            out.flush().map_err(io)?;
            Ok(count)
        }
        ExportTarget::File(output) => {
            let io = |source| ExportError::Io { path: output.to_path_buf(), source };
            if let Some(folder) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(folder).map_err(io)?;
            }
            let partial = output.with_extension("csv.partial");
            let mut file = std::io::BufWriter::new(std::fs::File::create(&partial).map_err(io)?);
            let count = write_csv(client, &mut file, reason, pending_only, io).await?;
            file.into_inner().map_err(|error| io(error.into_error()))?.sync_all().map_err(io)?;
            std::fs::rename(&partial, output).map_err(io)?;
            Ok(count)
        }
    }
}

/// Streams the selected rows as CSV into `out`; `io` names the target in
/// a write error.
async fn write_csv(
    client: &tokio_postgres::Client,
    out: &mut impl Write,
    reason: Option<&str>,
    pending_only: bool,
    io: impl Fn(std::io::Error) -> ExportError,
) -> Result<u64, ExportError> {
    use futures::TryStreamExt;
    const UTC: &str = r#"'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'"#;
    let sql = format!(
        "SELECT id, to_char(created_at AT TIME ZONE 'UTC', {UTC}), reason, source, message, record_key, payload,
                headers::text, to_char(redriven_at AT TIME ZONE 'UTC', {UTC}), stage, source_file,
                source_line::text, source_offset::text, to_char(resolved_at AT TIME ZONE 'UTC', {UTC})
         FROM dead_letters
         WHERE ($1::text IS NULL OR reason = $1) AND (NOT $2 OR (redriven_at IS NULL AND resolved_at IS NULL))
         ORDER BY id"
    );
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&reason, &pending_only];
    let rows = client.query_raw(&sql, params).await?;
    futures::pin_mut!(rows);

    let header: Vec<Cell<'_>> = EXPORT_COLUMNS.iter().map(|name| Cell::Text(name)).collect();
    out.write_all(row(&header).as_bytes()).map_err(&io)?;
    let mut count = 0;
    while let Some(stored) = rows.try_next().await? {
        let text = |index: usize| stored.get::<_, Option<String>>(index);
        let bytes = |index: usize| {
            stored.get::<_, Option<Vec<u8>>>(index).map(|value| String::from_utf8_lossy(&value).into_owned())
        };
        let id = stored.get::<_, i64>(0).to_string();
        let cells = [
            text(1),
            text(2),
            text(3),
            text(4),
            bytes(5),
            bytes(6),
            text(7),
            text(8),
            text(9),
            text(10),
            text(11),
            text(12),
            text(13),
        ];
        let mut line = vec![Cell::Number(&id)];
        line.extend(cells.iter().map(|cell| cell.as_deref().map_or(Cell::Null, Cell::Text)));
        out.write_all(row(&line).as_bytes()).map_err(&io)?;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::{OwnedMessage, Timestamp};

    fn message() -> OwnedMessage {
        let headers = OwnedHeaders::new()
            .insert(Header { key: headers::SOURCE_FILE, value: Some("inbox/a.csv") })
            .insert(Header { key: headers::LINE, value: Some("7") });
        OwnedMessage::new(
            Some(b"oops".to_vec()),
            Some(b"42".to_vec()),
            "orders".into(),
            Timestamp::NotAvailable,
            3,
            99,
            Some(headers),
        )
    }

    #[test]
    fn source_names_the_kafka_position_and_the_csv_line() {
        let letter = DeadLetter::from_message(&message(), reasons::UNDECODABLE_VALUE, "bad".into());
        assert_eq!(letter.source, "orders/3/99 inbox/a.csv:7");
        assert_eq!(letter.key.as_deref(), Some(&b"42"[..]));
        assert_eq!(letter.payload, b"oops");
    }

    #[test]
    fn a_packed_provenance_names_the_csv_line_and_the_origin() {
        let headers = OwnedHeaders::new().insert(Header {
            key: headers::PROVENANCE,
            value: Some("7 120 9 1764374400123 801:2a:9f86d081 inbox/a b.csv"),
        });
        let message = OwnedMessage::new(None, None, "orders".into(), Timestamp::NotAvailable, 3, 99, Some(headers));
        let letter = DeadLetter::from_message(&message, reasons::UNDECODABLE_VALUE, "bad".into());
        assert_eq!(letter.source, "orders/3/99 inbox/a b.csv:7");
        let origin = Origin {
            file: Some("inbox/a b.csv".into()),
            line: Some(7),
            byte_offset: Some(120),
            fingerprint: Some("801:2a:9f86d081".into()),
        };
        assert_eq!(letter.origin, origin);
    }

    fn poisoned() -> OwnedMessage {
        let headers = OwnedHeaders::new()
            .insert(Header { key: headers::SOURCE_FILE, value: Some("in\0box.csv") })
            .insert(Header { key: headers::LINE, value: Some(&b"7\0\xff"[..]) })
            .insert(Header::<&str> { key: "empty", value: None });
        OwnedMessage::new(
            Some(b"{\"flags\":[\"\\u0000\"]}".to_vec()),
            Some(b"4\x002".to_vec()),
            "orders".into(),
            Timestamp::NotAvailable,
            3,
            99,
            Some(headers),
        )
    }

    #[test]
    fn readable_columns_of_a_record_with_nul_hold_no_nul_and_no_json_nul_escape() {
        let letter = DeadLetter::from_message(&poisoned(), reasons::UNDECODABLE_VALUE, "bad `\0`".into());
        assert_eq!(letter.source, "orders/3/99 in\\u0000box.csv:7\\u0000\u{fffd}");
        assert_eq!(letter.message, "bad `\\u0000`");
        let json = letter.headers_json();
        assert!(!json.contains('\0'));
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["source_file"], "in\\u0000box.csv");
        assert!(!parsed.to_string().contains('\0'));
    }

    #[test]
    fn the_exact_bytes_of_key_payload_and_headers_are_kept() {
        let letter = DeadLetter::from_message(&poisoned(), reasons::UNDECODABLE_VALUE, "bad".into());
        assert_eq!(letter.key.as_deref(), Some(&b"4\x002"[..]));
        assert_eq!(letter.payload, b"{\"flags\":[\"\\u0000\"]}");
        let headers = decode_raw_headers(&letter.raw_headers()).unwrap();
        assert_eq!(
            headers,
            vec![
                ("source_file".to_string(), Some(b"in\0box.csv".to_vec())),
                ("line".to_string(), Some(b"7\0\xff".to_vec())),
                ("empty".to_string(), None),
            ]
        );
    }

    #[test]
    fn raw_headers_that_are_not_the_framing_are_refused() {
        assert_eq!(decode_raw_headers(b""), Some(vec![]));
        assert_eq!(decode_raw_headers(&[0, 0, 0, 9, b'a']), None);
        assert_eq!(decode_raw_headers(&[0, 0, 0, 1, b'a', 7]), None);
    }

    #[test]
    fn headers_become_a_json_object_of_text() {
        let letter = DeadLetter::from_message(&message(), reasons::UNDECODABLE_VALUE, "bad".into());
        let json: serde_json::Value = serde_json::from_str(&letter.headers_json()).unwrap();
        assert_eq!(json, serde_json::json!({"source_file": "inbox/a.csv", "line": "7"}));
    }

    fn on_dead_letter_topic(extra: &[(&str, &str)]) -> OwnedMessage {
        let mut headers = OwnedHeaders::new()
            .insert(Header { key: headers::SOURCE_FILE, value: Some("inbox/a.csv") })
            .insert(Header { key: headers::SOURCE_FINGERPRINT, value: Some("fp") })
            .insert(Header { key: headers::LINE, value: Some("7") })
            .insert(Header { key: headers::BYTE_OFFSET, value: Some("120") });
        for (key, value) in extra {
            headers = headers.insert(Header { key, value: Some(*value) });
        }
        OwnedMessage::new(
            Some(b"9,x,bad".to_vec()),
            Some(b"inbox/a.csv:120".to_vec()),
            "orders.dlq".into(),
            Timestamp::NotAvailable,
            1,
            4,
            Some(headers),
        )
    }

    #[test]
    fn a_producer_dead_letter_keeps_reason_message_and_origin() {
        let message = on_dead_letter_topic(&[
            (headers::ERROR_KIND, "invalid_timestamp"),
            (headers::ERROR_MESSAGE, "not a time"),
            (headers::STAGE, stages::PRODUCER),
        ]);
        let letter = ProducerDeadLetter::from_message(&message).expect("a producer's dead letter");
        assert_eq!(letter.reason, "invalid_timestamp");
        assert_eq!(letter.message, "not a time");
        assert_eq!(letter.source, "orders.dlq/1/4 inbox/a.csv:7");
        assert_eq!(letter.payload, b"9,x,bad");
        assert_eq!(
            letter.origin,
            Origin {
                file: Some("inbox/a.csv".into()),
                line: Some(7),
                byte_offset: Some(120),
                fingerprint: Some("fp".into())
            }
        );
    }

    #[test]
    fn an_oversized_error_kind_is_cut_and_kept_exactly_in_the_headers() {
        let huge = "k".repeat(10_000);
        let message = on_dead_letter_topic(&[(headers::ERROR_KIND, &huge), (headers::STAGE, stages::PRODUCER)]);
        let letter = ProducerDeadLetter::from_message(&message).expect("a producer's dead letter");
        assert!(letter.reason.len() <= REASON_MAX_BYTES && letter.reason.starts_with("kkk"), "{}", letter.reason);
        let kept = letter.headers.iter().find(|(name, _)| name == headers::ERROR_KIND).and_then(|(_, v)| v.clone());
        assert_eq!(kept.as_deref(), Some(huge.as_bytes()));
    }

    #[test]
    fn the_consumers_own_records_are_not_read_back() {
        let marked = on_dead_letter_topic(&[(headers::ERROR_KIND, "invalid_amount"), (headers::STAGE, "consumer")]);
        assert_eq!(ProducerDeadLetter::from_message(&marked), None);
        // Published before the stage header existed: the consumer's reasons tell.
        let legacy = on_dead_letter_topic(&[(headers::ERROR_KIND, reasons::REJECTED_BY_DATABASE)]);
        assert_eq!(ProducerDeadLetter::from_message(&legacy), None);
        let legacy_producer = on_dead_letter_topic(&[(headers::ERROR_KIND, "field_count")]);
        assert!(ProducerDeadLetter::from_message(&legacy_producer).is_some());
    }

    #[test]
    fn the_last_stage_header_wins_over_one_the_original_record_carried() {
        let headers = vec![
            (headers::STAGE.to_string(), Some(b"producer".to_vec())),
            (headers::STAGE.to_string(), Some(b"consumer".to_vec())),
        ];
        assert_eq!(stage_of(&headers), stages::CONSUMER);
    }

    #[test]
    fn an_origin_that_is_not_a_number_is_left_empty() {
        let headers = vec![(headers::LINE.to_string(), Some(b"seven".to_vec()))];
        assert_eq!(Origin::from_headers(&headers), Origin::default());
    }
}
