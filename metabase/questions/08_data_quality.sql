-- title: Data quality: dead letters and flagged orders by day
-- display: table
-- description: Dead letters by stage, reason and day (producer: CSV lines it could not read, e.g. bad timestamps or amounts; consumer: records it could not decode or write), valid orders the producer flagged (both totals zero, unusual amounts), by flag and day of the order, and files whose header differed from the previous file's (new, renamed or reordered columns), by the day they were read.
-- if empty: Nothing to report: no line was rejected, no order was flagged and no export changed its columns.
SELECT created_at::date AS day, 'dead letter (' || stage || ')' AS kind, reason AS detail, count(*) AS records
FROM analysis_dead_letters
GROUP BY 1, 2, 3
UNION ALL
SELECT completed_time::date, 'flagged order', flag, count(*)
FROM analysis_orders, unnest(flags) AS flag
GROUP BY 1, 2, 3
UNION ALL
SELECT first_read_at::date, 'header changed',
       source_file || ': ' || array_to_string(columns, ',') || ' (was ' || array_to_string(previous_columns, ',') || ')',
       count(*)
FROM analysis_header_changes
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3;
