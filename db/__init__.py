"""PostgreSQL side of social-posting: migrations, pool, vault and repositories.

Knows nothing of Celery, HTTP or the providers package; `tasks` joins them.
"""
