"""`socialpost sandbox`: serve the local PostForMe + LATE for demos and manual tests.

The sandbox itself lives in providers.sandbox; it is imported inside the command so
`socialpost --help` never pays for it.
"""

from __future__ import annotations

import click

MODES = ("serve", "refuse", "blackhole")  # providers.sandbox.listeners.MODES, not imported

EPILOG = """\b
Examples:
  socialpost sandbox --port 8900 --key postforme:pfm_demo --key late:sk_demo
  socialpost sandbox --accept-any-key --fault postforme:error_rate=0.3 --seed 7
  socialpost sandbox --key late:sk_demo:twitter,linkedin \\
      --fault late:missing_platforms=instagram,tiktok --fault late:latency_ms=250
  socialpost sandbox --accept-any-key --fault postforme:create_then_error_rate=0.2 \\
      --fault postforme:create_then_error_status=504 --fault late:plan_limit_rate=0.1
  socialpost sandbox --accept-any-key --postforme-rate-limits '5/second;40/minute' \\
      --late-rate-limits 60/minute
  socialpost sandbox --accept-any-key --separate-ports --late-connections blackhole
  socialpost sandbox --accept-any-key --postforme-result-delay 2 \\
      --fault postforme:fail_platforms=bluesky:platform_error,instagram:auth_expired \\
      --fault late:pending_platforms=tiktok --fault late:regress_platforms=twitter:3

\b
Fault fields (per provider, repeat --fault to combine):
  latency_ms=N          added to every API route of that provider
  error_rate=0..1       create-post answers error_status (default 503)
  error_status=N
  rate_limit_rate=0..1  create-post answers 429 with Retry-After and rate headers
  retry_after=S         seconds (default 1)
  hang_rate=0..1        the post IS created, then no answer; the connection
  hang_seconds=S        closes after S seconds (default 30; 0 = cut at once)
  create_then_error_rate=0..1  the post IS created (it publishes), then the
  create_then_error_status=N   answer is this 5xx (default 502)
  create_delay_seconds=S       created at once, answered S seconds later
  missing_platforms=a,b accounts of these platforms vanish from account lists
  fail_platforms=a,b    posts are accepted but these targets fail afterwards;
                        a:CLASS names the error class (default platform_error):
                        auth_expired user_content user_abuse account_issue
                        platform_rejected platform_error platform_rate_limit
                        quota_exhausted system_error unknown
                        (LATE's errorCategory; PostForMe's error text reads like it)
  seed_shapes=true      PostForMe answers in the seed's {"data": {...}} shapes
  refuse_local_media=true  PostForMe only: 400 for media URLs on localhost,
                           *.localhost or an IP address (as the real one does)
  plan_limit_rate=0..1  LATE only: create-post answers 403 permission_error
                        "Plan limit reached: ..."
  result_delay_seconds=S   PostForMe only: results appear S seconds after the
                           create (default: --postforme-result-delay); until then
                           the post stays processing
  duplicate_result_rate=0..1  PostForMe only: a successful account first gets a
                           failed result, then its retry's success (two results)
  stuck_rate=0..1       PostForMe only: the post stays processing for good
  pending_rate=0..1     LATE only: publishNow leaves a share of targets (or
  pending_platforms=a,b   those platforms' targets) pending; they finish
  pending_seconds=S       S seconds later (default 5), shown on GET /posts/{id}
  regress_platforms=a:S,b:S  LATE only: S seconds after publishing, the target
                           turns failed (LATE's check found the publish missing)

\b
Control it at run time over HTTP (see providers/sandbox/control.py):
  POST /_sandbox/keys {"provider","key","platforms"?}   POST /_sandbox/keys/revoke
  POST /_sandbox/accounts {"provider","key","platform","external_id"?,"profile"?}
  GET  /_sandbox/created  (which account every held post went to)
  POST /_sandbox/faults {"provider", ...fields}          GET  /_sandbox/faults
  POST /_sandbox/responses {"provider","responses":[{"status":503},{"hang":true}]}
    one-shot entries: {"status":N,"retry_after"?,"message"?,"body"?}  {"pass":true}
    {"hang":true,"hang_seconds"?}  {"create_then_status":504}  {"delay_seconds":S}
  GET  /_sandbox/stats   GET /_sandbox/requests?provider=late   POST /_sandbox/reset
  POST /_sandbox/rate-limits {"provider","limits":"5/second;40/minute"|null}
  GET  /_sandbox/rate-limits   GET /_sandbox/arrivals?provider=postforme&key=K
  POST /_sandbox/connections {"provider","mode":"serve|refuse|blackhole"}
  GET  /_sandbox/connections   (modes need --separate-ports)

\b
Rate limits (off unless given) are per key, in the `limits` syntax ('5/second;40/minute',
'20 per 10 seconds'). Every API request with a key counts, a 429 from them does not;
arrivals within --rate-limit-jitter of a window's edge are forgiven. PostForMe answers
429 with Retry-After and X-Rate-Limit-* (only on the 429); LATE puts X-RateLimit-* on
every answer of a limited key (Reset in Unix seconds).
"""


def _parse_key(text: str) -> tuple[str, str, list[str] | None]:
    """'postforme:KEY' or 'late:KEY:twitter,linkedin' -> (provider, key, platforms)."""
    from providers.sandbox.faults import PLATFORMS, check_provider

    provider, sep, rest = text.partition(":")
    if not sep or not rest:
        raise click.BadParameter(f"{text!r}: expected PROVIDER:KEY[:platform,platform]")
    try:
        provider = check_provider(provider)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    key, sep, tail = rest.rpartition(":")
    names = [p.strip().lower() for p in tail.split(",") if p.strip()]
    if sep and key and names and all(n in PLATFORMS or n == "x" for n in names):
        return provider, key, names
    return provider, rest, None


def _rate_limits(postforme: str | None, late: str | None) -> dict[str, str]:
    """The --*-rate-limits flags that were given, each checked."""
    from providers.sandbox.rate_limits import parse_limits

    given = {"postforme": postforme, "late": late}
    for provider, spec in given.items():
        try:
            parse_limits(spec)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=f"--{provider}-rate-limits") from exc
    return {p: s for p, s in given.items() if s is not None and parse_limits(s)}


def _webhook_behaviour(flags: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """The --webhook flags, PROVIDER:FIELD=VALUE each, checked."""
    from providers.sandbox.webhooks import Webhooks

    out: dict[str, dict[str, str]] = {}
    for text in flags:
        provider, _, assignment = text.partition(":")
        name, eq, value = assignment.partition("=")
        if not (provider and name and eq and value):
            raise click.BadParameter(f"{text!r}: expected PROVIDER:FIELD=VALUE, e.g. "
                                     "postforme:attempts=3", param_hint="--webhook")
        out.setdefault(provider.strip().lower(), {})[name.strip()] = value.strip()
    try:
        Webhooks(out)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--webhook") from exc
    return out


def _next_port(port: int, offset: int) -> int:
    """A provider's port beside --port (any free one when --port is 0)."""
    return port + offset if port else 0


@click.command(
    "sandbox",
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=int, default=8900, show_default=True, help="Port to listen on (0 = any free)."
)
@click.option(
    "--accept-any-key",
    is_flag=True,
    help="Any non-empty bearer key (not revoked) works and has all nine platforms.",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="PROVIDER:KEY[:PLATFORMS]",
    help="Register a key (repeatable); PLATFORMS is a comma list, default all nine.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="PROVIDER:FIELD=VALUE",
    help="Inject a fault (repeatable); fields are listed below.",
)
@click.option("--seed", type=int, default=None, help="Seed for the random faults (reproducible).")
@click.option(
    "--duplicate-window",
    type=float,
    default=86400.0,
    show_default=True,
    help="Seconds in which LATE answers 409 for the same content to the same account.",
)
@click.option(
    "--postforme-refuse-local-media",
    is_flag=True,
    help="PostForMe refuses media URLs on localhost or an IP address, for the server's life.",
)
@click.option(
    "--postforme-result-delay",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds until PostForMe's results appear (the result_delay_seconds fault overrides).",
)
@click.option(
    "--postforme-rate-limits",
    metavar="SPEC",
    default=None,
    help="Per-key limits for PostForMe, e.g. '5/second;40/minute' (the real ones).",
)
@click.option(
    "--late-rate-limits",
    metavar="SPEC",
    default=None,
    help="Per-key limits for LATE, e.g. '60/minute' (the real plan's lowest).",
)
@click.option(
    "--rate-limit-jitter",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=0.1,
    show_default=True,
    help="Seconds of arrival jitter the rate limits forgive at a window's edge.",
)
@click.option(
    "--separate-ports",
    is_flag=True,
    help="Serve each provider on its own port (--postforme-port, --late-port), so one "
    "can be dead or black-holed; --port stays the control port.",
)
@click.option(
    "--postforme-port", type=int, default=None, help="PostForMe's port [default: --port + 1]."
)
@click.option("--late-port", type=int, default=None, help="LATE's port [default: --port + 2].")
@click.option(
    "--postforme-connections",
    type=click.Choice(MODES),
    default="serve",
    show_default=True,
    help="refuse: a dead provider (ECONNREFUSED); blackhole: connects time out.",
)
@click.option(
    "--late-connections",
    type=click.Choice(MODES),
    default="serve",
    show_default=True,
    help="As --postforme-connections, for LATE.",
)
@click.option(
    "--webhook",
    "webhook_flags",
    multiple=True,
    metavar="PROVIDER:FIELD=VALUE",
    help="How a provider sends webhooks (repeatable): attempts, timeout_seconds, "
    "backoff_seconds, max_backoff_seconds [default: the real services', e.g. PostForMe "
    "8 tries of 1 s].",
)
def sandbox(
    host: str,
    port: int,
    accept_any_key: bool,
    keys: tuple[str, ...],
    faults: tuple[str, ...],
    seed: int | None,
    duplicate_window: float,
    postforme_refuse_local_media: bool,
    postforme_result_delay: float,
    postforme_rate_limits: str | None,
    late_rate_limits: str | None,
    rate_limit_jitter: float,
    separate_ports: bool,
    postforme_port: int | None,
    late_port: int | None,
    postforme_connections: str,
    late_connections: str,
    webhook_flags: tuple[str, ...],
) -> None:
    """Serve a local PostForMe and LATE (with fault injection) until Ctrl-C.

    Point the workers at it with POSTFORME_BASE_URL and LATE_BASE_URL (printed at
    start). State is in memory only.
    """
    import threading

    from providers.sandbox import SandboxServer
    from providers.sandbox.faults import FaultSpec, parse_fault_flag
    from providers.sandbox.state import key_hint

    specs: dict[str, dict[str, str]] = {}
    for text in faults:
        try:
            provider, name, value = parse_fault_flag(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--fault") from exc
        specs.setdefault(provider, {})[name] = value
    try:
        validated = {p: FaultSpec.from_mapping(spec, p) for p, spec in specs.items()}
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fault") from exc
    parsed_keys = [_parse_key(text) for text in keys]
    rate_limits = _rate_limits(postforme_rate_limits, late_rate_limits)
    modes = {"postforme": postforme_connections, "late": late_connections}
    if not separate_ports and set(modes.values()) != {"serve"}:
        raise click.UsageError("--postforme-connections / --late-connections need --separate-ports")

    webhooks = _webhook_behaviour(webhook_flags)
    server = SandboxServer(
        host,
        port,
        accept_any_key=accept_any_key,
        duplicate_window_seconds=duplicate_window,
        seed=seed,
        postforme_refuse_local_media=postforme_refuse_local_media,
        postforme_result_delay_seconds=postforme_result_delay,
        rate_limits=rate_limits,
        rate_limit_jitter_seconds=rate_limit_jitter,
        separate_ports=separate_ports,
        postforme_port=_next_port(port, 1) if postforme_port is None else postforme_port,
        late_port=_next_port(port, 2) if late_port is None else late_port,
        webhook_behaviour=webhooks,
    )
    for provider, mode in modes.items():
        if mode != "serve":
            server.set_connection_mode(provider, mode)
    for provider, key, platforms in parsed_keys:
        server.register_key(provider, key, platforms)
    for provider, spec in specs.items():
        server.set_faults(provider, **spec)
    try:
        server.start()
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc

    click.echo(f"sandbox listening on {server.url}")
    click.echo(f"  POSTFORME_BASE_URL={server.postforme_url}")
    click.echo(f"  LATE_BASE_URL={server.late_url}")
    for provider, key, platforms in parsed_keys:
        shown = ",".join(platforms) if platforms else "all platforms"
        click.echo(f"  key {provider} …{key_hint(key)}: {shown}")
    if accept_any_key:
        click.echo("  any bearer key is accepted")
    if postforme_refuse_local_media:
        click.echo("  postforme refuses local media URLs")
    if postforme_result_delay:
        click.echo(f"  postforme results appear after {postforme_result_delay:g} s")
    for provider, spec_text in rate_limits.items():
        click.echo(f"  rate limits {provider}: {spec_text} per key")
    for provider, mode in modes.items():
        if mode != "serve":
            click.echo(f"  {provider} connections: {mode}")
    healthy = FaultSpec().to_dict()
    for provider, fault_spec in validated.items():
        changed = {k: v for k, v in fault_spec.to_dict().items() if v != healthy[k]}
        click.echo(f"  faults {provider}: {changed}")
    click.echo("Ctrl-C to stop.")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        server.stop()
