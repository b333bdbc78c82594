-- title: Average basket, last complete month
-- display: smartscalar
-- description: Mean item_total per order in the latest complete month of the data, against the month before (Metabase's trend card compares the last month listed with the one before it).
-- only-in: metabase
-- value: average_basket
WITH anchor AS (
    SELECT coalesce([[ {{month}}::date, ]] last_month) AS month FROM analysis_anchor
)
SELECT o.month, round(avg(o.item_total), 2) AS average_basket
FROM analysis_orders o, anchor a
WHERE o.month <= a.month
GROUP BY o.month
ORDER BY o.month;
