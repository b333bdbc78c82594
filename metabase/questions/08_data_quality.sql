-- title: Data quality: dead letters and flagged orders by day
-- display: table
-- description: Dead letters by stage, reason and day (producer: CSV lines it could not read, e.g. bad timestamps or amounts; consumer: records it could not decode or write), and valid orders the producer flagged (both totals zero, unusual amounts), by flag and day of the order.
-- if empty: Nothing to report: no line was rejected and no order was flagged.
SELECT created_at::date AS day, 'dead letter (' || stage || ')' AS kind, reason AS detail, count(*) AS records
FROM analysis_dead_letters
GROUP BY 1, 2, 3
UNION ALL
SELECT completed_time::date, 'flagged order', flag, count(*)
FROM analysis_orders, unnest(flags) AS flag
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3;
