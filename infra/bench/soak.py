"""Soak benchmark: one worker under a steady live producer for minutes, not seconds.

A sprint of 20 seconds hides what a standing queue, a leak or a slowly filling buffer does;
the soak runs ``creditrisk produce`` (a process of its own, as a user would run it) against
one worker on topics of its own for N minutes and prints, per interval (a minute by
default): events sent, decisions/s, the worker's consumer lag, submitted → decision seen
latency p50 / p95 / p99, and the CPU and memory (RSS) of the worker, the producer, the
broker and Redis. Without a rate it first finds one by a short ramp (the highest step the
worker kept up with). The run passes when the per-interval p99 does not grow
(:func:`p99_growth`); a figure of p99 and memory per interval is saved beside the figures
of the other benchmarks. Prints figures; never fails a build on them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from config.kafka_auth import kafka_python_options
from config.settings import Settings
from infra.bench.throughput import cpu_seconds, stack_pids
from infra.bench.worker import BenchWorker, bureau_features, decoded_outputs, start_worker
from infra.stack.kafka_access import delete_topics, ensure_topics, grant_prefix, retire_prefix

if TYPE_CHECKING:
    from kafka import KafkaConsumer

Echo = Callable[[str], None]

RAMP_RATES = (250, 500, 750, 1_000, 1_250, 1_500, 2_000, 3_000)
RAMP_STEP_S = 20.0
# A ramp step is kept up when, at its end, the worker is this close behind the producer and
# the step's p99 stayed below RAMP_P99_LIMIT_S.
RAMP_LAG_LIMIT_S = 0.5
RAMP_P99_LIMIT_S = 0.5
# The soak passes when a straight line through the per-interval p99 (the first interval, a
# fresh worker's, left out) rises by no more than this share of the median p99 over the run,
# or by no more than GROWTH_FLOOR_MS (a few ms of noise on a shared machine is not growth).
GROWTH_LIMIT = 0.25
GROWTH_FLOOR_MS = 10.0


@dataclass(frozen=True)
class ProcessSample:
    """One process's share of an interval: CPU in % of one core, resident memory in MB."""

    name: str
    cpu_percent: float
    rss_mb: float


@dataclass(frozen=True)
class SoakInterval:
    """The figures of one interval of the soak (a minute by default)."""

    index: int
    seconds: float
    sent_per_s: float
    decided_per_s: float
    lag: int | None              # the worker's events not yet processed, at the interval's end
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    processes: tuple[ProcessSample, ...] = ()
    mean_batch: float | None = None    # events per micro-batch of the worker
    batch_busy: float | None = None    # share of the interval the worker spent inside batches
    untimed: int = 0   # answers to applications already answered (the file's repeated ids)

    def line(self) -> str:
        latency = (f"p50 {self.p50_ms:,.0f} / p95 {self.p95_ms:,.0f} / p99 {self.p99_ms:,.0f} ms"
                   if self.p99_ms is not None and self.p50_ms is not None
                   and self.p95_ms is not None else "no decisions")
        lag = f"{self.lag:,}" if self.lag is not None else "?"
        usage = ", ".join(f"{p.name} {p.cpu_percent:.0f}% {p.rss_mb:.0f} MB" for p in self.processes)
        batches = (f"  batch {self.mean_batch:,.0f} ev, in batches {self.batch_busy:.0%}"
                   if self.mean_batch is not None and self.batch_busy is not None else "")
        repeats = f" ({self.untimed:,} repeats untimed)" if self.untimed else ""
        return (f"  {self.index:>3}  sent {self.sent_per_s:>6,.0f}/s  decided "
                f"{self.decided_per_s:>6,.0f}/s  lag {lag:>6}  {latency}{repeats}{batches}  | "
                f"{usage}")


@dataclass(frozen=True)
class Growth:
    """How per-interval p99 moved over the run (see GROWTH_LIMIT)."""

    rise_ms: float
    median_ms: float

    @property
    def grows(self) -> bool:
        return self.rise_ms > max(GROWTH_LIMIT * self.median_ms, GROWTH_FLOOR_MS)

    def line(self) -> str:
        verdict = "GROWS: the soak fails" if self.grows else "does not grow: the soak passes"
        return (f"  p99 per interval: median {self.median_ms:,.0f} ms, fitted rise over the run "
                f"{self.rise_ms:+,.0f} ms (limit {max(GROWTH_LIMIT * self.median_ms, GROWTH_FLOOR_MS):,.0f}"
                f" ms) → {verdict}")


def p99_growth(intervals: Sequence[SoakInterval]) -> Growth:
    """The rise of a least-squares line through the per-interval p99 from the second interval
    on (the first holds a fresh worker's first events), over the run's length."""
    points = [(item.index, item.p99_ms) for item in intervals[1:] if item.p99_ms is not None]
    if len(points) < 2:
        only = [value for _, value in points]
        return Growth(0.0, float(np.median(only)) if only else 0.0)
    x = np.array([index for index, _ in points], dtype=float)
    y = np.array([value for _, value in points], dtype=float)
    slope = float(np.polyfit(x, y, 1)[0])
    return Growth(slope * float(x[-1] - x[0]), float(np.median(y)))


def save_figure(intervals: Sequence[SoakInterval], path: Path, title: str) -> Path:
    """Per-interval p99 (top) and each process's RSS (bottom), as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, memory) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    x = [item.index for item in intervals]
    latency.plot(x, [item.p99_ms if item.p99_ms is not None else np.nan for item in intervals],
                 marker="o", label="p99")
    latency.plot(x, [item.p50_ms if item.p50_ms is not None else np.nan for item in intervals],
                 marker=".", label="p50")
    latency.set_ylabel("submitted → decided (ms)")
    latency.set_ylim(bottom=0)
    latency.legend()
    latency.set_title(title)
    names = list(dict.fromkeys(p.name for item in intervals for p in item.processes))
    for name in names:
        memory.plot(x, [next((p.rss_mb for p in item.processes if p.name == name), np.nan)
                        for item in intervals], marker=".", label=name)
    memory.set_ylabel("RSS (MB)")
    memory.set_xlabel("interval")
    memory.set_ylim(bottom=0)
    memory.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


# ---------------------------------------------------------------- processes

def rss_mb(pid: int) -> float:
    """Resident memory of a live process and its live children, in MB (0 once gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        children = [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
                    for child in (task / "children").read_text().split()]
    except OSError:
        return 0.0
    own = next((int(line.split()[1]) for line in status.splitlines()
                if line.startswith("VmRSS:")), 0) / 1024
    return own + sum(rss_mb(child) for child in children)


@dataclass
class ProcessWatch:
    """CPU and memory of named processes, interval by interval."""

    pids: dict[str, int]
    _cpu: dict[str, float] = field(default_factory=dict)
    _at: float = 0.0

    def __post_init__(self) -> None:
        self.sample()

    def sample(self) -> tuple[ProcessSample, ...]:
        now = time.monotonic()
        elapsed = now - self._at if self._at else 0.0
        samples = []
        for name, pid in self.pids.items():
            used = cpu_seconds(pid)
            share = (used - self._cpu.get(name, used)) / elapsed * 100 if elapsed else 0.0
            self._cpu[name] = used
            samples.append(ProcessSample(name, share, rss_mb(pid)))
        self._at = now
        return tuple(samples)


@dataclass(frozen=True)
class WorkerFigures:
    """What the worker's /metrics say: its consumer lag now, and its batches so far."""

    lag: int | None = None
    batches: float = 0.0
    batch_events: float = 0.0
    batch_seconds: float = 0.0


def read_worker_figures(metrics_text: str) -> WorkerFigures:
    """The lag (summed over partitions) and the batch counters of a worker's /metrics page."""
    lag: float | None = None
    totals = {"creditrisk_batch_size_count": 0.0, "creditrisk_batch_size_sum": 0.0,
              "creditrisk_batch_processing_seconds_sum": 0.0}
    for line in metrics_text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith("creditrisk_consumer_lag_messages{"):
            lag = (lag or 0.0) + float(value)
        elif name in totals:
            totals[name] = float(value)
    return WorkerFigures(int(lag) if lag is not None else None,
                         totals["creditrisk_batch_size_count"], totals["creditrisk_batch_size_sum"],
                         totals["creditrisk_batch_processing_seconds_sum"])


def worker_figures(worker: BenchWorker) -> WorkerFigures:
    """The worker's figures now; empty when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics", timeout=2) as page:
            return read_worker_figures(page.read().decode())
    except OSError:
        return WorkerFigures()


# ---------------------------------------------------------------- the run

@dataclass
class _Window:
    """What the reader saw since the interval began."""

    latencies: list[float] = field(default_factory=list)
    outputs: int = 0
    repeats: int = 0   # answers to an application already answered: not timed


def _percentile_ms(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) * 1000 if values else None


def producer_process(data: Path, topic: str, rate: float, count: int, registry_dir: Path,
                     extra: Sequence[str] = ()) -> subprocess.Popen[str]:
    """``creditrisk produce`` as a user runs it, repeating the file with fresh ids, building
    the events of ``registry_dir``'s live model."""
    log = (data.parent / "soak-producer.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "produce", "--data", str(data), "--rate", str(rate),
         "--count", str(count), "--topic", topic, "--repeat", "--no-progress", *extra],
        env={**os.environ, "CREDITRISK_REGISTRY_DIR": str(registry_dir)},
        stdout=subprocess.PIPE, stderr=log, text=True)


def _read_for(reader: KafkaConsumer, seconds: float, window: _Window,
              answered: set[str]) -> None:
    """Read outputs for ``seconds``; time each application's first decision. A later answer
    to the same application (the loan file repeats ~1 % of its ids, as resends do) is the
    stored decision, ``submitted_at`` of the first copy included: timed, it would read as a
    decision tens of seconds late."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        polled = reader.poll(timeout_ms=200)
        now = time.time()
        arrived, decisions = decoded_outputs(polled)
        window.outputs += arrived
        for decision in decisions:
            application_id = str(decision["application_id"])
            if application_id in answered:
                window.repeats += 1
                continue
            answered.add(application_id)
            window.latencies.append(
                now - datetime.fromisoformat(str(decision["submitted_at"])).timestamp())


def _applications_in(reader: KafkaConsumer, topic: str) -> int:
    from kafka import TopicPartition

    partitions = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
    return int(sum(reader.end_offsets(partitions).values())) if partitions else 0


def measure_intervals(reader: KafkaConsumer, worker: BenchWorker, watch: ProcessWatch,
                      topic: str, intervals: int, interval_s: float, echo: Echo,
                      answered: set[str],
                      producer: subprocess.Popen[str] | None = None) -> list[SoakInterval]:
    """Read decisions for ``intervals`` intervals, printing one line per interval
    (``answered``: the applications answered so far, see :func:`_read_for`)."""
    rows: list[SoakInterval] = []
    sent_before, figures_before = _applications_in(reader, topic), worker_figures(worker)
    for index in range(1, intervals + 1):
        window = _Window()
        began = time.monotonic()
        _read_for(reader, interval_s, window, answered)
        seconds = time.monotonic() - began
        sent_now, figures_now = _applications_in(reader, topic), worker_figures(worker)
        batches = figures_now.batches - figures_before.batches
        row = SoakInterval(index, seconds, (sent_now - sent_before) / seconds,
                           window.outputs / seconds, figures_now.lag,
                           _percentile_ms(window.latencies, 50), _percentile_ms(window.latencies, 95),
                           _percentile_ms(window.latencies, 99), watch.sample(),
                           (figures_now.batch_events - figures_before.batch_events) / batches
                           if batches else None,
                           (figures_now.batch_seconds - figures_before.batch_seconds) / seconds
                           if batches else None, window.repeats)
        sent_before, figures_before = sent_now, figures_now
        rows.append(row)
        echo(row.line())
        if producer is not None and producer.poll() is not None:
            echo(f"  the producer ended early: {(producer.communicate()[0] or '').strip()}")
            break
    return rows


def soak_registry(settings: Settings, data: Path) -> Path:
    """A registry whose live model takes the events of ``data`` (the demo's generated loans):
    the settings' registry when its live model does, else one of the soak's own in the stack
    folder, trained once on ``data`` with a one-candidate search (the soak measures serving,
    not the model's quality) and reused by later runs."""
    from replay.core import live_event_layout, read_loan_rows

    def takes_data(registry_dir: Path) -> bool:
        try:
            next(iter(read_loan_rows(data, live_event_layout(registry_dir))), None)
        except ValueError:
            return False
        return True

    if takes_data(settings.registry_dir):
        return settings.registry_dir
    own = settings.stack_dir / "bench-soak-registry"
    if own.is_dir() and takes_data(own):
        return own
    from training.pipeline import run_training
    from training.training_config import SearchSettings, TrainingConfig

    defaults = SearchSettings()
    search = SearchSettings(tree_candidates=defaults.tree_candidates[:1],
                            smote_oversampling_factors=defaults.smote_oversampling_factors[:1],
                            smote_balanced=False, smote_k_neighbors=defaults.smote_k_neighbors[:1],
                            scorecard_regularization=defaults.scorecard_regularization[1:2],
                            budget_seconds=30.0)
    run_training(data, "generated", registry_dir=own, config=TrainingConfig(search=search),
                 progress=False, log=lambda line: None)
    return own


@dataclass
class SoakRig:
    """One worker on topics of its own, a reader of its outputs, and how to feed it."""

    worker: BenchWorker
    topics: dict[str, str]
    reader: KafkaConsumer
    data: Path
    registry_dir: Path
    answered: set[str] = field(default_factory=set)  # applications whose decision was read
    rows_given: int = 0  # rows of the repeated loan file handed to producers so far

    def producer(self, rate: float, count: int, extra: Sequence[str] = ()) -> subprocess.Popen[str]:
        """``creditrisk produce`` at ``rate``, returned once its first events are in Kafka
        (a process's start and its Kafka login take seconds that are not the rate's). Each
        producer starts where the last one's ``count`` ended (``--start``), so the rig never
        sends an application twice beyond the file's own repeated ids: a resent application
        would be answered from the decision store, cheaper than a fresh one."""
        topic = self.topics["applications"]
        before = _applications_in(self.reader, topic)
        process = producer_process(self.data, topic, rate, count, self.registry_dir,
                                   ["--start", str(self.rows_given), *extra])
        self.rows_given += count
        deadline = time.monotonic() + 60
        while (process.poll() is None and time.monotonic() < deadline
               and _applications_in(self.reader, topic) == before):
            self.read(0.2)
        return process

    def read(self, seconds: float) -> None:
        """Read outputs untimed (between steps), noting the applications answered."""
        _read_for(self.reader, seconds, _Window(), self.answered)

    def intervals(self, settings: Settings, producer: subprocess.Popen[str], intervals: int,
                  interval_s: float, echo: Echo, stop_with_producer: bool = False,
                  ) -> list[SoakInterval]:
        return measure_intervals(self.reader, self.worker, self.watch(settings, producer),
                                 self.topics["applications"], intervals, interval_s, echo,
                                 self.answered, producer if stop_with_producer else None)

    def warm_up(self, events: int = 1_000) -> None:
        """A fresh worker's first events pay for connections and first calls: not measured."""
        self.producer(200, events).wait()
        self.settle()

    def settle(self, timeout_s: float = 60.0) -> None:
        """Read until the worker has no backlog left, so the next step starts idle."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and (worker_figures(self.worker).lag or 0) > 0:
            self.read(1.0)
        self.read(1.0)

    def watch(self, settings: Settings, producer: subprocess.Popen[str]) -> ProcessWatch:
        return ProcessWatch({"worker": self.worker.process.pid, "producer": producer.pid,
                             **stack_pids(settings)})


@contextmanager
def soak_rig(settings: Settings, data: Path, registry_dir: Path,
             arguments: tuple[str, ...] = ()) -> Iterator[SoakRig]:
    """A worker (``creditrisk worker ARGUMENTS``) on topics of its own with the loan file's
    bureau features, and a reader of its outputs; all removed afterwards."""
    from kafka import KafkaConsumer

    tag = f"soak-{uuid.uuid4().hex[:8]}"
    topics = {name: f"bench-{tag}-{name}" for name in ("applications", "decisions", "dlq")}
    with bureau_features(settings, data) as prefix:
        grant_prefix(settings, f"bench-{tag}")
        ensure_topics(settings, dict.fromkeys(topics.values(), settings.topic_partitions))
        worker = start_worker(settings, topics, tag, prefix, arguments, registry_dir=registry_dir)
        reader = KafkaConsumer(topics["decisions"], topics["dlq"], group_id=None,
                               **kafka_python_options(settings, "reader"),
                               auto_offset_reset="latest", enable_auto_commit=False)
        try:
            yield SoakRig(worker, topics, reader, data, registry_dir)
        finally:
            reader.close()
            worker.stop()
            delete_topics(settings, list(topics.values()))
            retire_prefix(settings, f"bench-{tag}")


def find_sustainable_rate(settings: Settings, data: Path, registry_dir: Path, echo: Echo,
                          rates: Sequence[int] = RAMP_RATES, step_s: float = RAMP_STEP_S) -> int:
    """The highest ramp rate a warmed-up worker kept up with (lag within RAMP_LAG_LIMIT_S of
    events and p99 under RAMP_P99_LIMIT_S at the step's end); the lowest rate if none."""
    echo(f"  ramp: {step_s:.0f} s per rate, kept up = lag ≤ {RAMP_LAG_LIMIT_S:.1f} s of events "
         f"and p99 ≤ {RAMP_P99_LIMIT_S * 1000:.0f} ms")
    sustained = rates[0]
    with soak_rig(settings, data, registry_dir) as rig:
        rig.warm_up()
        for rate in rates:
            producer = rig.producer(rate, int(rate * (step_s + 5)))
            try:
                row = rig.intervals(settings, producer, 1, step_s, lambda _line: None)[0]
                echo(f"  {rate:>5,}/s" + row.line()[5:])
            finally:
                producer.terminate()
                producer.wait()
            if not _kept_up(row, rate):
                echo(f"  {rate:,}/s not kept up: the ramp stops here" if rate != rates[0] else
                     f"  not even {rate:,}/s kept up (how busy is the machine?); the soak runs "
                     "at it and shows where the time goes")
                break
            sustained = rate
            rig.settle()
    return sustained


def _kept_up(row: SoakInterval, rate: int) -> bool:
    return (row.lag is not None and row.lag <= rate * RAMP_LAG_LIMIT_S
            and row.p99_ms is not None and row.p99_ms <= RAMP_P99_LIMIT_S * 1000
            and row.sent_per_s >= 0.95 * rate)


def run_soak(settings: Settings, data: Path, echo: Echo, minutes: float = 10.0,
             rate: int | None = None, interval_s: float = 60.0,
             figure: Path | None = None) -> list[SoakInterval]:
    """Soak one worker at ``rate`` events/s (None: the ramp's sustainable rate) for
    ``minutes``; print one line per interval and the p99 verdict; save the figure."""
    registry_dir = soak_registry(settings, data)
    if rate is None:
        rate = find_sustainable_rate(settings, data, registry_dir, echo)
        echo(f"  sustainable rate found by the ramp: {rate:,}/s")
    intervals = max(1, round(minutes * 60 / interval_s))
    echo(f"  soak: {rate:,}/s for {intervals} × {interval_s:.0f} s, one worker; "
         f"load before: {_load_average()}")
    with soak_rig(settings, data, registry_dir) as rig:
        rig.warm_up()
        producer = rig.producer(rate, int(rate * (intervals * interval_s + 30)))
        try:
            rows = rig.intervals(settings, producer, intervals, interval_s, echo,
                                 stop_with_producer=True)
        finally:
            producer.terminate()
            producer.wait()
    echo(p99_growth(rows).line())
    echo(f"  load after: {_load_average()}")
    if figure is not None and rows:
        saved = save_figure(rows, figure, f"soak: {rate:,}/s, one worker, "
                                          f"{len(rows)} × {interval_s:.0f} s")
        echo(f"  figure: {saved}")
    return rows


def _load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} on {len(os.sched_getaffinity(0))} cores"
