"""Provider webhooks in (`/hooks/postforme`, `/hooks/late`): filled by issue 14 part B."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
