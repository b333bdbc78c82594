//! Any bytes as a Kafka record value through the consumer's decoder: no
//! panic, and a value that decodes re-encodes to one that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use schema::OrderMessage;

fuzz_target!(|value: &[u8]| {
    if let Ok(message) = OrderMessage::decode(value) {
        let again = OrderMessage::decode(&message.encode()).expect("an encoded message decodes");
        assert_eq!(again, message);
    }
});
