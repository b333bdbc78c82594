-- Views for the business analysis (Metabase questions in metabase/questions/
-- and `orderstream-analytics report` read only these). Times are the shop's
-- own: naive export times were stored as UTC, so they are read back in UTC.

CREATE VIEW analysis_orders AS
SELECT id,
       user_id,
       completed_at AT TIME ZONE 'UTC'                           AS completed_time,
       date_trunc('month', completed_at AT TIME ZONE 'UTC')::date AS month,
       date_trunc('week', completed_at AT TIME ZONE 'UTC')::date  AS week,
       item_total,
       shipment_total,
       flags
FROM orders;

-- "Last month" is the latest complete month present in the data, never the
-- wall clock: the newest order's month if the data reaches that month's last
-- day, else the month before. Dashboards stay filled as time passes.
CREATE VIEW analysis_anchor AS
SELECT CASE
           WHEN max(completed_time) >= date_trunc('month', max(completed_time)) + interval '1 month' - interval '1 day'
               THEN date_trunc('month', max(completed_time))::date
           ELSE (date_trunc('month', max(completed_time)) - interval '1 month')::date
       END AS last_month
FROM analysis_orders;

-- Each order with the customer's previous order, for recurrence and the time
-- between orders.
CREATE VIEW analysis_customer_orders AS
SELECT o.*,
       lag(completed_time) OVER (PARTITION BY user_id ORDER BY completed_time, id) AS previous_completed_time
FROM analysis_orders o;
