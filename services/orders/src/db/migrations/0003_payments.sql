-- Payment and holds that expire (step 9). A CONFIRMED order holds its units until
-- payment_due_at; paid, it is PAID until fulfilled. Prices come with StockReserved.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
  CHECK (status IN ('PENDING', 'CONFIRMED', 'PAID', 'CANCELLED', 'FULFILLED'));
-- The reserved lines with their unit prices, as StockReserved carried them.
ALTER TABLE orders ADD COLUMN priced_items json;
-- NULL while PENDING, and when a line had no price (such an order cannot be paid).
ALTER TABLE orders ADD COLUMN total_cents integer;
ALTER TABLE orders ADD COLUMN currency text;
-- NULL when payments are off (PAYMENT_HOLD_SECONDS=0) or before confirmation.
ALTER TABLE orders ADD COLUMN payment_due_at timestamptz;
ALTER TABLE orders ADD COLUMN paid_at timestamptz;
-- When the order was cancelled because its hold ran out (NULL for any other cancellation).
ALTER TABLE orders ADD COLUMN expired_at timestamptz;

-- The expiry sweep reads only the holds that can still expire, soonest first: a flash sale
-- leaves tens of thousands due in the same minute, and the rest of the table is never read.
CREATE INDEX orders_payment_due ON orders (payment_due_at) WHERE status = 'CONFIRMED' AND payment_due_at IS NOT NULL;
-- The expired orders the dashboard counts every few seconds, without reading every cancelled one.
CREATE INDEX orders_expired ON orders (customer_id) WHERE expired_at IS NOT NULL;

-- Every payment attempt, keyed by the payment service's id: a repeat changes nothing.
CREATE TABLE payments (
  payment_id    text        PRIMARY KEY,
  order_id      text        NOT NULL,
  -- NULL for a failed attempt (PaymentFailed carries no amount).
  amount_cents  integer,
  currency      text,
  -- PAID: the money pays the order; FAILED: no money was taken; REFUND_REQUESTED: money taken
  -- that the order cannot keep, asked back with RefundRequested.
  outcome       text        NOT NULL CHECK (outcome IN ('PAID', 'FAILED', 'REFUND_REQUESTED')),
  reason        text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_order ON payments (order_id, created_at, payment_id);
