-- A consumer's dead letter is one Kafka record that could not be written.
-- A replay of the topic reads that record again; it must find its dead
-- letter already stored, not add a second row, publish it to the
-- dead-letter topic again, or make a redriven one pending again. So the
-- record's place on the topic becomes columns, and the place (with the
-- payload's digest, in case a topic was deleted and created again, its
-- offsets starting over) is unique among the consumer's dead letters.
ALTER TABLE dead_letters
    ADD COLUMN record_topic     TEXT,
    ADD COLUMN record_partition INTEGER,
    ADD COLUMN record_offset    BIGINT;

-- Rows written before this migration name their record in `source`
-- (`topic/partition/offset`, then ` file:line` when known; a topic name
-- holds neither `/` nor a space). A record already stored twice by an
-- earlier replay keeps its place on its first row only: the others stay
-- unkeyed, so the unique index can be built over them.
WITH places AS (
    SELECT id,
           (regexp_match(source, '^([^/ ]+)/([0-9]{1,9})/([0-9]{1,18})( |$)')) AS place
    FROM dead_letters
    WHERE stage = 'consumer'
), firsts AS (
    SELECT DISTINCT ON (place[1], place[2], place[3], md5(d.payload)) p.id, p.place
    FROM places p JOIN dead_letters d USING (id)
    WHERE p.place IS NOT NULL
    ORDER BY place[1], place[2], place[3], md5(d.payload), p.id
)
UPDATE dead_letters d SET
    record_topic     = f.place[1],
    record_partition = f.place[2]::integer,
    record_offset    = f.place[3]::bigint
FROM firsts f
WHERE d.id = f.id;

CREATE UNIQUE INDEX dead_letters_consumer_record_once
    ON dead_letters (record_topic, record_partition, record_offset, md5(payload))
    WHERE stage = 'consumer';

COMMENT ON COLUMN dead_letters.record_offset IS 'For the consumer''s dead letters: the record''s offset on record_topic/record_partition, stored once however often the topic is replayed.';
