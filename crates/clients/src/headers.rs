//! librdkafka's record headers as the plain (name, value) pairs the
//! `schema` crate's wire format reads and writes, so that crate stays free
//! of Kafka clients.
//!
//! Both directions borrow: reading hands out the record's own bytes, and
//! writing copies each pair into librdkafka's header list once.

use rdkafka::message::{Header, Headers, OwnedHeaders};

/// A record's headers as (name, value) pairs, in record order; none when
/// the record has no headers. For `schema::FoundProvenance::find`.
pub fn header_pairs<H: Headers>(headers: Option<&H>) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
    headers.into_iter().flat_map(|headers| headers.iter().map(|header| (header.key, header.value)))
}

/// Appends (name, value) pairs to `headers`, in order: how a record's
/// encoded provenance (`schema::Provenance::to_headers`) reaches Kafka.
pub fn with_pairs<'k, 'v>(headers: OwnedHeaders, pairs: impl IntoIterator<Item = (&'k str, &'v [u8])>) -> OwnedHeaders {
    pairs.into_iter().fold(headers, |headers, (key, value)| headers.insert(Header { key, value: Some(value) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_go_in_and_come_back_in_order_with_empty_values() {
        let written = with_pairs(OwnedHeaders::new_with_capacity(3), [("a", &b"1"[..]), ("b", b"\xff"), ("a", b"2")])
            .insert(Header::<&[u8]> { key: "none", value: None });
        let read: Vec<_> = header_pairs(Some(&written)).collect();
        assert_eq!(read, [("a", Some(&b"1"[..])), ("b", Some(b"\xff")), ("a", Some(b"2")), ("none", None)]);
        assert_eq!(header_pairs(None::<&OwnedHeaders>).count(), 0);
    }
}
