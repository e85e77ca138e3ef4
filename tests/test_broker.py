"""worker/broker.py: a worker's broker channel, closed after its transport was detached
(what Celery's consumer does on broker loss), reports a connection error instead of
dying. The race that leads there is timing-dependent; here its end state is built on a
real private Redis, step by step."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kombu import Connection, Queue
from kombu.common import ignore_errors

from bench.harness import RedisServer
from worker.broker import Transport


@pytest.fixture
def redis_url() -> Iterator[str]:
    server = RedisServer().start()
    yield server.url
    server.stop()


def test_closing_a_detached_channel_with_unacked_messages_is_a_connection_error(
    redis_url: str,
) -> None:
    conn = Connection(redis_url, transport=Transport)
    channel = conn.default_channel
    queue = Queue("broker-test", channel=channel)
    queue.declare()
    conn.Producer(channel).publish({"n": 1}, routing_key="broker-test")
    message = queue.get(no_ack=False)  # delivered, not acked: close will try to restore it
    assert message is not None
    # The first close failed before marking the channel closed; collect() then detached
    # the transport. Closing again must fail as a connection error, which kombu ignores.
    conn._do_close_transport()
    ignore_errors(conn, channel.close)


def test_the_worker_app_uses_it_for_a_redis_broker() -> None:
    from worker.celery_app import app

    assert app.conf.broker_url.startswith("redis://")
    with app.connection_for_write() as conn:
        assert conn.transport_cls is Transport or isinstance(conn.transport, Transport)
