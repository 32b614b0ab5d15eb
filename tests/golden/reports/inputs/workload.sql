-- name: recent-orders
SELECT id, status, total FROM orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 10;
-- params: SELECT 42
-- name: customer-totals
SELECT c.name, sum(o.total) FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.id = $1 GROUP BY c.name;
-- params: SELECT 7
