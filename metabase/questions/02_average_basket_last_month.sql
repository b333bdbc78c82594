-- title: Average basket, last complete month
-- display: scalar
-- description: Mean item_total per order in the latest complete month, and its change against the month before.
-- only-in: report
-- value: average_basket
WITH anchor AS (
    SELECT coalesce([[ {{month}}::date, ]] last_month) AS month FROM analysis_anchor
), monthly AS (
    SELECT month, count(*) AS orders, round(avg(item_total), 2) AS basket FROM analysis_orders GROUP BY month
)
SELECT a.month,
       m.orders,
       m.basket                                                    AS average_basket,
       p.basket                                                    AS previous_average_basket,
       round(100 * (m.basket - p.basket) / nullif(p.basket, 0), 1) AS change_percent
FROM anchor a
LEFT JOIN monthly m ON m.month = a.month
LEFT JOIN monthly p ON p.month = (a.month - interval '1 month')::date;
