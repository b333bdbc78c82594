//! A Kafka record kept after its batch was read, in one allocation.
//!
//! The consumer decodes each record from librdkafka's own buffer, but must
//! keep the record itself until the batch is written: a row the database
//! refuses is dead-lettered with its exact key, value and headers. rdkafka's
//! `detach()` copied those into a payload, a key, a topic and a C header list
//! with one block per header, some ten allocations per record that the
//! consumer's profile showed as `malloc` and `_int_free`; a [`KeptRecord`]
//! copies them once, back to back.

use rdkafka::message::{Header, Headers, Message, Timestamp};

/// A record's topic, key, value and headers, owned; readable as any Kafka
/// message (`Message`), so dead letters are made from it as from the
/// record it copies.
#[derive(Debug, Clone)]
pub struct KeptRecord {
    /// The bytes, and the headers read from them.
    headers: KeptHeaders,
    /// Whether the record had headers at all (none and empty differ).
    has_headers: bool,
    /// Topic's length; the topic starts at byte 0.
    topic_len: usize,
    /// Key's length, after the topic; `None` for no key.
    key_len: Option<usize>,
    /// Value's length, after the key; `None` for no value.
    payload_len: Option<usize>,
    /// The record's partition.
    partition: i32,
    /// The record's offset.
    offset: i64,
    /// The record's timestamp.
    timestamp: Timestamp,
}

/// A kept record's bytes, with its headers at the end, each as its name's
/// length (4 bytes, little-endian), the name, its value's length (4 bytes,
/// `u32::MAX` for no value) and the value.
#[derive(Debug, Clone)]
pub struct KeptHeaders {
    /// Topic, key, value, then the headers.
    bytes: Box<[u8]>,
    /// Where the headers start in `bytes`.
    start: usize,
    /// How many headers there are.
    count: usize,
}

/// A header's value length meaning "no value".
const NO_VALUE: u32 = u32::MAX;

/// Bytes a kept header takes besides its name and value: the two lengths.
const HEADER_FRAMING: usize = 8;

impl KeptRecord {
    /// Copies `message`.
    pub fn of(message: &impl Message) -> KeptRecord {
        let (topic, key, payload) = (message.topic().as_bytes(), message.key(), message.payload());
        let found = message.headers();
        let header_bytes = found.map_or(0, |headers| {
            headers.iter().map(|header| HEADER_FRAMING + header.key.len() + header.value.map_or(0, <[u8]>::len)).sum()
        });
        let length = topic.len() + key.map_or(0, <[u8]>::len) + payload.map_or(0, <[u8]>::len) + header_bytes;
        let mut bytes = Vec::with_capacity(length);
        bytes.extend_from_slice(topic);
        bytes.extend_from_slice(key.unwrap_or_default());
        bytes.extend_from_slice(payload.unwrap_or_default());
        let start = bytes.len();
        let mut count = 0;
        for header in found.into_iter().flat_map(|headers| headers.iter()) {
            bytes.extend_from_slice(&(header.key.len() as u32).to_le_bytes());
            bytes.extend_from_slice(header.key.as_bytes());
            let value_len = header.value.map_or(NO_VALUE, |value| value.len() as u32);
            bytes.extend_from_slice(&value_len.to_le_bytes());
            bytes.extend_from_slice(header.value.unwrap_or_default());
            count += 1;
        }
        KeptRecord {
            headers: KeptHeaders { bytes: bytes.into_boxed_slice(), start, count },
            has_headers: found.is_some(),
            topic_len: topic.len(),
            key_len: key.map(<[u8]>::len),
            payload_len: payload.map(<[u8]>::len),
            partition: message.partition(),
            offset: message.offset(),
            timestamp: message.timestamp(),
        }
    }

    /// What the record weighs against `--batch-max-bytes`: the same sum as
    /// `decode::record_bytes` of the record it copies (key, value, header
    /// names and values), derived from the copy's length so that the
    /// record's headers are not walked once more for it.
    pub fn weight(&self) -> usize {
        self.headers.bytes.len() - self.topic_len - HEADER_FRAMING * self.headers.count
    }

    /// `length` bytes from `at`, if present.
    fn part(&self, at: usize, length: Option<usize>) -> Option<&[u8]> {
        length.map(|length| &self.headers.bytes[at..at + length])
    }
}

impl Message for KeptRecord {
    type Headers = KeptHeaders;

    fn key(&self) -> Option<&[u8]> {
        self.part(self.topic_len, self.key_len)
    }

    fn payload(&self) -> Option<&[u8]> {
        self.part(self.topic_len + self.key_len.unwrap_or(0), self.payload_len)
    }

    unsafe fn payload_mut(&mut self) -> Option<&mut [u8]> {
        let at = self.topic_len + self.key_len.unwrap_or(0);
        self.payload_len.map(|length| &mut self.headers.bytes[at..at + length])
    }

    fn topic(&self) -> &str {
        std::str::from_utf8(&self.headers.bytes[..self.topic_len]).expect("copied from a &str")
    }

    fn partition(&self) -> i32 {
        self.partition
    }

    fn offset(&self) -> i64 {
        self.offset
    }

    fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    fn headers(&self) -> Option<&KeptHeaders> {
        self.has_headers.then_some(&self.headers)
    }
}

impl KeptHeaders {
    /// A little-endian `u32` at `at`.
    fn length_at(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.bytes[at..at + 4].try_into().expect("four bytes"))
    }

    /// The header starting at `at`, and where the next one starts.
    fn header_at(&self, at: usize) -> (Header<'_, &[u8]>, usize) {
        let name_len = self.length_at(at) as usize;
        let name = &self.bytes[at + 4..at + 4 + name_len];
        let at = at + 4 + name_len;
        let (value, next) = match self.length_at(at) {
            NO_VALUE => (None, at + 4),
            length => (Some(&self.bytes[at + 4..at + 4 + length as usize]), at + 4 + length as usize),
        };
        let key = std::str::from_utf8(name).expect("copied from a &str");
        (Header { key, value }, next)
    }
}

impl Headers for KeptHeaders {
    fn count(&self) -> usize {
        self.count
    }

    /// Walks the headers before `index`: kept records are read again only
    /// to dead-letter them, and have a handful of headers.
    fn try_get(&self, index: usize) -> Option<Header<'_, &[u8]>> {
        if index >= self.count {
            return None;
        }
        let mut at = self.start;
        for _ in 0..index {
            at = self.header_at(at).1;
        }
        Some(self.header_at(at).0)
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::{OwnedHeaders, OwnedMessage};

    use super::*;

    fn owned(key: Option<&[u8]>, payload: Option<&[u8]>, headers: Option<OwnedHeaders>) -> OwnedMessage {
        let timestamp = Timestamp::CreateTime(1_764_374_400_123);
        OwnedMessage::new(
            payload.map(<[u8]>::to_vec),
            key.map(<[u8]>::to_vec),
            "orders".into(),
            timestamp,
            3,
            42,
            headers,
        )
    }

    fn headers_of(message: &impl Message) -> Option<Vec<(String, Option<Vec<u8>>)>> {
        let headers = message.headers()?;
        Some(headers.iter().map(|header| (header.key.to_string(), header.value.map(<[u8]>::to_vec))).collect())
    }

    fn assert_same(kept: &KeptRecord, original: &OwnedMessage) {
        assert_eq!(kept.topic(), original.topic());
        assert_eq!(kept.key(), original.key());
        assert_eq!(kept.payload(), original.payload());
        assert_eq!((kept.partition(), kept.offset()), (original.partition(), original.offset()));
        assert_eq!(kept.timestamp(), original.timestamp());
        assert_eq!(headers_of(kept), headers_of(original));
    }

    #[test]
    fn a_kept_record_reads_back_as_the_record_it_copies() {
        let headers = OwnedHeaders::new()
            .insert(Header { key: "source_file", value: Some(&b"inbox/a.csv"[..]) })
            .insert(Header::<&[u8]> { key: "none", value: None })
            .insert(Header { key: "empty", value: Some(&b""[..]) })
            .insert(Header { key: "source_file", value: Some(&b"\xff\x00 repeated"[..]) });
        let original = owned(Some(b"17"), Some(br#"{"id":17}"#), Some(headers));
        let kept = KeptRecord::of(&original);
        assert_same(&kept, &original);
        assert_eq!(kept.headers().unwrap().count(), 4);
        assert_eq!(kept.weight(), crate::decode::record_bytes(&original));
        assert!(kept.headers().unwrap().try_get(4).is_none());
    }

    #[test]
    fn absent_key_value_and_headers_stay_absent() {
        for original in [owned(None, None, None), owned(Some(b""), Some(b""), Some(OwnedHeaders::new()))] {
            let kept = KeptRecord::of(&original);
            assert_same(&kept, &original);
            assert_eq!(kept.weight(), crate::decode::record_bytes(&original));
        }
        assert!(KeptRecord::of(&owned(None, Some(b"x"), None)).headers().is_none());
    }
}
