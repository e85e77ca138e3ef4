-- 0008: confirmed outcomes. A target the provider took but the platform has not answered
-- for is `accepted` (not final); its post stays `publishing`, with no lease, until every
-- target is final. Beat's confirmation sweep polls the providers for them.
--   accepted_at   when the provider took it (SOCIALPOST_ACCEPTED_DEADLINE counts from here)
--   published_at  the platform's publish time, as the provider reports it
--   checked_at    the sweep's last look, so a batch goes to the targets waited on longest
ALTER TABLE post_targets DROP CONSTRAINT post_targets_status_check;
ALTER TABLE post_targets ADD CONSTRAINT post_targets_status_check CHECK (
    status IN ('pending', 'accepted', 'posted', 'failed', 'unconfirmed', 'cancelled'));
ALTER TABLE post_targets
    ADD COLUMN accepted_at TIMESTAMPTZ,
    ADD COLUMN published_at TIMESTAMPTZ,
    ADD COLUMN checked_at TIMESTAMPTZ;
CREATE INDEX post_targets_accepted_idx ON post_targets (checked_at NULLS FIRST)
    WHERE status = 'accepted';
-- LATE may report a failure after a success: posted LATE targets are looked at again for a
-- while (SOCIALPOST_REVISION_WINDOW), found through this index rather than a scan.
CREATE INDEX post_targets_late_posted_idx ON post_targets (updated_at)
    WHERE status = 'posted' AND provider = 'late';
-- Posts sent and waiting for the platforms' answers: `publishing` with no lease. The
-- confirmation sweep also finds, through this index, any such post left with nothing to
-- wait for (a worker's record racing a confirmation) and settles it.
CREATE INDEX social_posts_awaiting_idx ON social_posts (updated_at)
    WHERE status = 'publishing' AND lease_owner IS NULL;
