-- Exactly-once effect: version guard, flags, offsets stored with the data,
-- dead letters visible in SQL.

-- The record's place in source order (Kafka header `source_version`; 0 when
-- absent, i.e. older than anything versioned). An upsert only replaces a row
-- with a strictly larger version, so replays and re-read files are no-ops.
ALTER TABLE orders ADD COLUMN source_version BIGINT NOT NULL DEFAULT 0;
-- Why the order looks odd (schema::Flag names), for the analytics questions.
ALTER TABLE orders ADD COLUMN flags TEXT[] NOT NULL DEFAULT '{}';

-- The truth about what has been applied: the next Kafka offset to apply per
-- group and partition, written in the same transaction as the rows it covers.
CREATE TABLE consumer_offsets (
    group_id    TEXT        NOT NULL,
    topic       TEXT        NOT NULL,
    partition   INTEGER     NOT NULL,
    next_offset BIGINT      NOT NULL CHECK (next_offset >= 0),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (group_id, topic, partition)
);
COMMENT ON TABLE consumer_offsets IS 'Next Kafka offset to apply per consumer group and partition; the source of truth, Kafka commits are only for lag monitoring.';

-- Records the consumer could never write, with why; written in the same
-- transaction as the offsets that move past them.
CREATE TABLE dead_letters (
    id          BIGSERIAL   PRIMARY KEY,
    -- topic/partition/offset, and source_file:line when known.
    source      TEXT        NOT NULL,
    -- A bounded kind (undecodable_value, unknown_schema_version, rejected_by_database).
    reason      TEXT        NOT NULL,
    message     TEXT        NOT NULL,
    record_key  BYTEA,
    payload     BYTEA       NOT NULL,
    -- The record's original Kafka headers, name → text value.
    headers     JSONB       NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    -- Set when `orderstream-consumer redrive` re-published the record.
    redriven_at TIMESTAMPTZ
);
CREATE INDEX dead_letters_pending ON dead_letters (reason) WHERE redriven_at IS NULL;
COMMENT ON TABLE dead_letters IS 'Records orderstream could not write, with the reason; redriven_at is set once re-published.';
