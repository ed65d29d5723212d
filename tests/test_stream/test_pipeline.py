"""ScoringPipeline with in-memory fakes for Kafka publishing, the feature reader, the decision
store and the model holder: the event path and its failure policy, no servers needed."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import pytest
from aiokafka.errors import KafkaTimeoutError, SaslAuthenticationFailed, TopicAuthorizationFailedError
from prometheus_client import CollectorRegistry
from redis.exceptions import (
    AuthenticationError,
    ClusterDownError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)

from config.settings import Settings
from fairness.spec import MonitoringSpec
from features.online import FeatureRequest, OnlineBatch, OnlineFeatures
from features.serving import LENDING_CLUB_SERVING, ServingSpec
from features.store import FeatureStoreRefused, FeatureStoreUnavailable
from onnx_models.card import ModelCard
from stream.decisions import Decision, DecisionOutcome, DecisionRecord
from stream.event_schema import EventSchema
from stream.failures import ModelRuntimeBroken, kafka_refusal_message, outage_dependency
from stream.metrics import WorkerMetrics
from stream.model_runtime import Verdict
from stream.pipeline import BatchOutcome, IncomingEvent, ScoringPipeline
from stream.reasons import Reason

SETTINGS = Settings()
TOPIC = SETTINGS.topic_applications


# ---- fakes --------------------------------------------------------------------------------

class FakeEncoder:
    """Two inputs: loan amount and annual income; a non-numeric amount cannot be encoded."""

    def __init__(self) -> None:
        self.calls = 0

    def transform_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        self.calls += 1
        rows = []
        for record in records:
            income = record.get("annual_inc")
            rows.append([float(record["loan_amnt"]), np.nan if income is None else float(income)])
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), 2)


class FakeModel:
    """PD = loan amount / 100,000; decline above 0.3, approve below 0.1."""

    def __init__(self, version: str = "v1", fail_on_amount: float | None = None,
                 monitoring: MonitoringSpec | None = None) -> None:
        self.version = version
        self.monitoring = monitoring or MonitoringSpec()
        self.policy_version = f"policy-{version}"
        self.feature_names = ["loan_amnt", "annual_inc"]
        self.encoder = FakeEncoder()
        self.serving = LENDING_CLUB_SERVING
        self.event_schema = EventSchema.from_spec(self.serving)
        self.fail_on_amount = fail_on_amount
        self.broken = False
        self.scored_rows = 0
        self.batch_sizes: list[int] = []  # rows of every call, failed or not

    def score(self, inputs: np.ndarray, incomplete: Sequence[bool]) -> list[Verdict]:
        self.batch_sizes.append(len(inputs))
        if self.broken:
            raise RuntimeError("onnxruntime session is gone")
        if self.fail_on_amount is not None and np.any(inputs[:, 0] == self.fail_on_amount):
            raise ValueError(f"input {self.fail_on_amount} breaks a reason text")
        self.scored_rows += len(inputs)
        verdicts = []
        for row, flag in zip(inputs, incomplete, strict=True):
            pd_value = 0.5 if np.isnan(row[0]) else float(row[0]) / 100_000
            decision: DecisionOutcome = (
                "decline" if pd_value > 0.3 else "approve" if pd_value < 0.1 else "review")
            if flag and decision == "approve":
                decision = "review"
            reasons = () if decision == "approve" else (
                Reason("R01", "loan_amnt", "Loan amount", round(pd_value, 4)),)
            verdicts.append(Verdict(pd_value, int(700 - 1000 * pd_value), "C", decision, reasons))
        return verdicts

    def self_check(self) -> None:
        self.score(np.full((1, 2), np.nan, dtype=np.float32), [True])

    @property
    def card(self) -> ModelCard:
        """Only its monitoring declaration is read (a drift monitor would read more)."""
        return cast(ModelCard, FakeCard(self.monitoring))


class FakeCard:
    def __init__(self, monitoring: MonitoringSpec) -> None:
        self.monitoring = monitoring

    def monitoring_spec(self) -> MonitoringSpec:
        return self.monitoring


class FakeHolder:
    """The live model; ``promote`` makes the next batch boundary switch to another one."""

    def __init__(self, model: FakeModel) -> None:
        self.current = model
        self._next: FakeModel | None = None

    def promote(self, model: FakeModel) -> None:
        self._next = model

    def refresh(self) -> bool:
        if self._next is None:
            return False
        self.current, self._next = self._next, None
        return True


class FakeReader:
    """Bureau features per customer; the first ``outages`` reads fail like Redis being down."""

    def __init__(self, bureau: dict[str, dict[str, Any]] | None = None, outages: int = 0,
                 broken_customers: Sequence[str] = ()) -> None:
        self.bureau = bureau or {}
        self.outages = outages
        self.broken_customers = set(broken_customers)
        self.requests: list[list[str]] = []

    async def read(self, requests: Sequence[FeatureRequest], *, serving: ServingSpec,
                   record_velocity: bool = True) -> OnlineBatch:
        if self.outages:
            self.outages -= 1
            raise FeatureStoreUnavailable("Redis feature store could not be reached")
        if any(request.customer_id in self.broken_customers for request in requests):
            raise ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")
        self.requests.append([request.application_id for request in requests])
        features = []
        for request in requests:
            stored = self.bureau.get(request.customer_id)
            item = OnlineFeatures(record={**request.application, **(stored or {})})
            item.age_seconds["bureau"] = 86_400.0 if stored is not None else None
            if stored is None:
                item.missing = ["delinq_2yrs"]
            features.append(item)
        return OnlineBatch(features, 0.001)


class FakeStore:
    def __init__(self, unsaveable: Sequence[str] = (), refusal: Exception | None = None) -> None:
        self.records: dict[str, DecisionRecord] = {}
        self.unsaveable = set(unsaveable)
        self.saves = 0
        self.refusal = refusal  # raised by every save, as Redis refusing our user would

    async def existing(self, application_ids: Sequence[str], model_version: str,
                       ) -> dict[str, Decision]:
        return {app_id: self.records[app_id].decision for app_id in application_ids
                if app_id in self.records
                and self.records[app_id].decision.model_version == model_version}

    async def save(self, records: Sequence[DecisionRecord]) -> None:
        self.saves += 1
        if self.refusal is not None:
            raise self.refusal
        for record in records:
            if record.decision.application_id in self.unsaveable:
                raise TypeError("Object of type bytes is not JSON serializable")
        for record in records:
            self.records[record.decision.application_id] = record


class FakeKafka:
    """Publishing: every message in order; the first ``outages`` sends time out."""

    def __init__(self, outages: int = 0, refusal: Exception | None = None) -> None:
        self.messages: list[tuple[str, bytes | None, dict[str, Any]]] = []
        self.outages = outages
        self.refusal = refusal

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> asyncio.Future[None]:
        if self.refusal is not None:
            raise self.refusal
        if self.outages:
            self.outages -= 1
            raise KafkaTimeoutError()
        self.messages.append((topic, key, json.loads(value)))
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered

    def on(self, topic: str) -> list[tuple[bytes | None, dict[str, Any]]]:
        return [(key, value) for name, key, value in self.messages if name == topic]

    @property
    def decisions(self) -> list[dict[str, Any]]:
        return [value for _key, value in self.on(SETTINGS.topic_decisions)]

    @property
    def dead_letters(self) -> list[dict[str, Any]]:
        return [value for _key, value in self.on(SETTINGS.topic_dead_letters)]


class Harness:
    def __init__(self, model: FakeModel | None = None, reader: FakeReader | None = None,
                 store: FakeStore | None = None, kafka: FakeKafka | None = None) -> None:
        self.model = model or FakeModel()
        self.holder = FakeHolder(self.model)
        self.reader = reader or FakeReader({"c1": {"delinq_2yrs": 0.0}, "c2": {"delinq_2yrs": 1.0}})
        self.store = store or FakeStore()
        self.kafka = kafka or FakeKafka()
        self.sleeps: list[float] = []
        self.registry = CollectorRegistry()
        self.metrics = WorkerMetrics(self.registry)

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        self.pipeline = ScoringPipeline(SETTINGS, self.holder, self.reader, self.store,
                                        self.kafka.publish, self.metrics, sleep=sleep)

    def process(self, events: Sequence[IncomingEvent]) -> BatchOutcome:
        return asyncio.run(self.pipeline.process(events))

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


def event(application_id: str, customer_id: str = "c1", offset: int = 0, loan_amnt: Any = 5000,
          **overrides: Any) -> IncomingEvent:
    payload = {"application_id": application_id, "customer_id": customer_id,
               "submitted_at": "2026-11-20T10:00:00Z", "loan_amnt": loan_amnt, "term": 36,
               "purpose": "credit_card", "annual_inc": 60000, "emp_length": 5,
               "home_ownership": "RENT", "verification_status": "Verified", "addr_state": "CA",
               **overrides}
    return IncomingEvent(json.dumps(payload).encode(), TOPIC, 0, offset, application_id.encode())


def malformed(offset: int, key: bytes | None = b"junk") -> IncomingEvent:
    return IncomingEvent(b"{not json", TOPIC, 0, offset, key)


# ---- the event path -----------------------------------------------------------------------

def test_every_event_ends_as_one_decision_or_one_dead_letter() -> None:
    harness = Harness()
    events = [event("a1", offset=0), malformed(1), event("a2", "c2", offset=2, loan_amnt=35000),
              malformed(2, key=None)]
    outcome = harness.process(events)
    assert [d["application_id"] for d in harness.kafka.decisions] == ["a1", "a2"]
    assert [d["decision"] for d in harness.kafka.decisions] == ["approve", "decline"]
    assert [letter["error"] for letter in harness.kafka.dead_letters] == ["not_json", "not_json"]
    assert len(outcome.decisions) + len(outcome.dead_letters) == len(events)
    assert harness.metric("creditrisk_dead_letters_total", reason="not_json") == 2


def test_dead_letters_keep_the_original_key_and_source() -> None:
    harness = Harness()
    harness.process([malformed(7, key=b"original-key"), malformed(8, key=None)])
    letters = harness.kafka.on(SETTINGS.topic_dead_letters)
    assert [key for key, _ in letters] == [b"original-key", None]
    assert letters[0][1]["source"] == {"topic": TOPIC, "partition": 0, "offset": 7}


def test_validation_dead_letters_are_published_before_the_decisions_of_their_batch() -> None:
    harness = Harness()
    harness.process([event("a1"), malformed(1), event("a2", offset=2)])
    topics = [topic for topic, _key, _value in harness.kafka.messages]
    assert topics == [SETTINGS.topic_dead_letters, SETTINGS.topic_decisions,
                      SETTINGS.topic_decisions]


def test_duplicate_ids_in_one_batch_are_scored_once_and_answered_alike() -> None:
    harness = Harness()
    harness.process([event("dup", offset=0), event("dup", offset=1), event("other", offset=2)])
    decisions = harness.kafka.decisions
    assert [d["application_id"] for d in decisions] == ["dup", "dup", "other"]
    assert decisions[0] == decisions[1]
    assert harness.reader.requests == [["dup", "other"]]
    assert harness.model.scored_rows == 2


def test_a_corrected_resend_in_the_same_batch_is_decided_on_its_last_copy() -> None:
    harness = Harness()
    harness.process([event("dup", offset=0, loan_amnt=5000), event("dup", offset=1, loan_amnt=45000)])
    first, second = harness.kafka.decisions
    assert first == second and first["probability_of_default"] == pytest.approx(0.45)


@pytest.mark.parametrize("error", [
    ReadOnlyError("READONLY You can't write against a read only replica."),
    OutOfMemoryError("OOM command not allowed when used memory > 'maxmemory'."),
    TryAgainError("TRYAGAIN Multiple keys request during rehashing of slot"),
    ClusterDownError("CLUSTERDOWN The cluster is down"),
])
def test_redis_that_answers_but_cannot_serve_is_an_outage_not_a_bad_event(error: Exception) -> None:
    assert outage_dependency(error) == "redis"


def test_a_replayed_application_gets_its_stored_decision_unchanged() -> None:
    harness = Harness()
    harness.process([event("a1")])
    first = harness.kafka.decisions[0]
    harness.process([event("a1", offset=5)])
    assert harness.kafka.decisions[1] == first  # decided_at included
    assert harness.model.scored_rows == 1
    assert harness.metric("creditrisk_decisions_replayed_total") == 1


def test_a_new_model_version_decides_a_replayed_application_again() -> None:
    harness = Harness()
    harness.process([event("a1")])
    harness.holder.promote(FakeModel("v2"))
    harness.process([event("a1", offset=5)])
    first, second = harness.kafka.decisions
    assert (first["model_version"], second["model_version"]) == ("v1", "v2")
    assert first["decision_id"] != second["decision_id"]


def test_the_model_switches_only_at_a_batch_boundary() -> None:
    harness = Harness()
    harness.process([event("a1"), event("a2", offset=1)])
    harness.holder.promote(FakeModel("v2"))
    harness.process([event("a3", offset=2), event("a4", offset=3)])
    versions = [d["model_version"] for d in harness.kafka.decisions]
    assert versions == ["v1", "v1", "v2", "v2"]


# ---- outages: retried with backoff ----------------------------------------------------------

def test_a_redis_outage_is_retried_with_growing_backoff_and_nothing_is_lost() -> None:
    harness = Harness(reader=FakeReader({"c1": {"delinq_2yrs": 0.0}}, outages=3))
    outcome = harness.process([event("a1"), event("a2", offset=1)])
    assert harness.sleeps == [0.2, 0.4, 0.8]
    assert len(outcome.decisions) == 2 and not outcome.dead_letters
    assert harness.metric("creditrisk_batch_retries_total", dependency="redis") == 3


def test_an_outage_is_one_log_line_however_many_retries(caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness(reader=FakeReader({"c1": {}}, outages=9))
    with caplog.at_level(logging.WARNING, logger="stream.pipeline"):
        harness.process([event("a1")])
        harness.reader.outages = 3
        harness.process([event("a2", offset=1)])  # the same outage, seen by the next batch
    assert [record.getMessage() for record in caplog.records if record.name == "stream.pipeline"] \
        == ["redis unavailable (FeatureStoreUnavailable); the batch waits and is retried until "
            "it recovers"]
    assert harness.metric("creditrisk_batch_retries_total", dependency="redis") == 12


def test_backoff_is_capped() -> None:
    harness = Harness(reader=FakeReader({"c1": {}}, outages=9))
    harness.pipeline.max_backoff_s = 1.0
    harness.process([event("a1")])
    assert harness.sleeps == [0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]


def test_a_kafka_outage_while_publishing_is_retried_and_the_decision_is_not_remade() -> None:
    harness = Harness(kafka=FakeKafka(outages=2))
    harness.process([event("a1")])
    assert len(harness.kafka.decisions) == 1
    assert harness.model.scored_rows == 1  # the retry reuses the stored decision
    assert harness.metric("creditrisk_batch_retries_total", dependency="kafka") == 2


# ---- errors that belong to one event: that event is dead-lettered ---------------------------

def test_an_event_the_encoder_cannot_read_is_dead_lettered_and_the_rest_decided() -> None:
    harness = Harness()
    harness.model.encoder = _EncoderFailingOn("bad-customer-income")
    harness.reader.bureau["c9"] = {"annual_inc": "bad-customer-income"}
    outcome = harness.process([event("a1"), event("a9", "c9", offset=2), event("a3", offset=3)])
    assert [d.application_id for d in outcome.decisions] == ["a1", "a3"]
    (letter,) = harness.kafka.dead_letters
    assert letter["error"] == "processing_error"
    assert "encode" in letter["detail"] and "'annual_inc'" in letter["detail"]
    assert "bad-customer-income" not in letter["detail"]  # never the value
    assert letter["source"]["offset"] == 2
    assert harness.kafka.on(SETTINGS.topic_dead_letters)[0][0] == b"a9"
    assert harness.metric("creditrisk_dead_letters_total", reason="processing_error") == 1


class _EncoderFailingOn(FakeEncoder):
    def __init__(self, poison: str) -> None:
        super().__init__()
        self.poison = poison
        self.batch_sizes: list[int] = []  # every call, failed or not

    def transform_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        self.batch_sizes.append(len(records))
        if any(record.get("annual_inc") == self.poison for record in records):
            raise ValueError(f"could not convert string to float: {self.poison!r}")
        return super().transform_records(records)


def _poisoned_batch(poison_at: int, size: int = 64, **poison: Any) -> list[IncomingEvent]:
    return [event(f"a{index}", offset=index, **(poison if index == poison_at else {}))
            for index in range(size)]


def test_one_event_the_encoder_cannot_read_costs_a_few_calls_not_the_batch_shape() -> None:
    harness = Harness()
    encoder = _EncoderFailingOn("bad-customer-income")
    harness.model.encoder = encoder
    harness.reader.bureau["c9"] = {"annual_inc": "bad-customer-income"}
    outcome = harness.process(_poisoned_batch(37, customer_id="c9"))

    assert len(outcome.decisions) == 63 and "a37" not in {d.application_id for d in outcome.decisions}
    (letter,) = harness.kafka.dead_letters
    assert letter["error"] == "processing_error" and letter["source"]["offset"] == 37
    assert "encode" in letter["detail"] and "'annual_inc'" in letter["detail"]
    batch_calls = [size for size in encoder.batch_sizes if size > 1]
    assert len(batch_calls) <= 1 + 2 * 6  # the batch, then two halves per level of log2(64)
    assert batch_calls[:3] == [64, 32, 32]  # the good half stays whole
    assert sum(size == 1 for size in encoder.batch_sizes) < 20  # the poison alone and its fields


def test_one_event_the_model_cannot_score_costs_a_few_calls_not_the_batch_shape() -> None:
    harness = Harness(model=FakeModel(fail_on_amount=12345.0))
    outcome = harness.process(_poisoned_batch(5, loan_amnt=12345))

    assert len(outcome.decisions) == 63 and "a5" not in {d.application_id for d in outcome.decisions}
    (letter,) = harness.kafka.dead_letters
    assert letter["source"]["offset"] == 5
    assert "score" in letter["detail"] and "'loan_amnt'" in letter["detail"]
    calls = harness.model.batch_sizes
    assert len(calls) <= 1 + 1 + 2 * 6 + 2  # batch, self-check, halves, the poison's inputs
    assert harness.model.scored_rows == 63 + 1 + 1  # the good ones once, self-check, blame


def test_an_event_the_model_cannot_score_is_dead_lettered_naming_the_input() -> None:
    harness = Harness(model=FakeModel(fail_on_amount=12345.0))
    outcome = harness.process([event("a1"), event("poison", offset=1, loan_amnt=12345),
                               event("a2", offset=2)])
    assert [d.application_id for d in outcome.decisions] == ["a1", "a2"]
    (letter,) = harness.kafka.dead_letters
    assert "score" in letter["detail"] and "'loan_amnt'" in letter["detail"]
    assert "12345" not in letter["detail"]


def test_a_customer_whose_stored_features_break_the_read_is_dead_lettered_alone() -> None:
    reader = FakeReader({"c1": {"delinq_2yrs": 0.0}}, broken_customers=["c-wrongtype"])
    harness = Harness(reader=reader)
    outcome = harness.process([event("a1"), event("a2", "c-wrongtype", offset=1)])
    assert [d.application_id for d in outcome.decisions] == ["a1"]
    (letter,) = harness.kafka.dead_letters
    assert letter["error"] == "processing_error" and "enrich" in letter["detail"]
    assert harness.sleeps == []  # a data error is not an outage: no retry loop


def test_a_decision_record_that_cannot_be_stored_dead_letters_its_event_only() -> None:
    harness = Harness(store=FakeStore(unsaveable=["a2"]))
    outcome = harness.process([event("a1"), event("a2", offset=1), event("a3", offset=2)])
    assert [d.application_id for d in outcome.decisions] == ["a1", "a3"]
    (letter,) = harness.kafka.dead_letters
    assert "store" in letter["detail"]
    assert set(harness.store.records) == {"a1", "a3"}


def test_every_copy_of_a_failing_duplicate_gets_its_own_dead_letter() -> None:
    harness = Harness(model=FakeModel(fail_on_amount=777.0))
    harness.process([event("p", offset=3, loan_amnt=777), event("p", offset=4, loan_amnt=777),
                     event("ok", offset=5)])
    assert [letter["source"]["offset"] for letter in harness.kafka.dead_letters] == [3, 4]
    assert [d["application_id"] for d in harness.kafka.decisions] == ["ok"]


def test_missing_bureau_data_is_listed_and_never_approved() -> None:
    harness = Harness()
    (decision,) = harness.process([event("a1", "unknown-customer")]).decisions
    assert decision.decision == "review" and decision.missing_features == ("delinq_2yrs",)


# ---- a refusal by Redis (credentials, ACL rights) stops the worker ---------------------------

@pytest.mark.parametrize("refusal", [
    FeatureStoreRefused("Redis refused a command of ACL user 'worker' (NOPERM ...)"),
    NoPermissionError("this user has no permissions to run the 'set' command"),
    AuthenticationError("invalid username-password pair or user is disabled."),
], ids=["refused", "noperm", "wrongpass"])
def test_a_redis_refusal_is_neither_retried_nor_dead_lettered(refusal: Exception) -> None:
    harness = Harness(store=FakeStore(refusal=refusal))
    with pytest.raises(type(refusal)):
        harness.process([event("a1"), event("a2", offset=1)])
    assert harness.sleeps == []  # not an outage: waiting would not end it
    assert harness.kafka.decisions == [] and harness.kafka.dead_letters == []
    assert harness.store.saves == 1


@pytest.mark.parametrize("refusal", [
    TopicAuthorizationFailedError("loan-decisions"), SaslAuthenticationFailed("wrong password"),
], ids=["no-acl", "wrong-password"])
def test_a_kafka_refusal_is_neither_retried_nor_dead_lettered(refusal: Exception) -> None:
    harness = Harness(kafka=FakeKafka(refusal=refusal))
    with pytest.raises(type(refusal)):
        harness.process([event("a1"), event("a2", offset=1)])
    assert harness.sleeps == []  # an ACL or a password does not change by waiting
    assert harness.kafka.decisions == [] and harness.kafka.dead_letters == []
    assert "creditrisk stack topics" in kafka_refusal_message(refusal)


# ---- a broken model runtime stops the worker -------------------------------------------------

def test_a_model_that_cannot_score_anything_stops_the_batch_unpublished() -> None:
    harness = Harness()
    harness.model.broken = True
    with pytest.raises(ModelRuntimeBroken, match="Promote a working version"):
        harness.process([event("a1"), event("a2", offset=1), malformed(2)])
    assert harness.kafka.decisions == []
    assert harness.pipeline.last_batch_completed_at is None


def test_a_batch_of_only_bad_events_is_dead_lettered_when_the_model_self_check_passes() -> None:
    harness = Harness(model=FakeModel(fail_on_amount=4242.0))
    outcome = harness.process([event("p1", loan_amnt=4242), event("p2", offset=1, loan_amnt=4242)])
    assert outcome.decisions == [] and len(outcome.dead_letters) == 2


def test_one_scored_request_reports_a_processing_error_as_a_rejection() -> None:
    harness = Harness(model=FakeModel(fail_on_amount=999.0))
    assert event("x", loan_amnt=999).value is not None
    (result,) = asyncio.run(harness.pipeline.score_many([event("x", loan_amnt=999).value or b""]))
    assert getattr(result, "error", None) == "processing_error"
    (good,) = asyncio.run(harness.pipeline.score_many([event("y").value or b""]))
    assert isinstance(good, Decision) and good.decision == "approve"
    assert harness.store.records == {} and harness.kafka.messages == []


def test_requests_scored_together_each_get_their_own_answer() -> None:
    harness = Harness(model=FakeModel(fail_on_amount=999.0))
    bodies = [event("a", loan_amnt=5_000).value, b"{not json", event("b", loan_amnt=999).value,
              event("c", loan_amnt=35_000).value]
    answers = asyncio.run(harness.pipeline.score_many([body or b"" for body in bodies]))
    assert isinstance(answers[0], Decision) and answers[0].application_id == "a"
    assert answers[0].decision == "approve"
    assert getattr(answers[1], "error", None) == "not_json"
    assert getattr(answers[2], "error", None) == "processing_error"
    assert getattr(answers[2], "application_id", None) == "b"
    assert isinstance(answers[3], Decision) and answers[3].decision == "decline"
    assert harness.store.records == {} and harness.kafka.messages == []


def test_an_unreadable_stored_decision_record_means_decide_again_not_a_crash() -> None:
    from stream.decisions import DecisionStore

    good = Decision(application_id="a2", customer_id="c2", decision_id="d2", decision="approve",
                    probability_of_default=0.01, score=700, risk_grade="A", model_version="v1",
                    policy_version="p1", submitted_at="2026-11-20T10:00:00Z",
                    decided_at="2026-11-20T10:00:01Z")
    incomplete = {"application_id": "a3", "model_version": "v1"}

    class Client:
        async def mget(self, _keys: list[str]) -> list[bytes | None]:
            return [b"{not json", b'{"decision":' + good.to_json() + b"}",
                    json.dumps({"decision": incomplete}).encode(), None]

    found = asyncio.run(DecisionStore(Client()).existing(["a1", "a2", "a3", "a4"], "v1"))
    assert found == {"a2": good}
