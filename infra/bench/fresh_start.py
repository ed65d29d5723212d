"""Fresh-worker latency: what the first seconds of a newly started worker cost.

For each rate, two freshly started workers in turn, one with the warm start off and one with
it on (``CREDITRISK_WARM_START``), each on topics and a consumer group of its own. Events are
sent at a steady rate from the moment the worker's ``/health`` turns green (a producer
process forked beforehand, told to go then), and each decision is timed from its
``submitted_at`` to the moment it is read back from the topic. Printed: p50 / p99 over the
whole run and over the events submitted in the first ``FIRST_S`` seconds, for each worker,
and the ratio off / on of the same run.

The stack is warmed first: a worker serves ``WARM_UP_S`` seconds of the first rate, untimed
for the pairs (its figures are printed as the stack's warm-up). A deploy or a rebalance starts
a worker beside brokers that have served for hours; brokers started moments before serve
their first minute markedly slower (every worker alike, warm start on or off: p50 74 ms and p99 251 ms
at 200/s in the first run after `stack up`, 12 / 29 ms a minute later), which is the stack's
first minute, not the worker's first seconds.

``python -m infra.bench.fresh_start [--rates 200,1000] [--seconds 15] [--rounds 1]`` runs
it alone against the local stack (which must be up); ``creditrisk bench --suite worker`` runs
it after the worker suite's other figures. Prints figures, never fails on them.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from config.kafka_auth import kafka_python_options
from config.settings import Settings, get_settings
from infra.bench.worker import bureau_features, decoded_outputs, start_worker
from infra.stack.kafka_access import ensure_topics, grant_prefix, retire_prefix

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event

    from kafka import KafkaConsumer

    from replay.core import EventLayout

RATES = (200, 1_000)
RUN_S = 15.0     # events sent per worker: RUN_S × rate
FIRST_S = 5.0    # the "first seconds" window, from the first send
WARM_UP_S = 30.0  # the stack's warm-up before the pairs: a worker serving the first rate
IDLE_AFTER_SENT_S = 10.0  # stop reading this long after the last send if events are missing
Echo = Callable[[str], None]


@dataclass(frozen=True)
class FreshRun:
    """One freshly started worker under a steady rate."""

    rate: int
    warm_start: bool
    sent: int
    ready_after_s: float          # process start → /health green
    first_send_after_s: float     # /health green → the first event submitted
    # (seconds from the first submitted event, submitted → read back) per decision
    latencies: tuple[tuple[float, float], ...]

    def percentiles(self, within_s: float | None = None) -> tuple[float, float]:
        """p50 and p99 in ms, of every decision or of those submitted within ``within_s``."""
        values = [latency for at, latency in self.latencies
                  if within_s is None or at < within_s]
        if not values:
            return float("nan"), float("nan")
        return (float(np.percentile(values, 50)) * 1000, float(np.percentile(values, 99)) * 1000)

    def by_second(self, seconds: int = int(FIRST_S)) -> str:
        """The slowest decision of each of the first ``seconds`` seconds, in ms."""
        slowest = []
        for second in range(seconds):
            values = [latency for at, latency in self.latencies if second <= at < second + 1]
            slowest.append(f"{max(values) * 1000:,.0f}" if values else "–")
        return " / ".join(slowest)

    def line(self) -> str:
        whole, first = self.percentiles(), self.percentiles(FIRST_S)
        state = "warm start on " if self.warm_start else "warm start off"
        return (f"  {self.rate:>5,}/s {state}: {len(self.latencies):,}/{self.sent:,} decided; "
                f"whole run p50 {whole[0]:,.0f} / p99 {whole[1]:,.0f} ms; first {FIRST_S:.0f} s "
                f"p50 {first[0]:,.0f} / p99 {first[1]:,.0f} ms; max "
                f"{max((lat for _, lat in self.latencies), default=0) * 1000:,.0f} ms "
                f"(healthy {self.ready_after_s:.1f} s after start, first send "
                f"{self.first_send_after_s * 1000:.0f} ms after healthy)\n"
                f"         slowest decision of each of the first {FIRST_S:.0f} seconds: "
                f"{self.by_second()} ms")


def bench_fresh_start(settings: Settings, data: Path, echo: Echo,
                      rates: Sequence[int] = RATES, seconds: float = RUN_S,
                      rounds: int = 1, registry_dir: Path | None = None,
                      warm_up_s: float = WARM_UP_S) -> list[FreshRun]:
    """Each rate, each round: a fresh worker with the warm start off, then one with it on
    (the order alternates by round, so neither always meets a machine the other warmed),
    serving the live model of ``registry_dir`` (else the settings' registry); first, unless
    ``warm_up_s`` is 0, a worker serving the first rate that long warms the stack."""
    from replay.core import live_event_layout

    registry = registry_dir or settings.registry_dir
    layout = live_event_layout(registry)
    echo(f"\n  fresh worker, steady rate from the moment /health is green, {seconds:.0f} s per "
         f"worker (submitted_at → decision read back; first {FIRST_S:.0f} s = events submitted "
         "then):")
    runs: list[FreshRun] = []
    start_row = 0
    with bureau_features(settings, data) as prefix:
        if warm_up_s > 0 and rates:
            count = int(rates[0] * warm_up_s)
            warm_up = _fresh_run(settings, data, registry, layout, prefix, rates[0], count,
                                 start_row, True)
            start_row += count
            whole = warm_up.percentiles()
            echo(f"    the stack's warm-up ({warm_up_s:.0f} s at {rates[0]:,}/s, not one of the "
                 f"pairs): p50 {whole[0]:,.0f} / p99 {whole[1]:,.0f} ms")
        for round_ in range(rounds):
            for rate in rates:
                count = int(rate * seconds)
                pair: dict[bool, FreshRun] = {}
                order = (False, True) if round_ % 2 == 0 else (True, False)
                for warm in order:
                    pair[warm] = _fresh_run(settings, data, registry, layout, prefix, rate,
                                            count, start_row, warm)
                    start_row += count
                    echo(pair[warm].line())
                runs += pair.values()
                echo(_ratio_line(pair[False], pair[True]))
    return runs


def _ratio_line(cold: FreshRun, warm: FreshRun) -> str:
    (_, cold_p99), (_, warm_p99) = cold.percentiles(), warm.percentiles()
    (_, cold_first), (_, warm_first) = cold.percentiles(FIRST_S), warm.percentiles(FIRST_S)
    return (f"         off / on: whole-run p99 {cold_p99 / warm_p99:.2f}x, first {FIRST_S:.0f} s "
            f"p99 {cold_first / warm_first:.2f}x")


def _fresh_run(settings: Settings, data: Path, registry: Path, layout: EventLayout, prefix: str,
               rate: int, count: int, start_row: int, warm_start: bool) -> FreshRun:
    tag = f"fresh-{uuid.uuid4().hex[:8]}"
    topics = {name: f"bench-{tag}-{name}" for name in ("applications", "decisions", "dlq")}
    grant_prefix(settings, f"bench-{tag}")
    ensure_topics(settings, dict.fromkeys(topics.values(), settings.topic_partitions))
    go = multiprocessing.get_context("fork").Event()
    # Forked before any Kafka client of this process exists; it sends once told to.
    producer = multiprocessing.get_context("fork").Process(
        target=_send_when_told, args=(go, settings, data, layout, topics["applications"], count,
                                      rate, start_row), daemon=True)
    producer.start()
    reader = _reader(settings, [topics["decisions"], topics["dlq"]])
    started = time.monotonic()
    worker = start_worker(settings, topics, tag, prefix, registry_dir=registry,
                          environment={"CREDITRISK_WARM_START": "true" if warm_start else "false"})
    try:
        ready_after = time.monotonic() - started
        told_at = time.time()
        go.set()
        latencies = _read_back(reader, count, producer)
    finally:
        worker.stop()
        reader.close()
        producer.join(timeout=30)
        retire_prefix(settings, f"bench-{tag}")
    # An application decided by an earlier run of the same invocation (ids repeat across the
    # file) is answered with the stored decision, earlier submitted_at included: not timed.
    fresh = [(submitted, latency) for submitted, latency in latencies if submitted >= told_at - 1]
    first_sent = min((submitted for submitted, _ in fresh), default=told_at)
    return FreshRun(rate, warm_start, count, ready_after, first_sent - told_at,
                    tuple((submitted - first_sent, latency) for submitted, latency in fresh))


def _reader(settings: Settings, topics: list[str]) -> KafkaConsumer:
    """A reader of the output topics, assigned and positioned before the worker starts."""
    from kafka import KafkaConsumer

    reader = KafkaConsumer(*topics, group_id=None, **kafka_python_options(settings, "reader"),
                           auto_offset_reset="earliest", enable_auto_commit=False)
    deadline = time.monotonic() + 10
    while not reader.assignment() and time.monotonic() < deadline:
        reader.poll(timeout_ms=200)
    return reader


def _send_when_told(go: Event, settings: Settings, data: Path, layout: EventLayout, topic: str,
                    count: int, rate: int, start_row: int) -> None:
    """Everything a send needs is ready before ``go`` (rows read, producer connected, the
    topic's metadata fetched), so the first event leaves the moment the worker is healthy;
    event i is then sent when due (go + i / rate) with ``submitted_at`` = the moment sent."""
    from kafka import KafkaProducer

    from replay.core import application_event, encode_event, read_loan_rows

    # The loan file repeats a few application ids; a repeat would be answered with the
    # decision stored for the first copy (its submitted_at too) and timed wrongly: skipped.
    id_column, seen = layout.columns.id_column, set()
    rows = []
    for row in read_loan_rows(data, layout, start_row):
        application_id = row.get(id_column)
        if application_id not in seen:
            seen.add(application_id)
            rows.append(row)
        if len(rows) == count:
            break
    producer = KafkaProducer(**kafka_python_options(settings, "producer"), acks="all",
                             linger_ms=0)
    producer.partitions_for(topic)
    go.wait()
    started = time.perf_counter()
    for index, row in enumerate(rows):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        key, value = encode_event(application_event(row, layout))
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def _read_back(reader: KafkaConsumer, count: int,
               producer: multiprocessing.process.BaseProcess) -> list[tuple[float, float]]:
    """(submitted_at, latency) of every decision, read until all ``count`` events are out or
    the producer has been done for IDLE_AFTER_SENT_S."""
    timed: list[tuple[float, float]] = []
    seen = 0
    sent_by: float | None = None
    while seen < count:
        if sent_by is None and not producer.is_alive():
            sent_by = time.monotonic()
        if sent_by is not None and time.monotonic() - sent_by > IDLE_AFTER_SENT_S:
            break
        arrived, decisions = decoded_outputs(reader.poll(timeout_ms=100))
        now = time.time()
        seen += arrived
        for decision in decisions:
            submitted = datetime.fromisoformat(str(decision["submitted_at"])).timestamp()
            timed.append((submitted, now - submitted))
    return timed


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default=",".join(map(str, RATES)),
                        help="events/s, comma-separated (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=RUN_S,
                        help="seconds of events per worker (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="off/on pairs per rate (default %(default)s)")
    parser.add_argument("--warm-up", type=float, default=WARM_UP_S,
                        help="seconds a first worker serves to warm the stack before the "
                             "pairs; 0 for none (default %(default)s)")
    parser.add_argument("--data", type=Path, default=Path("data/demo/loans.csv"),
                        help="loan file to replay; bureau.csv beside it is materialized")
    parser.add_argument("--registry", type=Path, default=None,
                        help="registry whose live model the workers serve (default: the "
                             "settings' registry); its model must fit --data")
    arguments = parser.parse_args(argv)
    rates = [int(rate) for rate in arguments.rates.split(",") if rate.strip()]
    bench_fresh_start(get_settings(), arguments.data, print, rates, arguments.seconds,
                      arguments.rounds, arguments.registry, arguments.warm_up)


if __name__ == "__main__":
    main()
