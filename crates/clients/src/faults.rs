//! Faults a test build injects into a Kafka client, so that end-to-end tests
//! reach paths nothing outside the process can cause on demand (the
//! failpoints of docs/testing.md). Compiled only with the `failpoints`
//! feature: release builds carry none of it.

use std::ffi::CString;

use rdkafka::client::{Client, ClientContext};
use rdkafka::types::RDKafkaRespErr;

/// Puts `client` in librdkafka's fatal state, as an idempotent producer whose
/// sequence numbers broke would be (`OUT_OF_ORDER_SEQUENCE_NUMBER`), through
/// `rd_kafka_test_fatal_error`, librdkafka's own hook for tests: from then on
/// every produce is refused with `Fatal`, the records still queued are
/// purged, and `Client::fatal_error` reports it. A second call changes
/// nothing (the first fatal error stays).
pub fn raise_fatal_error<C: ClientContext>(client: &Client<C>, reason: &str) {
    let reason = CString::new(reason.replace('\0', " ")).expect("no NUL left in the reason");
    // SAFETY: the pointer is the live client `client` borrows, and librdkafka
    // formats `reason` into its own buffer before returning.
    unsafe {
        rdkafka::bindings::rd_kafka_test_fatal_error(
            client.native_ptr(),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
            reason.as_ptr(),
        );
    }
}
