"""Micro-batches that grow with the backlog.

Faust's ``take_events(max, within)`` holds its feeder while a batch is scored, so the next
batch only gathers what arrives in ``within`` after it: a few events, whatever the backlog,
and a worker that fell behind stays behind (docs/benchmarks.md, "Soak"). Here a reader task
keeps pulling events from the stream into a bounded queue *while* the batch is scored, and
the next batch takes everything waiting, up to ``max_events``; a lone event is scored after at
most ``within_s``. When the broker holds more events than the queue (``backlog``), the batch
waits up to ``backlog_within_s`` for them, until it is full: on a process short of CPU the
reader and the scoring share it, and without that wait the batches stay small while events
are only late, not absent.

Nothing here acknowledges anything: the caller acknowledges a batch's events once its
decisions and dead letters are delivered (at-least-once). The queue holds at most
``max_events`` events beyond the batch being scored, so an event read is at most two batches
away from its acknowledgment.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Generic, TypeVar

E = TypeVar("E")

# How often a batch that waits for more events looks at the queue.
GATHER_POLL_S = 0.001


class BacklogBatches(Generic[E]):
    """Batches of ``source``'s items: each is every item waiting (at most ``max_events``),
    after a wait of at most ``within_s`` for more once the first has arrived. Use as
    ``async with BacklogBatches(...) as batches: async for batch in batches: ...``; the
    iteration ends when ``source`` ends and raises what ``source`` raised. ``backlog`` says
    how many events are known to wait beyond those read (e.g. the consumer's highwater
    minus its last read offset): while it is positive a batch that is not full waits up to
    ``backlog_within_s`` for them."""

    def __init__(self, source: AsyncIterable[E], max_events: int, within_s: float, *,
                 backlog: Callable[[], int] | None = None, backlog_within_s: float = 0.0) -> None:
        if max_events < 1:
            raise ValueError(f"max_events must be at least 1, not {max_events}")
        self._source = source
        self.max_events = max_events
        self.within_s = max(within_s, 0.0)
        self._backlog = backlog
        self.backlog_within_s = max(backlog_within_s, 0.0)
        self._queue: asyncio.Queue[E] = asyncio.Queue(maxsize=max_events)
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> BacklogBatches[E]:
        self._reader = asyncio.create_task(self._read(), name="backlog-batches-reader")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop reading; items still queued are dropped unacknowledged (read again after a
        restart or a rebalance)."""
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    @property
    def waiting(self) -> int:
        """Items read and not yet handed out in a batch."""
        return self._queue.qsize()

    async def _read(self) -> None:
        async for item in self._source:
            await self._queue.put(item)

    def __aiter__(self) -> AsyncIterator[list[E]]:
        return self

    async def __anext__(self) -> list[E]:
        batch = [await self._first()]
        self._drain_into(batch)
        if len(batch) < self.max_events and self._backlog_waits():
            await self._gather(batch, self.backlog_within_s, while_backlog=True)
        if len(batch) < self.max_events and self.within_s > 0:
            await self._gather(batch, self.within_s)
        return batch

    def _backlog_waits(self) -> bool:
        return (self._backlog is not None and self.backlog_within_s > 0
                and self._backlog() > 0)

    async def _first(self) -> E:
        """The next item, waiting as long as it takes; StopAsyncIteration once the source has
        ended and everything read was handed out, the source's error if it failed."""
        queue = self._queue
        if not queue.empty():
            return queue.get_nowait()
        reader = self._reader
        if reader is None:
            raise RuntimeError("BacklogBatches is iterated outside its 'async with' block")
        if not reader.done():
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                return getter.result()
            getter.cancel()  # the item, if one came meanwhile, stays in the queue
            with contextlib.suppress(asyncio.CancelledError):
                await getter
        if not queue.empty():
            return queue.get_nowait()
        reader.result()  # the source's error, if it failed
        raise StopAsyncIteration

    def _drain_into(self, batch: list[E]) -> None:
        queue = self._queue
        while len(batch) < self.max_events and not queue.empty():
            batch.append(queue.get_nowait())

    async def _gather(self, batch: list[E], seconds: float, while_backlog: bool = False) -> None:
        """Add what arrives within ``seconds`` of now, until the batch is full (or, with
        ``while_backlog``, until no event is known to wait beyond those read). Looks every
        GATHER_POLL_S rather than waking per event: the reader runs meanwhile, and a batch of
        200 costs a few wake-ups, not 200."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while len(batch) < self.max_events:
            remaining = deadline - loop.time()
            if remaining <= 0 or self._reader is None or self._reader.done():
                return
            if while_backlog and not self._backlog_waits():
                return
            await asyncio.sleep(min(remaining, GATHER_POLL_S))
            self._drain_into(batch)
