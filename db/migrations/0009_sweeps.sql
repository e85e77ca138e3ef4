-- 0009: the confirmation sweep takes each provider's accepted targets apart (one
-- provider's backlog must not crowd the other out of a batch), oldest-checked first: this
-- index serves `provider = $1 AND status = 'accepted' ORDER BY checked_at NULLS FIRST`
-- and replaces 0008's index on checked_at alone.
CREATE INDEX post_targets_accepted_by_provider_idx
    ON post_targets (provider, checked_at NULLS FIRST)
    WHERE status = 'accepted';
DROP INDEX post_targets_accepted_idx;
