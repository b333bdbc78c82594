-- title: Sales to one-time over sales to recurring customers
-- display: scalar
-- description: Over the 3 months ending with the latest complete month, item_total of customers with exactly one order divided by that of customers with 2 or more.
-- value: ratio
-- window months: 3
-- looks back: window
-- short history: customers who ordered before it may count as one-time
WITH anchor AS (
    SELECT coalesce([[ {{month}}::date, ]] last_month) AS month FROM analysis_anchor
), customers AS (
    SELECT o.user_id, count(*) AS orders, sum(o.item_total) AS sales
    FROM analysis_orders o, anchor a
    WHERE o.month > (a.month - interval '3 months')::date AND o.month <= a.month
    GROUP BY o.user_id
)
SELECT sum(sales) FILTER (WHERE orders = 1)                              AS one_time_sales,
       sum(sales) FILTER (WHERE orders >= 2)                             AS recurring_sales,
       round(sum(sales) FILTER (WHERE orders = 1)
             / nullif(sum(sales) FILTER (WHERE orders >= 2), 0), 2)      AS ratio,
       (SELECT (month - interval '2 months')::date FROM anchor)         AS first_month,
       (SELECT month FROM anchor)                                       AS last_month
FROM customers;
