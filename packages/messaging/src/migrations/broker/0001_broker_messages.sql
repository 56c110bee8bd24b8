-- The embedded mode's broker (the in-process transport) keeps here what it holds rather than
-- hands to a consumer at once, so that a restart of `npm start` loses none of it: messages waiting
-- in a queue no consumer takes from (due_at NULL; a dead-letter queue's are its parked messages),
-- and messages waiting in a retry queue until due_at, when they go through the default exchange to
-- routing_key, their queue. A row is deleted only once its consumer has handled it; a parked one
-- once its replay has.
CREATE TABLE broker_messages (
  id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- The queue holding the message.
  queue       text        NOT NULL,
  exchange    text        NOT NULL,
  routing_key text        NOT NULL,
  message_id  text,
  headers     json        NOT NULL,
  -- The body as it was given: a Buffer or a string goes out as it is, anything else as JSON.
  body_type   text        NOT NULL CHECK (body_type IN ('buffer', 'string', 'json')),
  body        bytea       NOT NULL,
  -- The time, not the delay left: after a restart a message is due when it was always due.
  due_at      timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX broker_messages_queue ON broker_messages (queue, id);
