-- title: Total sales, last complete month
-- display: scalar
-- description: Sum of item_total in the latest complete month of the data, and its change against the month before.
-- only-in: report
-- value: sales
WITH anchor AS (
    SELECT coalesce([[ {{month}}::date, ]] last_month) AS month FROM analysis_anchor
), monthly AS (
    SELECT month, sum(item_total) AS sales FROM analysis_orders GROUP BY month
)
SELECT a.month,
       coalesce(m.sales, 0)                                            AS sales,
       p.sales                                                         AS previous_sales,
       round(100 * (m.sales - p.sales) / nullif(p.sales, 0), 1)       AS change_percent
FROM anchor a
LEFT JOIN monthly m ON m.month = a.month
LEFT JOIN monthly p ON p.month = (a.month - interval '1 month')::date;
