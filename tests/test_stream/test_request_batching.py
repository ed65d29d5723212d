"""POST /score's batching: requests that arrive together are scored together, each caller
gets its own answer, a lone request is not held back, overload is refused at once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from stream.request_batching import Overloaded, RequestBatcher


class SlowScorer:
    """Answers each body with its upper-case text, after ``seconds``; records the batches."""

    def __init__(self, seconds: float = 0.02, fail: bool = False) -> None:
        self.seconds = seconds
        self.fail = fail
        self.batches: list[list[bytes]] = []

    async def __call__(self, payloads: Sequence[bytes]) -> list[str]:
        self.batches.append(list(payloads))
        await asyncio.sleep(self.seconds)
        if self.fail:
            raise ConnectionError("feature store down")
        return [payload.decode().upper() for payload in payloads]


def test_requests_arriving_while_a_batch_is_scored_go_together_in_the_next() -> None:
    async def scenario() -> tuple[list[str], SlowScorer]:
        scorer = SlowScorer()
        batcher = RequestBatcher(scorer, max_batch=50, max_waiting=100)
        answers = await asyncio.gather(*(batcher.score(f"r{i}".encode()) for i in range(30)))
        await batcher.close()
        return answers, scorer

    answers, scorer = asyncio.run(scenario())
    assert answers == [f"R{i}" for i in range(30)]  # each caller its own answer
    assert len(scorer.batches) <= 2 and sum(map(len, scorer.batches)) == 30


def test_a_lone_request_is_scored_at_once() -> None:
    async def scenario() -> float:
        batcher = RequestBatcher(SlowScorer(seconds=0.0))
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await batcher.score(b"only") == "ONLY"
        took = loop.time() - started
        await batcher.close()
        return took

    assert asyncio.run(scenario()) < 0.05


def test_batches_never_exceed_the_maximum() -> None:
    async def scenario() -> SlowScorer:
        scorer = SlowScorer()
        batcher = RequestBatcher(scorer, max_batch=8, max_waiting=100)
        await asyncio.gather(*(batcher.score(b"x") for i in range(40)))
        await batcher.close()
        return scorer

    assert max(len(batch) for batch in asyncio.run(scenario()).batches) == 8


def test_a_full_queue_refuses_at_once_with_when_to_retry() -> None:
    async def scenario() -> tuple[int, int, list[BaseException | str]]:
        batcher = RequestBatcher(SlowScorer(seconds=0.05), max_batch=5, max_waiting=10,
                                 retry_after_s=2.0)
        results = await asyncio.gather(*(batcher.score(b"x") for _ in range(40)),
                                       return_exceptions=True)
        await batcher.close()
        refused = [r for r in results if isinstance(r, Overloaded)]
        assert all(r.retry_after_s == 2.0 for r in refused)
        return len(refused), sum(r == "X" for r in results), results

    refused, answered, results = asyncio.run(scenario())
    assert refused > 0 and answered >= 10 and refused + answered == 40, results


def test_a_batch_that_fails_as_a_whole_fails_each_of_its_requests() -> None:
    async def scenario() -> list[BaseException | str]:
        batcher = RequestBatcher(SlowScorer(fail=True))
        results = await asyncio.gather(*(batcher.score(b"x") for _ in range(5)),
                                       return_exceptions=True)
        await batcher.close()
        return results

    assert all(isinstance(result, ConnectionError) for result in asyncio.run(scenario()))


def test_the_batcher_keeps_serving_after_a_failed_batch() -> None:
    async def scenario() -> str:
        scorer = SlowScorer(fail=True)
        batcher = RequestBatcher(scorer)
        with pytest.raises(ConnectionError):
            await batcher.score(b"first")
        scorer.fail = False
        answer = await batcher.score(b"second")
        await batcher.close()
        return answer

    assert asyncio.run(scenario()) == "SECOND"
