-- 0007: exactly once across takeovers.
--   send_started_at  set, with a fresh lease, by the one statement that runs right before a
--                    provider create; cleared when the attempt is recorded. A post taken over
--                    with it set may have been created: the taker looks it up first. Without
--                    it, nothing was sent, so a redelivered message may send at once.
ALTER TABLE social_posts ADD COLUMN send_started_at TIMESTAMPTZ;
--   open_claims      claims since the last recorded attempt: each attempt that crashed or
--                    was cut off (a bug, a hard time limit, a killed worker) leaves one.
--                    Past SOCIALPOST_MAX_CRASHED_ATTEMPTS the post ends (poison post).
ALTER TABLE social_posts ADD COLUMN open_claims INT NOT NULL DEFAULT 0;
