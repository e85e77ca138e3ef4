-- 0019: per-platform content and options, platform -> {content?, media_urls?, thread?,
-- first_comment?, options...} in our words (providers.content), kept with the post so
-- every retry and failover step sends the same. NULL: none; each platform publishes the
-- common content and media.
ALTER TABLE social_posts ADD COLUMN overrides JSONB;
ALTER TABLE social_posts ADD CONSTRAINT social_posts_overrides_object CHECK (
    overrides IS NULL OR jsonb_typeof(overrides) = 'object');
