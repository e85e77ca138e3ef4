"""Which posts have a delivery message still waiting in the broker: the recovery sweep's
way to tell a lost message from one stuck behind a backlog.

Why: the sweep re-sends delivery for a post queued longer than SOCIALPOST_STALL_SECONDS.
Under a backlog (5,000 messages, a minute deep) every waiting post looks stalled, and
re-sending them all would multiply the backlog. PostgreSQL cannot know whether Redis still
holds a message; only Redis can, so the marker lives beside the queue, in the broker's
Redis, and is lost with it. Each message our code sends takes a ticket, in send order,
from its queue's counter:

    send     marker socialpost:inflight:<post id> = "<task id> <queue> <ticket>",
             EX wait + visibility timeout; written before the message (one pipelined
             round trip for a batch), the ticket travels in the message's headers
    receipt  a worker took the message (Celery's `task_received`, before any ETA wait):
             its marker goes (if it still names this task) and the queue's `taken` mark
             moves up to its ticket (one EVALSHA)
    sweep    MGET the candidates' markers, then each queue's length and `taken` mark: a
             post is waiting when its marker is there, its queue is not empty and no
             later message of that queue has been taken (the queue is first in, first out)

So a marker outlives its message only until the queue moves past it: a message deleted or
purged from the queue, a marker whose clear failed, a replica that kept the marker but not
the message, are all recovered as soon as a later message is taken (or the queue is
empty), not after the marker's TTL. A Redis restart loses queue and markers together.

Deleted at receipt, not when the task ends: a message a worker holds is no longer waiting
in the queue, and if that worker is killed the sweep's timing rules (queued_at or
next_attempt_at plus the stall time) resend it, as before; a marker kept until the task
ended would strand it until the visibility timeout. The fast path (publish_post's inline
first attempt, no delivery message) makes no call here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, cast

import redis
from celery.signals import task_received

import settings

log = logging.getLogger("socialpost.inflight")

PREFIX = "socialpost:inflight:"
TICKETS = "socialpost:inflight-ticket:"  # + queue: the last ticket handed out
TAKEN = "socialpost:inflight-taken:"  # + queue: the highest ticket a worker has taken
HEADER = "socialpost_inflight"  # message header: "<post id> <queue> <ticket>"

# KEYS: marker, the queue's ticket counter. ARGV: task id, queue, ttl. Returns the ticket.
_MARK = """
local n = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. n, 'EX', ARGV[3])
return n
"""
# KEYS: marker, the queue's taken mark. ARGV: task id, ticket (0: none).
_CLEAR = """
local v = redis.call('GET', KEYS[1])
local gone = 0
if v and string.sub(v, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. ' ' then
  gone = redis.call('DEL', KEYS[1])
end
local n = tonumber(ARGV[2])
if n > 0 and n > tonumber(redis.call('GET', KEYS[2]) or '0') then
  redis.call('SET', KEYS[2], n)
end
return gone
"""

_lock = threading.Lock()
_clients: dict[str, tuple[redis.Redis, Any, Any]] = {}


def _connect() -> tuple[redis.Redis, Any, Any] | None:
    """The broker's Redis and our two scripts (None when the broker is not Redis: no
    markers, the sweep then resends by its timing rules alone). One client per URL per
    process; redis-py's pool starts afresh in a forked child."""
    url = settings.current().broker_url
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    with _lock:
        found = _clients.get(url)
        if found is None:
            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            found = (client, client.register_script(_MARK), client.register_script(_CLEAR))
            _clients[url] = found
        return found


def key(post_id: str) -> str:
    return f"{PREFIX}{post_id}"


def ttl_for(wait_seconds: float) -> int:
    """A marker outlives the message's wait (countdown or ETA) by the visibility timeout;
    after that the sweep resends whatever is still queued."""
    return max(1, int(max(0.0, wait_seconds) + settings.current().visibility_timeout))


def mark(sends: Sequence[tuple[str, str, str, float]]) -> list[str | None]:
    """Note (post id, task id, queue, wait seconds) messages as about to be sent, in one
    round trip; call before sending, so a worker's receipt always follows. Returns each
    message's header value (None when there are no markers: not a Redis broker)."""
    found = _connect()
    if found is None or not sends:
        return [None] * len(sends)
    client, script, _ = found
    if len(sends) == 1:  # one EVALSHA: a pipeline asks SCRIPT EXISTS first, a second trip
        post_id, task_id, queue, wait = sends[0]
        tickets = [script(keys=[key(post_id), TICKETS + queue],
                          args=[task_id, queue, ttl_for(wait)])]
    else:
        pipe = client.pipeline(transaction=False)
        for post_id, task_id, queue, wait in sends:
            script(keys=[key(post_id), TICKETS + queue], args=[task_id, queue, ttl_for(wait)],
                   client=pipe)
        tickets = pipe.execute()
    return [f"{post_id} {queue} {int(n)}"
            for (post_id, _, queue, _), n in zip(sends, tickets, strict=True)]


def unmark(sends: Sequence[tuple[str, str]]) -> None:
    """Forget (post id, task id) markers whose message was not sent after all, so the
    sweep does not wait on a message that never existed. Best effort."""
    found = _connect()
    if found is None or not sends:
        return
    client, _, script = found
    try:
        pipe = client.pipeline(transaction=False)
        for post_id, task_id in sends:  # ticket 0: the taken mark (KEYS[2]) is not touched
            script(keys=[key(post_id), TAKEN], args=[task_id, 0], client=pipe)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("in-flight markers of %d unsent message(s) not cleared: %s",
                    len(sends), exc)


def taken(header: str, task_id: str) -> None:
    """A worker took this message (`header` as `mark` made it): its post no longer waits
    in the queue, nor does any message sent before it there. Only the marker of this very
    message is deleted, never a newer one's."""
    found = _connect()
    post_id, _, rest = header.partition(" ")
    queue, _, ticket = rest.partition(" ")
    if found is None or not post_id or not queue:
        return
    try:
        found[2](keys=[key(post_id), TAKEN + queue],
                 args=[task_id, int(ticket) if ticket.isdigit() else 0])
    except redis.RedisError as exc:  # the queue moving past it makes it stale anyway
        log.warning("post %s: in-flight marker not cleared: %s", post_id, exc)


def waiting(post_ids: Sequence[str]) -> set[str]:
    """Of `post_ids`, those whose delivery message may still wait in its queue: marked,
    the queue not empty, no later message of that queue taken. Two round trips."""
    found = _connect()
    if found is None or not post_ids:
        return set()
    client = found[0]
    values = cast(list[Any], client.mget([key(p) for p in post_ids]))
    marked: dict[str, tuple[str, int]] = {}
    for post_id, value in zip(post_ids, values, strict=True):
        if value is None:
            continue
        text = value.decode() if isinstance(value, bytes) else str(value)
        parts = text.split(" ")
        if len(parts) == 3 and parts[2].isdigit():
            marked[post_id] = (parts[1], int(parts[2]))
    if not marked:
        return set()
    queues = sorted({q for q, _ in marked.values()})
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.llen(queue)
        pipe.get(TAKEN + queue)
    answers = pipe.execute()
    depth = dict(zip(queues, answers[0::2], strict=True))
    past = {q: int(t or 0) for q, t in zip(queues, answers[1::2], strict=True)}
    return {post_id for post_id, (queue, ticket) in marked.items()
            if depth[queue] and ticket > past[queue]}


@task_received.connect
def _on_received(sender: Any = None, request: Any = None, **_: Any) -> None:
    """In the worker's main process, as each message arrives: a message carrying our
    header clears its marker (others cost nothing: a dict lookup)."""
    headers = getattr(request, "request_dict", None) or {}
    header = headers.get(HEADER)
    if header:
        taken(str(header), str(request.id))
