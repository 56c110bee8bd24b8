-- The transactional outbox: a service writes the events it owes in the same transaction as the
-- state change that caused them; the relay publishes them with confirms and marks them published.
CREATE TABLE outbox (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  exchange      text        NOT NULL,
  routing_key   text        NOT NULL,
  message_id    text        NOT NULL,
  -- json, not jsonb: the body goes on the wire exactly as written, keys in contract order.
  payload       json        NOT NULL,
  headers       json,
  created_at    timestamptz NOT NULL DEFAULT now(),
  published_at  timestamptz,
  -- A relay instance holds a row while it publishes it; an expired claim (the instance died) is
  -- taken over by another.
  claimed_until timestamptz,
  attempts      integer     NOT NULL DEFAULT 0,
  last_error    text
);

CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;
