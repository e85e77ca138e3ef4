-- 0003: PostForMe tells a post's platform ids only after accepting it; the results sweep
-- finds the posted targets still waiting. results_known ends the wait either way (ids
-- filled, or the platform refused after acceptance). Only waiting rows are indexed.
ALTER TABLE post_targets ADD COLUMN results_known BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX post_targets_awaiting_ids_idx ON post_targets (updated_at)
    WHERE status = 'posted' AND platform_post_id IS NULL AND NOT results_known
      AND provider_post_id IS NOT NULL;
