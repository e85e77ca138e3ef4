"""`socialpost api`: serve the HTTP API (FastAPI on uvicorn). The process becomes the
server (uvicorn in this process, no child), so a process manager's TERM reaches it and
it finishes the requests in flight before it exits."""

from __future__ import annotations

import click

from worker.commands.common import CONTEXT, Command, note
from worker.commands.procs import LOGLEVELS, checked_settings

EPILOG = """\b
Examples:
  socialpost tokens create --name billing --user 6f0a...   # prints a token once
  socialpost api --port 8000
  curl -H "Authorization: Bearer sp_..." http://127.0.0.1:8000/v1/posts?user_id=6f0a...
  open http://127.0.0.1:8000/docs                          # the OpenAPI document, live
"""


@click.command("api", cls=Command, context_settings=CONTEXT, epilog=EPILOG)
@click.option("--host", default="127.0.0.1", show_default=True, metavar="H",
              help="Address to listen on (0.0.0.0: every interface, e.g. in a container).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              metavar="N", help="Port to listen on (0: any free port, printed at start).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              metavar="N", help="Server processes (each with its own connection pool).")
@click.option("-l", "--loglevel", type=LOGLEVELS, default="INFO", show_default=True)
def api(host: str, port: int, workers: int, loglevel: str) -> None:
    """Serve the HTTP API: publish and read posts, campaigns, credentials and accounts.

    Every /v1 endpoint needs a bearer token (`socialpost tokens create`); /healthz,
    /readyz, /openapi.json and /docs need none. The OpenAPI document lists every
    endpoint and every status it may answer.
    """
    checked_settings()
    import uvicorn

    note(f"socialpost api: serving http://{host}:{port} (docs at /docs)")
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level=loglevel.lower(), server_header=False, proxy_headers=False)
