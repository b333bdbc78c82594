-- title: Weekly average time between consecutive orders, last 2 months
-- display: line
-- description: For orders in the 2 months ending with the latest complete month that follow an earlier order of the same customer, the mean days since that earlier order, by week.
-- x: week
-- y: average_days_between_orders
-- window months: 2
-- looks back: 2 months
-- short history: an order whose customer last ordered before it is not counted as a repeat, and longer gaps cannot appear
WITH anchor AS (
    SELECT coalesce([[ {{month}}::date, ]] last_month) AS month FROM analysis_anchor
)
SELECT c.week,
       round(avg(EXTRACT(EPOCH FROM c.completed_time - c.previous_completed_time) / 86400)::numeric, 2) AS average_days_between_orders,
       count(*)                                                                                     AS repeat_orders
FROM analysis_customer_orders c, anchor a
WHERE c.previous_completed_time IS NOT NULL
  AND c.month > (a.month - interval '2 months')::date AND c.month <= a.month
GROUP BY c.week
ORDER BY c.week;
