CREATE TABLE orders (
  -- Insertion order, for cursors; ids are opaque strings.
  seq              bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
  id               text        PRIMARY KEY,
  customer_id      text        NOT NULL,
  status           text        NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED', 'FULFILLED')),
  reason           text,
  -- The lines as the customer sent them, in the contract's shape: [{product_id, quantity}].
  items            json        NOT NULL,
  idempotency_key  text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  -- When the status last changed.
  updated_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (customer_id, idempotency_key)
);

CREATE INDEX orders_customer ON orders (customer_id, seq);
CREATE INDEX orders_status ON orders (status, seq);
