"""``POST /score`` under load: concurrent requests are scored together, overload is refused.

Each request joins a bounded queue and waits for its own answer. One task takes whatever has
queued up — everything that arrived while the previous batch was being scored, up to
``max_batch`` — and scores it with one feature-store round trip and one model call
(:meth:`ScoringPipeline.score_many`, the stream's own batch code). At low load a request is
scored at once, alone; under load batches grow by themselves. When the queue is full the
request is refused at once with :class:`Overloaded` (HTTP 429 with ``Retry-After``) rather
than waiting until its caller gives up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Answer = TypeVar("Answer")
ScoreMany = Callable[[Sequence[bytes]], Awaitable[Sequence[Answer]]]


class Overloaded(RuntimeError):
    """More requests wait than the worker answers within its latency budget."""

    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"too many scoring requests waiting; retry in {retry_after_s:g} s")


class RequestBatcher(Generic[Answer]):
    """Adaptive micro-batching of single requests (see the module docstring)."""

    def __init__(self, score_many: ScoreMany[Answer], max_batch: int = 200,
                 max_waiting: int = 1000, retry_after_s: float = 1.0) -> None:
        self.score_many = score_many
        self.max_batch = max_batch
        self.retry_after_s = retry_after_s
        self._queue: asyncio.Queue[tuple[bytes, asyncio.Future[Answer]]] = \
            asyncio.Queue(maxsize=max_waiting)
        self._task: asyncio.Task[None] | None = None

    async def score(self, payload: bytes) -> Answer:
        """This request's answer; :class:`Overloaded` when the queue is full; the batch's
        error when scoring the batch failed as a whole (a dependency outage)."""
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((payload, answer))
        except asyncio.QueueFull:
            raise Overloaded(self.retry_after_s) from None
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="score-request-batches")
        return await answer

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._answer(batch)

    async def _answer(self, batch: list[tuple[bytes, asyncio.Future[Answer]]]) -> None:
        live = [(payload, answer) for payload, answer in batch if not answer.done()]
        if not live:  # every caller went away
            return
        try:
            answers = await self.score_many([payload for payload, _ in live])
        except Exception as error:  # noqa: BLE001 - each waiting request gets the error
            for _, answer in live:
                if not answer.done():
                    answer.set_exception(error)
            return
        for (_, answer), result in zip(live, answers, strict=True):
            if not answer.done():
                answer.set_result(result)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
