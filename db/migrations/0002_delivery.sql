-- 0002: what the delivery engine keeps between attempts, so any worker can take over.
--   step_attempts      attempts on the current failover step (the retry budget is per step)
--   needs_reconcile    an earlier send may have landed: look it up before sending again
--   handed_to_provider the provider's own scheduler holds it (seed create_post with
--                      scheduled_for); our releaser must leave it alone

ALTER TABLE social_posts
    ADD COLUMN step_attempts INT NOT NULL DEFAULT 0,
    ADD COLUMN needs_reconcile BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN handed_to_provider BOOLEAN NOT NULL DEFAULT false,
    ALTER COLUMN step SET DEFAULT 0;
UPDATE social_posts SET step = 0 WHERE step IS NULL;

-- A scheduled post is due at next_attempt_at when a rate limit deferred it, else at
-- scheduled_for. Same partial-index idea as 0001: cost grows with what is due.
DROP INDEX social_posts_due_idx;
CREATE INDEX social_posts_due_idx ON social_posts ((COALESCE(next_attempt_at, scheduled_for)))
    WHERE status = 'scheduled' AND NOT handed_to_provider;
