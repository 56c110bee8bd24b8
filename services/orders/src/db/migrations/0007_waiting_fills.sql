-- A BackorderFilled may overtake its order's StockReserved (the Inventory Service's relays publish
-- their outbox rows in no promised order): it is recorded in the inbox at once, with its items
-- kept here until the reservation brings the lines they fill. NULL: applied, or dropped (its order
-- unknown or already over), or recorded before fills could wait. applied_at is when it was received.
ALTER TABLE backorder_fills ADD COLUMN waiting_items jsonb;
-- Read when an order with backordered units is confirmed: only the few fills waiting are indexed.
CREATE INDEX backorder_fills_waiting ON backorder_fills (order_id) WHERE waiting_items IS NOT NULL;
