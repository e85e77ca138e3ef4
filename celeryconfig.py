"""Celery settings, each chosen on purpose; the tunable ones come from the settings module.

Loaded by `worker.app` with `config_from_object("celeryconfig")`. A malformed value
stops start-up with one line naming the variable (settings.SettingsError).
"""

from __future__ import annotations

from kombu import Queue

import settings

_s = settings.current()  # a malformed value stops here, naming its variable

# -- Broker and results -------------------------------------------------------------
broker_url = _s.broker_url
if broker_url.startswith("redis://"):
    # kombu's Redis transport, mended so a worker survives losing its broker (worker/broker.py).
    broker_transport = "worker.broker:Transport"
# Results hold only acceptance dicts (post id + status), never content or secrets.
result_backend = _s.result_backend
result_expires = _s.result_expires  # acceptance dicts are small
# Workers and beat wait for Redis at start-up instead of exiting (compose starts them together).
broker_connection_retry_on_startup = True
broker_connection_retry = True
broker_connection_max_retries = None  # keep trying: PostgreSQL remembers, Redis may come back
# A message not acked within this time is redelivered; it must exceed every countdown
# and every task's hard time limit, or Redis would hand a live task to a second worker.
VISIBILITY_TIMEOUT = _s.visibility_timeout
broker_transport_options = {"visibility_timeout": VISIBILITY_TIMEOUT}
result_backend_transport_options = {"visibility_timeout": VISIBILITY_TIMEOUT}

# -- Serialisation: JSON only, so any language can enqueue and Flower shows arguments.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
result_accept_content = ["json"]
timezone = "UTC"
enable_utc = True

# -- Worker pool: threads by default (SOCIALPOST_WORKER_POOL / _CONCURRENCY; -P / -c win).
# Publishing is waiting on HTTP (PostForMe ~0.1 s, LATE's publishNow up to minutes): eight
# threads overlap those waits in one process, where the old default (prefork, one child
# per CPU: two here) stalled a whole worker behind two slow calls. The engine is
# thread-safe: HTTP sessions are per thread, the psycopg pool and the Redis clients are
# shared by design, per-process caches take locks (providers.memo), and a task's request
# is thread-local in Celery. prefork stays one flag away for CPU-heavy work. In the
# threads pool Celery enforces no task time limits: the provider clients' own timeouts
# end every call, and a lease that outlives a stuck task sends the post to recovery.
# Beware: Celery reads `-P prefork` as its own default and lets this setting win; choose
# prefork with SOCIALPOST_WORKER_POOL=prefork (`socialpost worker -P prefork` sets it).
worker_pool = _s.worker_pool
worker_concurrency = _s.worker_concurrency

# -- Delivery guarantees -------------------------------------------------------------
# Ack after the task ran: a worker killed mid-task gets its message redelivered.
task_acks_late = True
# ...including when the child process itself died (kill -9, OOM).
task_reject_on_worker_lost = True
# One message at a time per process: nothing sits prefetched in a worker that may die.
worker_prefetch_multiplier = 1
# A task that was running when the broker connection dropped keeps going and records its
# outcome in PostgreSQL; the redelivered copy then finds the post claimed or final.
# Cancelling it mid-HTTP would only turn a known outcome into an ambiguous one.
worker_cancel_long_running_tasks_on_connection_loss = False
# Publishing a message retries through a broker blip instead of failing the caller.
task_publish_retry = True
task_publish_retry_policy = {"max_retries": 5, "interval_start": 0.2, "interval_step": 0.5}

# -- Time limits: above the slowest HTTP call a task can make (LATE publishNow waits long).
# The provider clients' own timeouts end a call first; these only catch a stuck task.
HTTP_MAX_SECONDS = max(_s.late_read_timeout, _s.postforme_read_timeout) + _s.connect_timeout
task_soft_time_limit = int(HTTP_MAX_SECONDS + 60)
task_time_limit = int(HTTP_MAX_SECONDS + 120)
# Retry countdowns never exceed this; longer waits go back to PostgreSQL as `scheduled`.
MAX_COUNTDOWN = _s.max_countdown
if MAX_COUNTDOWN + task_time_limit >= VISIBILITY_TIMEOUT:
    raise settings.SettingsError(
        "SOCIALPOST_VISIBILITY_TIMEOUT: must exceed SOCIALPOST_MAX_COUNTDOWN plus the task "
        f"time limit ({MAX_COUNTDOWN + task_time_limit:.0f} s)"
    )

# -- Queues: publishing and maintenance apart, the default `celery` queue still served.
# A plain `celery -A worker worker` consumes every queue listed here; operators may split
# them with -Q. Producers that name no queue land on `celery`, which is listed.
PUBLISH_QUEUE = "social.publish"
MAINTENANCE_QUEUE = "social.maintenance"
# Webhook attempts apart: a slow receiver holds these, never a release or a publish.
EVENTS_QUEUE = "social.events"
task_default_queue = "celery"
task_queues = (Queue("celery"), Queue(PUBLISH_QUEUE), Queue(MAINTENANCE_QUEUE),
               Queue(EVENTS_QUEUE))
task_routes = {
    "social.publish_post": {"queue": PUBLISH_QUEUE},
    "social.publish_batch": {"queue": PUBLISH_QUEUE},
    "social.deliver": {"queue": PUBLISH_QUEUE},
    "social.confirm_outcomes": {"queue": MAINTENANCE_QUEUE},
    "social.release_due_posts": {"queue": MAINTENANCE_QUEUE},
    "social.recover_stalled_posts": {"queue": MAINTENANCE_QUEUE},
    "social.refresh_connected_platforms": {"queue": MAINTENANCE_QUEUE},
    "social.dispatch_events": {"queue": MAINTENANCE_QUEUE},
    "social.prune_events": {"queue": MAINTENANCE_QUEUE},
    "social.deliver_webhook": {"queue": EVENTS_QUEUE},
}
# A webhook attempt is one HTTP call of SOCIALPOST_WEBHOOK_TIMEOUT: limits just above it
# (its lease, tasks.dispatch.lease_seconds, outlasts the hard one).
task_annotations = {"social.deliver_webhook": {
    "soft_time_limit": _s.webhook_timeout + 20, "time_limit": _s.webhook_timeout + 40}}

# -- Monitoring: events on so Flower shows every task live, a worker's first ones too.
# They cost ~4 Redis PUBLISHes and ~0.8 ms of worker CPU per post (bench/throughput.py);
# a fleet watched by no Flower may set SOCIALPOST_TASK_EVENTS=0 (a Flower started later
# turns them on in every worker within 5 s, so only tasks in that gap go unseen).
worker_send_task_events = _s.task_events
# task-sent events from producers only: workers and beat switch theirs off at start
# (worker.celery_app), where each cost more than the message it announced.
task_send_sent_event = _s.task_events
# No STARTED state in the result backend: Flower sees task-started events anyway, and
# it would cost each accepted post one more Redis write.
task_track_started = False
worker_hijack_root_logger = True

# -- Beat -----------------------------------------------------------------------------
RELEASE_INTERVAL = _s.release_interval
RECOVER_INTERVAL = _s.recover_interval
REFRESH_INTERVAL = _s.refresh_interval
RESULTS_INTERVAL = _s.results_interval
EVENTS_INTERVAL = _s.events_interval
beat_schedule = {
    "dispatch-events": {
        "task": "social.dispatch_events",
        "schedule": EVENTS_INTERVAL,
        "options": {"expires": max(EVENTS_INTERVAL * 5, 5.0)},
    },
    "prune-events": {
        "task": "social.prune_events",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
    "release-due-posts": {
        "task": "social.release_due_posts",
        "schedule": RELEASE_INTERVAL,
        # A release older than its interval is stale: the next one does the same work.
        "options": {"expires": max(RELEASE_INTERVAL * 5, 5.0)},
    },
    "recover-stalled-posts": {
        "task": "social.recover_stalled_posts",
        "schedule": RECOVER_INTERVAL,
        "options": {"expires": RECOVER_INTERVAL * 2},
    },
    "confirm-outcomes": {
        "task": "social.confirm_outcomes",
        "schedule": RESULTS_INTERVAL,
        "options": {"expires": max(RESULTS_INTERVAL * 5, 10.0)},
    },
    "refresh-connected-platforms": {
        "task": "social.refresh_connected_platforms",
        "schedule": REFRESH_INTERVAL,
        "options": {"expires": REFRESH_INTERVAL},
    },
}
beat_schedule_filename = _s.beat_schedule_file
