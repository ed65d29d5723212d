"""The failure policy of the event path: what happens when a step of a batch raises.

Three kinds of failure, three outcomes (see ``ScoringPipeline.process``):

- **Outage** (:func:`outage_dependency` names the dependency): Redis or Kafka unreachable,
  timing out, loading, failing over. Nothing is wrong with the events, so the batch is
  retried with backoff until the dependency recovers; nothing is acknowledged meanwhile.
- **Processing error** (:class:`ProcessingError`): a step failed for one event — a value the
  encoder cannot read, a stored feature of the wrong type, a bug in one reason text. That
  event becomes a ``processing_error`` dead letter naming the step and, where it can be
  found, the field (never the value); the rest of its batch is decided.
- **Broken runtime** (:class:`ModelRuntimeBroken`): the model fails on every event of a
  batch *and* on its own known-good self-check. Retrying cannot help and dead-lettering
  would empty the topic into the DLQ, so the worker stops with a clear log line and a
  non-zero exit; the batch stays unacknowledged for the next (fixed) worker.
- **Broken configuration** (:class:`FeatureStoreRefused`, :data:`KAFKA_REFUSED_ERRORS`):
  Redis refuses our credentials (WRONGPASS, NOAUTH) or our ACL user's rights (NOPERM), or
  Kafka refuses the worker's principal a topic or its group (no ACL grants it, or the topic
  was never created). Like a broken runtime, neither retrying nor dead-lettering helps: the
  worker stops, naming the settings to fix.
- **Stalled stream**: events wait, Kafka and Redis answer the worker's probes, and no batch
  completes for ``stall_exit_after_s`` — a client inside the worker is stuck. Nothing was
  acknowledged, so the worker stops with :data:`EXIT_STALLED` and its process manager (the
  supervisor of ``--processes N``, systemd, Kubernetes, compose's restart policy) starts a
  fresh one, which processes the waiting events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from aiokafka.errors import (
    AuthenticationFailedError,
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)

from features.store import REFUSED_ERRORS, UNAVAILABLE_ERRORS, FeatureStoreRefused, FeatureStoreUnavailable
from stream.validation import REJECTION_CODES

PROCESSING_ERROR = "processing_error"
# Every reason a dead letter can carry: the validator's codes, then failures after validation.
DEAD_LETTER_CODES: tuple[str, ...] = (*REJECTION_CODES, PROCESSING_ERROR)

R = TypeVar("R")
log = logging.getLogger(__name__)
DEPENDENCIES: tuple[str, ...] = ("redis", "kafka")
# Kafka says no to our principal: waiting would not change the ACLs or the password.
KAFKA_REFUSED_ERRORS: tuple[type[KafkaError], ...] = (
    TopicAuthorizationFailedError, GroupAuthorizationFailedError, ClusterAuthorizationFailedError,
    SaslAuthenticationFailed, AuthenticationFailedError)
BROKEN_CONFIGURATION_ERRORS = (FeatureStoreRefused, *REFUSED_ERRORS, *KAFKA_REFUSED_ERRORS)


def outage_dependency(error: BaseException) -> str | None:
    """``"redis"`` or ``"kafka"`` when the error means that dependency is unavailable (wait
    and retry the batch), else None. The one list of what counts as an outage."""
    if broken_configuration(error):
        return None  # a refusal is no outage: waiting would not end it
    if isinstance(error, (FeatureStoreUnavailable, *UNAVAILABLE_ERRORS)):
        return "redis"
    if isinstance(error, KafkaError):
        # Producer sends fail with timeouts and connection errors while a broker is away;
        # configuration errors (authorization, size) also need an operator, not a dead letter.
        return "kafka"
    return None


def broken_configuration(error: BaseException) -> bool:
    """Redis or Kafka refused our credentials or rights: the worker must stop, not retry the
    batch and not dead-letter its events."""
    return isinstance(error, BROKEN_CONFIGURATION_ERRORS)


def kafka_refusal_message(error: KafkaError) -> str:
    """What an operator reads when Kafka refuses the worker (topic names, never a secret)."""
    return (f"Kafka refused the worker's principal ({type(error).__name__}: {error}). Its "
            "ACLs must let it read the applications topic in its consumer group and write the "
            "decisions and dead-letter topics, which must exist (`creditrisk stack topics` "
            "creates and grants them); check CREDITRISK_KAFKA_USERNAME, CREDITRISK_KAFKA_PASSWORD "
            "and the topic settings. The worker stops without acknowledging the batch.")


class DependencyStatus:
    """Which dependencies answer, as the worker last saw them (a batch step or the periodic
    probe). Outages are loud in the metrics (``creditrisk_dependency_up``) and in ``/health``
    and quiet in the log: one line when a dependency goes down, one every
    ``still_down_every_s`` while it stays down, one when it recovers."""

    def __init__(self, gauge: Any, still_down_every_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.gauge = gauge  # creditrisk_dependency_up{dependency}
        self.still_down_every_s = still_down_every_s
        self.clock = clock
        self.down_since: dict[str, float] = {}
        self._last_line: dict[str, float] = {}
        for dependency in DEPENDENCIES:
            gauge.labels(dependency=dependency).set(1)

    @property
    def up(self) -> dict[str, bool]:
        return {dependency: dependency not in self.down_since for dependency in DEPENDENCIES}

    def failed(self, dependency: str, error: BaseException) -> None:
        now = self.clock()
        self.gauge.labels(dependency=dependency).set(0)
        if dependency not in self.down_since:
            self.down_since[dependency] = self._last_line[dependency] = now
            log.warning("%s unavailable (%s); batches wait and are retried until it recovers",
                        dependency, type(error).__name__)
        elif now - self._last_line[dependency] >= self.still_down_every_s:
            self._last_line[dependency] = now
            log.warning("%s still unavailable after %.0f s (%s)", dependency,
                        now - self.down_since[dependency], type(error).__name__)

    def answered(self, *dependencies: str) -> None:
        """These dependencies answered (all of them when none is named)."""
        for dependency in dependencies or tuple(self.down_since):
            since = self.down_since.pop(dependency, None)
            if since is not None:
                self.gauge.labels(dependency=dependency).set(1)
                log.warning("%s recovered after %.0f s", dependency, self.clock() - since)


class ProcessingError(Exception):
    """One event could not be processed by ``step``; ``field`` names the input if known."""

    def __init__(self, step: str, cause: BaseException, field: str | None = None) -> None:
        self.step = step
        self.cause = cause
        self.field = field
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        """For the dead letter: the step, the field and the kind of error — never a value,
        since exception messages often quote the offending input."""
        where = f" on field {self.field!r}" if self.field else ""
        return (f"the {self.step} step failed{where} ({type(self.cause).__name__}); the "
                "other events of the batch were decided")


class ModelRuntimeBroken(RuntimeError):
    """The live model cannot score anything, its self-check included."""

    def __init__(self, model_version: str, cause: BaseException) -> None:
        self.model_version = model_version
        self.cause = cause
        super().__init__(
            f"model {model_version} failed on a whole batch and on its own self-check "
            f"({type(cause).__name__}); the worker stops without acknowledging the batch. "
            "Promote a working version (`creditrisk model promote VERSION`) and restart.")


async def isolate(step: str, positions: Iterable[int],
                  batch: Callable[[Sequence[int]], Awaitable[Sequence[R]]],
                  locate_field: Callable[[int], str | None] | None = None,
                  ) -> tuple[dict[int, R], dict[int, ProcessingError]]:
    """Run a batch step over the items at ``positions``; if it raises (other than for an
    outage, which propagates), run it item by item so that only the items that fail are
    set apart (outages and broken configurations propagate). Returns the results and the
    errors, by position."""
    todo = list(positions)
    if not todo:
        return {}, {}
    try:
        return dict(zip(todo, _checked(await batch(todo), len(todo)), strict=True)), {}
    except Exception as error:
        if outage_dependency(error) is not None or broken_configuration(error):
            raise
        first_error = error
    results: dict[int, R] = {}
    errors: dict[int, ProcessingError] = {}
    for position in todo:
        try:
            if len(todo) == 1:
                raise first_error
            (results[position],) = _checked(await batch([position]), 1)
        except Exception as error:
            if outage_dependency(error) is not None or broken_configuration(error):
                raise
            field = locate_field(position) if locate_field is not None else None
            errors[position] = ProcessingError(step, error, field)
    return results, errors


def _checked(results: Sequence[R], expected: int) -> Sequence[R]:
    if len(results) != expected:
        raise ValueError(f"a batch step returned {len(results)} results for {expected} items")
    return results


def field_that_breaks(record: Mapping[str, Any], attempt: Callable[[Mapping[str, Any]], Any],
                      candidates: Sequence[str]) -> str | None:
    """The first field whose removal (as a missing value) lets ``attempt`` succeed: the
    field to name in a dead letter. None when no single field is to blame."""
    for name in candidates:
        if record.get(name) is None:
            continue
        try:
            attempt({**record, name: None})
        except Exception:  # noqa: BLE001 - still failing: not this field
            continue
        return name
    return None
