-- 0020: a target's events are written once per statement, not once per row.
--
-- The confirmation sweep settles hundreds of targets in one statement. The row trigger of
-- 0011 ran a PL/pgSQL call, a post lookup and a snapshot for every one of them, so a
-- two-platform post cost two snapshots of the same row. This trigger reads the
-- statement's old and new targets (transition tables) and writes every event in one
-- INSERT, with one snapshot per post: half the database time of the events in the bench
-- (bench/throughput.py). What is written is unchanged: an event per target that became
-- `posted` or `failed`, carrying the post's snapshot and the platform, in the statement
-- that changed it.
--
-- A trigger with transition tables cannot name columns (UPDATE OF status), so it fires
-- for every UPDATE of post_targets; statements that change no target's status find
-- nothing to write.

DROP TRIGGER post_targets_events ON post_targets;
DROP FUNCTION post_target_event();

CREATE FUNCTION post_target_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH changed AS (
        SELECT n.post_id, n.platform, n.status
          FROM new_targets n JOIN old_targets o USING (post_id, platform)
         WHERE n.status IN ('posted', 'failed') AND o.status IS DISTINCT FROM n.status
    ), snaps AS (
        SELECT p.id, p.user_id, p.platforms, social_post_snapshot(p) AS snap
          FROM social_posts p WHERE p.id IN (SELECT post_id FROM changed)
    )
    INSERT INTO post_events (post_id, user_id, type, data)
    SELECT s.id, s.user_id, 'post.target.' || c.status,
           s.snap || jsonb_build_object('platform', c.platform)
      FROM changed c JOIN snaps s ON s.id = c.post_id
     ORDER BY c.post_id, array_position(s.platforms, c.platform);
    RETURN NULL;
END $$;

CREATE TRIGGER post_targets_events AFTER UPDATE ON post_targets
    REFERENCING OLD TABLE AS old_targets NEW TABLE AS new_targets
    FOR EACH STATEMENT EXECUTE FUNCTION post_target_events();
