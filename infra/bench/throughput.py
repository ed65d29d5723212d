"""Throughput benchmark: how fast the worker drains Kafka, against what, and how it scales.

1. Drain rates. One topic is filled with N applications first (the producer's speed is out
   of the picture); then each consumer, in a consumer group of its own, drains the same
   topic: a Faust pass-through (the ceiling of any Faust worker here), a raw aiokafka
   pass-through (the engine beneath Faust), the real worker, the real worker with one
   challenger at 100 % (shadow scoring, :mod:`infra.bench.challenger`), and a naive per-event
   loop (see :mod:`infra.bench.consumers`). Each is timed from its first to its last output
   message (Kafka record timestamps; for the worker with a challenger, the champion's
   decisions) and its CPU is read from /proc.
2. Latency ladder: a live producer (``creditrisk produce``) offers rising rates to one
   worker; submitted_at → decision seen on the output topic, p50 / p99, until it cannot keep up.
   Then a steady 200/s to a worker with one challenger at 100 %.
3. HTTP: ``POST /score`` under 10, 50 and 200 concurrent clients.
4. Scale-out: a 6-partition topic drained by one worker process, then by
   ``creditrisk worker --processes 2``; every application must be decided once in meaning.

Prints figures; never fails on them.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from config.json_types import JSONObject, JSONValue
from config.kafka_auth import kafka_python_options
from config.settings import Settings
from infra.bench.challenger import registry_with_challenger
from infra.bench.worker import (
    BenchWorker,
    bureau_features,
    decoded_outputs,
    start_worker,
)
from infra.stack.kafka_access import (
    delete_topics,
    ensure_leader_topic,
    ensure_topics,
    grant_prefix,
    retire_prefix,
)
from infra.stack.private import free_port

if TYPE_CHECKING:
    from kafka import KafkaConsumer, TopicPartition

    from replay.core import ReplaySummary

PARTITIONS = 6
NAIVE_EVENTS = 5_000  # the naive loop's sample of the pre-filled topic
WARM_UP_RATE, WARM_UP_EVENTS = 200, 600  # before the latency ladder, not reported
LADDER_RATES = (200, 1_000, 2_000, 5_000)
LADDER_STEP_S = 15.0
KEPT_UP_WITHIN_S = 5.0   # every event of a step decided this soon after the last was sent
HTTP_REQUESTS = 2_000
HTTP_CONCURRENCY = (10, 50, 200)
IDLE_TIMEOUT_S = 60.0    # a drain with no new output for this long has stalled
# With one challenger at 100 %: the drain rate's share of the worker alone, and the steady
# p99 at STEADY_RATE (ISSUE 23's targets; printed, never enforced).
CHALLENGER_DRAIN_TARGET, STEADY_RATE, STEADY_P99_TARGET_MS = 0.6, 200, 50.0

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Drain:
    """One consumer draining a pre-filled topic."""

    name: str
    outputs: int
    seconds: float                      # first to last output message
    # CPU seconds per 1,000 outputs of the "process" (with its children) and of each broker
    # and Redis node (named as stack_pids names them)
    cpu_per_thousand: dict[str, float]
    # Share of all the machine's cores busy (anyone's work) while it drained
    machine_busy: float | None = None

    @property
    def events_per_second(self) -> float:
        return self.outputs / self.seconds if self.seconds > 0 else float("nan")

    def line(self) -> str:
        own = self.cpu_per_thousand.get("process")
        cpu = f", {own:.2f} CPU s per 1,000" if own else ""
        return (f"  {self.name:<34} {self.outputs:>7,} in {self.seconds:6.1f} s = "
                f"{self.events_per_second:>7,.0f} events/s{cpu}")


def bench_throughput(settings: Settings, data: Path, echo: Echo, events: int = 30_000,
                     scale_out_events: int = 30_000) -> None:
    """The four parts of the module docstring, on one stack, in one run."""
    tag = uuid.uuid4().hex[:8]
    echo(f"  {events:,} applications pre-filled in a {PARTITIONS}-partition topic, drained by "
         "each consumer in turn")
    parts = ("tp", "tl", "tc", "ts")
    for part in parts:  # the benchmark's topics and consumer groups
        grant_prefix(settings, f"{part}-{tag}")
        grant_prefix(settings, f"bench-{part}-{tag}")
    try:
        with bureau_features(settings, data) as prefix:
            drains = _drain_rates(settings, data, f"tp-{tag}", prefix, events, echo)
        _print_ratios(drains, echo)
        with bureau_features(settings, data) as prefix:
            _latency_ladder(settings, data, f"tl-{tag}", prefix, echo)
        with bureau_features(settings, data) as prefix:
            _steady_with_challenger(settings, data, f"tc-{tag}", prefix, echo)
        _scale_out(settings, data, f"ts-{tag}", scale_out_events, echo)
    finally:
        for part in parts:  # topics, ACLs, the groups' leader topics
            retire_prefix(settings, f"{part}-{tag}")
            retire_prefix(settings, f"bench-{part}-{tag}")


# ---------------------------------------------------------------- 1. drain rates

def _drain_rates(settings: Settings, data: Path, tag: str, prefix: str, events: int,
                 echo: Echo) -> dict[str, Drain]:
    source = f"{tag}-applications"
    with bench_topics(settings, [source]):
        filled = fill_topic(settings, data, source, events)
        echo(f"  filled: {filled.line()}")
        drains: dict[str, Drain] = {}
        for kind, name in (("faust", "Faust pass-through (ceiling)"),
                           ("aiokafka", "raw aiokafka pass-through"),
                           ("worker", "scoring worker"),
                           ("challenger", "scoring worker + 1 challenger 100 %"),
                           ("naive", "naive per-event loop")):
            # The naive loop is timed on the first events only: at its rate the whole topic
            # would take most of the suite's time, and a rate needs no more.
            expected = min(filled.sent, NAIVE_EVENTS) if kind == "naive" else filled.sent
            drains[kind] = drain_one(settings, kind, name, source, f"{tag}-{kind}", prefix,
                                      expected)
            echo(drains[kind].line())
    return drains


def drain_one(settings: Settings, kind: str, name: str, source: str, tag: str, prefix: str,
               expected: int) -> Drain:
    if kind in ("worker", "challenger"):
        topics = {"applications": source, "decisions": f"{tag}-decisions", "dlq": f"{tag}-dlq",
                  "shadow": f"{tag}-shadow"}
        outputs = [topics["decisions"], topics["dlq"]]
        # The challenger run's champion is a copy of the live model under a version of its
        # own: it decides anew rather than answer with the worker run's stored decisions.
        with bench_topics(settings, [*outputs, topics["shadow"]]), \
                registry_with_challenger(settings) as (registry, _challenger):
            worker = start_worker(settings, topics, tag, prefix,
                                  registry_dir=registry if kind == "challenger" else None)
            try:
                drain = time_drain(settings, name, worker.process.pid, outputs, expected)
                if kind == "challenger":
                    shadows = _messages_in(settings, [topics["shadow"]])
                    drain = Drain(f"{drain.name} ({shadows:,} shadow decisions)", drain.outputs,
                                  drain.seconds, drain.cpu_per_thousand, drain.machine_busy)
                return drain
            finally:
                worker.stop()
    outputs = [f"{tag}-out"]
    group = f"bench-{tag}"
    ensure_leader_topic(settings, group)
    with bench_topics(settings, outputs):
        command = [sys.executable, "-m", "infra.bench.consumers", kind, "--input", source,
                   "--output", outputs[0], "--group", group, "--port", str(free_port()),
                   *(["--limit", str(expected)] if kind == "naive" else [])]
        env = {**os.environ, "CREDITRISK_KEY_PREFIX": prefix}
        with (settings.stack_dir / "logs" / "bench-consumers.log").open("ab") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            return time_drain(settings, name, process.pid, outputs, expected)
        finally:
            process.terminate()
            process.wait(timeout=60)


def time_drain(settings: Settings, name: str, pid: int, topics: list[str], expected: int) -> Drain:
    """Wait until the output topics hold ``expected`` messages; time them by their record
    timestamps and charge the CPU of the process (and of the broker and Redis) from its first
    output to its last."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**kafka_python_options(settings, "reader"), group_id=None,
                             enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for topic in topics for p in range(PARTITIONS)]
    pids = {"process": pid, **stack_pids(settings)}
    try:
        first: tuple[int, dict[str, float], float, float] | None = None
        count, cpu, last_count, last_progress = 0, dict.fromkeys(pids, 0.0), 0, time.monotonic()
        while count < expected and time.monotonic() - last_progress < IDLE_TIMEOUT_S:
            time.sleep(0.1)
            count = sum(consumer.end_offsets(partitions).values())
            cpu = {who: cpu_seconds(each) for who, each in pids.items()}
            if count and first is None:
                first = (count, cpu, machine_busy_seconds(), time.monotonic())
            if count > last_count:
                last_count, last_progress = count, time.monotonic()
        busy, ended = machine_busy_seconds(), time.monotonic()
        first_ms, last_ms = _first_and_last_timestamps(consumer, partitions)
    finally:
        consumer.close()
    per_thousand: dict[str, float] = {}
    machine: float | None = None
    if first is not None and count > first[0]:
        per_thousand = {who: (cpu[who] - first[1][who]) / (count - first[0]) * 1000 for who in pids}
        machine = (busy - first[2]) / max(ended - first[3], 1e-9) / (os.cpu_count() or 1)
    shown = name if count >= expected else f"{name} (stalled at {count:,} of {expected:,})"
    return Drain(shown, count, (last_ms - first_ms) / 1000, per_thousand, machine)


def _messages_in(settings: Settings, topics: list[str]) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**kafka_python_options(settings, "reader"), group_id=None,
                             enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for topic in topics for p in range(PARTITIONS)]
        return int(sum(consumer.end_offsets(partitions).values()))
    finally:
        consumer.close()


def stack_pids(settings: Settings) -> dict[str, int]:
    """Every broker and Redis node of the local stack, when this machine runs them, by name:
    ``broker`` and ``redis`` on the single-node stack, ``broker 1`` … and ``redis 1`` … on
    the clustered one."""
    from infra.stack.services import kafka_nodes, redis_nodes

    found: dict[str, int] = {}
    for kind, nodes in (("broker", kafka_nodes(settings)), ("redis", redis_nodes(settings))):
        for index, node in enumerate(nodes, start=1):
            pid = node.our_pid()
            if pid is not None:
                found[kind if len(nodes) == 1 else f"{kind} {index}"] = pid
    return found


def brokers_total(per_process: dict[str, float]) -> float | None:
    """The sum of every broker's figure in ``per_process`` (keyed as :func:`stack_pids`)."""
    brokers = [value for name, value in per_process.items() if name.startswith("broker")]
    return sum(brokers) if brokers else None


def _first_and_last_timestamps(consumer: KafkaConsumer, partitions: list[TopicPartition],
                               ) -> tuple[int, int]:
    starts, ends = consumer.beginning_offsets(partitions), consumer.end_offsets(partitions)
    stamps: list[int] = []
    for tp in partitions:
        for offset in {starts[tp], ends[tp] - 1} if ends[tp] > starts[tp] else ():
            consumer.assign([tp])
            consumer.seek(tp, offset)
            for records in consumer.poll(timeout_ms=5000, max_records=1).values():
                stamps.extend(record.timestamp for record in records)
    return (min(stamps), max(stamps)) if stamps else (0, 0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process and its live children (Linux /proc; a
    ``worker --processes N`` supervisor's workers are its children); 0 once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
                    for child in (task / "children").read_text().split()]
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(child) for child in children)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent on anything but idling (Linux /proc/stat)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal, *_ = (
        int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _print_ratios(drains: dict[str, Drain], echo: Echo) -> None:
    rate = {kind: drain.events_per_second for kind, drain in drains.items()}
    echo(f"  worker / Faust pass-through {rate['worker'] / rate['faust']:.2f}; "
         f"worker / naive loop {rate['worker'] / rate['naive']:.1f}×; "
         f"Faust / raw aiokafka {rate['faust'] / rate['aiokafka']:.2f}")
    with_challenger = rate["challenger"] / rate["worker"]
    echo(f"  worker with one challenger at 100 % / worker alone {with_challenger:.2f}× "
         f"(target ≥ {CHALLENGER_DRAIN_TARGET}×: "
         f"{'met' if with_challenger >= CHALLENGER_DRAIN_TARGET else 'NOT MET'})")
    cpu = drains["worker"].cpu_per_thousand
    if cpu.get("process"):
        others = "".join(f", {who} {seconds:.2f} s" for who, seconds in cpu.items() if who != "process")
        echo(f"  worker CPU: {cpu['process']:.2f} s per 1,000 decisions "
             f"(= {1000 / cpu['process']:,.0f} decisions/s per fully used core){others} "
             "(the stack's processes serve everyone on this machine: an upper bound)")


# ---------------------------------------------------------------- 2. latency ladder

def _latency_ladder(settings: Settings, data: Path, tag: str, prefix: str, echo: Echo) -> None:
    topics = {"applications": f"{tag}-applications", "decisions": f"{tag}-decisions",
              "dlq": f"{tag}-dlq"}
    rows_left = _data_rows(data)
    echo(f"\n  latency with a live producer (submitted_at → decision seen on the topic), "
         f"~{LADDER_STEP_S:.0f} s per rate, rows not repeated:")
    with bench_topics(settings, list(topics.values())), \
            warmed_worker(settings, data, topics, tag, prefix) as (worker, reader):
        start = WARM_UP_EVENTS
        for rate in LADDER_RATES:
            count = int(min(LADDER_STEP_S * rate, rows_left - start))
            if count < rate:
                echo(f"  {rate:>5,}/s: not run, the loan file has too few rows left")
                break
            if not ladder_step(settings, data, topics["applications"], reader, rate, count,
                                start, echo):
                break
            start += count
        _http_load(settings, worker, data, echo)


@contextmanager
def warmed_worker(settings: Settings, data: Path, topics: dict[str, str], tag: str, prefix: str,
                  registry_dir: Path | None = None) -> Iterator[tuple[BenchWorker, KafkaConsumer]]:
    """A worker on ``topics`` and a reader of its decisions and dead letters, the worker warmed
    up by the loan file's first WARM_UP_EVENTS rows at WARM_UP_RATE: a warm worker is measured,
    as in production (a fresh process's first events also pay for connections, topic metadata
    and first-call set-up). Measured steps start at row WARM_UP_EVENTS."""
    from kafka import KafkaConsumer

    worker = start_worker(settings, topics, tag, prefix, registry_dir=registry_dir)
    reader = KafkaConsumer(topics["decisions"], topics["dlq"], group_id=None,
                           **kafka_python_options(settings, "reader"),
                           auto_offset_reset="earliest", enable_auto_commit=False)
    try:
        ladder_step(settings, data, topics["applications"], reader, WARM_UP_RATE,
                     WARM_UP_EVENTS, 0, lambda _line: None)
        yield worker, reader
    finally:
        reader.close()
        worker.stop()


def _steady_with_challenger(settings: Settings, data: Path, tag: str, prefix: str,
                            echo: Echo) -> None:
    """STEADY_RATE for LADDER_STEP_S to a warmed-up worker alone, then to one with a
    challenger at 100 % (same rows, same machine, one after the other)."""
    echo(f"\n  latency at a steady {STEADY_RATE}/s, without and with one challenger at 100 % "
         f"(target with it: p99 ≤ {STEADY_P99_TARGET_MS:.0f} ms):")
    with registry_with_challenger(settings) as (registry, challenger):
        for run, registry_dir in (("alone", None), ("challenger", registry)):
            label = f"with challenger {challenger}" if registry_dir else "worker alone"
            _steady_run(settings, data, f"{tag}-{run}", prefix, registry_dir, label, echo)


def _steady_run(settings: Settings, data: Path, tag: str, prefix: str,
                registry_dir: Path | None, label: str, echo: Echo) -> None:
    topics = {"applications": f"{tag}-applications", "decisions": f"{tag}-decisions",
              "dlq": f"{tag}-dlq", "shadow": f"{tag}-shadow"}
    with bench_topics(settings, list(topics.values())), \
            warmed_worker(settings, data, topics, tag, prefix, registry_dir) as (_worker, reader):
        ladder_step(settings, data, topics["applications"], reader, STEADY_RATE,
                     int(LADDER_STEP_S * STEADY_RATE), WARM_UP_EVENTS,
                     lambda line: echo(f"{line} [{label}]" if "/s offered" in line else line))
        if registry_dir is not None:
            time.sleep(1.0)  # the last batch's shadow decisions follow its decisions
            shadows = _messages_in(settings, [topics["shadow"]])
            echo(f"         {shadows:,} shadow decisions published (warm-up included)")


def ladder_step(settings: Settings, data: Path, topic: str, reader: KafkaConsumer, rate: int,
                 count: int, start: int, echo: Echo) -> bool:
    """One rate: True when every event was decided within KEPT_UP_WITHIN_S of the last send."""
    producer = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "produce", "--data", str(data), "--rate", str(rate),
         "--count", str(count), "--start", str(start), "--topic", topic],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    latencies: list[float] = []
    seen = 0
    sent_by: float | None = None
    while seen < count:
        if sent_by is None and producer.poll() is not None:
            sent_by = time.time()
        if sent_by is not None and time.time() - sent_by > KEPT_UP_WITHIN_S:
            break
        polled = reader.poll(timeout_ms=200)
        now = time.time()
        arrived, decisions = decoded_outputs(polled)
        seen += arrived
        latencies += [now - datetime.fromisoformat(str(decision["submitted_at"])).timestamp()
                      for decision in decisions]
    summary = (producer.communicate()[0] or "").strip().splitlines()
    kept_up = seen >= count
    figures = (f"p50 {np.percentile(latencies, 50) * 1000:,.0f} ms, "
               f"p99 {np.percentile(latencies, 99) * 1000:,.0f} ms" if latencies else "no decisions")
    verdict = f"kept up (all decided within {KEPT_UP_WITHIN_S:.0f} s of the last send)" if kept_up else (
        f"CANNOT KEEP UP: {seen:,} of {count:,} decided {KEPT_UP_WITHIN_S:.0f} s after the last "
        "event was sent; the ladder stops here")
    echo(f"  {rate:>5,}/s offered, {count:,} events: {figures}; {verdict}")
    if summary:
        echo(f"         producer: {summary[-1]}")
    if not kept_up:
        _drain_reader(reader, count - seen)
    return kept_up


def _drain_reader(reader: KafkaConsumer, missing: int, timeout_s: float = 120.0) -> None:
    """Read the backlog away so the HTTP run starts on an idle worker."""
    deadline = time.monotonic() + timeout_s
    while missing > 0 and time.monotonic() < deadline:
        missing -= sum(len(records) for records in reader.poll(timeout_ms=500).values())


def _data_rows(data: Path) -> int:
    with data.open("rb") as handle:
        return sum(1 for _ in handle) - 1


# ---------------------------------------------------------------- 3. HTTP

def _http_load(settings: Settings, worker: BenchWorker, data: Path, echo: Echo) -> None:
    from replay.core import application_event, encode_event, live_event_layout, read_loan_rows
    from stream.http_auth import bearer_header

    layout = live_event_layout(settings.registry_dir)
    rows = read_loan_rows(data, layout)
    bodies = [encode_event(application_event(next(rows), layout))[1] for _ in range(HTTP_REQUESTS)]
    echo(f"\n  POST /score, {HTTP_REQUESTS:,} applications from the loan file per run "
         "(its dirty rows answer 422):")
    url = f"http://127.0.0.1:{worker.port}/score"
    for concurrency in HTTP_CONCURRENCY:
        seconds, latencies, statuses = asyncio.run(_post_all(url, bodies, concurrency,
                                                             bearer_header(settings.api_token)))
        counts = ", ".join(f"{status}: {count:,}" for status, count in sorted(statuses.items()))
        echo(f"  concurrency {concurrency:>3}: {len(bodies) / seconds:,.0f} requests/s, "
             f"p50 {np.percentile(latencies, 50) * 1000:,.0f} ms, "
             f"p99 {np.percentile(latencies, 99) * 1000:,.0f} ms; status {counts}")


async def _post_all(url: str, bodies: Sequence[bytes], concurrency: int,
                    authorization: dict[str, str]) -> tuple[float, list[float], Counter[str]]:
    import aiohttp

    pending = iter(bodies)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()

    async def client(session: aiohttp.ClientSession) -> None:
        for body in pending:  # one iterator shared by every client: each body is sent once
            started = time.perf_counter()
            try:
                async with session.post(url, data=body,
                                        headers={"Content-Type": "application/json",
                                                 **authorization}) as response:
                    await response.read()
                    statuses[str(response.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as error:
                statuses[type(error).__name__] += 1
            latencies.append(time.perf_counter() - started)

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                     timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, statuses


# ---------------------------------------------------------------- 4. scale-out

def _scale_out(settings: Settings, data: Path, tag: str, events: int, echo: Echo) -> None:
    source = f"{tag}-applications"
    echo(f"\n  scale-out: {events:,} applications in a {PARTITIONS}-partition topic, one consumer group")
    with bench_topics(settings, [source]):
        filled = fill_topic(settings, data, source, events)
        runs: dict[int, tuple[Drain, dict[str, list[JSONObject]]]] = {}
        for processes in (1, 2):
            run_tag = f"{tag}-p{processes}"
            topics = {"applications": source, "decisions": f"{run_tag}-decisions",
                      "dlq": f"{run_tag}-dlq"}
            arguments = ("--processes", str(processes)) if processes > 1 else ()
            outputs = [topics["decisions"], topics["dlq"]]
            # Features under a prefix per run: the second run must not reuse the first one's
            # stored decisions.
            with bench_topics(settings, outputs), bureau_features(settings, data) as prefix:
                worker = start_worker(settings, topics, run_tag, prefix, arguments)
                try:
                    name = f"{processes} worker process{'es' if processes > 1 else ''}"
                    drain = time_drain(settings, name, worker.process.pid, outputs, filled.sent)
                finally:
                    worker.stop()
                runs[processes] = (drain, _decisions_by_key(settings, topics["decisions"]))
            own = drain.cpu_per_thousand.get("process")
            busy = (f"; the machine {drain.machine_busy:.0%} busy (all {os.cpu_count()} cores)"
                    if drain.machine_busy is not None else "")
            echo(Drain(drain.name, drain.outputs, drain.seconds, {}).line()
                 + (f", workers {own:.2f} CPU s per 1,000" if own else "") + busy)
    one, two = runs[1], runs[2]
    echo(f"  2 processes / 1 process: {two[0].events_per_second / one[0].events_per_second:.2f}")
    echo("  " + _exactly_once_report(one[1], two[1]))


def _decisions_by_key(settings: Settings, topic: str) -> dict[str, list[JSONObject]]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, **kafka_python_options(settings, "reader"), group_id=None,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=5000)
    by_key: dict[str, list[JSONObject]] = {}
    try:
        for record in consumer:
            by_key.setdefault(record.key.decode(), []).append(json.loads(record.value))
    finally:
        consumer.close()
    return by_key


def _exactly_once_report(one: dict[str, list[JSONObject]],
                         two: dict[str, list[JSONObject]]) -> str:
    """Every application decided once in meaning: copies of one decision identical, and the
    same applications decided the same way by one process and by two."""
    def meaning(decision: JSONObject) -> tuple[JSONValue, ...]:
        return (decision["decision_id"], decision["decision"], decision["probability_of_default"])

    copies_differ = sum(any(copy != copies[0] for copy in copies)
                        for run in (one, two) for copies in run.values())
    extra = sum(len(copies) - 1 for copies in two.values())
    disagree = sum(meaning(one[key][0]) != meaning(two[key][0]) for key in set(one) & set(two))
    same_set = set(one) == set(two)
    ok = copies_differ == 0 and disagree == 0 and same_set
    return (f"exactly once in meaning: {'yes' if ok else 'NO'} — {len(two):,} applications "
            f"decided by 2 processes ({extra:,} repeated messages, {copies_differ} copies that "
            f"differ), same applications as 1 process: {'yes' if same_set else 'NO'}, "
            f"{disagree} decided differently")


# ---------------------------------------------------------------- shared

@contextmanager
def bench_topics(settings: Settings, names: list[str]) -> Iterator[None]:
    ensure_topics(settings, dict.fromkeys(names, PARTITIONS))
    try:
        yield
    finally:
        delete_topics(settings, names)


def fill_topic(settings: Settings, data: Path, topic: str, events: int) -> ReplaySummary:
    from replay.core import live_event_layout, replay_applications

    return replay_applications(data, settings, topic, events, progress=False,
                               layout=live_event_layout(settings.registry_dir))
