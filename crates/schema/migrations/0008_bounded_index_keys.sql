-- No index holds text a record can make arbitrarily long. A btree entry
-- must fit in about a third of a page (2704 bytes): a wider one makes the
-- whole statement fail, and a failure that no retry can fix must never
-- stop the consumer. Headers come from outside (a wide export's `columns`,
-- a file path of up to 4 KiB, any header of a record published by another
-- tool), so the indexes that key on them key on a digest instead; the text
-- itself stays whole in its column.

-- `source_files` keyed on the file and the whole header as a text array:
-- an export with a few hundred columns could not be recorded, and its
-- batch could never commit. Now keyed on digests of both; `columns` keeps
-- the names (the view and the data-quality question read it unchanged).
-- The digest is computed by PostgreSQL from the array, here and in the
-- consumer's upsert alike, so a header recorded before this migration is
-- recognised by the same key.
ALTER TABLE source_files ADD COLUMN columns_md5 TEXT;
UPDATE source_files SET columns_md5 = md5(array_to_json(columns)::text);
ALTER TABLE source_files ALTER COLUMN columns_md5 SET NOT NULL;
ALTER TABLE source_files DROP CONSTRAINT source_files_pkey;
CREATE UNIQUE INDEX source_files_once ON source_files (md5(source_file), columns_md5);
COMMENT ON COLUMN source_files.columns_md5 IS 'md5 of the header as JSON (array_to_json(columns)): the key, since a wide header does not fit an index.';

-- A producer's line is stored once (migration 6): the fingerprint is any
-- header value, so the index keeps its digest. The reason is bounded by the
-- consumer (a producer's kinds are short names), the payload was digested
-- already.
DROP INDEX dead_letters_producer_line_once;
CREATE UNIQUE INDEX dead_letters_producer_line_once
    ON dead_letters (md5(source_fingerprint), source_offset, reason, md5(payload))
    WHERE stage = 'producer';
