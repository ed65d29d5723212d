"""Fault-injection scenarios: replay applications (with malformed and poison ones) while
something breaks, then count what came back (:func:`infra.faults.harness.count_outcomes`).

Each scenario runs on topics, a Redis key prefix and a consumer group of its own; one that
stops Kafka or Redis starts a private broker or Redis for itself (:mod:`infra.faults.servers`)
and never touches the shared stack's servers. Used by ``creditrisk bench --suite faults``
and by the fault-injection tests, which assert what the bench prints.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from config.json_types import JSONObject
from config.settings import Settings
from infra.faults.harness import (
    DEAD_LETTER,
    FaultCounts,
    OutcomeReader,
    PlannedMessage,
    Producing,
    Received,
    SentMessage,
    application_events,
    count_outcomes,
    event_text,
    malformed_messages,
    shuffled,
    valid_message,
)
from infra.faults.injected_worker import POISON_AMOUNT
from infra.faults.servers import FaultWorker, metric_sum
from infra.stack.kafka_access import retire_prefix
from infra.stack.private import PrivateKafka, PrivateRedis
from infra.stack.redis_keys import delete_keys

if TYPE_CHECKING:
    from features.store import SyncRedis
    from onnx_models.registry import Registry


PROCESSING_ERROR = "processing_error"
CORRUPT_FEATURE = "delinq_2yrs"  # the bureau value a corrupt-hash poison event spoils
# While messages are still missing, the outcome reader starts over with a new consumer when
# it has read nothing for this long (its own connection may be what a fault broke).
READER_QUIET_S = 30.0


@dataclass
class FaultRig:
    """What every scenario needs: the stack's settings (the registry to serve from included),
    a folder of the run's own, and the generated loan and bureau files."""

    settings: Settings
    workdir: Path
    loans_csv: Path
    bureau_csv: Path
    applications: int = 3_000
    rate_per_s: float = 300.0
    malformed_share: float = 0.03
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @cached_property
    def events(self) -> list[JSONObject]:
        events = application_events(self.loans_csv, self.settings.registry_dir, self.applications)
        if len(events) < self.applications:
            raise ValueError(f"{self.loans_csv} has only {len(events)} valid applications")
        return events

    def messages(self, events: list[JSONObject] | None = None) -> list[PlannedMessage]:
        """The valid applications and malformed events, shuffled together."""
        events = self.events if events is None else events
        malformed = malformed_messages(round(len(events) * self.malformed_share), events[0])
        return shuffled([valid_message(event) for event in events] + malformed)


@dataclass
class ScenarioResult:
    name: str
    counts: FaultCounts
    seconds: float
    notes: dict[str, object] = field(default_factory=dict)  # printed with the result
    failures: list[str] = field(default_factory=list)  # checks of the scenario that failed
    recovery_s: float | None = None  # the fault's time to recover, where measured

    @property
    def ok(self) -> bool:
        return self.counts.ok and not self.failures


class Phases:
    """Messages sent in several rounds, read back as one run's sends."""

    def __init__(self, *rounds: Producing) -> None:
        self.rounds = rounds

    def result(self) -> list[SentMessage]:
        return [sent for producing in self.rounds for sent in producing.result()]


class ScenarioRun:
    """One scenario's topics, bureau data, workers and reader; cleaned up on exit.

    ``kafka``: the settings of a private Kafka (its brokers and their replication) to run on
    instead of the rig's; ``redis``: those of a private Redis or Redis Cluster."""

    def __init__(self, rig: FaultRig, name: str, messages: list[PlannedMessage],
                 redis: Settings | None = None, kafka: Settings | None = None) -> None:
        slug = name.split(maxsplit=1)[0]
        self.rig = rig
        self.name = name
        self.messages = messages
        self.started = time.monotonic()
        brokers = kafka or rig.settings
        store = redis or rig.settings
        self.settings = rig.settings.model_copy(update={
            "kafka_bootstrap": brokers.kafka_bootstrap,
            "kafka_replication_factor": brokers.kafka_replication_factor,
            "kafka_min_insync_replicas": brokers.kafka_min_insync_replicas,
            # A private Redis has ACL users of its own: its folder holds their passwords.
            "redis_url": store.redis_url,
            "redis_cluster_nodes": store.redis_cluster_nodes,
            "feature_schema_version": store.feature_schema_version,
            "stack_dir": store.stack_dir,
            "topic_applications": f"faults-{rig.tag}-{slug}-applications",
            "topic_decisions": f"faults-{rig.tag}-{slug}-decisions",
            "topic_dead_letters": f"faults-{rig.tag}-{slug}-dlq",
            "topic_outcomes": f"faults-{rig.tag}-{slug}-outcomes",
            "topic_partitions": 3,
            "key_prefix": f"faults:{rig.tag}:{slug}:",
        })
        self.group = f"faults-{rig.tag}-{slug}"
        self.workdir = rig.workdir / slug
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workers: list[FaultWorker] = []
        self.reader: OutcomeReader | None = None

    def __enter__(self) -> ScenarioRun:
        from infra.stack.kafka_access import provision

        provision(self.settings.model_copy(update={"worker_group": self.group}))
        load_bureau(self.settings, self.rig.bureau_csv)
        self.reader = OutcomeReader(self.settings, self.settings.topic_decisions,
                                    self.settings.topic_dead_letters)
        return self

    def __exit__(self, *_exc: object) -> None:
        for worker in self.workers:
            worker.stop()
        if self.reader is not None:
            self.reader.close()
        with contextlib.suppress(Exception):  # the broker may be a private one, gone by now
            retire_prefix(self.settings, self.group)  # its topics, group and ACLs
        with contextlib.suppress(Exception):
            _delete_keys(self.settings)

    @property
    def topics(self) -> list[str]:
        s = self.settings
        return [s.topic_applications, s.topic_decisions, s.topic_dead_letters]

    @property
    def outputs(self) -> OutcomeReader:
        assert self.reader is not None, "use the run as a context manager"
        return self.reader

    def worker(self, name: str = "worker", module: str = "cli.main", **env: str) -> FaultWorker:
        worker = FaultWorker(self.settings, self.workdir, name, self.group, module, **env)
        self.workers.append(worker)
        worker.start()
        return worker

    def start(self, **env: str) -> tuple[FaultWorker, Producing]:
        """A worker, then the producer that feeds it the run's messages."""
        worker = self.worker(**env)
        return worker, self.produce()

    def produce(self, messages: Sequence[PlannedMessage] | None = None) -> Producing:
        """Send the run's messages (or ``messages``) at the rig's rate, on a thread."""
        return Producing(self.settings, self.settings.topic_applications,
                         self.messages if messages is None else messages,
                         self.rig.rate_per_s).start()

    def wait_share(self, share: float, timeout_s: float = 180.0) -> None:
        """Until decisions + dead letters reach ``share`` of the messages."""
        target = int(len(self.messages) * share)
        self.outputs.wait_for(lambda r: r.outputs >= target, timeout_s,
                              f"{target} decisions and dead letters")

    def finish(self, producing: Producing | Phases, timeout_s: float = 300.0) -> ScenarioResult:
        """Wait until every acknowledged message has an outcome (or the timeout), read late
        duplicates, count."""
        sent = producing.result()
        deadline = time.monotonic() + timeout_s
        counts = FaultCounts()
        last_read = time.monotonic()
        while time.monotonic() < deadline:
            if self.outputs.poll():
                last_read = time.monotonic()
            elif time.monotonic() - last_read > READER_QUIET_S:
                self.outputs.reread()
                last_read = time.monotonic()
            counts = count_outcomes(sent, self.outputs.decisions, self.outputs.dead_letters)
            if counts.lost == 0:
                break
            for worker in self.workers:
                worker.restart_if_stalled()
        self.outputs.settle()
        counts = count_outcomes(sent, self.outputs.decisions, self.outputs.dead_letters)
        result = ScenarioResult(self.name, counts, time.monotonic() - self.started)
        restarts = sum(worker.stall_restarts for worker in self.workers)
        if restarts:
            result.notes["restarted_after_a_stall"] = restarts
        if counts.lost:
            self.explain_loss(result)
        return result

    def explain_loss(self, result: ScenarioResult) -> None:
        """Where the lost messages stopped: what each worker says it consumed and published,
        what a second reader finds on the output topics, the workers' last log lines."""
        for worker in self.workers:
            samples = worker.metrics()
            result.notes[worker.name] = {
                "running": worker.process is not None and worker.process.poll() is None,
                "consumed": metric_sum(samples, "creditrisk_events_consumed_total"),
                "decided": metric_sum(samples, "creditrisk_decisions_total"),
                "dead_lettered": metric_sum(samples, "creditrisk_dead_letters_total"),
                "lag": metric_sum(samples, "creditrisk_consumer_lag_messages"),
                "health": worker.health()}
            result.failures.append(f"{worker.name}'s last log lines:\n{worker.log_tail(30)}")
        second = OutcomeReader(self.settings, self.settings.topic_decisions,
                               self.settings.topic_dead_letters)
        try:
            second.settle(quiet_s=10.0)
            result.notes["second_reader_outputs"] = second.outputs
            result.notes["first_reader_outputs"] = self.outputs.outputs
        finally:
            second.close()


# -- the scenarios --------------------------------------------------------------------------
# The consumer group's session timeout for scenarios whose worker dies without leaving its
# group: how long the group waits for it before handing its partitions on (Faust's default
# is 60 s).
TEN_SECOND_SESSION = {"BROKER_SESSION_TIMEOUT": "10"}

def worker_killed(rig: FaultRig) -> ScenarioResult:
    """The worker is SIGKILLed a third of the way through and started again. The group
    holds the killed member's partitions until its session times out (10 s here, as in
    two-workers), then gives them to the restarted worker."""
    with ScenarioRun(rig, "worker-sigkill (killed, restarted)", rig.messages()) as run:
        worker, producing = run.start(**TEN_SECOND_SESSION)
        run.wait_share(1 / 3)
        worker.kill()
        worker.start()
        return run.finish(producing)


def broker_restarted(rig: FaultRig, down_s: float = 10.0, max_log_lines: int = 50,
                     ) -> ScenarioResult:
    """A private broker is SIGKILLed mid-stream and started again ``down_s`` later. The
    worker's log must stay short meanwhile: lines from the kill until every message is
    decided are counted (``notes['outage_log_lines']``)."""
    kafka = PrivateKafka(rig.settings, rig.workdir / "private-kafka")
    with running(kafka), ScenarioRun(
            rig, "broker-restart (private broker SIGKILLed, back after 10 s)", rig.messages(),
            kafka=kafka.settings) as run:
        worker, producing = run.start()
        run.wait_share(1 / 3)
        before = len(worker.log_lines())
        kafka.kill()
        time.sleep(down_s)
        health_during = worker.health()
        up_during = metric_sum(worker.metrics(), "creditrisk_dependency_up", dependency="kafka")
        kafka.start()
        run.outputs.reread()
        result = run.finish(producing)
        outage_log = worker.log_lines()[before:]
        result.notes.update(outage_log_lines=len(outage_log),
                            kafka_ok_in_health_during_outage=health_during.get("kafka", {}).get("ok"),
                            kafka_up_metric_during_outage=up_during)
        if health_during.get("kafka", {}).get("ok") is not False or up_during != 0:
            result.failures.append("neither /health nor creditrisk_dependency_up showed the "
                                   f"outage: {health_during}, up={up_during}")
        if not any("kafka recovered" in line for line in outage_log):
            result.failures.append("the worker's log does not say Kafka recovered")
        if len(outage_log) > max_log_lines:
            result.failures.append(
                f"the worker wrote {len(outage_log)} log lines for a {down_s:.0f} s broker "
                f"outage (at most {max_log_lines}); first ones:\n" + "\n".join(outage_log[:20]))
        return result


def redis_restarted(rig: FaultRig) -> ScenarioResult:
    """A private Redis (append-only file: data kept) loses its script cache (SCRIPT FLUSH) a
    quarter of the way through, and is restarted half way (connections dropped, LOADING,
    script cache gone again)."""
    redis_server = PrivateRedis(rig.workdir / "private-redis", settings=rig.settings,
                                persistent=True)
    with running(redis_server), ScenarioRun(
            rig, "redis-restart (script flush, then restart; data kept)", rig.messages(),
            redis=redis_server.settings) as run:
        worker, producing = run.start()
        run.wait_share(1 / 4)
        _redis_client(run.settings).script_flush()
        run.wait_share(1 / 2)
        keys_before = bureau_key_count(run.settings)
        redis_server.restart(down_s=2.0)
        keys_after = bureau_key_count(run.settings)
        result = run.finish(producing)
        retries = metric_sum(worker.metrics(), "creditrisk_batch_retries_total",
                             dependency="redis")
        result.notes.update(redis_retries=retries,
                            bureau_keys_before_restart=keys_before,
                            bureau_keys_after_restart=keys_after)
        if keys_after != keys_before:
            result.failures.append(f"the restart lost data: {keys_before} bureau keys "
                                   f"before, {keys_after} after")
        if retries < 1:
            result.failures.append("no batch was retried on Redis: the restart went unseen")
        return result


def bureau_key_count(settings: Settings) -> int:
    from features.views import BUREAU_VIEW, view_key_prefix

    client = _redis_client(settings)
    try:
        match = view_key_prefix(BUREAU_VIEW, settings.feature_schema_version, settings.key_prefix)
        return sum(1 for _ in client.scan_iter(match=f"{match}*", count=5000))
    finally:
        client.close()


def one_of_two_workers_killed(rig: FaultRig) -> ScenarioResult:
    """Two workers share the consumer group; one is SIGKILLed and the other takes its
    partitions (after the group's session timeout, 10 s here)."""
    with ScenarioRun(rig, "two-workers (one SIGKILLed, the other takes over)",
                     rig.messages()) as run:
        survivor = run.worker("worker-a", **TEN_SECOND_SESSION)
        victim = run.worker("worker-b", **TEN_SECOND_SESSION)
        wait_until(lambda: all(w.health().get("kafka", {}).get("assigned_partitions", 0) > 0
                                for w in (survivor, victim)), 60, "both workers assigned")
        producing = run.produce()
        run.wait_share(1 / 3)
        victim.kill()
        result = run.finish(producing)
        assigned = survivor.health().get("kafka", {}).get("assigned_partitions", 0)
        result.notes["survivor_partitions"] = assigned
        # its own topics' partitions (Faust's leader topic among them) and all of the input's
        if assigned < run.settings.topic_partitions:
            result.failures.append(f"the surviving worker has {assigned} partitions, fewer than "
                                   f"the {run.settings.topic_partitions} of the input topic")
        return result


def broken_model_promoted(rig: FaultRig) -> ScenarioResult:
    """A model whose ONNX file is corrupt is made live mid-stream (refused: the serving one
    stays), then a good version is promoted (served from the next batch).

    The events go in three rounds, each sent once the one before is decided: the serving
    version decides the first; the corrupt version is live before the second is sent, so the
    second's first batch meets it (a switch is taken at a batch boundary); the good version
    is promoted before the third. However fast the worker drains, every switch has batches
    after it."""
    from onnx_models.registry import LIVE_POINTER, Registry

    with ScenarioRun(rig, "broken-model (corrupt version live, then a good one)",
                     rig.messages()) as run:
        registry = Registry(rig.settings.registry_dir)
        first = registry.live_version() or ""
        third = len(run.messages) // 3
        worker = run.worker()
        rounds = [run.produce(run.messages[:third])]
        run.wait_share(third / len(run.messages))
        broken = f"20991231T000000Z-{rig.tag}"  # newer than any trained version
        shutil.copytree(registry.root / first, registry.root / broken)
        (registry.root / broken / "model.onnx").write_bytes(b"not an onnx model")
        (registry.root / LIVE_POINTER).write_text(json.dumps({"version": broken}))
        rounds.append(run.produce(run.messages[third:2 * third]))
        wait_until(lambda: bool(worker.health().get("model", {}).get("last_reload_error")), 60,
                    "the broken model refused")
        refusals = metric_sum(worker.metrics(), "creditrisk_model_reloads_total",
                              outcome="failure")
        good = register_copy(registry, first, f"20991231T000001Z-{rig.tag}", approve_below=0.05)
        run.wait_share(2 * third / len(run.messages))
        registry.promote(good)
        rounds.append(run.produce(run.messages[2 * third:]))
        result = run.finish(Phases(*rounds))
        versions = [d.value["model_version"] for d in run.outputs.decisions]
        result.notes["decisions_by_version"] = {v: versions.count(v) for v in dict.fromkeys(versions)}
        if broken in versions:
            result.failures.append("decisions were made by the broken model")
        if set(versions) - {first, good}:
            result.failures.append(f"decisions by versions neither served nor promoted: "
                                   f"{set(versions) - {first, good}}")
        if good not in versions:
            result.failures.append("the good model promoted after it never decided")
        serving = worker.health().get("model", {}).get("version")
        if serving != good:
            result.failures.append(f"/health says {serving} serves, not the promoted {good}")
        if refusals < 1:
            result.failures.append("creditrisk_model_reloads_total{outcome=failure} did not "
                                   "count the refused model")
        registry.promote(first)
        return result


def poison_events(rig: FaultRig, share: float = 0.05) -> ScenarioResult:
    """``share`` of the events are poison: malformed (validation), a loan amount the encoder
    cannot read (injected fault: ``infra.faults.injected_worker``), a bureau value that is not a number
    (decided without it, never approved), a bureau key of the wrong Redis type (dead letter).
    Every poison event ends as exactly one dead letter or one decision without the bad value."""
    events = list(rig.events)
    poison_total = round(len(events) * share)
    per_kind = poison_total // 4
    lone = _customers_seen_once(events)
    candidates = [i for i, event in enumerate(events) if event_text(event, "customer_id") in lone]
    encode_at = candidates[0:per_kind]
    corrupt_at = candidates[per_kind:2 * per_kind]
    wrong_type_at = candidates[2 * per_kind:3 * per_kind]
    messages = [valid_message(event) for event in events]
    for i in encode_at:
        event = dict(events[i], loan_amnt=POISON_AMOUNT)
        application_id = event_text(event, "application_id")
        messages[i] = PlannedMessage(application_id.encode(), json.dumps(event).encode(),
                                     "poison:encode", DEAD_LETTER, application_id,
                                     PROCESSING_ERROR)
    for i in corrupt_at:
        messages[i] = valid_message(events[i], "poison:corrupt_value")
    for i in wrong_type_at:
        message = valid_message(events[i], "poison:wrong_redis_type")
        messages[i] = PlannedMessage(message.key, message.value, message.kind, DEAD_LETTER,
                                     message.application_id, PROCESSING_ERROR)
    malformed = malformed_messages(poison_total - 3 * per_kind, events[0], unkeyed_every=4)
    with ScenarioRun(rig, f"poison ({share:.0%} poison events)",
                     shuffled(messages + malformed)) as run:
        _spoil_bureau(run.settings, [event_text(events[i], "customer_id") for i in corrupt_at],
                      [event_text(events[i], "customer_id") for i in wrong_type_at])
        worker = run.worker(module="infra.faults.injected_worker")
        result = run.finish(run.produce())
        samples = worker.metrics()
        batches = metric_sum(samples, "creditrisk_batch_size_count")
        processing_errors = metric_sum(samples, "creditrisk_dead_letters_total",
                                       reason=PROCESSING_ERROR)
        result.notes.update(poison=poison_total, batches=batches,
                            processing_errors=processing_errors)
        if processing_errors != len(encode_at) + len(wrong_type_at):
            result.failures.append(f"{processing_errors:g} processing-error dead "
                                   f"letters counted, {len(encode_at) + len(wrong_type_at)} sent")
        corrupt_counted = metric_sum(samples, "creditrisk_feature_store_corrupt_values_total",
                                     view="bureau", feature=CORRUPT_FEATURE)
        if corrupt_counted != len(corrupt_at):
            result.failures.append(f"{corrupt_counted:g} corrupt bureau values counted, "
                                   f"{len(corrupt_at)} spoiled")
        if worker.http("GET", "/health")[0] != 200:
            result.failures.append(f"/health is not green after the poison: {worker.health()}")
        poisoned = {event_text(events[i], "application_id"): dict(events[i], loan_amnt=POISON_AMOUNT)
                    for i in encode_at}
        result.failures.extend(_encoding_letter_problems(run.outputs.dead_letters, poisoned))
        spoiled = {event_text(events[i], "application_id") for i in corrupt_at}
        for decision in run.outputs.decisions:
            value = decision.value
            missing = value["missing_features"]
            if value["application_id"] in spoiled and (
                    not isinstance(missing, list) or CORRUPT_FEATURE not in missing
                    or value["decision"] == "approve"):
                result.failures.append(f"{value['application_id']}: decided with its corrupt "
                                       f"{CORRUPT_FEATURE} or approved")
        if batches >= len(run.messages) / 2:
            result.failures.append("the poison events broke the batches up")
        return result


def _encoding_letter_problems(letters: list[Received],
                              poisoned: dict[str, JSONObject]) -> list[str]:
    """What is wrong with the dead letters of events the encoder refused: each must be a
    processing error naming the step and the field (never the value) and carry the event as
    it was sent."""
    problems = []
    for letter in letters:
        payload = letter.value.get("payload")
        if not isinstance(payload, str) or not any(name in payload for name in poisoned):
            continue  # another event's letter (malformed ones are not even JSON)
        event = json.loads(payload)
        if not isinstance(event, dict) or event.get("application_id") not in poisoned:
            continue
        detail = str(letter.value.get("detail", ""))
        if ("encode" not in detail or "'loan_amnt'" not in detail
                or str(int(POISON_AMOUNT)) in detail):
            problems.append(f"an encoding dead letter's detail: {detail!r}")
        if event != poisoned[str(event["application_id"])]:
            problems.append(f"{event['application_id']}: the dead letter's payload is not the "
                            "event sent")
    return problems


def stuck_client(rig: FaultRig, stall_exit_after_s: float = 15.0) -> ScenarioResult:
    """A batch's sends never resolve (injected: ``infra.faults.injected_worker``), as with a Kafka
    client stuck after an outage. Kafka and Redis answer the worker's probes while events
    wait, so the worker stops itself (exit status 75) and is started again, as its process
    manager would; the new worker processes the unacknowledged events."""
    with ScenarioRun(rig, "stuck-client (a batch's sends hang; the worker stops, is restarted)",
                     rig.messages()) as run:
        worker = run.worker(module="infra.faults.injected_worker",
                            CREDITRISK_FAULT_STALL_ONCE=str(run.workdir / "stalled-once"),
                            CREDITRISK_STALL_EXIT_AFTER_S=f"{stall_exit_after_s:g}",
                            **TEN_SECOND_SESSION)
        result = run.finish(run.produce())
        if worker.stall_restarts != 1:
            result.failures.append(f"the stuck worker was restarted {worker.stall_restarts} "
                                   "times after stopping itself, instead of once")
        if not any("Kafka client is stuck" in line for line in worker.log_lines()):
            result.failures.append("the worker's log does not say why it stopped")
        return result


SCENARIOS: dict[str, Callable[[FaultRig], ScenarioResult]] = {
    "worker-sigkill": worker_killed,
    "broker-restart": broker_restarted,
    "redis-restart": redis_restarted,
    "two-workers": one_of_two_workers_killed,
    "broken-model": broken_model_promoted,
    "poison": poison_events,
    "stuck-client": stuck_client,
}


# -- helpers --------------------------------------------------------------------------------
def load_bureau(settings: Settings, bureau_csv: Path) -> None:
    """The generated bureau table into the run's Redis, true as of now (fresh)."""
    from datetime import UTC, datetime

    from features.materialize import materialize_bureau_features
    from features.store import sync_client

    client = sync_client(settings, "materializer")
    try:
        materialize_bureau_features(bureau_csv, client, settings.feature_schema_version,
                                    settings.key_prefix, as_of=datetime.now(UTC))
    finally:
        client.close()


def register_copy(registry: Registry, source: str, version: str, **thresholds: float) -> str:
    """A registered model again under a new version, optionally with other thresholds."""
    folder = registry.root / source
    card = json.loads((folder / "model.json").read_text())
    card["version"] = version
    card["thresholds"].update(thresholds)
    files = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}
    files["model.json"] = json.dumps(card).encode()
    registry.register(version, files)
    return version


def _customers_seen_once(events: list[JSONObject]) -> set[str]:
    seen: dict[str, int] = {}
    for event in events:
        customer = event_text(event, "customer_id")
        seen[customer] = seen.get(customer, 0) + 1
    return {customer for customer, count in seen.items() if count == 1}


def _spoil_bureau(settings: Settings, not_a_number: list[str], wrong_type: list[str]) -> None:
    from features.views import BUREAU_VIEW, feature_key

    client = _redis_client(settings)
    try:
        for customer in not_a_number + wrong_type:
            key = feature_key(BUREAU_VIEW, customer, settings.feature_schema_version,
                              settings.key_prefix)
            if not client.exists(key):
                raise ValueError(f"customer {customer} has no bureau data to spoil")
            if customer in not_a_number:
                client.hset(key, CORRUPT_FEATURE, "not-a-number")
            else:
                client.delete(key)
                client.set(key, "a string where a hash belongs")
    finally:
        client.close()


class _Server(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


@contextmanager
def running(server: _Server) -> Iterator[None]:
    """A private server for the length of a scenario."""
    server.start()
    try:
        yield
    finally:
        server.stop()


def _redis_client(settings: Settings) -> SyncRedis:
    """The admin's client: the scenarios spoil stored values and clear their keys."""
    from features.store import sync_client

    return sync_client(settings, "admin")


def _delete_keys(settings: Settings) -> None:
    client = _redis_client(settings)
    try:
        delete_keys(client, settings.key_prefix)
    finally:
        client.close()


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
