"""Processes and commands: the Celery app (`celery -A worker ...`) and the `socialpost` CLI."""
