-- title: Weekly sales and order count
-- display: bar
-- description: Sum of item_total and number of orders per week, over all the data.
-- x: week
-- y: sales, orders
SELECT week, sum(item_total) AS sales, count(*) AS orders
FROM analysis_orders
GROUP BY week
ORDER BY week;
