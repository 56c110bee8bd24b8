-- When the Inventory Service's answer decided this order (NULL while PENDING, for an order
-- cancelled before any answer, and for orders decided before this column). The repair measures
-- how long answers take now from the latest of them: a PENDING order younger than that may only
-- be waiting its turn, and is not sent again (see reconcilePendingOrders).
ALTER TABLE orders ADD COLUMN decided_at timestamptz;
CREATE INDEX orders_decided ON orders (decided_at) WHERE decided_at IS NOT NULL;
