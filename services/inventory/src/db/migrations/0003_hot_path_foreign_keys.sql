-- The rows a reservation writes for every line carry no foreign keys any more (docs/decisions.md,
-- "The reservation's rows are checked by their writer"). PostgreSQL checks a foreign key with a
-- trigger and a query per inserted row: five per reserved line here, about a third of
-- PostgreSQL's CPU per order draining a backlog. The reservation writes these rows in one
-- statement from the product and levels it has locked, and that statement checks that it moved
-- every product and level its rows name (a level's product and location exist: stock_levels
-- keeps its keys); the other writers copy the ids of rows they have locked or read in the same
-- transaction.
--
-- Every lock it needs first, products first as a reservation takes them, within 400 ms for all
-- five: a lock held while the next one is waited for keeps the live traffic on its table waiting
-- too, and the runner bounds each wait, not their sum. Past it, the migration gives way and is
-- tried again (packages/db/src/migrate.ts).
SET LOCAL statement_timeout = 400;
DO $$
BEGIN
  LOCK TABLE products, stock_locations, reservations, reservation_allocations, stock_movements IN ACCESS EXCLUSIVE MODE;
EXCEPTION WHEN query_canceled THEN
  -- The runner tries a migration again after lock_not_available, not after a cancel.
  RAISE EXCEPTION 'gave way to live traffic: %', SQLERRM USING ERRCODE = 'lock_not_available';
END
$$;
SET LOCAL statement_timeout = DEFAULT;
ALTER TABLE reservations DROP CONSTRAINT reservations_product_id_fkey;
ALTER TABLE reservation_allocations
  DROP CONSTRAINT reservation_allocations_location_id_fkey,
  DROP CONSTRAINT reservation_allocations_order_id_product_id_fkey;
ALTER TABLE stock_movements
  DROP CONSTRAINT stock_movements_product_id_fkey,
  DROP CONSTRAINT stock_movements_location_id_fkey;

-- What the keys also kept: a row referred to stays, under the key it is referred to by. Nothing
-- deletes a product, a location or a held line (a held line ends RELEASED or SOLD), and no id
-- changes, so both are refused outright, by hand included. Statement triggers, and an UPDATE OF
-- trigger fires only when its columns are set: the hot path pays nothing for them.
CREATE FUNCTION refuse_removal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    RAISE EXCEPTION 'the ids in % never change: reservations and the stock ledger refer to them', TG_TABLE_NAME
      USING ERRCODE = 'restrict_violation';
  END IF;
  RAISE EXCEPTION '% rows are never deleted: reservations and the stock ledger refer to them', TG_TABLE_NAME
    USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER products_kept BEFORE DELETE OR TRUNCATE OR UPDATE OF id ON products
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_removal();
CREATE TRIGGER stock_locations_kept BEFORE DELETE OR TRUNCATE OR UPDATE OF id ON stock_locations
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_removal();
CREATE TRIGGER reservations_kept BEFORE DELETE OR TRUNCATE OR UPDATE OF order_id, product_id ON reservations
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_removal();
CREATE TRIGGER reservation_allocations_kept BEFORE UPDATE OF order_id, product_id, location_id ON reservation_allocations
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_removal();
CREATE TRIGGER stock_movements_kept BEFORE UPDATE OF product_id, location_id ON stock_movements
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_removal();
