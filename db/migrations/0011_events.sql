-- 0011: the outbox of post events, written by the database itself.
--
-- Triggers write an event in the very statement that changes a post or a target, so an
-- event exists exactly when its change committed: none lost (a worker dying right after
-- the change leaves the event for the dispatcher), none invented (a rolled-back change
-- takes its event with it). Every statement that moves a post (db/delivery.py record,
-- db/confirmations.py apply/finish, db/posts.py insert/cancel, db/recovery.py, the seed
-- service) is covered without each having to remember it.
--
--   post.posted | post.partial | post.failed | post.unconfirmed | post.cancelled
--       the post became final (an insert as `failed`: a request refused at intake)
--   post.revised        a final post's outcome changed by a later provider report
--   post.target.posted | post.target.failed   one platform's outcome
--
-- `data` is a snapshot of the post and its targets at that moment (to_jsonb of the rows);
-- db/post_view.py turns it into the document producers see. `dispatched_at` is set when
-- the dispatcher has fanned the event out to webhook deliveries and Celery callbacks.

ALTER TABLE social_posts
    ADD COLUMN notify_task TEXT,   -- a producer's Celery task, sent each final event
    ADD COLUMN notify_queue TEXT;  -- ...on this queue (None: the task's default routing)

CREATE TABLE post_events (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    post_id       UUID,            -- no foreign key: an event outlives a deleted post;
    user_id       UUID,            -- both NULL for a `ping` (socialpost webhooks test)
    type          TEXT NOT NULL,
    data          JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    dispatched_at TIMESTAMPTZ
);
-- The dispatcher's work: undispatched events only, oldest first (stays small).
CREATE INDEX post_events_undispatched_idx ON post_events (created_at)
    WHERE dispatched_at IS NULL;
CREATE INDEX post_events_post_idx ON post_events (post_id, created_at);
CREATE INDEX post_events_created_idx ON post_events (created_at);

-- The post and its targets (platform order) as one JSON snapshot.
CREATE FUNCTION social_post_snapshot(p social_posts) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(p) || jsonb_build_object('targets', COALESCE(
        (SELECT jsonb_agg(to_jsonb(t) - 'post_id'
                          ORDER BY array_position(p.platforms, t.platform), t.platform)
           FROM post_targets t WHERE t.post_id = p.id), '[]'::jsonb))
$$;

CREATE FUNCTION social_post_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    finals CONSTANT text[] := ARRAY['posted', 'partial', 'failed', 'unconfirmed',
                                    'cancelled'];
    kind text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status = ANY(finals) THEN
            kind := 'post.' || NEW.status;
        END IF;
    ELSIF NEW.status = ANY(finals) AND NOT (OLD.status = ANY(finals)) THEN
        kind := 'post.' || NEW.status;
    ELSIF OLD.status = ANY(finals) AND NEW.status = ANY(finals)
          AND (OLD.status, OLD.platform_post_ids, OLD.platform_post_urls, OLD.error_message)
              IS DISTINCT FROM
              (NEW.status, NEW.platform_post_ids, NEW.platform_post_urls, NEW.error_message)
    THEN
        kind := 'post.revised';
    END IF;
    IF kind IS NOT NULL THEN
        INSERT INTO post_events (post_id, user_id, type, data)
        VALUES (NEW.id, NEW.user_id, kind, social_post_snapshot(NEW));
    END IF;
    RETURN NULL;
END $$;

-- AFTER ... FOR EACH ROW: fired at the end of the whole statement, so a record CTE that
-- moves the post and its targets together is seen whole by the snapshot.
CREATE TRIGGER social_posts_events
    AFTER INSERT OR UPDATE OF status, platform_post_ids, platform_post_urls, error_message
    ON social_posts FOR EACH ROW EXECUTE FUNCTION social_post_event();

CREATE FUNCTION post_target_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    p social_posts;
BEGIN
    IF NEW.status IN ('posted', 'failed') AND OLD.status IS DISTINCT FROM NEW.status THEN
        SELECT * INTO p FROM social_posts WHERE id = NEW.post_id;
        IF FOUND THEN
            INSERT INTO post_events (post_id, user_id, type, data)
            VALUES (p.id, p.user_id, 'post.target.' || NEW.status,
                    social_post_snapshot(p) || jsonb_build_object('platform', NEW.platform));
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER post_targets_events
    AFTER UPDATE OF status ON post_targets
    FOR EACH ROW EXECUTE FUNCTION post_target_event();
