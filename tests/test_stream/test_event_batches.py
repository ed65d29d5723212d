"""Micro-batches that grow with the backlog (stream/event_batches.py), without servers: a
worker that fell behind scores bigger batches, a lone event is not held, nothing read is
lost or handed out twice, and a failing source is not mistaken for a quiet one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from stream.event_batches import BacklogBatches


async def _numbers(count: int, every_s: float = 0.0) -> AsyncIterator[int]:
    for number in range(count):
        if every_s:
            await asyncio.sleep(every_s)
        else:
            await asyncio.sleep(0)
        yield number


async def _batches(source: AsyncIterator[int], max_events: int, within_s: float,
                   scoring_s: float = 0.0) -> list[list[int]]:
    seen = []
    async with BacklogBatches(source, max_events, within_s) as batches:
        async for batch in batches:
            seen.append(batch)
            if scoring_s:
                await asyncio.sleep(scoring_s)  # a batch's round trips to Redis and Kafka
    return seen


def test_a_backlog_fills_the_batches_up_to_the_most_events() -> None:
    # 1,000 events already waiting, each batch taking 5 ms: after the first, every batch is
    # full, where a 2 ms window after each batch would have gathered a handful.
    seen = asyncio.run(_batches(_numbers(1_000), max_events=200, within_s=0.002, scoring_s=0.005))
    assert [number for batch in seen for number in batch] == list(range(1_000))
    assert max(len(batch) for batch in seen) == 200
    assert all(len(batch) == 200 for batch in seen[1:-1])


def test_events_arriving_while_a_batch_is_scored_make_the_next_batch() -> None:
    # One event per ms, 20 ms per batch: about 20 events wait by the time a batch is done.
    seen = asyncio.run(_batches(_numbers(200, every_s=0.001), max_events=500, within_s=0.002,
                                scoring_s=0.02))
    assert [number for batch in seen for number in batch] == list(range(200))
    assert sorted(len(batch) for batch in seen)[len(seen) // 2] >= 8


async def one_then_quiet() -> AsyncIterator[int]:
    """One event, then nothing for 10 s."""
    yield 1
    await asyncio.sleep(10)
    yield 2


def test_a_lone_event_waits_at_most_within() -> None:
    async def lone() -> float:
        async with BacklogBatches(one_then_quiet(), 200, 0.05) as batches:
            started = time.perf_counter()
            batch = await anext(batches)
            assert batch == [1]
            return time.perf_counter() - started

    assert asyncio.run(lone()) < 1.0


def test_the_source_s_error_reaches_the_consumer_of_the_batches() -> None:
    async def failing() -> AsyncIterator[int]:
        yield 1
        raise ConnectionError("the broker went away")

    with pytest.raises(ConnectionError, match="broker went away"):
        asyncio.run(_batches(failing(), 10, 0.001))


def test_closing_stops_reading() -> None:
    read: list[int] = []

    async def endless() -> AsyncIterator[int]:
        number = 0
        while True:
            read.append(number)
            yield number
            number += 1

    async def take_one_batch() -> None:
        async with BacklogBatches(endless(), 5, 0.001) as batches:
            await anext(batches)
        count = len(read)
        await asyncio.sleep(0.01)
        assert len(read) == count  # the reader is gone

    asyncio.run(take_one_batch())
    assert len(read) <= 5 + 5 + 1  # one batch, one full queue behind it, one being put


def test_most_events_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BacklogBatches(_numbers(1), 0, 0.001)


def test_events_known_to_wait_in_the_broker_fill_the_batch_before_it_is_scored() -> None:
    # The reader is slow (one event per ms, as on a process short of CPU) and the broker is
    # known to hold 100 more: the batch waits for them rather than leaving with a handful.
    async def slow_batches(backlog_within_s: float) -> list[int]:
        yielded = 0

        async def trickle() -> AsyncIterator[int]:
            nonlocal yielded
            for number in range(100):
                await asyncio.sleep(0.001)
                yielded += 1
                yield number

        async with BacklogBatches(trickle(), 50, 0.002, backlog=lambda: 100 - yielded,
                                  backlog_within_s=backlog_within_s) as batches:
            return [len(batch) async for batch in batches]

    assert asyncio.run(slow_batches(backlog_within_s=2.0))[:2] == [50, 50]
    assert max(asyncio.run(slow_batches(backlog_within_s=0.0))) < 50


def test_a_backlog_that_does_not_come_delays_a_batch_at_most_backlog_within() -> None:
    async def stuck() -> float:
        async with BacklogBatches(one_then_quiet(), 200, 0.002, backlog=lambda: 1_000,
                                  backlog_within_s=0.05) as batches:
            started = time.perf_counter()
            assert await anext(batches) == [1]
            return time.perf_counter() - started

    assert asyncio.run(stuck()) < 1.0
