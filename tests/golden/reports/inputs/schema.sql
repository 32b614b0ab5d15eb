-- The report fixtures' database (tests/test_report_goldens.py): a foreign key without an index, a
-- duplicate index, a table without a primary key, and a workload that an index on orders (customer_id, created_at) serves.
CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers (id),
                     status text NOT NULL, created_at timestamptz NOT NULL, total numeric(10, 2));
CREATE TABLE order_notes (order_id integer, note text);
CREATE INDEX orders_status ON orders (status);
CREATE INDEX orders_status_again ON orders (status);
INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 200) g;
INSERT INTO orders SELECT g, g % 200 + 1, (ARRAY['new', 'paid', 'shipped', 'pending'])[g % 4 + 1],
                          timestamptz '2026-01-01 00:00+00' + g * interval '1 hour', g % 500
FROM generate_series(1, 12000) g;
ANALYZE;
