-- 0021: webhook_attempts are found by their delivery.
--
-- Pruning events deletes their deliveries, and each deleted delivery cascades to its
-- attempts (ON DELETE CASCADE on delivery_id): without an index on delivery_id every one
-- of them scanned the whole attempt log, 30 days of it. The index on event_id had no
-- reader (the log is listed by endpoint; events reach attempts through deliveries).

CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id);
DROP INDEX webhook_attempts_event_idx;
