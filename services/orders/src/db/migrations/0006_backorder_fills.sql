-- The inbox of BackorderFilled: each event_id applied once, whoever delivered it and however
-- often (a fill lowers a line's backordered units: applied twice, it would lower them twice).
CREATE TABLE backorder_fills (
  event_id    text        PRIMARY KEY,
  order_id    text        NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now()
);
