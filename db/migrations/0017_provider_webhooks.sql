-- 0017: where each provider sends us its webhooks (`socialpost hooks register`).
--   url         our endpoint as registered with the provider
--   webhook_id  the provider's id of the registration (to find or remove it there)
--   secret_enc  the endpoint's secret, Fernet-encrypted as stored API keys are:
--               PostForMe's (it makes it) or LATE's (we make it); the API accepts it
--               besides POSTFORME_WEBHOOK_SECRET / LATE_WEBHOOK_SECRET
CREATE TABLE provider_webhooks (
    provider       TEXT PRIMARY KEY CHECK (provider IN ('postforme', 'late')),
    url            TEXT NOT NULL,
    webhook_id     TEXT,
    secret_enc     TEXT NOT NULL,
    registered_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
