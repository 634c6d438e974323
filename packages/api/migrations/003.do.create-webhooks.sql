-- Webhook endpoints, their deliveries and every attempt, shared by the API (which manages
-- endpoints and reads the log) and the notifier (which enqueues and sends).
CREATE TABLE webhooks (
  id                         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  owner                      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  url                        text        NOT NULL,
  description                text        NOT NULL DEFAULT '',
  -- Rule ids this endpoint wants alerts of (any visible rule when NULL). No foreign key: the
  -- built-in rule is never stored, and a deleted rule simply matches nothing any more.
  rules                      text[],
  enabled                    boolean     NOT NULL DEFAULT true,
  disabled_reason            text,
  disabled_at                timestamptz,
  -- Secrets must sign, so they are stored as issued (whsec_...), not hashed. During a rotation's
  -- overlap the previous one signs too, until it expires.
  secret                     text        NOT NULL,
  previous_secret            text,
  previous_secret_expires_at timestamptz,
  -- Failed attempts in a row, and when the first of them happened (NULL after a success).
  consecutive_failures       integer     NOT NULL DEFAULT 0,
  failing_since              timestamptz,
  created_at                 timestamptz NOT NULL DEFAULT now(),
  updated_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_owner_idx ON webhooks (owner, created_at, id);

-- One row per (endpoint, alert): the unique key makes enqueueing idempotent, so a batch of alerts
-- consumed twice enqueues nothing twice, and its id is the stable `webhook-id` of every attempt.
CREATE TABLE webhook_deliveries (
  id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  endpoint_id     uuid        NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  -- The alert's id (its detection id), or ping_<uuid> for a test event.
  alert_id        text        NOT NULL,
  kind            text        NOT NULL DEFAULT 'alert' CHECK (kind IN ('alert', 'ping')),
  -- The exact JSON text signed and sent: the alert as the endpoint's owner may see it.
  body            text        NOT NULL,
  state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts        integer     NOT NULL DEFAULT 0,
  -- When a pending delivery is due. A notifier that takes it moves this past its own deadline
  -- (a lease): if it dies, the delivery becomes due again there.
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_attempt_at timestamptz,
  last_status     integer,
  last_latency_ms integer,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  delivered_at    timestamptz,
  CONSTRAINT webhook_deliveries_endpoint_alert_key UNIQUE (endpoint_id, alert_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (endpoint_id, next_attempt_at)
  WHERE state = 'pending';
CREATE INDEX webhook_deliveries_log_idx ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);

CREATE TABLE webhook_attempts (
  id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id  uuid        NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
  attempted_at timestamptz NOT NULL,
  status       integer,
  latency_ms   integer     NOT NULL,
  error        text
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);
