-- 0005: a post put back to `scheduled` by a long rate limit has a time to go out
-- (next_attempt_at) even when the user never scheduled it (scheduled_for NULL).
ALTER TABLE social_posts DROP CONSTRAINT social_posts_scheduled_has_time;
ALTER TABLE social_posts ADD CONSTRAINT social_posts_scheduled_has_time CHECK (
    status <> 'scheduled' OR scheduled_for IS NOT NULL OR next_attempt_at IS NOT NULL);
