"""kombu's Redis transport with one failure mode mended: a worker must survive its broker.

When the broker connection drops, Celery's consumer calls `connection.collect()` and then
`connection.close()`. If the channel was waiting in BRPOP at that moment, the first
`Channel.close()` fails reading the dead socket before it marks itself closed; `collect()`
then detaches the transport (`transport.client = None`). The second close tries again to
give back the worker's unacked messages, builds a new Redis pool from `transport.client`
and dies with AttributeError, which kombu's `ignore_errors` does not ignore: the worker
logs "Unrecoverable error" and exits (found by tests/test_faults.py's Redis restart, about
one restart in two with tasks in flight).

Here a channel whose transport is detached reports a connection error instead, which
is what it is; kombu ignores it, and the consumer reconnects as it does after any broker
loss. The unacked messages stay where Redis has them (given back after the visibility
timeout), and PostgreSQL's recovery sweep resends whatever the broker lost.

Selected in celeryconfig (`broker_transport`) for redis:// brokers.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise redis.ConnectionError("broker connection already released")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
