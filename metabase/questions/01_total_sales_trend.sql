-- title: Total sales, last complete month
-- display: smartscalar
-- description: Sum of item_total in the latest complete month of the data, against the month before (Metabase's trend card compares the last month listed with the one before it).
-- only-in: metabase
-- value: sales
WITH anchor AS (
    SELECT coalesce([[ {{month}}::date, ]] last_month) AS month FROM analysis_anchor
)
SELECT o.month, sum(o.item_total) AS sales
FROM analysis_orders o, anchor a
WHERE o.month <= a.month
GROUP BY o.month
ORDER BY o.month;
