-- 0016: provider webhooks in (issue 14, `POST /hooks/postforme`, `POST /hooks/late`).
--   provider_events  each verified provider event taken, by the provider's own id (LATE's
--                    X-Zernio-Event-Id, the same on every retry; PostForMe's result id,
--                    data.id, since it sends no event id): a retry changes nothing.
--                    Pruned after a week by the recovery sweep (both providers give up
--                    retrying long before).
CREATE TABLE provider_events (
    provider     TEXT NOT NULL CHECK (provider IN ('postforme', 'late')),
    event_id     TEXT NOT NULL CHECK (length(event_id) BETWEEN 1 AND 200),
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);
CREATE INDEX provider_events_received_idx ON provider_events (received_at);

-- A webhook names the provider's post: its targets are found without a scan.
CREATE INDEX post_targets_provider_post_idx ON post_targets (provider, provider_post_id)
    WHERE provider_post_id IS NOT NULL;
