"""The throughput workloads on the single-node stack beside the clustered one: one run, ratios.

The same workloads, in rounds that alternate between the stacks (single, cluster, single,
cluster …) so the machine's other load falls on both, each stack reached through its
settings profile (``Settings(profile=…)`` here, ``CREDITRISK_PROFILE`` for the processes the
benchmark starts):

1. drain rates of a pre-filled 6-partition ``applications`` topic: how fast it was filled
   (the producer with ``acks=all``, so the clustered stack's replication factor 3 and
   ``min.insync.replicas=2`` are on its path), the Faust pass-through (the ceiling) and the
   scoring worker, with the worker's CPU per 1,000 decisions;
2. latency of one warmed-up worker under a live producer at a steady 200/s and 1,000/s
   (``submitted_at`` → the decision read back, p50 / p99);
3. scale-out: ``creditrisk worker --processes N`` draining the same pre-filled topic as the
   one-process worker of part 1.

Every figure comes from the functions of :mod:`infra.bench.throughput` and
:mod:`infra.bench.worker`; this module only runs them on both stacks and compares. Per
measure it prints the median over rounds on each stack and the ratio cluster / single (and
the range of the per-round ratios), as a markdown table for ``docs/benchmarks.md``.

``python -m infra.bench.cluster_compare [--events N] [--rounds R] [--processes P]
[--rate-seconds S]``; both stacks must be able to run (the clustered one is started when it
is not up; neither is ever stopped). Prints figures, never fails on them.
"""

from __future__ import annotations

import argparse
import fcntl
import math
import os
import re
import statistics
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from config.settings import Settings
from infra.bench.throughput import (
    LADDER_STEP_S,
    WARM_UP_EVENTS,
    Drain,
    bench_topics,
    brokers_total,
    drain_one,
    fill_topic,
    ladder_step,
    time_drain,
    warmed_worker,
)
from infra.bench.worker import bureau_features, start_worker
from infra.stack.kafka_access import grant_prefix, retire_prefix

Profile = Literal["single", "cluster"]
PROFILES: tuple[Profile, ...] = ("single", "cluster")
LATENCY_RATES = (200, 1_000)
Echo = Callable[[str], None]


@dataclass(frozen=True)
class Measure:
    """One figure the comparison reports, and how to print it."""

    key: str
    label: str
    unit: Literal["events/s", "ms", "CPU s", "ratio", "share"]


MEASURES: tuple[Measure, ...] = (
    Measure("fill", "fill: producer, acks=all, as fast as possible", "events/s"),
    Measure("faust", "drain: Faust pass-through (ceiling)", "events/s"),
    Measure("worker", "drain: scoring worker, 1 process", "events/s"),
    Measure("worker_vs_faust", "worker / pass-through", "ratio"),
    Measure("worker_cpu", "worker CPU per 1,000 decisions", "CPU s"),
    Measure("broker_cpu", "the brokers' CPU per 1,000 decisions (cluster: the three together)", "CPU s"),
    Measure("machine_busy", "machine busy while the worker drained (2 cores)", "share"),
    *(Measure(f"{rate}_{stat}", f"latency at {rate:,}/s, {stat}", "ms")
      for rate in LATENCY_RATES for stat in ("p50", "p99")),
    Measure("scale", "drain: N worker processes", "events/s"),
    Measure("scale_vs_one", "N processes / 1 process", "ratio"),
    Measure("scale_cpu", "N processes' CPU per 1,000 decisions", "CPU s"),
)


@dataclass(frozen=True)
class Sample:
    """One figure measured on one stack in one round."""

    measure: str
    profile: Profile
    round: int
    value: float


@dataclass(frozen=True)
class Row:
    """One measure's samples on both stacks: medians and the ratio cluster / single."""

    measure: Measure
    single: tuple[float, ...]    # by round
    cluster: tuple[float, ...]
    round_ratios: tuple[float, ...]  # cluster / single of each round that has both

    @property
    def single_median(self) -> float:
        return statistics.median(self.single) if self.single else float("nan")

    @property
    def cluster_median(self) -> float:
        return statistics.median(self.cluster) if self.cluster else float("nan")

    @property
    def ratio(self) -> float:
        """cluster / single of the medians (nan when either is missing or single is 0)."""
        single, cluster = self.single_median, self.cluster_median
        if math.isnan(single) or math.isnan(cluster) or single == 0:
            return float("nan")
        return cluster / single


def summarize(samples: Sequence[Sample]) -> list[Row]:
    """The samples as one row per measure that has any, in the order of MEASURES."""
    rows = []
    for measure in MEASURES:
        mine = [sample for sample in samples if sample.measure == measure.key]
        if not mine:
            continue
        by_stack = {profile: {s.round: s.value for s in mine if s.profile == profile}
                    for profile in PROFILES}
        paired = sorted(set(by_stack["single"]) & set(by_stack["cluster"]))
        ratios = tuple(by_stack["cluster"][r] / by_stack["single"][r] for r in paired
                       if by_stack["single"][r])
        rows.append(Row(measure, tuple(v for _, v in sorted(by_stack["single"].items())),
                        tuple(v for _, v in sorted(by_stack["cluster"].items())), ratios))
    return rows


def figure(value: float, unit: str) -> str:
    """A figure as the benchmark pages print it: rates and ms as integers, CPU and ratios
    with two decimals, shares in percent."""
    if math.isnan(value):  # not measured
        return "–"
    if unit in ("events/s", "ms"):
        return f"{value:,.0f}"
    if unit == "share":
        return f"{value:.0%}"
    return f"{value:.2f}"


def markdown_table(rows: Sequence[Row], processes: int) -> str:
    """The rows as a markdown table: median (per-round values) on each stack, the ratio of
    the medians and the range of the per-round ratios."""
    lines = ["| measure | single-node | clustered | cluster / single |", "|---|---:|---:|---:|"]
    for row in rows:
        unit = row.measure.unit
        label = row.measure.label.replace("N ", f"{processes} ")
        suffix = f" ({unit})" if unit in ("events/s", "ms", "CPU s") else ""
        ratio = figure(row.ratio, "ratio")
        if len(row.round_ratios) > 1:
            ratio += f" ({min(row.round_ratios):.2f}–{max(row.round_ratios):.2f})"
        lines.append(f"| {label}{suffix} | {_with_rounds(row.single, unit)} | "
                     f"{_with_rounds(row.cluster, unit)} | {ratio} |")
    return "\n".join(lines)


def _with_rounds(values: tuple[float, ...], unit: str) -> str:
    if not values:
        return "–"
    median = figure(statistics.median(values), unit)
    if len(values) == 1:
        return median
    return f"**{median}** ({', '.join(figure(value, unit) for value in values)})"


LADDER_FIGURES = re.compile(r"p50 ([\d,]+) ms, p99 ([\d,]+) ms")


def ladder_percentiles(line: str) -> tuple[float, float]:
    """p50 and p99 in ms from the line :func:`infra.bench.throughput.ladder_step` prints
    (nan, nan when it saw no decision)."""
    if "no decisions" in line:
        return float("nan"), float("nan")
    found = LADDER_FIGURES.search(line)
    if found is None:
        raise ValueError(f"no 'p50 … ms, p99 … ms' in the latency line {line!r}: the format "
                         "of infra.bench.throughput.ladder_step changed; update LADDER_FIGURES")
    return float(found[1].replace(",", "")), float(found[2].replace(",", ""))


# ---------------------------------------------------------------- running

def compare(data: Path, echo: Echo, events: int, rounds: int, processes: int,
            rate_seconds: float) -> list[Sample]:
    """Every round runs the three workloads on the single-node stack, then on the clustered
    one; the samples of all rounds."""
    samples: list[Sample] = []
    for round_ in range(1, rounds + 1):
        for profile in PROFILES:
            echo(f"\n-- round {round_} of {rounds}, {profile} stack ({_load()})")
            started = time.monotonic()
            with on_stack(profile, echo) as settings:
                samples += _round(settings, profile, round_, data, echo, events, processes,
                                  rate_seconds)
            echo(f"   ({time.monotonic() - started:.0f} s)")
    return samples


@contextmanager
def on_stack(profile: Profile, echo: Echo) -> Iterator[Settings]:
    """The stack's settings, with ``CREDITRISK_PROFILE`` set for the processes started
    meanwhile (workers, pass-through, producer), and the stack's servers up: started when
    one is down. The clustered stack is also held until the round is over: a shared lock on
    its folder's ``tests-up.lock``, which a test session (tests/cluster_harness.py) takes
    exclusively before it stops the servers it started; the single-node stack's sessions
    stop theirs without that lock, so holding it there would only make them wait."""
    from infra.stack import services as stack

    settings = Settings(profile=profile)
    before = os.environ.get("CREDITRISK_PROFILE")
    os.environ["CREDITRISK_PROFILE"] = profile
    settings.stack_dir.mkdir(parents=True, exist_ok=True)
    try:
        with (settings.stack_dir / "tests-up.lock").open("a") as lock:
            if profile == "cluster":
                fcntl.flock(lock, fcntl.LOCK_SH)
            down = [service.name for service in stack.services(settings)
                    if not service.answering()]
            if down:
                echo(f"   starting the {profile} stack ({', '.join(down)} not answering)")
                stack.up(settings, echo=lambda line: None)
            yield settings
    finally:
        if before is None:
            os.environ.pop("CREDITRISK_PROFILE", None)
        else:
            os.environ["CREDITRISK_PROFILE"] = before


def _round(settings: Settings, profile: Profile, round_: int, data: Path, echo: Echo,
           events: int, processes: int, rate_seconds: float) -> list[Sample]:
    tag = f"cc-{uuid.uuid4().hex[:8]}"
    grant_prefix(settings, tag)              # topics
    grant_prefix(settings, f"bench-{tag}")   # the consumer groups start_worker names
    figures: dict[str, float] = {}
    try:
        figures |= _drains(settings, data, tag, events, processes, echo)
        figures |= _latencies(settings, data, tag, rate_seconds, echo)
    finally:
        retire_prefix(settings, tag)
        retire_prefix(settings, f"bench-{tag}")
    return [Sample(key, profile, round_, value) for key, value in figures.items()]


def _drains(settings: Settings, data: Path, tag: str, events: int, processes: int,
            echo: Echo) -> dict[str, float]:
    """Fill one topic, then drain it with the pass-through, one worker and N workers, each
    in a consumer group of its own (and the workers each with features under a fresh
    prefix, so none reuses a decision another stored)."""
    source = f"{tag}-applications"
    with bench_topics(settings, [source]):
        filled = fill_topic(settings, data, source, events)
        echo(f"  filled: {filled.line()}")
        faust = drain_one(settings, "faust", "Faust pass-through (ceiling)", source,
                           f"{tag}-faust", "", filled.sent)
        echo(faust.line())
        with bureau_features(settings, data) as prefix:
            worker = drain_one(settings, "worker", "scoring worker", source, f"{tag}-worker",
                                prefix, filled.sent)
        echo(worker.line())
        scaled = _drain_processes(settings, data, source, f"{tag}-p{processes}", processes,
                                  filled.sent)
        echo(scaled.line())
    cpu, scaled_cpu = worker.cpu_per_thousand, scaled.cpu_per_thousand
    figures = {"fill": filled.events_per_second, "faust": faust.events_per_second,
               "worker": worker.events_per_second,
               "worker_vs_faust": worker.events_per_second / faust.events_per_second,
               "scale": scaled.events_per_second,
               "scale_vs_one": scaled.events_per_second / worker.events_per_second}
    optional = {"worker_cpu": cpu.get("process"), "broker_cpu": brokers_total(cpu),
                "machine_busy": worker.machine_busy, "scale_cpu": scaled_cpu.get("process")}
    return figures | {key: value for key, value in optional.items() if value is not None}


def _drain_processes(settings: Settings, data: Path, source: str, tag: str, processes: int,
                     expected: int) -> Drain:
    """``creditrisk worker --processes N`` draining ``source``, as the throughput suite's
    scale-out times it."""
    topics = {"applications": source, "decisions": f"{tag}-decisions", "dlq": f"{tag}-dlq"}
    outputs = [topics["decisions"], topics["dlq"]]
    with bench_topics(settings, outputs), bureau_features(settings, data) as prefix:
        worker = start_worker(settings, topics, tag, prefix, ("--processes", str(processes)))
        try:
            return time_drain(settings, f"{processes} worker processes", worker.process.pid,
                               outputs, expected)
        finally:
            worker.stop()


def _latencies(settings: Settings, data: Path, tag: str, rate_seconds: float,
               echo: Echo) -> dict[str, float]:
    """One worker, warmed up as the throughput suite warms it, then each of LATENCY_RATES
    for ``rate_seconds`` (the same loan-file rows on both stacks)."""
    topics = {"applications": f"{tag}-lat-applications", "decisions": f"{tag}-lat-decisions",
              "dlq": f"{tag}-lat-dlq"}
    figures: dict[str, float] = {}
    with bench_topics(settings, list(topics.values())), bureau_features(settings, data) as prefix, \
            warmed_worker(settings, data, topics, f"{tag}-lat", prefix) as (_worker, reader):
        start = WARM_UP_EVENTS
        for rate in LATENCY_RATES:
            count = int(rate * rate_seconds)
            lines: list[str] = []
            ladder_step(settings, data, topics["applications"], reader, rate, count, start,
                         lines.append)
            for line in lines:
                echo(line)
            figures[f"{rate}_p50"], figures[f"{rate}_p99"] = ladder_percentiles(lines[0])
            start += count
    return figures


def _load() -> str:
    """The load averages, as ``uptime`` shows them."""
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return f"load average {one}, {five}, {fifteen}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000,
                        help="applications pre-filled for the drains (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds, each on both stacks (default %(default)s)")
    parser.add_argument("--processes", type=int, default=2,
                        help="worker processes of the scale-out (default %(default)s)")
    parser.add_argument("--rate-seconds", type=float, default=LADDER_STEP_S,
                        help="seconds of events per latency rate (default %(default)s)")
    parser.add_argument("--data", type=Path, default=Path("data/demo/loans.csv"),
                        help="loan file to replay; bureau.csv beside it is materialized")
    arguments = parser.parse_args(argv)
    print(f"single-node stack beside the clustered one: {arguments.events:,} applications per "
          f"drain, {arguments.processes} processes in the scale-out, "
          f"{arguments.rate_seconds:.0f} s per latency rate, {arguments.rounds} round(s); "
          f"{_load()}")
    started = time.monotonic()
    samples = compare(arguments.data, print, arguments.events, arguments.rounds,
                      arguments.processes, arguments.rate_seconds)
    print(f"\n{time.monotonic() - started:.0f} s; {_load()}\n")
    print(markdown_table(summarize(samples), arguments.processes))


if __name__ == "__main__":
    main()
