-- Exports change: a file may carry columns beyond the five an
-- order has, and its header may differ from the previous file's.
--
-- `orders.extra` keeps those columns' values (name → text, as exported), so
-- nothing in an export is lost and a later migration can promote a column.
-- NULL when the export had none. The analysis views select their columns
-- by name and do not show it: the questions and the report are unaffected.
ALTER TABLE orders ADD COLUMN extra JSONB;
COMMENT ON COLUMN orders.extra IS 'The export''s columns beyond the known ones, name → value as written; NULL when there were none.';

-- The header each file was read with, filled by the consumer from the
-- `columns` header that travels with every order, in the batch's
-- transaction (replays change nothing: the earliest version is kept). A
-- file whose header changed inside it has one row per header.
CREATE TABLE source_files (
    source_file   TEXT        NOT NULL,
    columns       TEXT[]      NOT NULL,
    first_version BIGINT      NOT NULL,
    first_read_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source_file, columns)
);
COMMENT ON TABLE source_files IS 'Each file''s header (normalised column names, in file order), from the first record read with it.';
GRANT SELECT, INSERT, UPDATE ON source_files TO orderstream_writer;

-- Files (or parts of a file) whose header differs from the one read before
-- them in source order: what the data-quality question lists.
CREATE VIEW analysis_header_changes AS
SELECT first_read_at, source_file, columns, previous_columns
FROM (
    SELECT source_file, columns, first_read_at, first_version,
           lag(columns) OVER (ORDER BY first_version, source_file) AS previous_columns
    FROM source_files
) AS in_source_order
WHERE previous_columns IS NOT NULL AND previous_columns <> columns;
GRANT SELECT ON analysis_header_changes TO orderstream_analyst;
