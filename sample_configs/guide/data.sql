-- Sample data for schema.sql: the guide's application after ~180 days in production.
--
-- Scale: every row count is multiplied by :scale (1 = the sizes below). With psql:
--     psql -v scale=1 -f data.sql
-- A Python driver replaces the token `:scale` with a number before sending the file.
--
-- Row counts at scale 1:
--     retailers                      2,000
--     vendors                          200
--     products                       5,000
--     orders                       500,000
--     vendor_routing               300,000   (1-4 vendors notified each)
--     vendor_routing_responses    ~750,000   (at most one 'ACCEPTED' per routing)
--     webhook_idempotency        1,000,000
--     jobs                         200,000   (mostly 'done', a few thousand 'queued')
--
-- The data is deterministic: "random" values come from pg_temp.rnd(key, salt), a hash of
-- the row number, so every load gives the same rows on every PostgreSQL version.
-- Timestamps lie in the 180 days before 2026-01-22 00:00 UTC and grow with id, as they
-- do in an append-mostly table. Activity is skewed: a few retailers (and their messaging
-- accounts), products and vendors account for much of the traffic.
--
-- Each table is filled by one INSERT ... SELECT over generate_series. No indexes are
-- created here. The file ends with ANALYZE.

SET search_path = public;

-- Skip the per-row foreign-key checks while loading: they would take most of the load
-- time, and the rows below are consistent by construction (every reference points at an
-- id generated earlier). CHECK and NOT NULL constraints are still enforced. Setting this
-- requires superuser (or, on PostgreSQL 15+, GRANT SET ON PARAMETER); without it, drop
-- this line and the matching RESET at the end; the load then takes 2-3 times as long.
SET session_replication_role = replica;

-- Start from empty tables so the file can be loaded again.
TRUNCATE retailers, vendors, products, orders, vendor_routing,
         vendor_routing_responses, webhook_idempotency, jobs
    RESTART IDENTITY;

-- rnd(key, salt): a pseudo-random number in [0, 1), always the same for the same
-- arguments. Hash functions are stable across PostgreSQL versions (hash partitioning
-- relies on that). Every column uses its own salt. The body is a single expression, so
-- the planner inlines it: there is no per-row function call.
CREATE OR REPLACE FUNCTION pg_temp.rnd(key bigint, salt bigint) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS 'SELECT (hashint8extended(key, salt) & 4503599627370495) / 4503599627370496.0::float8';


-- Retailers: signed up over the two years before the data's end date.
INSERT INTO retailers (id, name, email, phone, country, created_at)
SELECT g,
       'Retailer ' || g,
       'owner@retailer-' || g || '.example.com',
       '+1' || (2010000000 + g),
       (ARRAY['US', 'MX', 'BR', 'IN', 'NG', 'ID'])[1 + floor(6 * pg_temp.rnd(g, 101))::int],
       timestamptz '2026-01-22 00:00:00+00' - interval '730 days' * pg_temp.rnd(g, 102)
FROM generate_series(1, greatest(1, (2000 * :scale)::bigint)) AS g;


-- Vendors: about one in twenty is inactive.
INSERT INTO vendors (id, name, phone, region, is_active, created_at)
SELECT g,
       'Vendor ' || g,
       '+1' || (3010000000 + g),
       (ARRAY['north', 'south', 'east', 'west'])[1 + floor(4 * pg_temp.rnd(g, 201))::int],
       pg_temp.rnd(g, 202) >= 0.05,
       timestamptz '2026-01-22 00:00:00+00' - interval '730 days' * pg_temp.rnd(g, 203)
FROM generate_series(1, greatest(4, (200 * :scale)::bigint)) AS g;


-- Products: prices from $1.99 to ~$200, most of them cheap.
INSERT INTO products (id, sku, name, category, price_cents, created_at)
SELECT p.id,
       'SKU-' || lpad(p.id::text, 6, '0'),
       initcap(p.category) || ' item ' || p.id,
       p.category,
       199 + floor(20000 * pg_temp.rnd(p.id, 302) ^ 2)::int,
       timestamptz '2026-01-22 00:00:00+00' - interval '730 days' * pg_temp.rnd(p.id, 303)
FROM (
    SELECT g AS id,
           (ARRAY['beverages', 'snacks', 'dairy', 'produce', 'household', 'personal care'])
               [1 + floor(6 * pg_temp.rnd(g, 301))::int] AS category
    FROM generate_series(1, greatest(1, (5000 * :scale)::bigint)) AS g
) AS p;


-- Orders: retailer = n * u^2 and product = n * u^2, so low ids are the busy ones (the
-- top retailer places about 2% of all orders). The status follows the order's age:
-- recent orders are 'pending' or 'paid', old ones 'delivered' (a few 'cancelled').
INSERT INTO orders (id, retailer_id, product_id, quantity, status, total_cents, created_at, updated_at)
SELECT o.id,
       o.retailer_id,
       o.product_id,
       o.quantity,
       CASE
           WHEN o.age < interval '1 day'
               THEN CASE WHEN o.u < 0.40 THEN 'pending' WHEN o.u < 0.92 THEN 'paid' ELSE 'cancelled' END
           WHEN o.age < interval '3 days'
               THEN CASE WHEN o.u < 0.35 THEN 'paid' WHEN o.u < 0.93 THEN 'shipped' ELSE 'cancelled' END
           WHEN o.age < interval '10 days'
               THEN CASE WHEN o.u < 0.40 THEN 'shipped' WHEN o.u < 0.94 THEN 'delivered' ELSE 'cancelled' END
           ELSE CASE WHEN o.u < 0.95 THEN 'delivered' ELSE 'cancelled' END
       END,
       o.quantity * p.price_cents,
       timestamptz '2026-01-22 00:00:00+00' - o.age,
       timestamptz '2026-01-22 00:00:00+00' - o.age * pg_temp.rnd(o.id, 405)
FROM (
    SELECT g AS id,
           1 + floor(n.retailers * pg_temp.rnd(g, 401) ^ 2)::bigint AS retailer_id,
           1 + floor(n.products * pg_temp.rnd(g, 402) ^ 2)::bigint AS product_id,
           1 + floor(5 * pg_temp.rnd(g, 403) ^ 2)::int AS quantity,
           pg_temp.rnd(g, 404) AS u,
           interval '180 days' * (1 - g::float8 / n.orders) AS age
    FROM (SELECT (500000 * :scale)::bigint AS orders,
                 (SELECT count(*) FROM retailers) AS retailers,
                 (SELECT count(*) FROM products) AS products) AS n,
         generate_series(1, n.orders) AS g
) AS o
JOIN products AS p ON p.id = o.product_id;


-- Vendor routing: one round for each of 300,000 orders spread evenly over the order ids.
-- Rounds younger than a day are still 'open'; older ones were 'accepted' (88%) or
-- 'expired'. The winner is the first vendor notified, chosen as n * u^2 so that a few
-- vendors win most rounds. The responses below recompute the same first vendor.
INSERT INTO vendor_routing (id, order_id, product_id, status, vendors_notified,
                            accepted_vendor_id, accepted_at, version, created_at, expires_at)
SELECT r.id,
       o.id,
       o.product_id,
       r.status,
       r.vendors_notified,
       CASE WHEN r.status = 'accepted' THEN r.first_vendor END,
       CASE WHEN r.status = 'accepted'
            THEN o.created_at + interval '1 minute' + interval '2 hours' * pg_temp.rnd(r.id, 504) END,
       CASE WHEN r.status = 'accepted' THEN 1 ELSE 0 END,
       o.created_at + interval '30 seconds',
       o.created_at + interval '1 day'
FROM (
    SELECT g AS id,
           1 + (g - 1) * n.orders / n.routings AS order_id,
           1 + floor(4 * pg_temp.rnd(g, 501))::smallint AS vendors_notified,
           1 + floor(n.vendors * pg_temp.rnd(g, 502) ^ 2)::bigint AS first_vendor,
           CASE WHEN g > n.routings - n.routings / 180 THEN 'open'
                WHEN pg_temp.rnd(g, 503) < 0.88 THEN 'accepted'
                ELSE 'expired' END AS status
    FROM (SELECT (300000 * :scale)::bigint AS routings,
                 (SELECT count(*) FROM orders) AS orders,
                 (SELECT count(*) FROM vendors) AS vendors) AS n,
         generate_series(1, n.routings) AS g
) AS r
JOIN orders AS o ON o.id = r.order_id;


-- Responses: one per notified vendor, consecutive vendor ids starting at the round's
-- first vendor. In an accepted round the first vendor's response is the only 'ACCEPTED'
-- one and the others are 'REJECTED'; in an expired round all are 'REJECTED'; in an open
-- round most are still 'PENDING' (responded_at NULL).
INSERT INTO vendor_routing_responses (routing_id, vendor_id, response, created_at, responded_at)
SELECT s.routing_id,
       1 + (s.first_vendor - 1 + s.i - 1) % s.vendors,
       s.response,
       s.created_at,
       CASE WHEN s.response = 'ACCEPTED' THEN s.accepted_at
            WHEN s.response = 'REJECTED' THEN s.created_at + interval '3 hours' * pg_temp.rnd(s.routing_id * 4 + s.i, 602)
       END
FROM (
    SELECT vr.id AS routing_id,
           i,
           n.vendors,
           1 + floor(n.vendors * pg_temp.rnd(vr.id, 502) ^ 2)::bigint AS first_vendor,  -- as in vendor_routing
           CASE WHEN vr.status = 'accepted' AND i = 1 THEN 'ACCEPTED'
                WHEN vr.status = 'open' AND pg_temp.rnd(vr.id * 4 + i, 601) < 0.7 THEN 'PENDING'
                ELSE 'REJECTED' END AS response,
           vr.created_at,
           vr.accepted_at
    FROM (SELECT count(*) AS vendors FROM vendors) AS n,
         vendor_routing AS vr,
         generate_series(1, vr.vendors_notified::int) AS i
) AS s;


-- Webhooks: one row per incoming message or status callback, each with its own message
-- SID: 'SM' and 32 hex digits from two 64-bit hashes (bit 62 set so each gives exactly 16
-- digits), unique in practice and much cheaper than md5(). The payload is filled into a
-- JSON template (its values need no escaping), which is faster than jsonb_build_object().
-- The account is the sending retailer's sub-account, chosen as n * u^2 (the busiest
-- account sends about 2% of all webhooks). Rows from the last ten minutes are not yet
-- processed; about 0.5% failed.
INSERT INTO webhook_idempotency (id, message_sid, account_sid, event_type, payload,
                                 status, created_at, processed_at)
SELECT w.id,
       'SM' || to_hex(hashint8extended(w.id, 706) | (1::bigint << 62))
            || to_hex(hashint8extended(w.id, 707) | (1::bigint << 62)),
       a.account_sid,
       w.event_type,
       format('{"From": "whatsapp:%s", "NumMedia": %s, "Body": "%s"}',
              a.phone,
              floor(2 * w.u ^ 8)::int,
              CASE WHEN w.event_type = 'message.received'
                   THEN 'ORDER ' || (1 + floor(5000 * w.u)::int) ELSE '' END)::jsonb,
       CASE WHEN w.age < interval '10 minutes' THEN 'received'
            WHEN pg_temp.rnd(w.id, 705) < 0.005 THEN 'failed'
            ELSE 'processed' END,
       timestamptz '2026-01-22 00:00:00+00' - w.age,
       CASE WHEN w.age >= interval '10 minutes'
            THEN timestamptz '2026-01-22 00:00:00+00' - w.age + interval '1 second' * (0.05 + w.u) END
FROM (
    SELECT g AS id,
           1 + floor(n.retailers * pg_temp.rnd(g, 701) ^ 2)::bigint AS retailer_id,
           CASE WHEN pg_temp.rnd(g, 702) < 0.55 THEN 'message.received' ELSE 'message.status' END AS event_type,
           pg_temp.rnd(g, 703) AS u,
           interval '180 days' * (1 - g::float8 / n.webhooks) AS age
    FROM (SELECT (1000000 * :scale)::bigint AS webhooks,
                 (SELECT count(*) FROM retailers) AS retailers) AS n,
         generate_series(1, n.webhooks) AS g
) AS w
JOIN (SELECT id, phone, 'AC' || md5('account-' || id) AS account_sid FROM retailers) AS a
    ON a.id = w.retailer_id;


-- Jobs: the newest 2% are the backlog (mostly 'queued', a few 'running'); older jobs are
-- 'done', with 1.5% 'failed' after five attempts. Priority is 0, 5 or 10.
INSERT INTO jobs (id, queue, state, priority, attempts, payload, last_error,
                  created_at, run_at, locked_at, finished_at)
SELECT j.id,
       j.queue,
       j.state,
       CASE WHEN j.u < 0.80 THEN 0 WHEN j.u < 0.95 THEN 5 ELSE 10 END,
       CASE j.state WHEN 'queued' THEN 0 WHEN 'failed' THEN 5 ELSE 1 END,
       jsonb_build_object('queue', j.queue, 'ref_id', 1 + floor(500000 * pg_temp.rnd(j.id, 804))::int),
       CASE WHEN j.state = 'failed' THEN 'timeout after 30000 ms' END,
       j.created_at,
       j.created_at,
       CASE WHEN j.state = 'running' THEN timestamptz '2026-01-22 00:00:00+00' - interval '5 seconds' END,
       CASE WHEN j.state IN ('done', 'failed') THEN j.created_at + interval '2 seconds' * (0.1 + j.u) END
FROM (
    SELECT g AS id,
           (ARRAY['webhooks', 'webhooks', 'vendor-routing', 'notifications'])
               [1 + floor(4 * pg_temp.rnd(g, 801))::int] AS queue,
           CASE WHEN g > n.jobs - n.jobs / 50
                THEN CASE WHEN pg_temp.rnd(g, 802) < 0.95 THEN 'queued' ELSE 'running' END
                ELSE CASE WHEN pg_temp.rnd(g, 802) < 0.985 THEN 'done' ELSE 'failed' END
           END AS state,
           pg_temp.rnd(g, 803) AS u,
           timestamptz '2026-01-22 00:00:00+00' - interval '180 days' * (1 - g::float8 / n.jobs) AS created_at
    FROM (SELECT (200000 * :scale)::bigint AS jobs) AS n,
         generate_series(1, n.jobs) AS g
) AS j;


-- The ids above were given explicitly: move each identity sequence past them so that
-- the application's own inserts do not collide.
SELECT setval(pg_get_serial_sequence('retailers', 'id'), max(id)) FROM retailers;
SELECT setval(pg_get_serial_sequence('vendors', 'id'), max(id)) FROM vendors;
SELECT setval(pg_get_serial_sequence('products', 'id'), max(id)) FROM products;
SELECT setval(pg_get_serial_sequence('orders', 'id'), max(id)) FROM orders;
SELECT setval(pg_get_serial_sequence('vendor_routing', 'id'), max(id)) FROM vendor_routing;
SELECT setval(pg_get_serial_sequence('webhook_idempotency', 'id'), max(id)) FROM webhook_idempotency;
SELECT setval(pg_get_serial_sequence('jobs', 'id'), max(id)) FROM jobs;

RESET session_replication_role;

ANALYZE;
