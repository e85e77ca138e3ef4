-- 0001: the seed's two tables (every column and type it names) and the ledger around them.
-- Status values here must match db/states.py (tests/test_db_migrations.py checks they do);
-- which transitions are allowed is decided there, not here.

CREATE TABLE user_social_credentials (
    user_id             UUID NOT NULL,
    provider            TEXT NOT NULL CHECK (provider IN ('postforme', 'late')),
    encrypted_api_key   TEXT NOT NULL,
    connected_platforms TEXT[],
    updated_at          TIMESTAMPTZ DEFAULT now(),
    invalid_at          TIMESTAMPTZ,
    invalid_reason      TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, provider)
);

CREATE TABLE social_posts (
    id                  UUID DEFAULT gen_random_uuid() PRIMARY KEY,
    user_id             UUID NOT NULL,
    provider            TEXT,
    provider_post_id    TEXT,
    platforms           TEXT[],
    platform_post_ids   JSONB,
    platform_post_urls  JSONB,
    content             TEXT,
    media_urls          TEXT[],
    scheduled_for       TIMESTAMPTZ,
    posted_at           TIMESTAMPTZ,
    status              TEXT NOT NULL DEFAULT 'queued',
    error_message       TEXT,
    campaign_id         UUID,
    batch_number        INTEGER,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- worker columns
    platform_options    JSONB,
    lease_owner         TEXT,
    lease_expires_at    TIMESTAMPTZ,
    queued_at           TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at         TIMESTAMPTZ,
    attempts            INT NOT NULL DEFAULT 0,
    step                INT,
    next_attempt_at     TIMESTAMPTZ,
    CONSTRAINT social_posts_status_check CHECK (status IN (
        'scheduled', 'queued', 'publishing', 'posted', 'partial',
        'failed', 'unconfirmed', 'cancelled')),
    CONSTRAINT social_posts_scheduled_has_time CHECK (
        status <> 'scheduled' OR scheduled_for IS NOT NULL),
    CONSTRAINT social_posts_batch_number_positive CHECK (batch_number IS NULL OR batch_number > 0)
);

-- Due scheduled posts: the releaser walks this in scheduled_for order and stops at
-- LIMIT, so its cost grows with the number due, not the size of the table.
CREATE INDEX social_posts_due_idx ON social_posts (scheduled_for)
    WHERE status = 'scheduled';
-- The recovery sweep: only in-flight rows are indexed, so the index stays small.
CREATE INDEX social_posts_active_idx ON social_posts (status, queued_at, lease_expires_at)
    WHERE status IN ('queued', 'publishing');
-- History, newest first with a (created_at, id) keyset cursor.
CREATE INDEX social_posts_history_idx ON social_posts (user_id, created_at DESC, id DESC);
CREATE INDEX social_posts_campaign_idx ON social_posts (campaign_id, batch_number)
    WHERE campaign_id IS NOT NULL;

CREATE TABLE post_targets (
    post_id            UUID NOT NULL REFERENCES social_posts (id) ON DELETE CASCADE,
    platform           TEXT NOT NULL,
    status             TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'posted', 'failed', 'unconfirmed', 'cancelled')),
    provider           TEXT CHECK (provider IN ('postforme', 'late')),
    credential_source  TEXT CHECK (credential_source IN ('user', 'global')),
    provider_post_id   TEXT,
    platform_post_id   TEXT,
    platform_post_url  TEXT,
    error              TEXT,
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, platform)
);

CREATE TABLE post_attempts (
    id                 BIGSERIAL PRIMARY KEY,
    post_id            UUID NOT NULL REFERENCES social_posts (id) ON DELETE CASCADE,
    step               SMALLINT,
    provider           TEXT,
    credential_source  TEXT CHECK (credential_source IN ('user', 'global')),
    platforms          TEXT[],
    idempotency_key    TEXT,
    http_status        INT,
    latency_ms         INT,
    outcome            TEXT,
    error              TEXT,
    provider_post_id   TEXT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX post_attempts_post_idx ON post_attempts (post_id, id);

CREATE TABLE campaigns (
    id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id            UUID NOT NULL,
    name               TEXT NOT NULL,
    creative_calendar  JSONB NOT NULL DEFAULT '{"batches": []}'::jsonb,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX campaigns_user_idx ON campaigns (user_id, created_at DESC);
