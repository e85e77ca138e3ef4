"""A local HTTP server that speaks the PostForMe and LATE APIs, with fault injection,
for tests, demos and benchmarks. Standard library only; no Celery, no database."""

from providers.sandbox.faults import PLATFORMS, PROVIDERS, FaultSpec
from providers.sandbox.server import SandboxServer

__all__ = ["PLATFORMS", "PROVIDERS", "FaultSpec", "SandboxServer"]
