"""Resetting the fleet's flow-control state in Redis between tests."""

from __future__ import annotations


def clear_flow_state() -> None:
    """Forget the fleet's pacing and circuit state (in the Redis the settings name)."""
    import redis

    import settings

    try:
        client = redis.Redis.from_url(settings.current().broker_url, socket_timeout=2)
        for pattern in ("socialpost:pace:*", "socialpost:circuit:*"):
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)
    except redis.RedisError:
        pass
