"""Issue 10's exactly-once rules under fault: the scenarios bench/chaos.py runs as
create5xx, ambiguous, slowcreate, tenants and pgoutage (quick ones in tests/test_faults.py).

Each builds its own world like bench/scenarios.py's, and on top of the shared audit (every
post final with a reason, no target created twice over all steps, posted only if created,
nothing left in flight) checks the rule it is about: a post whose create may have landed is
never sent by another step nor resent to PostForMe; a create slower than the first
release's lease is not taken over; a shared key's creates go only to the posting user's
accounts (or the organisation's); intake survives a PostgreSQL outage longer than the first
release's 60 retries.
"""

from __future__ import annotations

import random
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg

from bench.chaoslib import (
    FINAL,
    TEXT_PLATFORMS,
    Chaos,
    PgCluster,
    Report,
    User,
    make_posts,
    save_users,
    send_posts,
    statuses,
    wait_final,
)
from bench.scenarios import (
    Run,
    _outcomes,
    _rate,
    _start,
    _verdict,
    flaky_rates,
    send_and_wait,
)
from celeryconfig import MAINTENANCE_QUEUE
from db.vault import Vault

# The first release's lease: LATE's read timeout + the connect timeout + 30 s. Scenario 3
# sets both to 1 s, so the old lease was 32 s while a PostForMe create may take 41 s.
OLD_LEASE_MARGIN = 30.0
ADOPT_OR_UNKNOWN = frozenset({"posted", "unconfirmed"})


# -- shared checks ----------------------------------------------------------------------

Attempts = dict[str, list[tuple[int | None, str, list[str]]]]  # post -> (step, outcome, platforms)


def _attempts(dsn: str, ids: list[str]) -> Attempts:
    """post id -> its attempts in order: (step, outcome, platforms)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT post_id::text, step, outcome, platforms FROM post_attempts"
            " WHERE post_id = ANY(%s::uuid[]) ORDER BY id", (ids,)).fetchall()
    out: dict[str, list[tuple[int | None, str, list[str]]]] = {}
    for post, step, outcome, platforms in rows:
        out.setdefault(post, []).append((step, outcome, list(platforms or [])))
    return out


def moved_after_ambiguous(attempts: Attempts) -> list[tuple[str, str]]:
    """(post, platform) sent by another step after a send of it came back ambiguous: the
    rule is that while a step may have created a post, no other step may send it."""
    moved = []
    for post, rows in attempts.items():
        held: dict[str, int | None] = {}  # platform -> the step whose send may have landed
        for step, outcome, platforms in rows:
            if step is None:  # a confirmation (the platform's answer), not a send
                continue
            for platform in platforms:
                if platform in held and held[platform] != step:
                    moved.append((post, platform))
            if outcome == "ambiguous":
                for platform in platforms:
                    held.setdefault(platform, step)
    return sorted(set(moved))


def _claims(dsn: str, ids: list[str]) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT id::text, claim_count FROM social_posts WHERE id = ANY(%s::uuid[])",
            (ids,)).fetchall()
    return {r[0]: r[1] for r in rows}


def _sample(items: Any, n: int = 3) -> str:
    shown = list(items)
    more = f" (+{len(shown) - n} more)" if len(shown) > n else ""
    return ", ".join(str(x) for x in shown[:n]) + more


def _creates(chaos: Chaos, provider: str) -> int:
    return int(chaos.sandbox.stats()[provider]["create_requests"])


# -- 9. create, then a 5xx --------------------------------------------------------------


def create5xx(run: Run) -> Report:
    """PostForMe stores the post, then answers 500, 502 or 504 for 40 % of creates (the
    others healthy): each is an ambiguous answer, looked up by our id and adopted. Every
    post posted once, PostForMe asked to create each exactly once, LATE never."""
    rng = run.rng()
    with run.world("create5xx") as chaos:
        for provider in ("postforme", "late"):
            chaos.sandbox.set_faults(provider, latency_ms=20)
        script = [{"create_then_status": rng.choice((500, 502, 504))} if rng.random() < 0.4
                  else {"pass": True} for _ in range(run.posts)]
        chaos.sandbox.push_responses("postforme", script)
        faulted = Counter(e["create_then_status"] for e in script if "create_then_status" in e)
        pool = _start(chaos, workers=2, concurrency=4)
        posts, ids, wall = send_and_wait(chaos, run, chaos.users, "create5xx", rng)
        outcomes = _outcomes(chaos.dsn, ids)
        asked, late = _creates(chaos, "postforme"), _creates(chaos, "late")
        wrong = []
        if asked != len(ids):
            wrong.append(f"PostForMe got {asked} create requests for {len(ids)} posts "
                         "(a create that may have landed was resent)")
        if late:
            wrong.append(f"{late} create(s) sent to LATE: nothing there should have needed it")
        if outcomes["ambiguous"] < sum(faulted.values()):
            wrong.append(f"{outcomes['ambiguous']} ambiguous attempts for "
                         f"{sum(faulted.values())} creates answered 5xx")
        wrong += _moved(chaos, ids)
        notes = [f"{sum(faulted.values())} creates answered "
                 f"{'/'.join(f'{n}x{s}' for s, n in sorted(faulted.items()))} after storing",
                 f"attempts {dict(outcomes)}", f"{asked} PostForMe creates, {late} LATE",
                 _rate(len(ids), wall)]
        return _verdict("9 create then 5xx", chaos, pool, ids, wall, notes, extra=wrong)


def _moved(chaos: Chaos, ids: list[str]) -> list[str]:
    moved = moved_after_ambiguous(_attempts(chaos.dsn, ids))
    if not moved:
        return []
    return [f"{len(moved)} target(s) sent by another step after an ambiguous send: "
            f"{_sample(moved)}"]


# -- 10. ambiguous, then 503s -----------------------------------------------------------


def ambiguous(run: Run) -> Report:
    """Hangs past the read timeout (the post stored, no answer) and plain 503s (nothing
    stored) on both providers, a third of the posts on users whose first step is their own
    LATE key. An ambiguous send never moves to another step: on PostForMe it is looked up
    until the budget (found: adopted; not: unconfirmed, never resent), on LATE resent under
    the same key (deduplicated), its 503s keeping it there, then unconfirmed."""
    rng = run.rng()
    settings = {"POSTFORME_READ_TIMEOUT": "1", "LATE_READ_TIMEOUT": "1"}
    with run.world("ambiguous", settings) as chaos:
        chaos.sandbox.set_faults("postforme", hang_seconds=3, error_status=503,
                                 **flaky_rates(error=0.10, hang=0.15, rate_limited=0.0))
        chaos.sandbox.set_faults("late", hang_seconds=3, error_status=503,
                                 **flaky_rates(error=0.35, hang=0.15, rate_limited=0.0))
        late_first = [User(str(uuid.uuid4()), {"late": f"SECRET-user-late-{uuid.uuid4().hex}"})
                      for _ in range(len(chaos.users) // 2)]
        save_users(chaos.dsn, Vault([chaos.stack.env["ENCRYPTION_KEY"]]), late_first,
                   chaos.sandbox)
        pool = _start(chaos, workers=2, concurrency=4)
        posts, ids, wall = send_and_wait(chaos, run, [*chaos.users, *late_first], "ambiguous", rng)
        outcomes = _outcomes(chaos.dsn, ids)
        ended = Counter(statuses(chaos.dsn, ids).values())
        mine = {u.id for u in late_first}
        on_late = [p.id for p in posts if p.user_id in mine]
        late_ended = Counter(statuses(chaos.dsn, on_late).values())
        followed = _503_after_ambiguous(chaos.dsn, ids)
        wrong = _moved(chaos, ids)
        if not followed:
            wrong.append("no 503 after an ambiguous send: the faults did not bite")
        if not outcomes["ambiguous"]:
            wrong.append("no ambiguous outcome: the faults did not bite")
        if not ended["unconfirmed"] or not ended["posted"]:
            wrong.append(f"expected both adopted and unconfirmed posts, got {dict(ended)}")
        notes = [f"ended {ended['posted']} posted, {ended['unconfirmed']} unconfirmed "
                 f"(LATE first: {late_ended['posted']} posted, "
                 f"{late_ended['unconfirmed']} unconfirmed)",
                 f"{sum(followed.values())} answered 503 after an ambiguous send "
                 f"({', '.join(f'{n} on {p}' for p, n in sorted(followed.items()))}), "
                 "none sent by another step",
                 f"attempts {dict(outcomes)}", _rate(len(ids), wall)]
        return _verdict("10 ambiguous then 503", chaos, pool, ids, wall, notes,
                        expect=ADOPT_OR_UNKNOWN, extra=wrong)


def _503_after_ambiguous(dsn: str, ids: list[str]) -> Counter[str]:
    """Posts that met a 503 on the step where an earlier send was ambiguous, by provider."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT a.provider, count(DISTINCT a.post_id) FROM post_attempts a"
            " JOIN post_attempts b ON b.post_id = a.post_id AND b.id > a.id AND b.step = a.step"
            " WHERE a.post_id = ANY(%s::uuid[]) AND a.outcome = 'ambiguous'"
            " AND b.http_status = 503 GROUP BY a.provider", (ids,)).fetchall()
    return Counter({r[0]: r[1] for r in rows})


# -- 11. a create slower than the old lease ---------------------------------------------


_SWEPT = re.compile(r"Task social\.recover_stalled_posts\[[0-9a-f-]+\] succeeded")


def slowcreate(run: Run) -> Report:
    """LATE's read timeout and the connect timeout at 1 s, PostForMe's at 40 s: the first
    release's lease (LATE's call + 30 s = 32 s) was shorter than a PostForMe create may
    take. Some creates answer 35 s late, the recovery sweep runs every second with a 2 s
    grace: none may be taken over while its create is out (claim_count 1), none doubled."""
    rng = run.rng()
    settings = {"LATE_READ_TIMEOUT": "1", "SOCIALPOST_CONNECT_TIMEOUT": "1",
                "POSTFORME_READ_TIMEOUT": "40", "SOCIALPOST_RECOVER_INTERVAL": "1",
                "SOCIALPOST_STALL_SECONDS": "2"}
    old_lease = 1 + 1 + OLD_LEASE_MARGIN
    delay = old_lease + 3
    with run.world("slowcreate", settings) as chaos:
        slow = 3 if run.quick else max(4, min(30, run.posts // 60))
        every = max(1, run.posts // slow)
        script = [{"delay_seconds": delay, "pass": True} if i % every == 0 and i // every < slow
                  else {"pass": True} for i in range(run.posts)]
        chaos.sandbox.push_responses("postforme", script)
        pool = _start(chaos, workers=2, concurrency=3 if run.quick else 5)
        # Beat's sweeps expire unrun while every slot holds a create (their messages live
        # 2 s): a worker of its own on the maintenance queue keeps the sweep running.
        chaos.stack.worker(concurrency=1, queues=MAINTENANCE_QUEUE, name="maintenance")
        posts, ids, wall = send_and_wait(chaos, run, chaos.users, "slowcreate", rng)
        claims = _claims(chaos.dsn, ids)
        with psycopg.connect(chaos.dsn) as conn:
            slowest = conn.execute(
                "SELECT post_id::text FROM post_attempts WHERE post_id = ANY(%s::uuid[])"
                " AND latency_ms > %s", (ids, old_lease * 1000)).fetchall()
        late_ones = sorted({r[0] for r in slowest})
        wrong = []
        taken = {i: n for i, n in claims.items() if n != 1}
        if taken:
            wrong.append(f"{len(taken)} post(s) claimed more than once: {_sample(taken.items())}"
                         f" (slow ones among them: {len(set(taken) & set(late_ones))})")
        swept = len(_SWEPT.findall(chaos.logs()))
        if swept < wall / 2:
            wrong.append(f"the recovery sweep ran {swept} times in {wall:.0f} s: not fast")
        if len(late_ones) < slow:
            wrong.append(f"only {len(late_ones)} of {slow} creates outlasted the old lease")
        notes = [f"{len(late_ones)} creates took > {old_lease:.0f} s (the old lease), "
                 f"each claimed once; lease now {1 + 40 + OLD_LEASE_MARGIN:.0f} s",
                 f"recovery sweep ran {swept} times (2 s grace)",
                 _rate(len(ids), wall)]
        return _verdict("11 create > old lease", chaos, pool, ids, wall, notes, extra=wrong)


# -- 12. tenants on the shared keys -----------------------------------------------------


@dataclass
class Accounts:
    """Who owns which account under the global keys (None: the organisation)."""

    owner: dict[str, str | None] = field(default_factory=dict)
    # (provider, owner or None, platform) -> account id
    index: dict[tuple[str, str | None, str], str] = field(default_factory=dict)

    def add(self, chaos: Chaos, provider: str, owner: str | None, platform: str) -> None:
        key = chaos.global_keys[provider]
        tag = {"external_id": owner} if provider == "postforme" else {"profile": owner}
        account = chaos.sandbox.add_account(provider, key, platform, **tag)
        self.owner[account["id"]] = owner
        self.index[(provider, owner, platform)] = account["id"]

    def owns(self, user: str, platform: str) -> bool:
        """Whether the user has an account of their own for `platform` under either key."""
        return any((p, user, platform) in self.index for p in ("postforme", "late"))

    def expected(self, user: str, platform: str) -> str | None:
        """The chain's choice for a user with no key of their own: global PostForMe (the
        user's account, else the organisation's), then global LATE the same way (so the
        organisation's PostForMe account wins over the user's own under the LATE key:
        each step resolves accounts under its own key, README "Whose accounts")."""
        for provider in ("postforme", "late"):
            for owner in (user, None):
                found = self.index.get((provider, owner, platform))
                if found:
                    return found
        return None


def tenants(run: Run) -> Report:
    """Users with no key of their own share the global PostForMe and LATE keys: each has
    accounts of their own for some platforms (PostForMe: external_id = user id; LATE: a
    profile named by it), the organisation has untagged ones, two users have none at all,
    and two more users' accounts cover every platform without ever posting. Each create
    must go to the posting user's account, or the organisation's when the user has none
    at that step; 10 % of PostForMe creates answer 502 after storing (adopted by lookup)."""
    rng = run.rng()
    with run.world("tenants") as chaos:
        for provider in ("postforme", "late"):  # no accounts on the global keys yet
            chaos.sandbox.register_key(provider, chaos.global_keys[provider], [])
        book = _tenant_accounts(chaos, rng)
        people = [User(u, {}) for u in book.posting]
        chaos.sandbox.set_faults("postforme", latency_ms=20, create_then_error_rate=0.1)
        chaos.sandbox.set_faults("late", latency_ms=20)
        pool = _start(chaos, workers=2, concurrency=4)
        posts, ids, wall = send_and_wait(chaos, run, people, "tenants", rng)
        whose = {p.id: p.user_id for p in posts}
        counted, wrong = _account_audit(chaos, book.accounts, whose)
        notes = [f"{len(book.posting)} users posting, {book.summary}",
                 f"creates on {counted['own']} own, {counted['organisation']} organisation, "
                 f"{counted['wrong']} wrong account(s)",
                 f"{counted['organisation, own elsewhere']} on PostForMe's organisation account "
                 "while the user has their own under the LATE key (chain order decides)",
                 _rate(len(ids), wall)]
        return _verdict("12 tenants, shared keys", chaos, pool, ids, wall, notes, extra=wrong)


@dataclass
class TenantBook:
    accounts: Accounts
    posting: list[str]
    summary: str


def _tenant_accounts(chaos: Chaos, rng: random.Random) -> TenantBook:
    """Six tenants with random own accounts, two with none, two silent ones with all; the
    organisation: PostForMe accounts for some platforms, LATE accounts for every one (so
    every target has somewhere to go)."""
    book = Accounts()
    tenants_ = [str(uuid.uuid4()) for _ in range(6)]
    bare = [str(uuid.uuid4()) for _ in range(2)]
    silent = [str(uuid.uuid4()) for _ in range(2)]
    for platform in ("twitter", "linkedin", "facebook"):
        book.add(chaos, "postforme", None, platform)
    for platform in TEXT_PLATFORMS:
        book.add(chaos, "late", None, platform)
    for user in tenants_:
        for platform in rng.sample(TEXT_PLATFORMS, rng.randint(1, 4)):
            book.add(chaos, "postforme", user, platform)
        for platform in rng.sample(TEXT_PLATFORMS, rng.randint(0, 3)):
            book.add(chaos, "late", user, platform)
    for user in silent:
        for platform in TEXT_PLATFORMS:
            book.add(chaos, "postforme", user, platform)
            book.add(chaos, "late", user, platform)
    tagged = sum(1 for o in book.owner.values() if o is not None)
    summary = (f"{tagged} tagged accounts (2 users' never post), "
               f"{len(book.owner) - tagged} organisation accounts")
    return TenantBook(book, [*tenants_, *bare], summary)


def _account_audit(chaos: Chaos, book: Accounts,
                   whose: dict[str, str]) -> tuple[Counter[str], list[str]]:
    """Every create of our posts against who owns its account, and against the account
    the rules choose."""
    counted: Counter[str] = Counter()
    wrong: list[tuple[str, str, str, str]] = []
    unexpected: list[tuple[str, str, str, str | None]] = []
    for provider, rows in chaos.sandbox.created_accounts().items():
        for key, platform, account in rows:
            post = (key or "").rsplit("-s", 1)[0]
            user = whose.get(post)
            if user is None:
                continue
            owner = book.owner.get(account, "an account nobody was given")
            if owner not in (user, None):
                counted["wrong"] += 1
                wrong.append((post, provider, platform, account))
                continue
            counted["own" if owner == user else "organisation"] += 1
            if owner is None and book.owns(user, platform):
                counted["organisation, own elsewhere"] += 1
            if account != book.expected(user, platform):
                unexpected.append((post, provider, platform, book.expected(user, platform)))
    problems = []
    if wrong:
        problems.append(f"{len(wrong)} create(s) on another user's account: {_sample(wrong)}")
    if unexpected:
        problems.append(f"{len(unexpected)} create(s) not on the account the rules choose "
                        f"(post, provider, platform, expected): {_sample(unexpected)}")
    if not counted["own"] or not counted["organisation"]:
        problems.append(f"expected creates on both own and organisation accounts: "
                        f"{dict(counted)}")
    return counted, problems


# -- 13. PostgreSQL down for most of a minute -------------------------------------------


_RETRY = re.compile(r"Task social\.publish_post\[([0-9a-f-]+)\] retry")
FIRST_RELEASE_RETRIES = 60
CANARIES = 12


def pgoutage(run: Run, down_seconds: float = 55.0) -> Report:
    """A private PostgreSQL cluster stopped (pg_ctl -m immediate) for ~55 s while posts
    keep arriving, with SOCIALPOST_DB_RETRY_MAX=1 (and a 0.1 s pool timeout): intake
    retries about every second, past the first release's 60 retries after which it
    dropped the request. Every post stored and posted once afterwards.

    The workers' slots bound how often each request can retry (about 50 retries a second
    in all here), so with hundreds of requests waiting none would retry 60 times in a
    minute: 12 canaries arrive first, alone, and the rest of the outage's posts 12 s
    before PostgreSQL comes back."""
    rng = run.rng()
    settings = {"SOCIALPOST_DB_RETRY_MAX": "1", "SOCIALPOST_DB_POOL_TIMEOUT": "0.1"}
    cluster = PgCluster().start()
    try:
        with run.world("pgoutage", settings, admin_dsn=cluster.admin_dsn) as chaos:
            for provider in ("postforme", "late"):
                chaos.sandbox.set_faults(provider, latency_ms=100)
            pool = _start(chaos, workers=2, concurrency=4)
            posts = make_posts(chaos.users, run.posts, "pgoutage", rng)
            ids = [p.id for p in posts]
            cut = len(posts) * 2 // 5
            before, canaries, rest = posts[:cut], posts[cut:cut + CANARIES], posts[cut + CANARIES:]
            start = time.monotonic()
            send_posts(chaos.app, before)
            # the first part stored, the last of it in flight when PostgreSQL stops
            _until_final(chaos, [p.id for p in before], len(before) * 9 // 10, run.timeout)
            in_flight = Counter(statuses(chaos.dsn, ids).values())
            t = time.monotonic()
            cluster.stop("immediate")
            send_posts(chaos.app, canaries)
            time.sleep(max(0.0, down_seconds - 12 - (time.monotonic() - t)))
            sender = threading.Thread(target=send_posts, args=(chaos.app, rest), daemon=True)
            sender.start()
            time.sleep(max(0.0, down_seconds - (time.monotonic() - t)))
            sender.join(120)
            cluster.start()
            outage = time.monotonic() - t
            wait_final(chaos.dsn, ids, run.timeout)
            wall = time.monotonic() - start
            retries = Counter(_RETRY.findall(chaos.logs()))
            most = max(retries.values(), default=0)
            past = sum(1 for n in retries.values() if n > FIRST_RELEASE_RETRIES)
            wrong = []
            if not past:
                wrong.append(f"no request retried more than {FIRST_RELEASE_RETRIES} times "
                             f"(most {most}): the outage did not outlast the first release")
            notes = [f"down {outage:.0f} s with {dict(in_flight)} + "
                     f"{len(canaries) + len(rest)} sent meanwhile",
                     f"{len(retries)} requests retried, up to {most} times; {past} past the "
                     f"first release's {FIRST_RELEASE_RETRIES} (it dropped those)",
                     _rate(len(ids), wall)]
            return _verdict("13 postgres down ~1 min", chaos, pool, ids, wall, notes,
                            extra=wrong)
    finally:
        cluster.destroy()


def _until_final(chaos: Chaos, ids: list[str], count: int, timeout: float = 120) -> None:
    """Wait until every post of `ids` is stored and `count` are final (the rest in flight)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        known = statuses(chaos.dsn, ids)
        if len(known) == len(ids) and sum(1 for s in known.values() if s in FINAL) >= count:
            return
        time.sleep(0.2)
