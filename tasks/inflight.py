"""Which posts have a delivery message still waiting, in the broker or in a live worker's
hands: the recovery sweep's way to tell a lost message from one stuck behind a backlog.

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
             post is waiting when its marker is there, its queue is not empty and the
             queue has not moved REORDER_WINDOW tickets past it

The queue is first in, first out, but tickets are not always in queue order: two senders
at once (a release and a recovery in two threads, releases in two workers) each take
their batch of tickets, then push their messages side by side, so a message taken can
carry a ticket well past one still in the queue. Hence the window, larger than any two
batches sent at once (found by bench/schedule.py: without it, a 200-a-second release
resent a sixth of its posts while their messages still waited).

So a marker outlives its message only until the queue moves past it: a message deleted or
purged from the queue, a marker whose clear failed, a replica that kept the marker but not
the message, are all recovered once REORDER_WINDOW later messages are taken (or the queue
is empty), not after the marker's TTL. A Redis restart loses queue and markers together.

Deleted at receipt, not when the task ends: a message a worker holds is no longer waiting
in the queue; a marker kept until the task ended would strand it until the visibility
timeout if that worker were killed. What the worker holds is noted apart, beside a
heartbeat of its own:

    receipt  the same EVALSHA adds the post to the worker's `held` set (scored by when)
    end      the task ran, or was revoked: the post leaves the set (one ZREM)
    beat     each worker refreshes its `alive` key (heartbeat_every, heartbeat_ttl); a
             new broker connection starts with an empty set (the last one's unacked
             messages were dropped, and come back from the broker)
    sweep    a post held by a worker whose `alive` key is there waits; a dead worker's
             set is dropped, and its posts go by the timing rules (queued_at or
             next_attempt_at plus the stall time)

So a backlog a worker holds in memory (messages with an ETA, all received at once from a
release; then waiting for a thread) is not resent however long it lasts, as a backlog in
the queue is not, while a killed worker's is resent once its heartbeat lapses. The fast
path (publish_post's inline first attempt, no delivery message) makes no call here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, cast

import redis
from celery import bootsteps
from celery.signals import task_postrun, task_received, task_revoked

import settings

log = logging.getLogger("socialpost.inflight")

PREFIX = "socialpost:inflight:"
TICKETS = "socialpost:inflight-ticket:"  # + queue: the last ticket handed out
TAKEN = "socialpost:inflight-taken:"  # + queue: the highest ticket a worker has taken
HEADER = "socialpost_inflight"  # message header: "<post id> <queue> <ticket>"
REORDER_WINDOW = 5000  # tickets: how far apart concurrent senders' messages may land
HELD = "socialpost:held:"  # + worker node: post id -> when received (a sorted set)
ALIVE = "socialpost:alive:"  # + worker node: there while the worker beats
NODES = "socialpost:held-nodes"  # the nodes that may hold posts (a set)


def heartbeat_ttl() -> int:
    """Seconds a worker's `alive` key outlives its last beat: the stall time (how long an
    untouched queued post counts as lost), kept between 3 and 20 s."""
    return int(min(20.0, max(3.0, settings.current().stall_seconds)))


def heartbeat_every() -> float:
    """Seconds between a worker's beats: four beats to a TTL."""
    return heartbeat_ttl() / 4


# KEYS: marker, the queue's ticket counter. ARGV: task id, queue, ttl. Returns the ticket.
_MARK = """
local n = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. n, 'EX', ARGV[3])
return n
"""
# KEYS: marker, the queue's taken mark[, the worker's held set]. ARGV: task id, ticket
# (0: none)[, post id, now].
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
if KEYS[3] then
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
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


def taken(header: str, task_id: str, node: str | None = None) -> None:
    """A worker took this message (`header` as `mark` made it): its post no longer waits
    in the queue, nor does any message sent before it there. Only the marker of this very
    message is deleted, never a newer one's. With the worker's `node`, the post is noted
    as held by it until the task ends (`ended`)."""
    found = _connect()
    post_id, _, rest = header.partition(" ")
    queue, _, ticket = rest.partition(" ")
    if found is None or not post_id or not queue:
        return
    keys = [key(post_id), TAKEN + queue]
    args: list[Any] = [task_id, int(ticket) if ticket.isdigit() else 0]
    if node:
        keys.append(HELD + node)
        args += [post_id, time.time()]
    try:
        found[2](keys=keys, args=args)
    except redis.RedisError as exc:  # the queue moving past it makes it stale anyway
        log.warning("post %s: in-flight marker not cleared: %s", post_id, exc)


def ended(header: str, node: str | None) -> None:
    """The task of this message ran (or was revoked): its post is no longer held by
    `node`. Best effort: a post left in the set waits for its worker's end or the
    visibility timeout (`held`)."""
    found = _connect()
    post_id = header.partition(" ")[0]
    if found is None or not node or not post_id:
        return
    try:
        found[0].zrem(HELD + node, post_id)
    except redis.RedisError as exc:
        log.warning("post %s: not cleared from %s's held posts: %s", post_id, node, exc)


def heartbeat(node: str) -> None:
    """`node` is alive and may hold posts (a worker calls this every heartbeat_every()
    seconds from its start)."""
    found = _connect()
    if found is None:
        return
    pipe = found[0].pipeline(transaction=False)
    pipe.set(ALIVE + node, 1, ex=heartbeat_ttl())
    pipe.sadd(NODES, node)
    pipe.execute()


def stopped(node: str) -> None:
    """`node` is stopping: it holds nothing any more (messages it had not run go back
    to the queue, unacked)."""
    found = _connect()
    if found is None:
        return
    pipe = found[0].pipeline(transaction=False)
    pipe.delete(ALIVE + node, HELD + node)
    pipe.srem(NODES, node)
    pipe.execute()


def held(post_ids: Sequence[str]) -> set[str]:
    """Of `post_ids`, those a live worker holds (received, its task not ended, less
    than a visibility timeout ago). Forgets the workers that stopped beating. Two round
    trips."""
    found = _connect()
    if found is None or not post_ids:
        return set()
    client = found[0]
    nodes = sorted(n.decode() if isinstance(n, bytes) else str(n)
                   for n in cast(set[Any], client.smembers(NODES)))
    if not nodes:
        return set()
    pipe = client.pipeline(transaction=False)
    pipe.mget([ALIVE + n for n in nodes])
    for node in nodes:
        pipe.zmscore(HELD + node, list(post_ids))
    answers = pipe.execute()
    since = time.time() - settings.current().visibility_timeout
    out: set[str] = set()
    dead = []
    for node, beat, scores in zip(nodes, answers[0], answers[1:], strict=True):
        if beat is None:
            dead.append(node)
            continue
        out |= {p for p, at in zip(post_ids, scores, strict=True)
                if at is not None and at >= since}
    if dead:
        pipe = client.pipeline(transaction=False)
        pipe.delete(*[HELD + n for n in dead])
        pipe.srem(NODES, *dead)
        pipe.execute()
        log.warning("worker(s) %s stopped beating: what they held goes by the timing rules",
                    ", ".join(dead))
    return out


def waiting(post_ids: Sequence[str]) -> set[str]:
    """Of `post_ids`, those whose delivery message may still wait: in its queue (marked,
    the queue not empty and not moved REORDER_WINDOW tickets past it), or in the hands
    of a live worker (`held`). Four round trips."""
    found = _connect()
    if found is None or not post_ids:
        return set()
    queued = _in_queue(found[0], post_ids)
    return queued | held([p for p in post_ids if p not in queued])


def _in_queue(client: redis.Redis, post_ids: Sequence[str]) -> set[str]:
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
            if depth[queue] and ticket + REORDER_WINDOW > past[queue]}


@task_received.connect
def _on_received(sender: Any = None, request: Any = None, **_: Any) -> None:
    """In the worker's main process, as each message arrives: a message carrying our
    header clears its marker and is noted as held (others cost nothing: a dict lookup)."""
    headers = getattr(request, "request_dict", None) or {}
    header = headers.get(HEADER)
    if header:
        taken(str(header), str(request.id), getattr(request, "hostname", None))


@task_postrun.connect
def _on_ran(task: Any = None, **_: Any) -> None:
    context = getattr(task, "request", None)
    if context is None:
        return
    header = context.get(HEADER)
    if header:
        ended(str(header), context.get("hostname"))


@task_revoked.connect
def _on_revoked(request: Any = None, **_: Any) -> None:
    headers = getattr(request, "request_dict", None) or {}
    header = headers.get(HEADER)
    if header:
        ended(str(header), getattr(request, "hostname", None))


class Heartbeat(bootsteps.StartStopStep):
    """A consumer's beat (`heartbeat`) from each connection's start, on the consumer's
    timer, and its `stopped` at each connection's end. A consumer that loses its broker
    connection drops the messages it held unacked (ETA ones included: the broker gives
    them back after the visibility timeout), so a new connection starts holding nothing;
    what a live worker holds is not resent (`held`)."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.tref: Any = None

    def start(self, c: Any) -> None:
        self._end(c.hostname)  # whatever the last connection held, it holds no more
        self._beat(c.hostname)
        self.tref = c.timer.call_repeatedly(heartbeat_every(), self._beat, (c.hostname,))

    def stop(self, c: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
            self._end(c.hostname)

    def shutdown(self, c: Any) -> None:
        self.stop(c)

    @staticmethod
    def _end(node: str) -> None:
        try:
            stopped(node)
        except redis.RedisError as exc:  # its beat lapses instead: the sweep drops them
            log.warning("%s: held posts not cleared: %s", node, exc)

    @staticmethod
    def _beat(node: str) -> None:
        try:
            heartbeat(node)
        except redis.RedisError as exc:  # a lapsed beat: its posts may be resent (safe)
            log.warning("%s: heartbeat not written: %s", node, exc)
