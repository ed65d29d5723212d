"""The failure policy of the event path: what happens when a step of a batch raises.

Three kinds of failure, three outcomes (see ``ScoringPipeline.process``):

- **Outage** (:func:`outage_dependency` names the dependency): Redis or Kafka unreachable,
  timing out, loading, failing over. Nothing is wrong with the events, so the batch is
  retried with backoff until the dependency recovers; nothing is acknowledged meanwhile.
- **Processing error** (:func:`isolate`): a step failed for one event — a value the
  encoder cannot read, a stored feature of the wrong type, a bug in one reason text. That
  event becomes a ``processing_error`` dead letter naming the step and, where it can be
  found, the field (never the value); the rest of its batch is decided, still together.
- **Broken runtime** (:class:`ModelRuntimeBroken`): the model fails on a batch *and* on its
  own known-good self-check. Retrying cannot help and dead-lettering
  would empty the topic into the DLQ, so the worker stops with a clear log line and a
  non-zero exit; the batch stays unacknowledged for the next (fixed) worker.
- **Broken configuration** (:class:`FeatureStoreRefused`, :data:`KAFKA_REFUSED_ERRORS`):
  Redis refuses our credentials (WRONGPASS, NOAUTH) or our ACL user's rights (NOPERM), or
  Kafka refuses the worker's principal a topic or its group (no ACL grants it, or the topic
  was never created). Like a broken runtime, neither retrying nor dead-lettering helps: the
  worker stops, naming the settings to fix.
- **Stalled stream**: events wait, Kafka and Redis answer the worker's probes, and no batch
  completes for ``stall_exit_after_s`` — a client inside the worker is stuck. Nothing was
  acknowledged, so the worker stops with ``stream.exits.EXIT_STALLED`` and its process manager
  (the supervisor of ``--processes N``, systemd, Kubernetes, compose's restart policy) starts a
  fresh one, which processes the waiting events.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from aiokafka.errors import (
    AuthenticationFailedError,
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)

from features.store import (
    REFUSED_ERRORS,
    UNAVAILABLE_ERRORS,
    FeatureStoreRefused,
    FeatureStoreUnavailable,
    refusal_in,
)
from stream.validation import REJECTION_CODES

PROCESSING_ERROR = "processing_error"
# Every reason a dead letter can carry: the validator's codes, then failures after validation.
DEAD_LETTER_CODES: tuple[str, ...] = (*REJECTION_CODES, PROCESSING_ERROR)

log = logging.getLogger(__name__)
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
    batch and not dead-letter its events. A Redis Cluster client raises a refusal met while
    it discovers the nodes (WRONGPASS at login, NOPERM on CLUSTER SLOTS) wrapped in an error
    that otherwise reads as an outage, so the cause is looked for too (:func:`refusal_in`)."""
    return isinstance(error, BROKEN_CONFIGURATION_ERRORS) or refusal_in(error) is not None


def kafka_refusal_message(error: KafkaError) -> str:
    """What an operator reads when Kafka refuses the worker (topic names, never a secret)."""
    return (f"Kafka refused the worker's principal ({type(error).__name__}: {error}). Its "
            "ACLs must let it read the applications topic in its consumer group and write the "
            "decisions and dead-letter topics, which must exist (`creditrisk stack topics` "
            "creates and grants them); check CREDITRISK_KAFKA_USERNAME, CREDITRISK_KAFKA_PASSWORD "
            "and the topic settings. The worker stops without acknowledging the batch.")


class ModelRuntimeBroken(RuntimeError):
    """The live model cannot score anything, its self-check included."""

    def __init__(self, model_version: str, cause: BaseException) -> None:
        self.model_version = model_version
        self.cause = cause
        super().__init__(
            f"model {model_version} failed on a whole batch and on its own self-check "
            f"({type(cause).__name__}); the worker stops without acknowledging the batch. "
            "Promote a working version (`creditrisk model promote VERSION`) and restart.")


class Failable(Protocol):
    """A batch item that can leave the batch as a dead letter (see :func:`isolate`)."""

    def fail(self, error: str, detail: str) -> None: ...


Item = TypeVar("Item", bound=Failable)
Done = TypeVar("Done")
# A batch step: items in, one result per item out, in the same order.
BatchStep = Callable[[Sequence[Item]], Awaitable[Sequence[Done]]]


async def isolate(step: str, items: Sequence[Item], run: BatchStep[Item, Done],
                  blame: Callable[[Item], str | None] | None = None,
                  on_batch_failure: Callable[[BaseException], None] | None = None) -> list[Done]:
    """Run a batch step over ``items``; the results of the items it succeeds for, in order.

    When the step raises for the items together (other than for an outage or a refused
    configuration, which propagate), they are split in halves and each half is run again,
    down to the single items that fail: each of those fails with a ``processing_error``
    naming the step and, when ``blame`` finds it, the field. The good items stay in large
    calls: one bad item among n costs about 2·log2(n) extra calls of the step, not n.
    ``on_batch_failure`` sees the error of the whole batch first (and may raise instead).
    """
    failed: list[Item] = []
    done = await _bisect(step, items, run, blame, failed, on_batch_failure)
    if failed:
        log.warning("%d event(s) failed the %s step and go to the dead-letter topic",
                    len(failed), step)
    return done


async def _bisect(step: str, items: Sequence[Item], run: BatchStep[Item, Done],
                  blame: Callable[[Item], str | None] | None, failed: list[Item],
                  on_failure: Callable[[BaseException], None] | None = None) -> list[Done]:
    if not items:
        return []
    try:
        return _checked(await run(items), len(items))
    except Exception as error:
        if outage_dependency(error) is not None or broken_configuration(error):
            raise
        if on_failure is not None:
            on_failure(error)
        if len(items) == 1:
            field = blame(items[0]) if blame is not None else None
            items[0].fail(PROCESSING_ERROR, processing_error_detail(step, error, field))
            failed.append(items[0])
            return []
    middle = len(items) // 2
    return [*await _bisect(step, items[:middle], run, blame, failed),
            *await _bisect(step, items[middle:], run, blame, failed)]


def processing_error_detail(step: str, cause: BaseException, field: str | None = None) -> str:
    """The detail of a ``processing_error`` dead letter: the step, the field and the kind of
    error — never a value, since exception messages often quote the offending input."""
    where = f" on field {field!r}" if field else ""
    return (f"the {step} step failed{where} ({type(cause).__name__}); the other events of "
            "the batch were decided")


def _checked(results: Sequence[Done], expected: int) -> list[Done]:
    if len(results) != expected:
        raise ValueError(f"a batch step returned {len(results)} results for {expected} items")
    return list(results)


def field_that_breaks(record: Mapping[str, object],
                      attempt: Callable[[Mapping[str, object]], object],
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
