-- 0010: flow control.
--   paced_since  when the post began waiting for a permit on its current step (our own
--                pacing of the provider key, the provider's Retry-After, an open circuit);
--                cleared by any other outcome. Past SOCIALPOST_RATE_LIMIT_MAX_WAIT the
--                post falls over to the next step: a wait is proof nothing was created.
ALTER TABLE social_posts ADD COLUMN paced_since TIMESTAMPTZ;
