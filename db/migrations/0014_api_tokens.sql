-- 0014: bearer tokens of the HTTP API (api/, `socialpost tokens`).
--   token_hash  sha256 of the token (the token itself is printed once and never stored:
--               it is 32 random bytes, so a plain digest cannot be brute-forced)
--   prefix      the token's first characters, to tell tokens apart in `tokens list`
--   admin       may act for every user and manage webhooks and tokens
--   user_ids    the users a scoped token reads and writes for (empty for admin tokens)
CREATE TABLE api_tokens (
    id           UUID PRIMARY KEY,
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_hash   BYTEA NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    admin        BOOLEAN NOT NULL DEFAULT false,
    user_ids     UUID[] NOT NULL DEFAULT '{}',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    CHECK (admin OR cardinality(user_ids) > 0)
);
