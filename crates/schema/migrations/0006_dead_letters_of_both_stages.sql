-- Dead letters of both stages in one table: the producer's (lines of a CSV
-- file it could not read: bad timestamps, bad amounts, …), which the
-- consumer now reads from the dead-letter topic, and the consumer's own
-- (records it could not decode or write). Each row says where its line is,
-- and whether someone still has to act on it.
--
-- Rows before this migration were all written by the consumer: `stage`
-- defaults to 'consumer' for them, and their origin is read back from the
-- readable headers when those hold it.
ALTER TABLE dead_letters
    ADD COLUMN stage              TEXT   NOT NULL DEFAULT 'consumer'
                                  CHECK (stage IN ('producer', 'consumer')),
    ADD COLUMN source_file        TEXT,
    ADD COLUMN source_line        BIGINT,
    ADD COLUMN source_offset      BIGINT,
    ADD COLUMN source_fingerprint TEXT,
    ADD COLUMN resolved_at        TIMESTAMPTZ;

UPDATE dead_letters SET
    source_file        = headers->>'source_file',
    source_line        = CASE WHEN headers->>'line' ~ '^[0-9]{1,18}$' THEN (headers->>'line')::bigint END,
    source_offset      = CASE WHEN headers->>'byte_offset' ~ '^[0-9]{1,18}$' THEN (headers->>'byte_offset')::bigint END,
    source_fingerprint = headers->>'source_fingerprint';

-- One row per bad line: the producer re-sends a line it was not sure Kafka
-- took (after a crash), and a replay of the topic reads every line again.
-- The same bytes, with the same reason, at the same place of the same file
-- (its fingerprint survives renames) are one dead letter.
CREATE UNIQUE INDEX dead_letters_producer_line_once
    ON dead_letters (source_fingerprint, source_offset, reason, md5(payload))
    WHERE stage = 'producer';

-- "Pending" means "needs someone": neither redriven nor resolved.
CREATE INDEX dead_letters_needing_someone ON dead_letters (stage, reason)
    WHERE redriven_at IS NULL AND resolved_at IS NULL;

COMMENT ON COLUMN dead_letters.stage IS 'Who dead-lettered the record: producer (a bad CSV line) or consumer (undecodable or unwritable record).';
COMMENT ON COLUMN dead_letters.resolved_at IS 'Set by `orderstream-consumer dead-letters resolve` on producer dead letters once someone dealt with them (a new export).';

-- The data-quality question splits by stage and status; still no payload.
-- New columns go last, as CREATE OR REPLACE VIEW requires.
CREATE OR REPLACE VIEW analysis_dead_letters AS
SELECT created_at, reason, redriven_at, stage, resolved_at
FROM dead_letters;
