-- The guide's write paths as its application sends them (performance-tuning-guide.md, "Vendor Race
-- Condition Issues"), one statement per query with $1, $2 ... parameters, in the order one request
-- runs them. Not part of the benchmark workload (workload.sql): these statements write.
--
-- The vendor accept reads whether the routing already has an ACCEPTED response, then inserts one:
-- without the partial unique index (unique_routing_acceptance) two vendors can both win.
-- The webhook handler looks the message SID up, then records it: without a unique index a retried
-- delivery is processed twice. The routing update is the guide's optimistic locking (version).


-- name: accept-check
SELECT id FROM vendor_routing_responses WHERE routing_id = $1 AND response = 'ACCEPTED';

-- name: accept-insert
INSERT INTO vendor_routing_responses (routing_id, vendor_id, response, responded_at)
VALUES ($1, $2, 'ACCEPTED', now());

-- name: accept-routing
-- prisma.vendorRouting.update({ where: { id, _version }, data: { acceptedVendorId, _version: { increment: 1 } } })
UPDATE vendor_routing SET accepted_vendor_id = $1, accepted_at = now(), status = 'accepted', version = version + 1
WHERE id = $2 AND version = $3;

-- name: webhook-dedup-lookup
SELECT id, status FROM webhook_idempotency WHERE message_sid = $1 LIMIT 1;

-- name: webhook-record
INSERT INTO webhook_idempotency (message_sid, account_sid, event_type, payload)
VALUES ($1, $2, $3, $4);
