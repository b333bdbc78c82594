-- A dead letter's original Kafka headers, exactly: the `headers` column is
-- readable text (a NUL, which PostgreSQL refuses in text and jsonb, is
-- escaped; bytes that are not UTF-8 are replaced; a repeated name keeps its
-- last value), this one keeps every header in order with its exact bytes,
-- so that a redrive publishes the record as it was. NULL on rows written
-- before it existed. The framing is the consumer's (dead_letters.rs).
ALTER TABLE dead_letters ADD COLUMN raw_headers BYTEA;
COMMENT ON COLUMN dead_letters.raw_headers IS 'The original Kafka headers, exact (consumer framing); headers is the readable form.';
