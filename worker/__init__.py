"""Processes and commands: the Celery app (`celery -A worker ...`) and the `socialpost` CLI."""

from worker.celery_app import app

__all__ = ["app"]
