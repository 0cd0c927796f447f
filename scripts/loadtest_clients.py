"""The load test's clients: N of them on /v1/ask and /v1/search, a collection update through
the write API in the middle, and the report (``scripts/loadtest.py`` runs it)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

import httpx
from harness import Latency, per_second

QUESTIONS = [
    "How many cities does the G60 corridor connect?",
    "What brand is the Haier factory in Songjiang for?",
    "How does Songjiang help talents with housing?",
    "What did scientists in Songjiang achieve recently?",
    "How much rent do talents pay?",
    "Which industries does the corridor focus on?",
    "What is the Casarte brand?",
    "How many service windows offer inter-provincial services?",
]
SEARCHES = [
    "Casarte brand",
    "G60 corridor nine cities",
    "talent apartments rent",
    "industrial internet",
    "satellite",
]
UPDATE_DOCUMENT = {
    "id": "loadtest/lighthouse-keepers.txt",
    "title": "Lighthouse keepers of the Zhoushan islands",
    "text": (
        "The lighthouse on Huaniao island has guided ships into the Yangtze estuary since 1870. "
        "Its keepers rotate every fortnight and log the weather every three hours.\n\n"
        "In 2019 the lamp was replaced with an LED array that can be seen from 24 nautical "
        "miles away, and the keepers now monitor the fog signal remotely."
    ),
}
UPDATE_QUERY = "Huaniao lighthouse LED lamp nautical miles"
ENDPOINTS = ("/v1/ask", "/v1/search")


@dataclass
class Sample:
    """One request's outcome."""

    endpoint: str
    status: int  # 0 when the request failed without a response
    seconds: float
    at: float  # since the start of the run
    generation: str | None = None
    error: str | None = None


@dataclass
class UpdateResult:
    """The collection update's outcome."""

    started_at: float
    seconds: float
    status: int
    generation: str | None
    detail: str = ""


@dataclass
class Report:
    """The run's figures: overall, per endpoint, per generation, and the update's."""

    clients: int
    duration_s: float
    requests: int
    errors: int
    requests_per_s: float
    endpoints: dict[str, dict[str, float]]
    generations: dict[str, int]
    update: dict[str, str | float | int | None] | None
    update_visible: bool | None
    error_samples: list[str] = field(default_factory=list)
    server: dict[str, str | int | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No failed request, at least one request, and the update (if any) went through."""
        update_ok = self.update is None or (
            200 <= int(self.update["status"] or 0) < 300 and bool(self.update_visible)
        )
        return self.errors == 0 and self.requests > 0 and update_ok


def summarise(samples: list[Sample], seconds: float) -> dict[str, float]:
    """One endpoint's (or all) requests, errors, rate and latency percentiles."""
    latency = Latency.of([s.seconds * 1000 for s in samples], digits=1)
    return {
        "requests": len(samples),
        "errors": sum(1 for s in samples if s.error),
        "requests_per_s": per_second(len(samples), seconds),
        "p50_ms": latency.p50,
        "p95_ms": latency.p95,
        "p99_ms": latency.p99,
        "max_ms": latency.max,
    }


Update = Callable[[httpx.AsyncClient], Awaitable[UpdateResult]]


def write_api_update(
    api_key: str, collection: str = "default", document: dict[str, str] | None = None
) -> Update:
    """An update that adds (or replaces) one document through the write API."""

    async def update(client: httpx.AsyncClient) -> UpdateResult:
        started = time.perf_counter()
        response = await client.post(
            f"/v1/collections/{collection}/documents",
            json=document or UPDATE_DOCUMENT,
            headers={"Authorization": f"Bearer {api_key}"},
        )
        seconds = time.perf_counter() - started
        generation = response.json().get("generation") if response.status_code < 300 else None
        detail = "" if generation else response.text[:300]
        return UpdateResult(0.0, seconds, response.status_code, generation, detail)

    return update


async def _request(client: httpx.AsyncClient, turn: int, t0: float) -> Sample:
    """One request: ``/v1/ask`` on odd turns, ``/v1/search`` on even ones."""
    if turn % 2:
        endpoint = "/v1/ask"
        question = QUESTIONS[turn % len(QUESTIONS)]
        request = client.post(endpoint, json={"question": question, "top_k": 5})
    else:
        endpoint = "/v1/search"
        request = client.get(endpoint, params={"q": SEARCHES[turn % len(SEARCHES)], "top_k": 5})
    started = time.perf_counter()
    try:
        response = await request
    except httpx.HTTPError as exc:
        now = time.perf_counter()
        return Sample(endpoint, 0, now - started, now - t0, error=f"{type(exc).__name__}: {exc}")
    now = time.perf_counter()
    sample = Sample(endpoint, response.status_code, now - started, now - t0)
    if response.status_code != 200:
        sample.error = f"HTTP {response.status_code}: {response.text[:200]}"
    else:
        try:
            sample.generation = response.json()["generation"]
        except (ValueError, KeyError) as exc:
            sample.error = f"bad body: {exc!r}"
    return sample


@dataclass
class _Run:
    """The state one run's clients share, and when they stop.

    Clients stop at ``duration``, or once the update has finished and been observed for a
    moment if it ends later, but never after the hard end.
    """

    base_url: str
    duration: float
    max_requests: int
    timeout: float
    hard_s: float
    t0: float = field(default_factory=time.perf_counter)
    samples: list[Sample] = field(default_factory=list)
    result: UpdateResult | None = None
    updated_at: float = 0.0
    update_done: asyncio.Event = field(default_factory=asyncio.Event)

    def keep_going(self) -> bool:
        """Whether the clients send another request."""
        now = time.perf_counter()
        if len(self.samples) >= self.max_requests or now >= self.t0 + self.hard_s:
            return False
        grace = max(1.0, 0.1 * self.duration)  # load goes on this long after the update
        if now < self.t0 + self.duration or not self.update_done.is_set():
            return True
        if now < (self.updated_at or self.t0) + grace:
            return True
        # past the end: go on only until an answer from the new generation has been seen
        new = self.result.generation if self.result is not None else None
        return bool(new) and not any(sample.generation == new for sample in self.samples)

    async def client(self, number: int) -> None:
        """One client: requests one after another while the run goes on."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout) as client:
            turn = number
            while self.keep_going():
                turn += 1
                self.samples.append(await _request(client, turn, self.t0))

    async def run_update(self, update: Update, delay: float) -> None:
        """The update, ``delay`` seconds into the run."""
        await asyncio.sleep(delay)
        started = time.perf_counter() - self.t0
        timeout = max(self.timeout, 300.0)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=timeout) as client:
            try:
                self.result = await update(client)
            except httpx.HTTPError as exc:
                seconds = time.perf_counter() - self.t0 - started
                self.result = UpdateResult(0.0, seconds, 0, None, f"{type(exc).__name__}: {exc}")
        self.result.started_at = started
        self.updated_at = time.perf_counter()
        self.update_done.set()

    async def update_visible(self) -> bool | None:
        """Whether search finds the updated document afterwards (None without an update)."""
        if self.result is None or not self.result.generation:
            return None
        async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout) as client:
            params = {"q": UPDATE_QUERY, "top_k": 3}
            found = (await client.get("/v1/search", params=params)).json()
        ids = [p["citation"]["document_id"] for p in found.get("passages", [])]
        return UPDATE_DOCUMENT["id"] in ids


async def drive(
    base_url: str,
    clients: int = 32,
    duration: float = 60.0,
    max_requests: int = 1_000_000,
    update: Update | None = None,
    update_at: float = 0.5,
    timeout: float = 60.0,
    max_duration: float | None = None,
) -> Report:
    """Run the load and return the report (the server must already be running).

    Clients stop at ``duration``, or once the update has finished and been observed for a
    moment if it ends later, but never after ``max_duration`` (default: twice ``duration``).
    """
    run = _Run(base_url, duration, max_requests, timeout, max_duration or 2 * duration)
    if update is None:
        run.update_done.set()
    tasks = [asyncio.create_task(run.client(i)) for i in range(clients)]
    if update is not None:
        tasks.append(asyncio.create_task(run.run_update(update, duration * update_at)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - run.t0
    return _report(run, clients, elapsed, await run.update_visible())


def _report(run: _Run, clients: int, elapsed: float, visible: bool | None) -> Report:
    samples = run.samples
    by_endpoint = {
        name: summarise([s for s in samples if s.endpoint == name], elapsed) for name in ENDPOINTS
    }
    by_endpoint["all"] = summarise(samples, elapsed)
    errors = [s for s in samples if s.error]
    generations = Counter(s.generation for s in samples if s.generation)
    return Report(
        clients=clients,
        duration_s=round(elapsed, 2),
        requests=len(samples),
        errors=len(errors),
        requests_per_s=by_endpoint["all"]["requests_per_s"],
        endpoints=by_endpoint,
        generations=dict(sorted(generations.items())),
        update=asdict(run.result) if run.result else None,
        update_visible=visible,
        error_samples=[f"{s.endpoint} at {s.at:.1f}s: {s.error}" for s in errors[:10]],
    )


def format_report(report: Report) -> str:
    """The report as text: a line of totals, a table per endpoint, the update, the errors."""
    totals = (
        f"{report.clients} clients, {report.duration_s:.1f} s, {report.requests} requests, "
        f"{report.errors} errors"
    )
    head = (
        f"{'endpoint':<12} {'requests':>9} {'req/s':>8} {'p50 ms':>9} {'p95 ms':>9} "
        f"{'p99 ms':>9} {'max ms':>9} {'errors':>7}"
    )
    lines = [totals, "", head]
    for name, row in report.endpoints.items():
        lines.append(
            f"{name:<12} {row['requests']:>9} {row['requests_per_s']:>8.1f} {row['p50_ms']:>9.1f} "
            f"{row['p95_ms']:>9.1f} {row['p99_ms']:>9.1f} {row['max_ms']:>9.1f} {row['errors']:>7}"
        )
    lines.append("")
    if report.update:
        u = report.update
        lines.append(
            f"update: HTTP {u['status']} at {u['started_at']:.1f} s, took {u['seconds']:.2f} s "
            f"under load, new generation {u['generation']}; new document found by search "
            f"afterwards: {report.update_visible}" + (f" ({u['detail']})" if u["detail"] else "")
        )
    by_generation = ", ".join(f"{g}: {n}" for g, n in report.generations.items())
    lines.append(f"answers by generation: {by_generation}")
    lines += [f"error: {sample}" for sample in report.error_samples]
    lines += [f"server {key}: {value}" for key, value in report.server.items()]
    return "\n".join(lines)
