"""Fault injection (issue 14, part 3): a seeded, bounded chaos run on real processes. Two `playground api` and
two `playground worker` processes, a private redis-server and a private database on the shared PostgreSQL take
a few hundred runs against the mock and the fake Anthropic and OpenAI servers, whose answers carry provider
faults (429 with retry-after, 529/503 overloaded, the connection dropped before or after the first token, a
stall past the deadline). Meanwhile a chaos loop, at random moments, kills a worker (kill -9, then starts
another), kills an api (kill -9, then starts it again on its port), restarts Redis empty, and terminates the
database's backends (pg_terminate_backend on this database's connections only).

Clients behave as documented: a POST /runs carries an Idempotency-Key and is sent again with it after a lost
answer or a 5xx; readers reconnect with Last-Event-ID, to the other api if need be.

Then, exactly (docs/decisions/fault-injection-and-soak.md says why each is guaranteed):
- every run answered 202 reaches a terminal state within a bound, and no run exists that no client was given;
- every reader's deltas concatenate to exactly the stored output, with one terminal event matching the status;
- a succeeded run's output is exactly what the provider sent; any other run's is a prefix of it, ended for a
  reason its fault or the chaos explains; a 429 retry waited at least its retry-after;
- each run has exactly one reservation, one release and one settlement in the ledger; the workspace's spent
  equals the sum of run costs, nothing stays reserved, and the usage API's total equals the same sum;
- a workspace whose budget the runs would overshoot never has spent + reserved above it (sampled during the
  run) nor spent above it at the end.

A worker killed and Redis emptied within a moment of each other is the one stated limit; the chaos keeps
them apart (KILL_THEN_REDIS_GAP_S, REDIS_THEN_KILL_GAP_S).

Size and seed: PLAYGROUND_CHAOS_RUNS (default 200), PLAYGROUND_CHAOS_SEED (default 14). Part of `make test`;
`make chaos` runs it alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import ADMIN_DSN, MASTER_KEY
from tests.fakes.anthropic_server import AnthropicScript, Exchange, FakeAnthropic, run_fake
from tests.fakes.openai_server import FakeOpenAI, OpenAIScript
from tests.processes import PlaygroundCluster
from tests.soak.client import Reading, User, wait_terminal

pytestmark = pytest.mark.slow

RUNS = int(os.environ.get("PLAYGROUND_CHAOS_RUNS", "200"))
SEED = int(os.environ.get("PLAYGROUND_CHAOS_SEED", "14"))
POST_RATE = 2.5  # runs a second
CHAOS_MEAN_GAP_S = 3.0  # between the end of one fault and the next (an api restart itself takes seconds)
# A worker killed and Redis emptied close together is the one double fault the product states as a limit
# instead of fixing (docs/decisions/fault-injection-and-soak.md): readers may have been sent up to a second
# of text that then is neither saved nor in the stream. Redis is not emptied within the lease (3 s) plus a
# reconciler pass after a kill, nor a worker killed within a save interval (1 s) after Redis was emptied.
# Every other order and spacing of faults is drawn.
KILL_THEN_REDIS_GAP_S = 6.0
REDIS_THEN_KILL_GAP_S = 1.5
HANG_RUNS = 60  # stalls (60 s each, the product's deadline) only among the first runs, so the test stays bounded
TERMINAL_BOUND_S = 150  # after the last POST
BUDGET_MICROS = 12_000  # the budget workspace: $0.012, about 20 of its runs' actual cost, 2 reservations
WORDS = (15, 45)

# Faults scripted into the fake providers, chosen per run; each names the error kinds it may end in (besides
# `worker_lost`, which any run may get when the chaos kills its worker after its first saved token).
FAKE_FAULTS = {
    "none": (40, "succeeded"),
    "r429": (15, "succeeded"),  # the first attempt gets 429 with retry-after: 1
    "over": (15, "succeeded"),  # the first attempt gets 529 (Anthropic) / 503 (OpenAI)
    "dropearly": (8, "succeeded"),  # the first attempt's connection is cut before any text
    "dropmid": (10, "connection"),  # every attempt's connection is cut halfway through the text
    "hangearly": (8, "succeeded"),  # the first attempt stalls before any text (first-token deadline, 60 s)
    "hangmid": (8, "timeout"),  # every attempt stalls halfway through the text (silence deadline, 60 s)
}
MOCK_FAULTS = {"none": (80, "succeeded"), "failearly": (6, "overloaded"), "failmid": (14, "stream_error")}


@dataclass
class Spec:
    index: int
    provider: str  # mock | anthropic | openai
    fault: str
    workspace: str  # main | budget
    words: int
    cancel_after: float | None
    flaky_reader: bool

    @property
    def tag(self) -> str:
        return f"t{self.index}"

    @property
    def text(self) -> str:
        marker = {"failearly": "MOCK_FAIL_EARLY", "failmid": "MOCK_FAIL_MID"}.get(self.fault, "")
        head = f"F-{self.fault}-{self.tag}"
        return " ".join([head, *(f"{self.tag}w{k}" for k in range(self.words)), *([marker] if marker else [])])

    @property
    def expected(self) -> str:
        if self.provider == "mock":
            return "".join(word + " " for word in self.text.split())
        return " ".join(self.text.split())  # the fakes send the words joined by spaces

    @property
    def outcome(self) -> str:
        table = MOCK_FAULTS if self.provider == "mock" else FAKE_FAULTS
        return table[self.fault][1]


def make_specs(rng: random.Random) -> list[Spec]:
    specs = []
    for index in range(RUNS):
        provider = rng.choices(["mock", "anthropic", "openai"], [50, 25, 25])[0]
        table = MOCK_FAULTS if provider == "mock" else FAKE_FAULTS
        names = [n for n in table if index < HANG_RUNS or not n.startswith("hang")]
        fault = rng.choices(names, [table[n][0] for n in names])[0]
        workspace = "budget" if provider == "mock" and rng.random() < 0.4 else "main"
        cancel_after = rng.uniform(0.1, 1.5) if rng.random() < 0.06 else None
        specs.append(Spec(index, provider, fault, workspace, rng.randint(*WORDS), cancel_after, rng.random() < 0.2))
    return specs


class FaultyProviders:
    """Answers each request of the fake servers by the fault named in its prompt (thread-safe: the fakes serve
    from their own threads), and remembers when each run's attempts came."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.attempts: dict[str, list[float]] = defaultdict(list)

    @staticmethod
    def _text(exchange: Exchange) -> str:
        content = exchange.body["messages"][-1]["content"]
        if isinstance(content, list):
            return " ".join(block.get("text", "") for block in content if isinstance(block, dict))
        return content

    def pick(self, exchange: Exchange, kind: str) -> Any:
        words = self._text(exchange).split()
        _, fault, tag = words[0].split("-", 2)
        with self.lock:
            self.attempts[tag].append(time.monotonic())
            attempt = len(self.attempts[tag])
        script: dict[str, Any] = {"words": words, "first_token_delay": 0.05, "token_delay": 0.02}
        half = len(words) // 2
        if fault == "r429" and attempt == 1:
            script |= {"fail_now": True, "failure": 429, "retry_after": "1"}
        elif fault == "over" and attempt == 1:
            script |= {"fail_now": True, "failure": 529 if kind == "anthropic" else 503}
        elif fault == "dropearly" and attempt == 1:
            script |= {"drop_after": 0}
        elif fault == "dropmid":
            script |= {"drop_after": half}
        elif fault == "hangearly" and attempt == 1:
            script |= {"hang": True}
        elif fault == "hangmid":
            script |= {"hang_after": half}
        return AnthropicScript(**script) if kind == "anthropic" else OpenAIScript(**script)


@dataclass
class Tally:
    post_status: Counter = field(default_factory=Counter)
    chaos: Counter = field(default_factory=Counter)
    timeline: list[tuple[float, str]] = field(default_factory=list)  # (wall clock, fault): for the report
    budget_samples: int = 0
    budget_max_micros: int = 0
    budget_breaches: list[tuple[int, int]] = field(default_factory=list)
    sample_errors: int = 0


class Harness:
    def __init__(self, cluster: PlaygroundCluster, anthropic_url: str, openai_url: str) -> None:
        self.cluster = cluster
        self.anthropic_url, self.openai_url = anthropic_url, openai_url
        self.user = User(cluster.bases, read_timeout=30)
        self.ws: dict[str, str] = {}
        self.prompts: dict[tuple[str, str], str] = {}
        self.accepted: dict[str, Spec] = {}  # run id -> spec
        self.readings: dict[str, Reading] = {}
        self.tally = Tally()

    async def prepare(self) -> None:
        await self.user.sign_up(f"chaos-{uuid.uuid4().hex[:8]}@example.com")
        call = self.user.call
        for name, budget in (("main", "100000"), ("budget", str(Decimal(BUDGET_MICROS) / 1_000_000))):
            ws = (await call("POST", "/workspaces", json={"name": f"Chaos {name}"}, expect={201}, retry=False)).json()
            self.ws[name] = ws["id"]
            limits = {
                "max_concurrent_runs": 100,
                "max_queued_runs": 5000,
                "runs_per_minute": 100_000,
                "member_runs_per_minute": 100_000,
                "monthly_budget_usd": budget,
            }
            await call("PUT", f"/workspaces/{ws['id']}/limits", json=limits, expect={200})
        main = self.ws["main"]
        await call(
            "PUT",
            f"/workspaces/{main}/providers/anthropic",
            json={"api_key": "sk-ant-chaos-key-0123456789", "base_url": self.anthropic_url},
            expect={200},
        )
        await call(
            "PUT",
            f"/workspaces/{main}/providers/openai",
            json={"api_key": "sk-chaos-key-0123456789", "base_url": self.openai_url + "/v1"},
            expect={200},
        )
        models = {
            "mock": ("mock", "mock-1"),
            "anthropic": ("anthropic", "claude-haiku-4-5"),
            "openai": ("openai", "gpt-4o-mini"),
        }
        for workspace, provider in [("main", "mock"), ("main", "anthropic"), ("main", "openai"), ("budget", "mock")]:
            ws = self.ws[workspace]
            prompt = await call(
                "POST", f"/workspaces/{ws}/prompts", json={"name": f"chaos {provider}"}, expect={201}, retry=False
            )
            pid = prompt.json()["id"]
            name, model = models[provider]
            body = {
                "messages": [{"role": "user", "content": "{{text}}"}],
                "model_config": {"provider": name, "model": model, "max_tokens": 300},
                "message": "chaos",
            }
            await call("POST", f"/workspaces/{ws}/prompts/{pid}/versions", json=body, expect={201}, retry=False)
            self.prompts[(workspace, provider)] = pid

    async def one_run(self, spec: Spec, rng: random.Random) -> None:
        ws = self.ws[spec.workspace]
        body = {"prompt_id": self.prompts[(spec.workspace, spec.provider)], "variables": {"text": spec.text}}
        response = await self.user.post_run(ws, body)
        self.tally.post_status[response.status_code] += 1
        if response.status_code == 402 and spec.workspace == "budget":
            return
        assert response.status_code == 202, (response.status_code, response.text[:300])
        run_id = response.json()["id"]
        self.accepted[run_id] = spec
        reading = self.readings[run_id] = Reading()
        tasks = []
        if spec.cancel_after is not None:

            async def cancel() -> None:
                await asyncio.sleep(spec.cancel_after)
                await self.user.call("POST", f"/workspaces/{ws}/runs/{run_id}/cancel", expect={202, 409})

            tasks.append(asyncio.create_task(cancel()))
        start_api = rng.randrange(2)
        if spec.flaky_reader:  # drops after a few deltas and comes back a moment later with Last-Event-ID
            await self.user.read_run(
                ws, run_id, timeout=240, reading=reading, start_api=start_api, stop_after_deltas=rng.randint(1, 8)
            )
            await asyncio.sleep(rng.uniform(0.2, 1.0))
        if not reading.finished:
            await self.user.read_run(ws, run_id, timeout=300, reading=reading, start_api=start_api + 1)
        await asyncio.gather(*tasks)

    async def chaos(self, rng: random.Random, stop: asyncio.Event) -> None:
        actions = ["kill worker", "kill api", "restart redis empty", "terminate db backends"]
        first = rng.sample(actions, len(actions))  # every kind of fault at least once, then at random
        last_kill = last_redis = -math.inf
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), rng.expovariate(1 / CHAOS_MEAN_GAP_S))
            if stop.is_set():
                return
            action = first.pop() if first else rng.choices(actions, [35, 25, 20, 20])[0]
            if action == "kill worker":
                await asyncio.sleep(max(0.0, last_redis + REDIS_THEN_KILL_GAP_S - time.monotonic()))
                last_kill = time.monotonic()
                await asyncio.to_thread(self.cluster.kill_worker, rng.randrange(len(self.cluster.workers)))
            elif action == "kill api":
                await asyncio.to_thread(self.cluster.kill_api, rng.randrange(len(self.cluster.apis)))
            elif action == "restart redis empty":
                await asyncio.sleep(max(0.0, last_kill + KILL_THEN_REDIS_GAP_S - time.monotonic()))
                await asyncio.to_thread(self.cluster.restart_redis_empty)
                last_redis = time.monotonic()
            else:
                self.tally.chaos["db backends terminated"] += await asyncio.to_thread(
                    self.cluster.terminate_db_backends
                )
            self.tally.chaos[action] += 1
            self.tally.timeline.append((time.time(), action))

    async def describe_unfinished(self) -> str:
        """What the database says about runs that are not terminal, with the spec each was made from."""
        conn = await asyncpg.connect(self.cluster.dsn)
        try:
            rows = await conn.fetch(
                "SELECT id::text, status, attempts, lease_owner, lease_expires_at, dispatched_at, cancel_requested_at, "
                "output_chars, ttft_ms, created_at, now() AS now FROM run WHERE status IN ('queued', 'running')"
            )
        finally:
            await conn.close()
        return "\n".join(f"{dict(r)} spec={self.accepted.get(r['id'])}" for r in rows)

    async def watch_budget(self, stop: asyncio.Event) -> None:
        """spent + reserved of the budget workspace, sampled every 0.2 s (also while backends are terminated)."""
        ws = uuid.UUID(self.ws["budget"])
        while not stop.is_set():
            try:
                conn = await asyncpg.connect(self.cluster.dsn, timeout=5)
                try:
                    row = await conn.fetchrow(
                        "SELECT coalesce(sum(spent_micros + reserved_micros), 0) AS used FROM budget_month "
                        "WHERE workspace_id = $1",
                        ws,
                    )
                finally:
                    await conn.close()
                used = int(row["used"])
                self.tally.budget_samples += 1
                self.tally.budget_max_micros = max(self.tally.budget_max_micros, used)
                if used > BUDGET_MICROS:
                    self.tally.budget_breaches.append((used, BUDGET_MICROS))
            except (OSError, asyncpg.PostgresError, TimeoutError):
                self.tally.sample_errors += 1
            await asyncio.sleep(0.2)


@pytest.fixture
def harness():
    anthropic, openai = FakeAnthropic(), FakeOpenAI()
    providers = FaultyProviders()
    anthropic.pick = lambda exchange: providers.pick(exchange, "anthropic")
    openai.pick = lambda exchange: providers.pick(exchange, "openai")
    env = {
        "PLAYGROUND_WORKER_LEASE_SECONDS": "3",
        "PLAYGROUND_RECONCILE_SECONDS": "0.5",
        "PLAYGROUND_LOST_DISPATCH_SECONDS": "3",
        "PLAYGROUND_WORKER_GRACE_SECONDS": "2",
        "PLAYGROUND_MOCK_TTFT_MS": "50",
        "PLAYGROUND_MOCK_TOKEN_MS": "20",
        "PLAYGROUND_DB_POOL_SIZE": "4",
        "PLAYGROUND_DB_MAX_OVERFLOW": "4",
        "PLAYGROUND_PROVIDER_HOSTS": "127.0.0.1",
    }
    tmp = Path(tempfile.mkdtemp(prefix="pp-chaos-"))
    cluster = PlaygroundCluster(tmp, ADMIN_DSN, MASTER_KEY, apis=2, workers=2, env=env, name_prefix="pp_chaos")
    with run_fake(anthropic) as anthropic_url, run_fake(openai) as openai_url:
        cluster.start()
        try:
            h = Harness(cluster, anthropic_url, openai_url)
            h.providers = providers  # type: ignore[attr-defined]
            yield h
        finally:
            keep = bool(os.environ.get("PP_KEEP_LOGS"))
            codes = cluster.close(keep_logs=keep)
            print(f"\nexit codes: {codes}" + (f"; logs kept in {tmp}" if keep else ""))


async def test_chaos_over_real_processes_loses_nothing(harness: Harness):
    h = harness
    rng = random.Random(SEED)
    specs = make_specs(rng)
    await h.prepare()
    stop_chaos, stop_watch = asyncio.Event(), asyncio.Event()
    chaos = asyncio.create_task(h.chaos(random.Random(SEED + 1), stop_chaos))
    watch = asyncio.create_task(h.watch_budget(stop_watch))
    started = time.monotonic()
    runs: list[asyncio.Task] = []
    for spec in specs:
        runs.append(asyncio.create_task(h.one_run(spec, random.Random(SEED * 1000 + spec.index))))
        await asyncio.sleep(rng.expovariate(POST_RATE))
    # The chaos goes on while the last runs stream, then everything must settle.
    await asyncio.sleep(5)
    stop_chaos.set()
    await chaos
    posted_in = time.monotonic() - started
    try:
        finals = await wait_terminal(
            h.user, h.ws["main"], [r for r, s in h.accepted.items() if s.workspace == "main"], TERMINAL_BOUND_S
        )
        finals |= await wait_terminal(
            h.user, h.ws["budget"], [r for r, s in h.accepted.items() if s.workspace == "budget"], 30
        )
    except AssertionError as stuck:
        raise AssertionError(f"{stuck}\n{await h.describe_unfinished()}") from None
    results = await asyncio.gather(*runs, return_exceptions=True)
    stop_watch.set()
    await watch
    took = time.monotonic() - started
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:5]

    # Counts, printed for the report.
    outcome = Counter()
    by_fault = defaultdict(Counter)
    for run_id, final in finals.items():
        spec = h.accepted[run_id]
        kind = (final["error"] or {}).get("kind")
        label = final["status"] + (f" ({kind})" if kind else "")
        outcome[label] += 1
        by_fault[f"{spec.provider}:{spec.fault}"][label] += 1
    attempts = h.providers.attempts  # type: ignore[attr-defined]
    conn = await asyncpg.connect(h.cluster.dsn)
    try:
        claimed_again = await conn.fetchval("SELECT count(*) FROM run WHERE attempts > 1")
    finally:
        await conn.close()
    retried_fake = sum(1 for tag, times in attempts.items() if len(times) > 1)
    print(
        f"\nchaos seed {SEED}: {len(specs)} runs posted over {posted_in:.0f}s, all settled after {took:.0f}s; "
        f"POST answers {dict(h.tally.post_status)} ({h.user.retries} requests sent again); "
        f"accepted {len(h.accepted)}; outcomes {dict(outcome)}; chaos {dict(h.tally.chaos)}; "
        f"runs retried at a fake provider {retried_fake}, claimed again after a lost worker {claimed_again}; "
        f"readers reconnected "
        f"{sum(r.connections > 1 for r in h.readings.values())} ({sum(r.connections for r in h.readings.values())} "
        f"connections); budget samples {h.tally.budget_samples} (max used {h.tally.budget_max_micros} of "
        f"{BUDGET_MICROS} micros, {h.tally.sample_errors} failed while backends were terminated); "
        f"load {os.getloadavg()[0]:.1f}"
    )
    for key in sorted(by_fault):
        print(f"  {key}: {dict(by_fault[key])}")

    problems: list[str] = []
    # No run that no client was given (a retried POST made no duplicate), and every accepted one is terminal.
    conn = await asyncpg.connect(h.cluster.dsn)
    try:
        in_db = {str(r["id"]) for r in await conn.fetch("SELECT id FROM run")}
        ledger = await conn.fetch("SELECT run_id::text, kind, micros FROM usage_ledger")
        budget_rows = await conn.fetch(
            "SELECT workspace_id::text, sum(spent_micros) AS spent, sum(reserved_micros) AS reserved "
            "FROM budget_month GROUP BY workspace_id"
        )
        costs = await conn.fetch("SELECT id::text, workspace_id::text, cost_micros, attempts FROM run")
    finally:
        await conn.close()
    claims = {r["id"]: r["attempts"] for r in costs}
    if in_db != set(h.accepted):
        problems.append(
            f"runs in the database no client was given: {sorted(in_db - set(h.accepted))[:5]}; "
            f"accepted but missing: {sorted(set(h.accepted) - in_db)[:5]}"
        )

    for run_id, final in finals.items():
        spec = h.accepted[run_id]
        reading = h.readings[run_id]
        if not reading.finished:
            problems.append(f"{spec.tag} {run_id}: its reader never got a terminal event")
        else:
            problems += [
                f"{spec.tag} {run_id} reader: {p} ({final['status']} {(final['error'] or {}).get('kind')}, "
                f"started {final.get('started_at')}, finished {final.get('finished_at')})"
                for p in reading.problems(final)
            ]
        kind = (final["error"] or {}).get("kind")
        output = final["output"] or ""
        if final["status"] == "succeeded":
            if output != spec.expected:
                problems.append(f"{spec.tag} {run_id} succeeded with output {output[-40:]!r} != expected")
            if final["usage"]["estimated"]:
                problems.append(f"{spec.tag} {run_id} succeeded with estimated usage")
            if spec.outcome != "succeeded":
                problems.append(f"{spec.tag} {run_id} ({spec.provider}:{spec.fault}) succeeded")
        else:
            if not spec.expected.startswith(output):
                problems.append(f"{spec.tag} {run_id} {final['status']} output is no prefix: {output[-40:]!r}")
            explained = (
                (final["status"] == "cancelled" and spec.cancel_after is not None)
                or kind == "worker_lost"
                or (final["status"] == "failed" and kind == spec.outcome)
            )
            if not explained:
                problems.append(
                    f"{spec.tag} {run_id} ({spec.provider}:{spec.fault}, cancel {spec.cancel_after}) "
                    f"ended {final['status']} {kind}: {(final['error'] or {}).get('message')}"
                )
        # One claim retries a 429 no sooner than its retry-after. (A run whose worker lost it in between is claimed
        # again by another worker, which knows nothing of the 429: its attempt may come sooner.)
        if spec.fault == "r429" and final["status"] == "succeeded" and claims[run_id] == 1:
            times = attempts.get(spec.tag, [])
            if len(times) < 2 or times[1] - times[0] < 1.0:
                problems.append(
                    f"{spec.tag} {run_id}: retried {len(times) - 1} times, retry-after 1 s not waited "
                    f"({[round(t - times[0], 2) for t in times]})"
                )

    # Money: one reservation, release and settlement per run; spent = the runs' costs; nothing stays reserved.
    per_run = defaultdict(Counter)
    settled = defaultdict(int)
    reserved_total = released_total = 0
    for row in ledger:
        per_run[row["run_id"]][row["kind"]] += 1
        if row["kind"] == "settle":
            settled[row["run_id"]] += row["micros"]
        elif row["kind"] == "reserve":
            reserved_total += row["micros"]
        else:
            released_total += row["micros"]
    for row in costs:
        counts = per_run.get(row["id"], Counter())
        if counts != Counter({"reserve": 1, "release": 1, "settle": 1}):
            problems.append(f"run {row['id']} ledger entries {dict(counts)}")
        if settled.get(row["id"], 0) != (row["cost_micros"] or 0):
            problems.append(f"run {row['id']} settled {settled.get(row['id'])} but costs {row['cost_micros']}")
    if reserved_total != released_total:
        problems.append(f"ledger reserved {reserved_total} micros but released {released_total}")
    for name, ws in h.ws.items():
        cost = sum((r["cost_micros"] or 0) for r in costs if r["workspace_id"] == ws)
        row = next((r for r in budget_rows if r["workspace_id"] == ws), None)
        spent, reserved = (int(row["spent"]), int(row["reserved"])) if row else (0, 0)
        if spent != cost or reserved != 0:
            problems.append(f"{name}: spent {spent}, reserved {reserved}; the runs cost {cost}")
        usage = (await h.user.call("GET", f"/workspaces/{ws}/usage", params={"group_by": "model"}, expect={200})).json()
        if Decimal(usage["total"]["cost_usd"]) != Decimal(cost) / 1_000_000:
            problems.append(f"{name}: usage total {usage['total']['cost_usd']} != runs' costs {cost} micros")
        if name == "budget":
            print(
                f"  budget workspace: spent {spent} of {BUDGET_MICROS} micros over "
                f"{sum(1 for s in h.accepted.values() if s.workspace == 'budget')} runs, "
                f"{h.tally.post_status[402]} refused with 402"
            )
            if spent > BUDGET_MICROS:
                problems.append(f"budget: spent {spent} > {BUDGET_MICROS}")
    if h.tally.budget_breaches:
        problems.append(
            f"budget: spent + reserved above the budget in {len(h.tally.budget_breaches)} samples, "
            f"max {max(b[0] for b in h.tally.budget_breaches)}"
        )
    # The budget check means something only if the runs would have overshot it: some were refused.
    if h.tally.post_status[402] == 0:
        problems.append("no POST was refused with 402: the budget workspace never came near its budget")
    if sum(h.tally.chaos[a] for a in ("kill worker", "kill api", "restart redis empty")) < 3:
        problems.append(f"too little chaos happened: {dict(h.tally.chaos)}")

    if problems:  # when each fault ended, to read the problems against
        print("fault timeline:", [(time.strftime("%H:%M:%S", time.gmtime(t)) + f"{t % 1:.2f}"[1:], a)
                                  for t, a in h.tally.timeline])
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])
