"""How the worker stops: its exit statuses and the shutdown that gets there.

- :data:`EXIT_BATCH_FAILED` (70, EX_SOFTWARE): a batch failed as a whole — a broken model
  runtime or configuration, which a restart does not mend (:func:`stop_worker`).
- :data:`EXIT_STALLED` (75, EX_TEMPFAIL): events waited, Kafka and Redis answered, and no
  batch completed for ``stall_exit_after_s`` — a client inside the worker is stuck; a restart
  mends it and the process manager should make one (:func:`stop_stalled_worker`).

Either way the batch in hand is not acknowledged, so a fresh worker processes it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import traceback
from typing import TYPE_CHECKING

from features.store import FeatureStoreRefused
from stream.failures import KAFKA_REFUSED_ERRORS, ModelRuntimeBroken, kafka_refusal_message

if TYPE_CHECKING:
    from stream.liveness import Liveness, Stall

EXIT_BATCH_FAILED = 70
EXIT_STALLED = 75
# How long a stopping worker gets to shut down cleanly (commit offsets, leave its group):
# a worker then exits regardless, and the supervisor SIGKILLs a child that has not.
STOP_GRACE_S = 30.0

log = logging.getLogger(__name__)


def stop_worker(liveness: Liveness, error: Exception) -> None:
    """A batch failed as a whole for a reason that is neither an outage nor one event's
    (the pipeline handles those): stop the whole worker rather than loop on the batch.
    SIGTERM gives a clean shutdown without committing the batch; ``creditrisk worker`` then
    exits with :data:`EXIT_BATCH_FAILED`."""
    if isinstance(error, (ModelRuntimeBroken, FeatureStoreRefused)):  # messages made to be shown
        message = str(error)
    elif isinstance(error, KAFKA_REFUSED_ERRORS):
        message = kafka_refusal_message(error)
    else:
        # The message of an unexpected error may quote input values: type and frames only.
        frames = "".join(traceback.format_tb(error.__traceback__))
        message = (f"unexpected {type(error).__name__} while processing a batch; the worker "
                   "stops without acknowledging it. Frames:\n" + frames)
    liveness.stopping(message, f"stopped: {type(error).__name__}", EXIT_BATCH_FAILED)
    _stop_process(message, EXIT_BATCH_FAILED)


def stop_stalled_worker(liveness: Liveness, stall: Stall) -> None:
    """Events wait, Kafka and Redis answer, and no batch has completed for longer than
    ``stall_exit_after_s``: a client inside the worker is stuck (a send that never resolves, a
    fetch that never resumes). Nothing was acknowledged, so the worker stops with
    :data:`EXIT_STALLED` and its process manager starts a fresh one, which processes the
    waiting events."""
    message = (
        f"no batch completed for {stall.seconds:.0f} s while {stall.waiting} events waited and "
        "Kafka and Redis answered: the worker's Kafka client is stuck. The worker stops without "
        f"acknowledging anything (exit status {EXIT_STALLED}) so that its process manager "
        "starts it again; the waiting events are processed then. CREDITRISK_STALL_EXIT_AFTER_S "
        "sets the delay.")
    liveness.stopping(message, "stopped: stalled", EXIT_STALLED)
    _stop_process(message, EXIT_STALLED)


def _stop_process(message: str, exit_status: int) -> None:
    """A clean shutdown (SIGTERM) without acknowledging the batch in hand; if a stuck client
    keeps the shutdown from finishing, the process exits after :data:`STOP_GRACE_S` anyway."""
    log.critical("%s", message)
    with contextlib.suppress(RuntimeError):  # no running loop: nothing can hang the shutdown
        asyncio.get_running_loop().call_later(STOP_GRACE_S, os._exit, exit_status)
    os.kill(os.getpid(), signal.SIGTERM)
