-- The rows a reservation writes for every line carry no foreign keys any more (docs/decisions.md,
-- "The reservation's rows are checked by their writer"). PostgreSQL checks a foreign key with a
-- trigger and a query per inserted row: five per reserved line here, about a third of
-- PostgreSQL's CPU per order draining a backlog. Each of these rows is written in one statement
-- with what it refers to (the held line with its allocations and ledger rows, under the product's
-- lock, from the levels read under that lock), so the writer already holds what the checks
-- looked up again.
ALTER TABLE reservations DROP CONSTRAINT reservations_product_id_fkey;
ALTER TABLE reservation_allocations
  DROP CONSTRAINT reservation_allocations_location_id_fkey,
  DROP CONSTRAINT reservation_allocations_order_id_product_id_fkey;
ALTER TABLE stock_movements
  DROP CONSTRAINT stock_movements_product_id_fkey,
  DROP CONSTRAINT stock_movements_location_id_fkey;

-- What the keys also kept: the rows they refer to stay. Nothing deletes a product, a location or a
-- held line (a held line ends RELEASED or SOLD), so a deletion is refused outright, by hand included.
CREATE FUNCTION refuse_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% rows are never deleted: reservations and the stock ledger refer to them', TG_TABLE_NAME
    USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER products_never_deleted BEFORE DELETE OR TRUNCATE ON products
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_deletion();
CREATE TRIGGER stock_locations_never_deleted BEFORE DELETE OR TRUNCATE ON stock_locations
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_deletion();
CREATE TRIGGER reservations_never_deleted BEFORE DELETE OR TRUNCATE ON reservations
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_deletion();
