-- title: Weekly average basket by customer type, last 3 months
-- display: line
-- description: Mean item_total per week over the 3 months ending with the latest complete month; one line for recurring customers (2+ orders in those 3 months), one for one-time customers.
-- x: week, customer_type
-- y: average_basket
-- window months: 3
-- looks back: window
-- short history: customers who ordered before it may count as one-time
WITH anchor AS (
    SELECT coalesce([[ {{month}}::date, ]] last_month) AS month FROM analysis_anchor
), window_orders AS (
    SELECT o.*
    FROM analysis_orders o, anchor a
    WHERE o.month > (a.month - interval '3 months')::date AND o.month <= a.month
), types AS (
    SELECT user_id, CASE WHEN count(*) >= 2 THEN 'recurring' ELSE 'one-time' END AS customer_type
    FROM window_orders GROUP BY user_id
)
SELECT w.week, t.customer_type, round(avg(w.item_total), 2) AS average_basket, count(*) AS orders
FROM window_orders w
JOIN types t USING (user_id)
GROUP BY w.week, t.customer_type
ORDER BY w.week, t.customer_type;
