-- 0012: webhook endpoints, one delivery per (event, endpoint), one log row per attempt.
--
-- A delivery is a small state machine in PostgreSQL (`pending` -> `delivered` | `failed`)
-- driven by beat: due deliveries are leased (`lease_until`) and sent as one Celery task
-- per attempt, so a lost message or a killed worker only delays the next attempt.

CREATE TABLE webhook_endpoints (
    id                   UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id              UUID,            -- NULL: every user's events
    url                  TEXT NOT NULL,
    event_types          TEXT[],          -- globs (`post.*`); NULL: every post event
    encrypted_secret     TEXT NOT NULL,   -- `whsec_…`, Fernet-encrypted like API keys
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    consecutive_failures INT NOT NULL DEFAULT 0,
    failing_since        TIMESTAMPTZ,     -- first failure since the last success
    last_success_at      TIMESTAMPTZ,
    disabled_at          TIMESTAMPTZ,
    disabled_reason      TEXT
);
CREATE INDEX webhook_endpoints_user_idx ON webhook_endpoints (user_id);

CREATE TABLE webhook_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    event_id        UUID NOT NULL REFERENCES post_events (id) ON DELETE CASCADE,
    endpoint_id     UUID NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    status          TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_until     TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (event_id, endpoint_id)
);
-- Beat's walk: pending deliveries by due time (only those are indexed).
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, id);

CREATE TABLE webhook_attempts (
    id          BIGSERIAL PRIMARY KEY,
    delivery_id BIGINT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    event_id    UUID NOT NULL,
    endpoint_id UUID NOT NULL,
    attempt     INT NOT NULL,
    ok          BOOLEAN NOT NULL,
    http_status INT,
    latency_ms  INT,
    response    TEXT,                     -- the answer's first bytes, or why none came
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_attempts_endpoint_idx ON webhook_attempts (endpoint_id, id DESC);
CREATE INDEX webhook_attempts_event_idx ON webhook_attempts (event_id);
