-- When the repair (npm run reconcile, or the reconcilePendingOrders mutation) last sent this
-- PENDING order's OrderCreated again: the next run leaves it alone for the same threshold, and
-- concurrent runs on several instances never send one order twice.
ALTER TABLE orders ADD COLUMN republished_at timestamptz;
