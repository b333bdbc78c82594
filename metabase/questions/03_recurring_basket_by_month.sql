-- title: Average basket of recurring customers, by month
-- display: line
-- description: For each month, the mean item_total of orders by customers with 2 or more orders in the 3 months ending with that month.
-- x: month
-- y: recurring_average_basket
-- looks back: 2 months
-- short history: they count customers as new who may have ordered before it
WITH months AS (
    SELECT DISTINCT month FROM analysis_orders
), recurring AS (
    SELECT m.month, o.user_id
    FROM months m
    JOIN analysis_orders o ON o.month > (m.month - interval '3 months')::date AND o.month <= m.month
    GROUP BY m.month, o.user_id
    HAVING count(*) >= 2
)
SELECT o.month, round(avg(o.item_total), 2) AS recurring_average_basket, count(*) AS recurring_orders
FROM analysis_orders o
JOIN recurring r ON r.month = o.month AND r.user_id = o.user_id
GROUP BY o.month
ORDER BY o.month;
