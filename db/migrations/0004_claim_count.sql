-- 0004: the per-post delivery counter was named `attempts`, which get_post also uses for
-- the post's attempt log (post_attempts rows); the counter gets a name of its own.
ALTER TABLE social_posts RENAME COLUMN attempts TO claim_count;
