"""`GET /metrics` in Prometheus text: filled by issue 14 part B."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
