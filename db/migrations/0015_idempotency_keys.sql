-- 0015: Idempotency-Key of POST /v1/posts (api/idempotency.py), scoped to the post's user.
--   request_hash  sha256 of the canonical request body: the same key with another body
--                 is refused (409) instead of answered with another request's outcome
--   status_code / response  the original answer, replayed for a repeat; NULL while the
--                 first request runs (a repeat then runs again: the post id is derived
--                 from the key, so running twice stores and sends one post)
CREATE TABLE api_idempotency_keys (
    user_id       UUID NOT NULL,
    key           TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash  TEXT NOT NULL,
    status_code   INTEGER,
    response      JSONB,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX api_idempotency_keys_created ON api_idempotency_keys (created_at);
