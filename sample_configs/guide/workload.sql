-- The application's query mix against schema.sql, as its database driver sends it:
-- one statement per query, with $1, $2 ... parameters.
--
-- Format, for the workload loader:
--   -- name: <kebab-name>      starts a query; the statement follows and ends with ';'.
--   -- params: <SQL>           follows the statement: a query that returns one row of
--                              sample values for $1, $2 ... (in column order) from the data
--                              loaded by data.sql, at any scale. A runner may change its
--                              OFFSET to draw other rows (the rows near the starting id
--                              pick busy accounts and retailers in proportion to their
--                              traffic). A bare "SELECT" returns one row with no columns:
--                              the query takes no parameters.
--
-- Every query here is served by one of the guide's indexes (add-indexes.sql), so on the
-- schema as shipped each of them scans its whole table.


-- name: webhook-dedup-lookup
-- Before processing a webhook: has this message SID been seen already?
-- Served by idx_webhook_idempotency_message_sid (a unique index would also enforce it).
SELECT id, status FROM webhook_idempotency WHERE message_sid = $1 LIMIT 1;
-- params: SELECT message_sid FROM webhook_idempotency WHERE id >= (SELECT max(id) / 3 FROM webhook_idempotency) ORDER BY id OFFSET 0 LIMIT 1


-- name: webhook-recent-by-account
-- The latest webhooks of one messaging account.
-- Served by idx_webhook_idempotency_account_sid_timestamp.
SELECT id, message_sid, event_type, created_at FROM webhook_idempotency
WHERE account_sid = $1 ORDER BY created_at DESC LIMIT 20;
-- params: SELECT account_sid FROM webhook_idempotency WHERE id >= (SELECT max(id) / 2 FROM webhook_idempotency) ORDER BY id OFFSET 0 LIMIT 1


-- name: routing-responses
-- All vendor responses in one routing round.
-- Served by idx_vendor_routing_responses_routing_id.
SELECT id, vendor_id, response, responded_at FROM vendor_routing_responses WHERE routing_id = $1;
-- params: SELECT id FROM vendor_routing WHERE id >= (SELECT max(id) / 2 FROM vendor_routing) ORDER BY id OFFSET 0 LIMIT 1


-- name: routing-accepted-response
-- Has a vendor already won this routing round?
-- Served by idx_vendor_routing_responses_routing_response (partial, response = 'ACCEPTED').
SELECT id, vendor_id, responded_at FROM vendor_routing_responses
WHERE routing_id = $1 AND response = 'ACCEPTED';
-- params: SELECT id FROM vendor_routing WHERE id >= (SELECT max(id) / 3 FROM vendor_routing) ORDER BY id OFFSET 0 LIMIT 1


-- name: retailer-recent-orders
-- A retailer's latest orders.
-- Served by idx_orders_retailer_created.
SELECT id, product_id, quantity, status, total_cents, created_at FROM orders
WHERE retailer_id = $1 ORDER BY created_at DESC LIMIT 50;
-- params: SELECT retailer_id FROM orders WHERE id >= (SELECT max(id) / 2 FROM orders) ORDER BY id OFFSET 0 LIMIT 1


-- name: orders-by-status
-- The newest orders in one status ('pending' is the rare, operational one).
-- Served by idx_orders_status_created.
SELECT id, retailer_id, total_cents, created_at FROM orders
WHERE status = $1 ORDER BY created_at DESC LIMIT 50;
-- params: SELECT 'pending' AS status


-- name: job-queue-claim
-- A worker claims the next ten jobs, skipping jobs other workers hold.
-- Served by idx_jobs_state_priority.
SELECT id FROM jobs WHERE state = 'queued'
ORDER BY priority DESC, created_at LIMIT 10 FOR UPDATE SKIP LOCKED;
-- params: SELECT
